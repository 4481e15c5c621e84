package mysql

import (
	"context"
	"testing"
	"time"
)

func TestIntegrationStats(t *testing.T) {
	srv := startMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := srv.open(t, itAdminUser, itAdminPass)
	for _, q := range []string{
		"CREATE DATABASE cmha_stats",
		"CREATE TABLE cmha_stats.t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB",
		"INSERT INTO cmha_stats.t VALUES (1, 'a'), (2, 'b')",
		"ANALYZE TABLE cmha_stats.t",
		"SET GLOBAL rpl_semi_sync_master_enabled = ON",
	} {
		if err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = admin.Exec(context.Background(), "SET GLOBAL rpl_semi_sync_master_enabled = OFF") })

	st, stats, err := admin.StatusAndStats(ctx, StatsOptions{DataSize: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", *stats)
	if stats.Err != nil {
		t.Errorf("Stats.Err = %v", stats.Err)
	}
	if st.ServerID != 1 || !st.SemiSync.SourceOn || !st.LogBin {
		t.Errorf("status read with the stats: %+v", st)
	}
	if stats.Questions == 0 || stats.ThreadsConnected == 0 || stats.MaxConnections == 0 {
		t.Errorf("counters: questions=%d threads=%d max_connections=%d", stats.Questions, stats.ThreadsConnected, stats.MaxConnections)
	}
	if !stats.HasInnodbDeadlocks || !stats.HasSemiSyncCounters {
		t.Errorf("MariaDB has Innodb_deadlocks and the semi-sync master counters: %+v", stats)
	}
	if !stats.HasBinlog || stats.BinlogFiles < 1 || stats.BinlogBytes < 256 {
		t.Errorf("binary logs: has=%v files=%d bytes=%d", stats.HasBinlog, stats.BinlogFiles, stats.BinlogBytes)
	}
	// An InnoDB table takes at least a 16 KiB page of data.
	if !stats.DataBytesRead || stats.DataBytes < 16384 || stats.DataBytesAt.IsZero() {
		t.Errorf("data size: read=%v bytes=%d at=%s", stats.DataBytesRead, stats.DataBytes, stats.DataBytesAt)
	}

	// Counters grow; without DataSize the data size is not read.
	before := stats.Questions
	_, stats, err = admin.StatusAndStats(ctx, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Questions <= before || stats.DataBytesRead || !stats.DataBytesAt.IsZero() {
		t.Errorf("second read: questions %d (before %d), data read %v", stats.Questions, before, stats.DataBytesRead)
	}

	// The monitoring user (REPLICATION CLIENT, SLAVE MONITOR) can read them
	// all; it sees no table, so its data size is 0.
	mon := srv.open(t, itMonUser, itMonPass)
	_, stats, err = mon.StatusAndStats(ctx, StatsOptions{DataSize: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Err != nil || !stats.HasBinlog || !stats.DataBytesRead {
		t.Errorf("as the monitoring user: %+v", stats)
	}

	// A deadline too close for the data size: the statistics keep the rest.
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer dcancel()
	if _, stats, err = admin.StatusAndStats(dctx, StatsOptions{DataSize: true}); err == nil {
		t.Logf("within 5 ms: Stats.Err = %v", stats.Err)
		if stats.DataBytesRead || stats.Err == nil || stats.MaxConnections == 0 {
			t.Errorf("data size read within 5 ms: %+v", stats)
		}
	} else {
		t.Logf("the status itself did not fit in 5 ms: %v", err)
	}
}

// StartMariaDBForTest starts a throwaway mariadbd for the external tests of
// this directory (package mysql_test), or skips; it returns its address and
// an account with every privilege.
func StartMariaDBForTest(t *testing.T) (addr, user, password string) {
	t.Helper()
	srv := startMariaDB(t)
	return srv.addr, itAdminUser, itAdminPass
}
