package mysql

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// mariadbServer is a throwaway mariadbd on 127.0.0.1 with its own datadir.
type mariadbServer struct {
	addr   string
	socket string
	dir    string
}

const (
	itAdminUser = "cmha_admin"
	itAdminPass = `adm'in\pw`
	itMonUser   = "cmha_mon"
	itMonPass   = "mon-pw"
)

// startMariaDB starts mariadbd or skips the test when that is impossible
// (not root, no mariadbd binary, -short).
func startMariaDB(t *testing.T) *mariadbServer {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped with -short")
	}
	mariadbd, err := exec.LookPath("mariadbd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/mariadbd"); err2 != nil {
			t.Skip("integration test needs mariadbd (MariaDB server) in PATH or /usr/sbin; not found")
		}
		mariadbd = "/usr/sbin/mariadbd"
	}
	installDB, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		t.Skip("integration test needs mariadb-install-db; not found")
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("integration test needs the mariadb client; not found")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test needs root (mariadbd runs as user mysql and root uses socket auth)")
	}

	base := t.TempDir()
	// mariadbd runs as mysql: it must be able to reach its datadir.
	for d := base; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("chmod %s: %v", d, err)
		}
	}
	datadir, rundir := filepath.Join(base, "data"), filepath.Join(base, "run")
	for _, d := range []string{datadir, rundir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chown", "mysql:mysql", d).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", d, err, out)
		}
	}
	errLog := filepath.Join(rundir, "error.log")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, installDB, "--no-defaults", "--auth-root-authentication-method=socket",
		"--datadir="+datadir, "--user=mysql", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}

	port := freePort(t)
	s := &mariadbServer{
		addr:   fmt.Sprintf("127.0.0.1:%d", port),
		socket: filepath.Join(rundir, "mysqld.sock"),
		dir:    base,
	}
	cmd := exec.Command(mariadbd, "--no-defaults", "--user=mysql",
		"--datadir="+datadir, "--socket="+s.socket, "--pid-file="+filepath.Join(rundir, "mysqld.pid"),
		fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--server-id=1", "--log-bin=mysql-bin", "--binlog-format=ROW", "--gtid-strict-mode=1",
		"--log-error="+errLog, "--innodb-buffer-pool-size=32M",
		"--skip-innodb-use-native-aio")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Logf("mariadbd (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
	})

	// Wait for the socket to answer, then create the test accounts as root.
	setup := fmt.Sprintf(`CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY %s;
GRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY %s;
GRANT REPLICATION CLIENT, REPLICATION SLAVE, SLAVE MONITOR ON *.* TO '%s'@'127.0.0.1';`,
		itAdminUser, QuoteString(itAdminPass), itAdminUser, itMonUser, QuoteString(itMonPass), itMonUser)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(errLog)
			t.Fatalf("mariadbd exited: %v\n%s", waitErr, log)
		default:
		}
		out, err := exec.Command(client, "--no-defaults", "--socket="+s.socket, "-uroot", "-e", setup).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(errLog)
			t.Fatalf("mariadbd did not become ready: %v: %s\n%s", err, out, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// freePort returns a currently unused TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *mariadbServer) open(t *testing.T, user, pass string) *Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	inst, err := Open(ctx, ConnConfig{Addr: s.addr, User: user, Password: pass})
	if err != nil {
		t.Fatalf("Open(%s as %s): %v", s.addr, user, err)
	}
	t.Cleanup(func() { _ = inst.Close() })
	return inst
}

