package binlog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// TestSalvageTestbed kills a primary whose binlog is ahead of its replica,
// then salvages the missing transactions over SSH from the dead host.
func TestSalvageTestbed(t *testing.T) {
	switch {
	case testing.Short():
		t.Skip("test bed skipped with -short")
	case os.Getenv("CLOUDMHA_SKIP_TESTBED") != "":
		t.Skip("CLOUDMHA_SKIP_TESTBED is set")
	case os.Geteuid() != 0:
		t.Skip("the test bed needs root")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			t.Skip("the test bed needs mariadbd")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := testbed.Up(ctx, testbed.Options{Hosts: 2, SemiSync: false, Prefix: "cmhab", Logger: logger})
	if err != nil {
		t.Fatalf("testbed.Up: %v", err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if err := b.Down(dctx); err != nil {
			t.Errorf("testbed.Down: %v", err)
		}
	}()
	db1, db2 := b.Host("db1"), b.Host("db2")
	sql := func(h *testbed.Host, q string) string {
		t.Helper()
		out, err := b.SQL(ctx, h, q)
		if err != nil {
			t.Fatalf("%s: %s: %v", h.Name, q, err)
		}
		return out
	}

	sql(db1, "CREATE TABLE cloudmha_test.salvage (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB")
	sql(db1, "INSERT INTO cloudmha_test.salvage VALUES (0, 'replicated')")
	if err := b.WaitReplicas(ctx, db1, db2); err != nil {
		t.Fatal(err)
	}
	sql(db2, "STOP SLAVE IO_THREAD")
	before := sql(db2, "SELECT @@GLOBAL.gtid_binlog_state")

	// Transactions only db1 gets: single-row ones with values that look
	// like delimiters, a DDL, a multi-statement one, and finally one whose
	// end the "crash" cuts off.
	const n = 20
	want := map[int]string{0: "replicated"}
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("row %d; it''s /*!*/; DELIMITER ; \\\\ end", i)
		sql(db1, fmt.Sprintf("INSERT INTO cloudmha_test.salvage VALUES (%d, '%s')", i, v))
		want[i] = fmt.Sprintf(`row %d; it's /*!*/; DELIMITER ; \ end`, i)
	}
	sql(db1, "ALTER TABLE cloudmha_test.salvage ADD COLUMN extra INT NOT NULL DEFAULT 7")
	sql(db1, "BEGIN; INSERT INTO cloudmha_test.salvage (id, v) VALUES (101, 'multi a'); UPDATE cloudmha_test.salvage SET v = 'multi b' WHERE id = 1; COMMIT")
	want[101], want[1] = "multi a", "multi b"
	complete := sql(db1, "SELECT @@GLOBAL.gtid_binlog_state")
	sql(db1, "BEGIN; INSERT INTO cloudmha_test.salvage (id, v) VALUES (900, 'cut'); INSERT INTO cloudmha_test.salvage (id, v) VALUES (901, 'cut'); COMMIT")
	final := sql(db1, "SELECT @@GLOBAL.gtid_binlog_state")

	if err := b.Kill(db1); err != nil {
		t.Fatal(err)
	}
	// The crash left the last transaction without its XID event.
	idx, err := os.ReadFile(filepath.Join(db1.DataDir, "mysql-bin.index"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(idx))
	last := filepath.Join(db1.DataDir, filepath.Base(lines[len(lines)-1]))
	st, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, st.Size()-10); err != nil {
		t.Fatal(err)
	}

	sql(db2, "STOP SLAVE")
	have := mysql.MustParseGTIDSet(mysql.MariaDB, sql(db2, "SELECT @@GLOBAL.gtid_binlog_state"))
	if have.String() != before {
		t.Fatalf("db2 moved on: %s, was %s", have, before)
	}

	// Failover salvages before it promotes: the candidate is still
	// read-only, and the user's READ_ONLY ADMIN (in ALL) lets it write.
	if ro := sql(db2, "SELECT @@GLOBAL.read_only"); ro != "1" {
		t.Fatalf("db2 read_only=%s, want 1", ro)
	}

	cfgPath := filepath.Join(b.Opts.WorkDir, "mgr", "salvage.cnf")
	if err := b.WriteMHAConfig(cfgPath, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: cfgPath, GlobalPath: config.GlobalNone})
	if err != nil {
		t.Fatal(err)
	}
	dead, cand := cfg.Servers[0], cfg.Servers[1]
	dial := b.Dialer(b.ManagerNS)
	s := &Salvager{Dial: dial, MySQLDial: dial, Logger: logger, Timeout: time.Minute}

	res, err := s.Salvage(ctx, dead, cand, have)
	if err != nil {
		t.Fatalf("Salvage: %v", err)
	}
	t.Logf("salvage: applied %d (%s), skipped %d, incomplete %v, files %v, %d bytes, %d SSH round trips, ssh %v, total %v",
		res.Applied, res.AppliedGTIDs, res.Skipped, res.Incomplete, res.Files, res.Bytes, res.SSHRoundTrips, res.RemoteElapsed, res.Elapsed)

	// Expected GTIDs: 0-1-(db2's seq+1) … 0-1-(complete seq).
	from := seqOf(t, before, 1) + 1
	to := seqOf(t, complete, 1)
	var wantGTIDs []string
	for q := from; q <= to; q++ {
		wantGTIDs = append(wantGTIDs, "0-1-"+strconv.FormatUint(q, 10))
	}
	if !reflect.DeepEqual(res.GTIDs, wantGTIDs) {
		t.Errorf("applied GTIDs %v, want %v", res.GTIDs, wantGTIDs)
	}
	if res.Applied != n+2 || res.AppliedGTIDs.String() != "0-1-"+strconv.FormatUint(to, 10) {
		t.Errorf("applied %d (%s), want %d", res.Applied, res.AppliedGTIDs, n+2)
	}
	if !reflect.DeepEqual(res.Incomplete, []string{"0-1-" + strconv.FormatUint(seqOf(t, final, 1), 10)}) {
		t.Errorf("incomplete %v, want the last transaction of %s", res.Incomplete, final)
	}
	if res.SSHRoundTrips != 2 {
		t.Errorf("SSH round trips %d, want 2 (connect + one command)", res.SSHRoundTrips)
	}
	state := sql(db2, "SELECT @@GLOBAL.gtid_binlog_state")
	if !mysql.MustParseGTIDSet(mysql.MariaDB, state).Equal(mysql.MustParseGTIDSet(mysql.MariaDB, complete)) {
		t.Errorf("db2 gtid_binlog_state %s, want db1's %s (without the cut transaction)", state, complete)
	}
	got := map[int]string{}
	for _, line := range strings.Split(sql(db2, "SELECT id, v, extra FROM cloudmha_test.salvage ORDER BY id"), "\n") {
		f := strings.SplitN(line, "\t", 3)
		id, _ := strconv.Atoi(f[0])
		got[id] = strings.ReplaceAll(f[1], `\\`, `\`)
		if f[2] != "7" {
			t.Errorf("row %d: extra=%s, the DDL was not applied", id, f[2])
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows on db2:\n got %v\nwant %v", got, want)
	}

	// Idempotent: nothing left to apply.
	again, err := s.Salvage(ctx, dead, cand, have) // stale have on purpose
	if err != nil {
		t.Fatalf("second Salvage: %v", err)
	}
	t.Logf("second salvage: applied %d, skipped %d, %d bytes, %d SSH round trips, total %v", again.Applied, again.Skipped, again.Bytes, again.SSHRoundTrips, again.Elapsed)
	if again.Applied != 0 || !again.AppliedGTIDs.IsEmpty() {
		t.Errorf("second salvage applied %d (%s)", again.Applied, again.AppliedGTIDs)
	}
	if s2 := sql(db2, "SELECT @@GLOBAL.gtid_binlog_state"); s2 != state {
		t.Errorf("second salvage changed db2: %s -> %s", state, s2)
	}
}

// seqOf returns the seq_no of (domain 0, server) in a MariaDB GTID state.
func seqOf(t *testing.T, state string, server uint32) uint64 {
	t.Helper()
	entries, err := mariaEntries(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Domain == 0 && e.Server == server {
			return e.Seq
		}
	}
	return 0
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
