package mysql

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

func TestParseStats(t *testing.T) {
	tests := []struct {
		name         string
		vars, status map[string]string
		want         Stats
		wantErr      string
	}{
		{
			name: "MariaDB primary with the semi-sync master counters",
			vars: map[string]string{"max_connections": "151", "read_only": "OFF"},
			status: map[string]string{
				"Questions": "1234", "Slow_queries": "3", "Threads_connected": "7", "Innodb_deadlocks": "2",
				"Rpl_semi_sync_master_tx_waits": "900", "Rpl_semi_sync_master_no_tx": "4",
				"Rpl_semi_sync_master_status": "ON",
			},
			want: Stats{Questions: 1234, SlowQueries: 3, ThreadsConnected: 7, MaxConnections: 151,
				InnodbDeadlocks: 2, HasInnodbDeadlocks: true,
				SemiSyncTxWaits: 900, SemiSyncNoTx: 4, HasSemiSyncCounters: true},
		},
		{
			name: "MySQL 8.0.26+ new spelling wins over the old one; no Innodb_deadlocks",
			vars: map[string]string{"MAX_CONNECTIONS": "500"},
			status: map[string]string{
				"questions": "10", "slow_queries": "0", "threads_connected": "1",
				"Rpl_semi_sync_source_tx_waits": "5", "Rpl_semi_sync_source_no_tx": "1",
				"Rpl_semi_sync_master_tx_waits": "99", "Rpl_semi_sync_master_no_tx": "98",
			},
			want: Stats{Questions: 10, ThreadsConnected: 1, MaxConnections: 500,
				SemiSyncTxWaits: 5, SemiSyncNoTx: 1, HasSemiSyncCounters: true},
		},
		{
			name:   "no semi-sync plugin",
			vars:   map[string]string{"max_connections": "10"},
			status: map[string]string{"Questions": "1", "Slow_queries": "0", "Threads_connected": "1", "Innodb_deadlocks": "0"},
			want:   Stats{Questions: 1, ThreadsConnected: 1, MaxConnections: 10, HasInnodbDeadlocks: true},
		},
		{
			name:    "malformed counter: the rest is still read",
			vars:    map[string]string{"max_connections": "10"},
			status:  map[string]string{"Questions": "-1", "Slow_queries": "2", "Threads_connected": "1"},
			want:    Stats{SlowQueries: 2, ThreadsConnected: 1, MaxConnections: 10},
			wantErr: `Questions`,
		},
		{
			name:    "missing max_connections",
			status:  map[string]string{"Questions": "1", "Slow_queries": "0", "Threads_connected": "1"},
			want:    Stats{Questions: 1, ThreadsConnected: 1},
			wantErr: "max_connections missing",
		},
	}
	for _, tt := range tests {
		got, err := parseStats(tt.vars, tt.status)
		if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr))) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseBinaryLogs(t *testing.T) {
	// MariaDB: Log_name, File_size; MySQL 8.0.14+ adds Encrypted.
	rows := []map[string]string{
		{"Log_name": "mysql-bin.000001", "File_size": "1000"},
		{"Log_name": "mysql-bin.000002", "File_size": "2345", "Encrypted": "No"},
	}
	n, files, err := parseBinaryLogs(rows)
	if err != nil || n != 3345 || files != 2 {
		t.Errorf("parseBinaryLogs = %d, %d, %v; want 3345, 2, nil", n, files, err)
	}
	if n, files, err := parseBinaryLogs(nil); err != nil || n != 0 || files != 0 {
		t.Errorf("no binlogs: %d, %d, %v", n, files, err)
	}
	for _, bad := range [][]map[string]string{
		{{"Log_name": "x", "File_size": "big"}},
		{{"Log_name": "x"}},
	} {
		if _, _, err := parseBinaryLogs(bad); err == nil {
			t.Errorf("parseBinaryLogs(%v): no error", bad)
		}
	}
}

func TestParseUintValue(t *testing.T) {
	for in, want := range map[sql.NullString]uint64{
		{String: "123", Valid: true}:       123,
		{String: "123.0000", Valid: true}:  123,
		{String: " 7 ", Valid: true}:       7,
		{}:                                 0,
		{String: "NULL", Valid: true}:      0,
		{String: "1048576.", Valid: true}:  1048576,
		{String: "0.000", Valid: true}:     0,
		{String: "99999999", Valid: false}: 0,
	} {
		if got, err := parseUintValue(in); err != nil || got != want {
			t.Errorf("parseUintValue(%+v) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "1.5", "x", "1e3"} {
		if _, err := parseUintValue(sql.NullString{String: bad, Valid: true}); err == nil {
			t.Errorf("parseUintValue(%q): no error", bad)
		}
	}
}

func TestDataSizeSQL(t *testing.T) {
	const base = "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES " +
		"WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema')"
	tests := []struct {
		version string
		timeout time.Duration
		want    string
	}{
		{"10.11.6-MariaDB", 2 * time.Second, "SET STATEMENT max_statement_time=2 FOR " + base},
		{"10.11.6-MariaDB", 1500 * time.Millisecond, "SET STATEMENT max_statement_time=1.5 FOR " + base},
		{"8.0.36", 1500 * time.Millisecond, "SELECT /*+ MAX_EXECUTION_TIME(1500) */ COALESCE" + strings.TrimPrefix(base, "SELECT COALESCE")},
		{"5.7.44-log", 250*time.Millisecond + 1, "SELECT /*+ MAX_EXECUTION_TIME(251) */ COALESCE" + strings.TrimPrefix(base, "SELECT COALESCE")},
		{"5.7.7", time.Second, base},
		{"8.0.36", 0, base},
	}
	for _, tt := range tests {
		if got := mustFlavor(t, tt.version).DataSizeSQL(tt.timeout); got != tt.want {
			t.Errorf("%s, %s:\n got %s\nwant %s", tt.version, tt.timeout, got, tt.want)
		}
	}
}

func TestStatsQueries(t *testing.T) {
	got := mustFlavor(t, "10.11.6-MariaDB").statusVariablesSQL(statsVariables...)
	if !strings.Contains(got, "'gtid_slave_pos', 'max_connections') OR Variable_name LIKE 'rpl_semi_sync%'") {
		t.Errorf("variables with stats: %s", got)
	}
	if strings.Contains(mustFlavor(t, "10.11.6-MariaDB").statusVariablesSQL(), "max_connections") {
		t.Error("the plain status read asks for max_connections")
	}
	// The statistics' status query still reads every semi-sync status
	// variable that parseSemiSync needs.
	for _, w := range []string{"'Questions'", "'Slow_queries'", "'Threads_connected'", "'Innodb_deadlocks'",
		"'Rpl_semi_sync_master_no_tx'", "'Rpl_semi_sync_source_tx_waits'", "OR Variable_name LIKE 'Rpl_semi_sync%'"} {
		if !strings.Contains(statsStatusSQL, w) {
			t.Errorf("statsStatusSQL lacks %s", w)
		}
	}
}
