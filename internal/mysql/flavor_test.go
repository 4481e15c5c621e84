package mysql

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseFlavor(t *testing.T) {
	tests := []struct {
		version, comment string
		want             Flavor
	}{
		{"10.11.6-MariaDB-0+deb12u1", "Debian 12", Flavor{MariaDB, Version{10, 11, 6}, "10.11.6-MariaDB-0+deb12u1"}},
		{"5.5.5-10.11.6-MariaDB", "", Flavor{MariaDB, Version{10, 11, 6}, "5.5.5-10.11.6-MariaDB"}},
		{"11.4.2-MariaDB", "MariaDB Server", Flavor{MariaDB, Version{11, 4, 2}, "11.4.2-MariaDB"}},
		{"10.2.44-MariaDB-log", "", Flavor{MariaDB, Version{10, 2, 44}, "10.2.44-MariaDB-log"}},
		{"10.6.16", "mariadb.org binary distribution", Flavor{MariaDB, Version{10, 6, 16}, "10.6.16"}},
		{"8.0.36", "MySQL Community Server - GPL", Flavor{MySQL, Version{8, 0, 36}, "8.0.36"}},
		{"8.4.0", "MySQL Community Server - GPL", Flavor{MySQL, Version{8, 4, 0}, "8.4.0"}},
		{"5.7.44-log", "MySQL Community Server (GPL)", Flavor{MySQL, Version{5, 7, 44}, "5.7.44-log"}},
		{"8.0.36-28", "Percona Server (GPL), Release 28", Flavor{MySQL, Version{8, 0, 36}, "8.0.36-28"}},
		{"9.1.0-commercial", "MySQL Enterprise Server", Flavor{MySQL, Version{9, 1, 0}, "9.1.0-commercial"}},
		{" 8.0.22\n", "", Flavor{MySQL, Version{8, 0, 22}, "8.0.22"}},
	}
	for _, tt := range tests {
		got, err := ParseFlavor(tt.version, tt.comment)
		if err != nil {
			t.Errorf("ParseFlavor(%q, %q): %v", tt.version, tt.comment, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseFlavor(%q, %q) = %+v, want %+v", tt.version, tt.comment, got, tt.want)
		}
	}

	unsupported := []struct{ version, comment string }{
		{"5.6.51-log", ""}, {"5.5.62", ""}, {"10.1.48-MariaDB", ""}, {"5.5.5-10.0.38-MariaDB", ""},
	}
	for _, tt := range unsupported {
		if _, err := ParseFlavor(tt.version, tt.comment); !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("ParseFlavor(%q) err = %v, want ErrUnsupportedVersion", tt.version, err)
		}
	}
	for _, bad := range []string{"", "MariaDB", "x.y.z", "8", "-8.0"} {
		if _, err := ParseFlavor(bad, ""); err == nil || errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("ParseFlavor(%q) err = %v, want a parse error", bad, err)
		}
	}
}

func TestFlavorString(t *testing.T) {
	f, _ := ParseFlavor("10.11.6-MariaDB-0+deb12u1", "")
	if got := f.String(); got != "MariaDB 10.11.6" {
		t.Errorf("String() = %q", got)
	}
	f, _ = ParseFlavor("8.0.36", "")
	if got := f.String(); got != "MySQL 8.0.36" {
		t.Errorf("String() = %q", got)
	}
}

func TestVersionAtLeast(t *testing.T) {
	v := Version{8, 0, 22}
	for _, tt := range []struct {
		a, b, c int
		want    bool
	}{
		{8, 0, 22, true}, {8, 0, 21, true}, {8, 0, 23, false}, {5, 7, 99, true},
		{8, 1, 0, false}, {9, 0, 0, false}, {7, 99, 99, true},
	} {
		if got := v.AtLeast(tt.a, tt.b, tt.c); got != tt.want {
			t.Errorf("%v.AtLeast(%d,%d,%d) = %v", v, tt.a, tt.b, tt.c, got)
		}
	}
}

