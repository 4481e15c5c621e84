package mysql

import (
	"strings"
	"testing"
	"time"
)

func TestParseServerTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"NULL", time.Time{}, false},
		{"0000-00-00 00:00:00", time.Time{}, false},
		{"0000-00-00 00:00:00.000000", time.Time{}, false},
		{"0001-01-01T00:00:00Z", time.Time{}, false},
		{"2024-03-31 01:59:59", time.Date(2024, 3, 31, 1, 59, 59, 0, time.UTC), false},
		{"2024-03-31 01:59:59.123456", time.Date(2024, 3, 31, 1, 59, 59, 123456000, time.UTC), false},
		{"2024-03-31T01:59:59.5Z", time.Date(2024, 3, 31, 1, 59, 59, 500000000, time.UTC), false},
		{"yesterday", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseServerTime(tt.in)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("ParseServerTime(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestReceiverStatusSQL(t *testing.T) {
	maria := mustFlavor(t, "10.11.6-MariaDB")
	if got := maria.ReceiverStatusSQL(); len(got) != 2 || got[0] != "SHOW ALL SLAVES STATUS" || got[1] != "SELECT NOW(6) AS SERVER_NOW" {
		t.Errorf("MariaDB: %q", got)
	}
	my8 := mustFlavor(t, "8.0.36")
	got := my8.ReceiverStatusSQL()
	if len(got) != 2 || got[0] != "SHOW REPLICA STATUS" {
		t.Fatalf("MySQL 8: %q", got)
	}
	for _, want := range []string{"performance_schema.replication_connection_status",
		"LAST_HEARTBEAT_TIMESTAMP", "LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP", "HEARTBEAT_INTERVAL",
		"NOW(6)", "CHANNEL_NAME = ''"} {
		if !strings.Contains(got[1], want) {
			t.Errorf("MySQL 8 query lacks %q: %s", want, got[1])
		}
	}
	my57 := mustFlavor(t, "5.7.44-log")
	got = my57.ReceiverStatusSQL()
	if got[0] != "SHOW SLAVE STATUS" || strings.Contains(got[1], "QUEUED") || !strings.Contains(got[1], "LAST_HEARTBEAT_TIMESTAMP") {
		t.Errorf("MySQL 5.7: %q", got)
	}
}

func TestParseMariaDBReceiverStatus(t *testing.T) {
	rs, err := ParseReplicaStatus(map[string]string{
		"Connection_name": "", "Master_Host": "198.18.0.11", "Master_Port": "3306",
		"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Read_Master_Log_Pos": "1234",
		"Slave_heartbeat_period": "1.000", "Slave_last_heartbeat": "2025-01-02 03:04:05",
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseMariaDBReceiverStatus(rs, "2025-01-02T03:04:07.25Z")
	if err != nil {
		t.Fatal(err)
	}
	if !st.HeartbeatKnown || st.HeartbeatPeriod != time.Second {
		t.Errorf("heartbeat period %v known=%v", st.HeartbeatPeriod, st.HeartbeatKnown)
	}
	if age := st.ServerNow.Sub(st.LastReceived()); age != 2250*time.Millisecond {
		t.Errorf("age %v", age)
	}

	// Never a heartbeat, heartbeats disabled.
	rs.Raw["Slave_last_heartbeat"] = "0000-00-00 00:00:00"
	rs.Raw["Slave_heartbeat_period"] = "0.000"
	rs.HeartbeatPeriod = 0
	st, err = ParseMariaDBReceiverStatus(rs, "2025-01-02 03:04:07.250000")
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastReceived().IsZero() || !st.HeartbeatKnown || st.HeartbeatPeriod != 0 {
		t.Errorf("got %+v", st)
	}

	// Not a replica: only the clock.
	st, err = ParseMariaDBReceiverStatus(nil, "2025-01-02 03:04:07")
	if err != nil || st.Replica != nil || st.ServerNow.IsZero() {
		t.Errorf("not a replica: %+v, %v", st, err)
	}
	if _, err := ParseMariaDBReceiverStatus(nil, "NULL"); err == nil {
		t.Error("no clock accepted")
	}
}

func TestParseMySQLReceiverStatus(t *testing.T) {
	rs, err := ParseReplicaStatus(map[string]string{
		"Channel_Name": "", "Source_Host": "db1", "Source_Port": "3306",
		"Replica_IO_Running": "Connecting", "Replica_SQL_Running": "Yes", "Read_Source_Log_Pos": "99",
		"Last_IO_Errno": "0", "Retrieved_Gtid_Set": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	row := map[string]string{
		"SERVICE_STATE": "CONNECTING", "LAST_ERROR_NUMBER": "2003",
		"LAST_ERROR_MESSAGE":                          "error connecting to master 'repl@db1:3306' - retry-time: 1 retries: 3",
		"LAST_HEARTBEAT_TIMESTAMP":                    "2025-01-02 03:04:05.500000",
		"LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP": "2025-01-02 03:04:06.000000",
		"RECEIVED_TRANSACTION_SET":                    "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5",
		"HOST":                                        "db1", "PORT": "3306", "HEARTBEAT_INTERVAL": "2.500",
		"SERVER_NOW": "2025-01-02 03:04:09.000000",
	}
	st, err := ParseMySQLReceiverStatus(rs, row)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replica.IORunning != IOConnecting || st.Replica.LastIOErrno != 2003 ||
		st.Replica.RetrievedGTIDSet != "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5" {
		t.Errorf("replica %+v", st.Replica)
	}
	if st.HeartbeatPeriod != 2500*time.Millisecond || !st.HeartbeatKnown {
		t.Errorf("period %v", st.HeartbeatPeriod)
	}
	if age := st.ServerNow.Sub(st.LastReceived()); age != 3*time.Second {
		t.Errorf("age %v (queued should win over the older heartbeat)", age)
	}
	row["HEARTBEAT_INTERVAL"] = "x"
	if _, err := ParseMySQLReceiverStatus(rs, row); err == nil {
		t.Error("bad HEARTBEAT_INTERVAL accepted")
	}
	if _, err := ParseMySQLReceiverStatus(rs, nil); err == nil {
		t.Error("missing row accepted")
	}
}

func TestHeartbeatSQL(t *testing.T) {
	if !strings.Contains(HeartbeatCreateTableSQL, "infra.chk_masterha") ||
		!strings.HasPrefix(HeartbeatInsertSQL, "INSERT INTO infra.chk_masterha") {
		t.Error("heartbeat statements changed")
	}
}
