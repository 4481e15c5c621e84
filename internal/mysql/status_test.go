package mysql

import (
	"strings"
	"testing"
	"time"
)

func TestParseSemiSync(t *testing.T) {
	tests := []struct {
		name         string
		vars, status map[string]string
		want         SemiSync
	}{
		{"no plugin", map[string]string{"read_only": "OFF"}, nil, SemiSync{}},
		{
			"MySQL 8.0.26+ new plugin on the source",
			map[string]string{
				"rpl_semi_sync_source_enabled": "ON", "rpl_semi_sync_source_timeout": "10000",
				"rpl_semi_sync_source_wait_point": "AFTER_SYNC", "rpl_semi_sync_replica_enabled": "OFF",
			},
			map[string]string{"Rpl_semi_sync_source_status": "ON", "Rpl_semi_sync_source_clients": "2"},
			SemiSync{Available: true, SourceEnabled: true, SourceOn: true, SourceClients: 2,
				SourceTimeout: 10 * time.Second, WaitPoint: "AFTER_SYNC"},
		},
		{
			"MySQL 8.0.36 still running the old plugin on a replica",
			map[string]string{"rpl_semi_sync_slave_enabled": "ON", "rpl_semi_sync_master_enabled": "OFF",
				"rpl_semi_sync_master_timeout": "1500", "rpl_semi_sync_master_wait_point": "after_commit"},
			map[string]string{"Rpl_semi_sync_slave_status": "ON", "Rpl_semi_sync_master_status": "OFF",
				"Rpl_semi_sync_master_clients": "0"},
			SemiSync{Available: true, ReplicaEnabled: true, ReplicaOn: true,
				SourceTimeout: 1500 * time.Millisecond, WaitPoint: "AFTER_COMMIT"},
		},
		{
			"MariaDB source fallen back to async",
			map[string]string{"RPL_SEMI_SYNC_MASTER_ENABLED": "ON", "rpl_semi_sync_master_timeout": "10000"},
			map[string]string{"Rpl_semi_sync_master_status": "OFF", "Rpl_semi_sync_master_clients": "0"},
			SemiSync{Available: true, SourceEnabled: true, SourceTimeout: 10 * time.Second},
		},
	}
	for _, tt := range tests {
		if got := parseSemiSync(tt.vars, tt.status); got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestStatusFromVariables(t *testing.T) {
	my8 := mustFlavor(t, "8.0.36")
	st, err := statusFromVariables(my8, map[string]string{
		"server_id": "2", "server_uuid": uuidB, "hostname": "db2", "port": "3306",
		"read_only": "ON", "super_read_only": "ON", "log_bin": "ON", "log_replica_updates": "ON",
		"log_slave_updates": "ON", "binlog_format": "ROW", "gtid_mode": "on",
		"gtid_executed": uuidA + ":1-5,\n" + uuidB + ":1-2", "replica_net_timeout": "30", "slave_net_timeout": "60",
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.ServerID != 2 || st.ServerUUID != uuidB || st.Hostname != "db2" || st.Port != 3306 ||
		!st.ReadOnly || !st.SuperReadOnly || st.Writable() || !st.LogBin || !st.LogReplicaUpdates ||
		st.BinlogFormat != "ROW" || st.GTIDMode != "ON" || st.SlaveNetTimeout != 30*time.Second ||
		st.GTIDExecuted.String() != uuidA+":1-5,"+uuidB+":1-2" || st.GTIDExecuted.Kind() != MySQL {
		t.Errorf("MySQL status = %+v", st)
	}

	my57 := mustFlavor(t, "5.7.44-log")
	st, err = statusFromVariables(my57, map[string]string{
		"server_id": "3", "read_only": "OFF", "log_bin": "OFF", "log_slave_updates": "OFF",
		"gtid_mode": "OFF", "gtid_executed": "", "slave_net_timeout": "60",
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.ReadOnly || st.SuperReadOnly || st.LogBin || st.GTIDMode != "OFF" || !st.GTIDExecuted.IsEmpty() ||
		st.SlaveNetTimeout != time.Minute {
		t.Errorf("MySQL 5.7 status = %+v", st)
	}

	maria := mustFlavor(t, "10.11.6-MariaDB")
	st, err = statusFromVariables(maria, map[string]string{
		"server_id": "12", "hostname": "db3", "port": "3306", "read_only": "OFF", "log_bin": "ON",
		"log_slave_updates": "ON", "binlog_format": "MIXED", "gtid_strict_mode": "ON",
		"gtid_binlog_state": "0-1-100,0-12-7", "gtid_current_pos": "0-12-7", "gtid_slave_pos": "0-1-100",
		"slave_net_timeout": "60",
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.ServerID != 12 || st.GTIDMode != "ON" || !st.GTIDStrictMode || st.GTIDCurrentPos != "0-12-7" ||
		st.GTIDSlavePos != "0-1-100" || st.GTIDExecuted.String() != "0-1-100,0-12-7" || st.GTIDExecuted.Kind() != MariaDB {
		t.Errorf("MariaDB status = %+v", st)
	}

	// MariaDB 11 read_only may be NO_LOCK / NO_LOCK_NO_ADMIN: still read-only.
	st, _ = statusFromVariables(mustFlavor(t, "11.4.2-MariaDB"), map[string]string{"server_id": "1", "read_only": "NO_LOCK_NO_ADMIN"})
	if !st.ReadOnly {
		t.Error("read_only=NO_LOCK_NO_ADMIN")
	}

	for _, bad := range []map[string]string{
		{"server_id": "x"}, {}, {"server_id": "1", "gtid_executed": "garbage"},
	} {
		if _, err := statusFromVariables(my8, bad); err == nil {
			t.Errorf("statusFromVariables(%v): no error", bad)
		}
	}
}

func TestStatusVariablesSQL(t *testing.T) {
	got := mustFlavor(t, "10.11.6-MariaDB").statusVariablesSQL()
	want := "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_id', 'hostname', 'port', 'read_only', 'log_bin', " +
		"'binlog_format', 'log_slave_updates', 'slave_net_timeout', 'gtid_strict_mode', 'gtid_binlog_state', " +
		"'gtid_current_pos', 'gtid_slave_pos') OR Variable_name LIKE 'rpl_semi_sync%'"
	if got != want {
		t.Errorf("MariaDB:\n got %s\nwant %s", got, want)
	}
	for v, want := range map[string][]string{
		"5.7.44": {"'super_read_only'", "'gtid_executed'", "'log_slave_updates'"},
		"8.4.0":  {"'super_read_only'", "'gtid_executed'", "'log_replica_updates'", "'replica_net_timeout'"},
	} {
		got := mustFlavor(t, v).statusVariablesSQL()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %s lacks %s", v, got, w)
			}
		}
	}
	if strings.Contains(mustFlavor(t, "5.7.44").statusVariablesSQL(), "replica_net_timeout") {
		t.Error("5.7 asks for replica_net_timeout")
	}
	if mustFlavor(t, "10.6.1-MariaDB").replicaStatusSQL() != "SHOW ALL SLAVES STATUS" ||
		mustFlavor(t, "8.0.36").replicaStatusSQL() != "SHOW REPLICA STATUS" {
		t.Error("replicaStatusSQL")
	}
}

func TestParseBinlogStatus(t *testing.T) {
	// SHOW MASTER STATUS as in https://dev.mysql.com/doc/refman/5.7/en/show-master-status.html
	c, f, err := parseBinlogStatus(map[string]string{
		"File": "mysql-bin.000003", "Position": "73", "Binlog_Do_DB": "test", "Binlog_Ignore_DB": "manual, mysql",
		"Executed_Gtid_Set": uuidA + ":1-5",
	})
	if err != nil || c != (BinlogCoordinates{"mysql-bin.000003", 73}) || f != (Filters{DoDB: "test", IgnoreDB: "manual,mysql"}) {
		t.Errorf("parseBinlogStatus = %+v %+v %v", c, f, err)
	}
	if _, _, err := parseBinlogStatus(map[string]string{"File": "x", "Position": "-1"}); err == nil {
		t.Error("bad position: no error")
	}
}

func TestIsOn(t *testing.T) {
	for v, want := range map[string]bool{
		"ON": true, "on": true, "1": true, "YES": true, "NO_LOCK": true,
		"OFF": false, "0": false, "": false, "NULL": false, "no": false, " off ": false, "FALSE": false,
	} {
		if isOn(v) != want {
			t.Errorf("isOn(%q) = %v", v, !want)
		}
	}
}