func mustFlavor(t *testing.T, version string) Flavor {
	t.Helper()
	f, err := ParseFlavor(version, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestStatementBuilders pins every statement for each supported version.
func TestStatementBuilders(t *testing.T) {
	type golden struct {
		version                               string
		showReplica, showBinlog               string
		start, stop, stopIO, reset            string
		superReadOnly                         bool
		change                                string
		semiSourceEnabled, semiReplicaEnabled string
		semiSourcePlugin                      string
	}
	oldMySQLChange := "CHANGE MASTER TO MASTER_HOST='db2.example.com', MASTER_PORT=3306, MASTER_USER='repl', " +
		"MASTER_PASSWORD='s3cret', MASTER_CONNECT_RETRY=10, MASTER_HEARTBEAT_PERIOD=1.5, MASTER_AUTO_POSITION=1"
	newMySQLChange := "CHANGE REPLICATION SOURCE TO SOURCE_HOST='db2.example.com', SOURCE_PORT=3306, SOURCE_USER='repl', " +
		"SOURCE_PASSWORD='s3cret', SOURCE_CONNECT_RETRY=10, SOURCE_HEARTBEAT_PERIOD=1.5, SOURCE_AUTO_POSITION=1"
	mariaChange := "CHANGE MASTER TO MASTER_HOST='db2.example.com', MASTER_PORT=3306, MASTER_USER='repl', " +
		"MASTER_PASSWORD='s3cret', MASTER_CONNECT_RETRY=10, MASTER_HEARTBEAT_PERIOD=1.5, MASTER_USE_GTID=slave_pos"
	slave := [4]string{"START SLAVE", "STOP SLAVE", "STOP SLAVE IO_THREAD", "RESET SLAVE ALL"}
	replica := [4]string{"START REPLICA", "STOP REPLICA", "STOP REPLICA IO_THREAD", "RESET REPLICA ALL"}
	mk := func(version, showReplica, showBinlog string, words [4]string, sro bool, change, src, rep, plugin string) golden {
		return golden{version, showReplica, showBinlog, words[0], words[1], words[2], words[3], sro, change, src, rep, plugin}
	}
	const (
		oldSrc, oldRep, newSrc, newRep = "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled",
			"rpl_semi_sync_source_enabled", "rpl_semi_sync_replica_enabled"
	)
	tests := []golden{
		mk("5.7.44-log", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", slave, true, oldMySQLChange, oldSrc, oldRep, "rpl_semi_sync_master"),
		mk("8.0.21", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", slave, true, oldMySQLChange, oldSrc, oldRep, "rpl_semi_sync_master"),
		mk("8.0.22", "SHOW REPLICA STATUS", "SHOW MASTER STATUS", replica, true, oldMySQLChange, oldSrc, oldRep, "rpl_semi_sync_master"),
		mk("8.0.23", "SHOW REPLICA STATUS", "SHOW MASTER STATUS", replica, true, newMySQLChange, oldSrc, oldRep, "rpl_semi_sync_master"),
		mk("8.0.36", "SHOW REPLICA STATUS", "SHOW MASTER STATUS", replica, true, newMySQLChange, newSrc, newRep, "rpl_semi_sync_source"),
		mk("8.4.0", "SHOW REPLICA STATUS", "SHOW BINARY LOG STATUS", replica, true, newMySQLChange, newSrc, newRep, "rpl_semi_sync_source"),
		mk("9.1.0", "SHOW REPLICA STATUS", "SHOW BINARY LOG STATUS", replica, true, newMySQLChange, newSrc, newRep, "rpl_semi_sync_source"),
		mk("10.3.39-MariaDB", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", slave, false, mariaChange, oldSrc, oldRep, ""),
		mk("10.6.16-MariaDB", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", slave, false, mariaChange, oldSrc, oldRep, ""),
		mk("10.11.6-MariaDB-0+deb12u1", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", slave, false, mariaChange, oldSrc, oldRep, ""),
		mk("11.4.2-MariaDB", "SHOW SLAVE STATUS", "SHOW MASTER STATUS", slave, false, mariaChange, oldSrc, oldRep, ""),
	}
	opts := SourceOptions{
		Host: "db2.example.com", Port: 3306, User: "repl", Password: "s3cret", AutoPosition: true,
		HeartbeatPeriod: 1500 * time.Millisecond, ConnectRetry: 10 * time.Second,
	}
	for _, tt := range tests {
		f := mustFlavor(t, tt.version)
		check := func(what, got, want string) {
			t.Helper()
			if got != want {
				t.Errorf("%s %s:\n got %q\nwant %q", f, what, got, want)
			}
		}
		check("ShowReplicaStatusSQL", f.ShowReplicaStatusSQL(), tt.showReplica)
		check("ShowBinlogStatusSQL", f.ShowBinlogStatusSQL(), tt.showBinlog)
		check("StartReplicaSQL", f.StartReplicaSQL(), tt.start)
		check("StopReplicaSQL", f.StopReplicaSQL(), tt.stop)
		check("StopReplicaIOThreadSQL", f.StopReplicaIOThreadSQL(), tt.stopIO)
		check("ResetReplicaAllSQL", f.ResetReplicaAllSQL(), tt.reset)
		word := strings.Fields(tt.start)[1]
		check("StartReplicaIOThreadSQL", f.StartReplicaIOThreadSQL(), "START "+word+" IO_THREAD")
		check("StartReplicaSQLThreadSQL", f.StartReplicaSQLThreadSQL(), "START "+word+" SQL_THREAD")
		check("StopReplicaSQLThreadSQL", f.StopReplicaSQLThreadSQL(), "STOP "+word+" SQL_THREAD")
		if got := f.HasSuperReadOnly(); got != tt.superReadOnly {
			t.Errorf("%s HasSuperReadOnly = %v", f, got)
		}
		change, err := f.ChangeSourceSQL(opts)
		if err != nil {
			t.Errorf("%s ChangeSourceSQL: %v", f, err)
		}
		check("ChangeSourceSQL", change, tt.change)
		n := f.SemiSyncVariableNames()
		check("SemiSync SourceEnabled", n.SourceEnabled, tt.semiSourceEnabled)
		check("SemiSync ReplicaEnabled", n.ReplicaEnabled, tt.semiReplicaEnabled)
		check("SemiSync SourcePlugin", n.SourcePlugin, tt.semiSourcePlugin)

		on, off := strings.Join(f.SetReadOnlySQL(true), "; "), strings.Join(f.SetReadOnlySQL(false), "; ")
		if tt.superReadOnly {
			check("SetReadOnlySQL(true)", on, "SET GLOBAL read_only = ON; SET GLOBAL super_read_only = ON")
			check("SetReadOnlySQL(false)", off, "SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF")
		} else {
			check("SetReadOnlySQL(true)", on, "SET GLOBAL read_only = ON")
			check("SetReadOnlySQL(false)", off, "SET GLOBAL read_only = OFF")
		}
	}
}

func TestSuperReadOnlyBoundary(t *testing.T) {
	if mustFlavor(t, "5.7.7").HasSuperReadOnly() || !mustFlavor(t, "5.7.8").HasSuperReadOnly() {
		t.Error("super_read_only appears in MySQL 5.7.8")
	}
}

func TestSemiSyncNamesComplete(t *testing.T) {
	n := mustFlavor(t, "8.0.36").SemiSyncVariableNames()
	want := SemiSyncNames{
		SourcePlugin: "rpl_semi_sync_source", ReplicaPlugin: "rpl_semi_sync_replica",
		SourceLibrary: "semisync_source.so", ReplicaLibrary: "semisync_replica.so",
		SourceEnabled: "rpl_semi_sync_source_enabled", ReplicaEnabled: "rpl_semi_sync_replica_enabled",
		SourceTimeout: "rpl_semi_sync_source_timeout", SourceWaitPoint: "rpl_semi_sync_source_wait_point",
		SourceStatus: "Rpl_semi_sync_source_status", ReplicaStatus: "Rpl_semi_sync_replica_status",
		SourceClients: "Rpl_semi_sync_source_clients",
	}
	if n != want {
		t.Errorf("8.0.36 names = %+v", n)
	}
	m := mustFlavor(t, "10.2.44-MariaDB").SemiSyncVariableNames()
	if m.SourceLibrary != "semisync_master.so" || m.SourceStatus != "Rpl_semi_sync_master_status" {
		t.Errorf("MariaDB 10.2 (plugin era) names = %+v", m)
	}
}

func TestChangeSourceFilePosition(t *testing.T) {
	opts := SourceOptions{Host: "10.0.0.2", Port: 3307, User: "repl", Password: "pw", File: "mysql-bin.000042", Pos: 154}
	tests := map[string]string{
		"5.7.44": "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', MASTER_PASSWORD='pw', " +
			"MASTER_AUTO_POSITION=0, MASTER_LOG_FILE='mysql-bin.000042', MASTER_LOG_POS=154",
		"8.4.0": "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.2', SOURCE_PORT=3307, SOURCE_USER='repl', SOURCE_PASSWORD='pw', " +
			"SOURCE_AUTO_POSITION=0, SOURCE_LOG_FILE='mysql-bin.000042', SOURCE_LOG_POS=154",
		"10.11.6-MariaDB": "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', MASTER_PASSWORD='pw', " +
			"MASTER_USE_GTID=no, MASTER_LOG_FILE='mysql-bin.000042', MASTER_LOG_POS=154",
	}
	for v, want := range tests {
		got, err := mustFlavor(t, v).ChangeSourceSQL(opts)
		if err != nil || got != want {
			t.Errorf("%s:\n got %q, %v\nwant %q", v, got, err, want)
		}
	}
}

func TestChangeSourceQuoting(t *testing.T) {
	pw := `it's a \secret'; DROP TABLE x; --`
	got, err := mustFlavor(t, "8.0.36").ChangeSourceSQL(SourceOptions{
		Host: "::1", Port: 3306, User: `o'neil`, Password: pw, AutoPosition: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `CHANGE REPLICATION SOURCE TO SOURCE_HOST='::1', SOURCE_PORT=3306, SOURCE_USER='o''neil', ` +
		`SOURCE_PASSWORD='it''s a \\secret''; DROP TABLE x; --', SOURCE_AUTO_POSITION=1`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	for in, want := range map[string]string{
		"":          `''`,
		"a\x00b":    `'a\0b'`,
		"l1\nl2\r":  `'l1\nl2\r'`,
		"\x1a":      `'\Z'`,
		`\'`:        `'\\'''`,
		"plain-123": `'plain-123'`,
	} {
		if got := QuoteString(in); got != want {
			t.Errorf("QuoteString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestChangeSourceValidation(t *testing.T) {
	f := mustFlavor(t, "10.11.6-MariaDB")
	good := SourceOptions{Host: "db1", Port: 3306, User: "repl", Password: "TopSecret!", AutoPosition: true}
	bad := map[string]func(o *SourceOptions){
		"empty host":       func(o *SourceOptions) { o.Host = "" },
		"quote in host":    func(o *SourceOptions) { o.Host = "db1' OR 1" },
		"space in host":    func(o *SourceOptions) { o.Host = "db 1" },
		"long host":        func(o *SourceOptions) { o.Host = strings.Repeat("a", 256) },
		"port 0":           func(o *SourceOptions) { o.Port = 0 },
		"port 65536":       func(o *SourceOptions) { o.Port = 65536 },
		"empty user":       func(o *SourceOptions) { o.User = "" },
		"negative hb":      func(o *SourceOptions) { o.HeartbeatPeriod = -time.Second },
		"tiny hb":          func(o *SourceOptions) { o.HeartbeatPeriod = time.Microsecond },
		"huge hb":          func(o *SourceOptions) { o.HeartbeatPeriod = maxHeartbeat + time.Second },
		"negative retry":   func(o *SourceOptions) { o.ConnectRetry = -time.Second },
		"no file":          func(o *SourceOptions) { o.AutoPosition = false; o.Pos = 4 },
		"position below 4": func(o *SourceOptions) { o.AutoPosition = false; o.File = "b.000001"; o.Pos = 3 },
	}
	for name, mutate := range bad {
		o := good
		mutate(&o)
		_, err := f.ChangeSourceSQL(o)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), good.Password) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
	// Connect retry rounds up to whole seconds; heartbeat keeps milliseconds.
	o := good
	o.ConnectRetry, o.HeartbeatPeriod = 1500*time.Millisecond, 250*time.Millisecond
	got, err := f.ChangeSourceSQL(o)
	if err != nil || !strings.Contains(got, "MASTER_CONNECT_RETRY=2, MASTER_HEARTBEAT_PERIOD=0.25,") {
		t.Errorf("rounding: %q, %v", got, err)
	}
}