func TestIntegrationMariaDB(t *testing.T) {
	srv := startMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin := srv.open(t, itAdminUser, itAdminPass)
	f := admin.Flavor()
	if f.Kind != MariaDB || !f.Version.AtLeast(10, 2, 0) {
		t.Fatalf("flavor = %+v, want MariaDB >= 10.2", f)
	}
	t.Logf("server: %s (%s)", f, f.Raw)
	if err := admin.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("status after writes", func(t *testing.T) {
		for _, q := range []string{
			"CREATE DATABASE cmha_it",
			"CREATE TABLE cmha_it.t (id INT PRIMARY KEY)",
			"INSERT INTO cmha_it.t VALUES (1), (2)",
			"INSERT INTO cmha_it.t VALUES (3)",
		} {
			if err := admin.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		st, err := admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("status: server_id=%d gtid=%s binlog=%s semi=%+v elapsed=%s",
			st.ServerID, st.GTIDExecuted, st.Binlog, st.SemiSync, st.Elapsed)
		if st.ServerID != 1 || st.Port == 0 || st.Hostname == "" || st.Addr != srv.addr {
			t.Errorf("identity: %+v", st)
		}
		if !st.LogBin || st.BinlogFormat != "ROW" || st.GTIDMode != "ON" || !st.GTIDStrictMode {
			t.Errorf("binlog/gtid settings: logbin=%v format=%q mode=%q strict=%v",
				st.LogBin, st.BinlogFormat, st.GTIDMode, st.GTIDStrictMode)
		}
		if st.GTIDExecuted.Kind() != MariaDB || !st.GTIDExecuted.Contains(MustParseGTIDSet(MariaDB, "0-1-4")) {
			t.Errorf("gtid_binlog_state = %q, want to contain 0-1-4", st.GTIDExecuted)
		}
		if st.GTIDCurrentPos == "" {
			t.Errorf("gtid_current_pos empty")
		}
		if !strings.HasPrefix(st.Binlog.File, "mysql-bin.") || st.Binlog.Pos <= 4 {
			t.Errorf("binlog coordinates = %+v", st.Binlog)
		}
		if st.Replica != nil {
			t.Errorf("Replica = %+v, want nil on a primary", st.Replica)
		}
		if st.ReadOnly || st.SuperReadOnly || !st.Writable() {
			t.Errorf("read_only = %v/%v", st.ReadOnly, st.SuperReadOnly)
		}
		if !st.SemiSync.Available || st.SemiSync.SourceTimeout <= 0 {
			t.Errorf("semi-sync = %+v, want available with a timeout (built into MariaDB)", st.SemiSync)
		}
		if st.SlaveNetTimeout <= 0 || st.TakenAt.IsZero() || st.Elapsed <= 0 {
			t.Errorf("net timeout %s, taken %s, elapsed %s", st.SlaveNetTimeout, st.TakenAt, st.Elapsed)
		}
	})

	t.Run("read_only toggle and semi-sync", func(t *testing.T) {
		for _, on := range []bool{true, false} {
			for _, q := range f.SetReadOnlySQL(on) {
				if err := admin.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			st, err := admin.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.ReadOnly != on {
				t.Errorf("after SetReadOnlySQL(%v): ReadOnly = %v", on, st.ReadOnly)
			}
		}
		names := f.SemiSyncVariableNames()
		if err := admin.Exec(ctx, "SET GLOBAL "+names.SourceEnabled+" = ON"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.Exec(context.Background(), "SET GLOBAL "+names.SourceEnabled+" = OFF") })
		st, err := admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.SemiSync.SourceEnabled || !st.SemiSync.SourceOn || st.SemiSync.ReplicaEnabled {
			t.Errorf("semi-sync after enabling the source side: %+v", st.SemiSync)
		}
	})

	t.Run("grants", func(t *testing.T) {
		g, err := admin.Grants(ctx, itMonUser, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("grants: %q", g)
		for priv, want := range map[string]bool{
			"REPLICATION CLIENT": true, "REPLICATION SLAVE": true, "replication replica": true,
			"SLAVE MONITOR": true, "SUPER": false, "RELOAD": false,
		} {
			if got := HasGlobalPrivilege(g, priv); got != want {
				t.Errorf("HasGlobalPrivilege(%q) = %v, want %v", priv, got, want)
			}
		}
		own, err := admin.CurrentGrants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !HasGlobalPrivilege(own, "SUPER") || !HasGlobalPrivilege(own, "GRANT OPTION") {
			t.Errorf("admin grants %q lack SUPER/GRANT OPTION", own)
		}
		hosts, err := admin.UserHosts(ctx, itMonUser)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hosts, []string{"127.0.0.1"}) {
			t.Errorf("UserHosts = %q", hosts)
		}
		mon := srv.open(t, itMonUser, itMonPass)
		if _, err := mon.UserHosts(ctx, itMonUser); err == nil || !strings.Contains(err.Error(), "SELECT on mysql.user") {
			t.Errorf("UserHosts without SELECT: err = %v, want a clear permission error", err)
		}
		// The monitoring user can read the full status.
		if _, err := mon.Status(ctx); err != nil {
			t.Errorf("Status as monitoring user: %v", err)
		}
	})

	t.Run("change source and replica status", func(t *testing.T) {
		pass := `re'pl\pw`
		opts := SourceOptions{
			Host: "127.0.0.1", Port: 1, User: "repl", Password: pass, AutoPosition: true,
			HeartbeatPeriod: 2500 * time.Millisecond, ConnectRetry: 5 * time.Second,
		}
		if err := admin.ChangeSource(ctx, opts); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = admin.Exec(context.Background(), f.StopReplicaSQL())
			_ = admin.Exec(context.Background(), f.ResetReplicaAllSQL())
		})
		rs, err := admin.ReplicaStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rs == nil {
			t.Fatal("ReplicaStatus = nil after CHANGE MASTER")
		}
		if rs.SourceHost != "127.0.0.1" || rs.SourcePort != 1 || rs.SourceUser != "repl" ||
			!rs.AutoPosition || rs.UsingGTID != "Slave_Pos" || rs.IORunning != IONo || rs.SQLRunning ||
			rs.HeartbeatPeriod != 2500*time.Millisecond || rs.ConnectRetry != 5*time.Second ||
			rs.SecondsBehind != nil {
			t.Errorf("replica status = %+v", rs)
		}
		if os.Getenv("CMHA_DUMP_ROW") != "" {
			t.Logf("raw row: %q", rs.Raw)
		}
		for k, v := range rs.Raw {
			if strings.Contains(v, `pl\pw`) {
				t.Errorf("column %s shows the password", k)
			}
		}

		// Start the threads: the IO thread cannot reach port 1 and reports
		// Connecting with error 2003.
		if err := admin.Exec(ctx, f.StartReplicaSQL()); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			rs, err = admin.ReplicaStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rs.LastIOErrno != 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if rs.IORunning != IOConnecting || !rs.SQLRunning || rs.LastIOErrno != 2003 || rs.Running() {
			t.Errorf("after START SLAVE: io=%q sql=%v errno=%d err=%q", rs.IORunning, rs.SQLRunning, rs.LastIOErrno, rs.LastIOError)
		}
		st, err := admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Replica == nil || st.Replica.SourcePort != 1 {
			t.Errorf("Status.Replica = %+v", st.Replica)
		}

		// File/position replication.
		for _, q := range []string{f.StopReplicaSQL()} {
			if err := admin.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		opts.AutoPosition, opts.File, opts.Pos = false, "mysql-bin.000001", 4
		if err := admin.ChangeSource(ctx, opts); err != nil {
			t.Fatal(err)
		}
		if rs, err = admin.ReplicaStatus(ctx); err != nil {
			t.Fatal(err)
		}
		if rs.AutoPosition || rs.UsingGTID != "No" || rs.SourceLogFile != "mysql-bin.000001" || rs.ReadSourceLogPos != 4 {
			t.Errorf("file/pos replica status = %+v", rs)
		}

		if err := admin.Exec(ctx, f.ResetReplicaAllSQL()); err != nil {
			t.Fatal(err)
		}
		if rs, err = admin.ReplicaStatus(ctx); err != nil || rs != nil {
			t.Errorf("after RESET SLAVE ALL: %+v, %v; want nil, nil", rs, err)
		}
	})

	t.Run("errant GTID from a local write", func(t *testing.T) {
		before, err := admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// A session server_id makes this one write look like a local write on
		// a replica with server_id 12; pin a connection so the pool is unaffected.
		conn, err := admin.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		defer func() { _, _ = conn.ExecContext(context.Background(), "SET SESSION server_id = 1") }()
		for _, q := range []string{"SET SESSION server_id = 12", "INSERT INTO cmha_it.t VALUES (12)"} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		after, err := admin.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		errant, err := Errant(after.GTIDExecuted, before.GTIDExecuted)
		if err != nil {
			t.Fatal(err)
		}
		if errant.String() != "0-12-"+fmt.Sprint(seqOf(t, before.GTIDExecuted)+1) {
			t.Errorf("errant = %q (before %q, after %q)", errant, before.GTIDExecuted, after.GTIDExecuted)
		}
	})

	t.Run("bad password", func(t *testing.T) {
		secret := "wrong-secret-pw"
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := Open(octx, ConnConfig{Addr: srv.addr, User: itMonUser, Password: secret})
		if err == nil {
			t.Fatal("Open with a bad password succeeded")
		}
		if n := ErrorNumber(err); n != 1045 {
			t.Errorf("ErrorNumber = %d, want 1045 (%v)", n, err)
		}
		if !IsAliveError(err) {
			t.Errorf("IsAliveError(%v) = false", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	})
}

// seqOf returns the largest seq_no in domain 0 of a MariaDB set.
func seqOf(t *testing.T, g GTIDSet) uint64 {
	t.Helper()
	var max uint64
	for _, e := range g.mariaEntries() {
		if e.DomainID == 0 && e.SequenceNumber > max {
			max = e.SequenceNumber
		}
	}
	return max
}
