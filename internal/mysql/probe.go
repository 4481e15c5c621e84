package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ReceiverStatus is what a replica's receiver (IO) thread knows about its
// source, read together with the replica's own clock so that ages can be
// computed without trusting the caller's clock. Failure detection uses it.
type ReceiverStatus struct {
	// Replica is the replica status of the default channel/connection; nil
	// when the server does not replicate.
	Replica *ReplicaStatus
	// ServerNow is the replica's clock when the status was read. All the
	// times below are on that clock and in UTC.
	ServerNow time.Time
	// LastHeartbeat is when the last heartbeat from the source arrived; zero
	// when none has (MariaDB keeps whole seconds, MySQL microseconds).
	LastHeartbeat time.Time
	// LastQueued is when the receiver finished queueing its last transaction
	// (MySQL 8.0 LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP); zero when
	// unknown or none, and always zero on MariaDB.
	LastQueued time.Time
	// HeartbeatPeriod is the configured heartbeat period; 0 means heartbeats
	// are disabled (or, when !HeartbeatKnown, that the server did not say).
	HeartbeatPeriod time.Duration
	HeartbeatKnown  bool
}

// LastReceived is the newer of LastHeartbeat and LastQueued (zero when both
// are zero).
func (r *ReceiverStatus) LastReceived() time.Time {
	if r.LastQueued.After(r.LastHeartbeat) {
		return r.LastQueued
	}
	return r.LastHeartbeat
}

// mysqlReceiverSQL reads the receiver side of the default channel on MySQL
// 8.0+: connection state, last heartbeat and last queued transaction, the
// heartbeat interval, and the server's clock in the same statement.
const mysqlReceiverSQL = "SELECT s.SERVICE_STATE, s.LAST_ERROR_NUMBER, s.LAST_ERROR_MESSAGE, " +
	"s.LAST_HEARTBEAT_TIMESTAMP, s.LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP, " +
	"s.RECEIVED_TRANSACTION_SET, c.HOST, c.PORT, c.HEARTBEAT_INTERVAL, NOW(6) AS SERVER_NOW " +
	"FROM performance_schema.replication_connection_status s " +
	"JOIN performance_schema.replication_connection_configuration c ON c.CHANNEL_NAME = s.CHANNEL_NAME " +
	"WHERE s.CHANNEL_NAME = ''"

// mysql57ReceiverSQL is mysqlReceiverSQL for MySQL 5.7, which lacks the
// queued-transaction timestamps.
const mysql57ReceiverSQL = "SELECT s.SERVICE_STATE, s.LAST_ERROR_NUMBER, s.LAST_ERROR_MESSAGE, " +
	"s.LAST_HEARTBEAT_TIMESTAMP, s.RECEIVED_TRANSACTION_SET, c.HOST, c.PORT, c.HEARTBEAT_INTERVAL, " +
	"NOW(6) AS SERVER_NOW " +
	"FROM performance_schema.replication_connection_status s " +
	"JOIN performance_schema.replication_connection_configuration c ON c.CHANNEL_NAME = s.CHANNEL_NAME " +
	"WHERE s.CHANNEL_NAME = ''"

// ReceiverStatusSQL returns the statements ReceiverStatus runs, in order, on
// one connection whose time zone has been set to UTC. MariaDB: SHOW ALL
// SLAVES STATUS (Slave_last_heartbeat, Slave_heartbeat_period) and SELECT
// NOW(6); MySQL: SHOW REPLICA/SLAVE STATUS (read position) and a
// performance_schema query that carries NOW(6) itself.
func (f Flavor) ReceiverStatusSQL() []string {
	if f.Kind == MariaDB {
		return []string{f.replicaStatusSQL(), "SELECT NOW(6) AS SERVER_NOW"}
	}
	if f.Version.AtLeast(8, 0, 0) {
		return []string{f.replicaStatusSQL(), mysqlReceiverSQL}
	}
	return []string{f.replicaStatusSQL(), mysql57ReceiverSQL}
}

// ReceiverStatus reads the replica's receiver state and the replica's clock
// in a few round trips on one connection. The connection's session time zone
// is UTC while it reads (and reset to the global default afterwards), so
// daylight-saving changes cannot distort ages. It returns a status with a nil
// Replica when the server does not replicate.
func (i *Instance) ReceiverStatus(ctx context.Context) (*ReceiverStatus, error) {
	conn, err := i.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.addr, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET time_zone = '+00:00'"); err != nil {
		return nil, fmt.Errorf("%s: set time_zone: %w", i.addr, err)
	}
	rs, err := i.replicaStatus(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.addr, err)
	}
	stmts := i.flavor.ReceiverStatusSQL()
	rows, err := queryMaps(ctx, conn, stmts[1])
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", i.addr, firstWords(stmts[1]), err)
	}
	var out *ReceiverStatus
	if i.flavor.Kind == MariaDB {
		if len(rows) != 1 {
			return nil, fmt.Errorf("%s: SELECT NOW(6): %d rows", i.addr, len(rows))
		}
		out, err = ParseMariaDBReceiverStatus(rs, rows[0]["SERVER_NOW"])
	} else {
		var row map[string]string
		if len(rows) > 0 {
			row = rows[0]
		}
		out, err = ParseMySQLReceiverStatus(rs, row)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.addr, err)
	}
	// Best effort: give the pooled connection its default time zone back.
	_, _ = conn.ExecContext(ctx, "SET time_zone = DEFAULT")
	return out, nil
}

// ParseMariaDBReceiverStatus builds a ReceiverStatus from a MariaDB SHOW ALL
// SLAVES STATUS row (already parsed; nil when not a replica) and the value of
// NOW(6) read on the same connection. Slave_last_heartbeat is taken from
// rs.Raw; "0000-00-00 00:00:00" (never) reads as zero.
func ParseMariaDBReceiverStatus(rs *ReplicaStatus, serverNow string) (*ReceiverStatus, error) {
	now, err := ParseServerTime(serverNow)
	if err != nil {
		return nil, fmt.Errorf("NOW(6): %w", err)
	}
	if now.IsZero() {
		return nil, fmt.Errorf("NOW(6): no value")
	}
	out := &ReceiverStatus{Replica: rs, ServerNow: now}
	if rs == nil {
		return out, nil
	}
	r := newRowReader(rs.Raw)
	if v, name, ok := r.lookup("Slave_last_heartbeat", "Replica_last_heartbeat"); ok {
		hb, err := ParseServerTime(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		out.LastHeartbeat = hb
	}
	if r.has("Slave_heartbeat_period", "Replica_heartbeat_period") {
		out.HeartbeatPeriod = rs.HeartbeatPeriod
		out.HeartbeatKnown = true
	}
	return out, nil
}

// ParseMySQLReceiverStatus builds a ReceiverStatus from MySQL's SHOW
// REPLICA STATUS (already parsed; nil when not a replica) and one row of the
// performance_schema query of ReceiverStatusSQL (nil when it returned none).
// The SHOW output stays authoritative for the IO thread state; the
// performance_schema row fills in the last error and received GTID set when
// SHOW left them empty.
func ParseMySQLReceiverStatus(rs *ReplicaStatus, row map[string]string) (*ReceiverStatus, error) {
	if row == nil {
		if rs != nil {
			return nil, fmt.Errorf("performance_schema.replication_connection_status: no row for the default channel")
		}
		return nil, fmt.Errorf("performance_schema query returned no row and no clock")
	}
	r := newRowReader(row)
	now, err := ParseServerTime(r.str("SERVER_NOW"))
	if err != nil {
		return nil, fmt.Errorf("NOW(6): %w", err)
	}
	out := &ReceiverStatus{Replica: rs, ServerNow: now}
	if out.LastHeartbeat, err = ParseServerTime(r.str("LAST_HEARTBEAT_TIMESTAMP")); err != nil {
		return nil, fmt.Errorf("LAST_HEARTBEAT_TIMESTAMP: %w", err)
	}
	if out.LastQueued, err = ParseServerTime(r.str("LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP")); err != nil {
		return nil, fmt.Errorf("LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP: %w", err)
	}
	if r.has("HEARTBEAT_INTERVAL") {
		out.HeartbeatPeriod = r.seconds("HEARTBEAT_INTERVAL")
		out.HeartbeatKnown = r.err == nil
	}
	if rs != nil {
		if rs.LastIOErrno == 0 {
			rs.LastIOErrno = r.int("LAST_ERROR_NUMBER")
			rs.LastIOError = r.str("LAST_ERROR_MESSAGE")
		}
		if rs.RetrievedGTIDSet == "" {
			rs.RetrievedGTIDSet = stripSpace(r.str("RECEIVED_TRANSACTION_SET"))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// Heartbeat-table statements of ping_type=INSERT, as MHA runs them: the
// schema and table are created when missing, then one row is upserted with
// the current UNIX time. The write is binlogged, so replicas see it too.
const (
	HeartbeatCreateDatabaseSQL = "CREATE DATABASE IF NOT EXISTS infra"
	HeartbeatCreateTableSQL    = "CREATE TABLE IF NOT EXISTS infra.chk_masterha " +
		"(`key` tinyint NOT NULL PRIMARY KEY, `val` int(10) unsigned NOT NULL DEFAULT '0')"
	HeartbeatInsertSQL = "INSERT INTO infra.chk_masterha VALUES (1, UNIX_TIMESTAMP()) " +
		"ON DUPLICATE KEY UPDATE val = UNIX_TIMESTAMP()"
)

// WriteHeartbeat runs ping_type=INSERT's write on one connection; with
// create it first creates infra.chk_masterha when missing.
func (i *Instance) WriteHeartbeat(ctx context.Context, create bool) error {
	stmts := []string{HeartbeatInsertSQL}
	if create {
		stmts = []string{HeartbeatCreateDatabaseSQL, HeartbeatCreateTableSQL, HeartbeatInsertSQL}
	}
	for _, q := range stmts {
		if _, err := i.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", i.addr, firstWords(q), err)
		}
	}
	return nil
}

// ParseServerTime parses a DATETIME/TIMESTAMP value as this package reads
// it: "2006-01-02 15:04:05[.ffffff]" as the server prints it, or RFC 3339
// (what database/sql makes of a parsed time). The result is in UTC and
// carries the server's wall clock as is. Empty, NULL and zero dates
// ("0000-00-00 00:00:00") read as the zero time.
func ParseServerTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == NullValue || strings.HasPrefix(s, "0000-00-00") {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if t.Year() <= 1 {
				return time.Time{}, nil
			}
			return t.UTC(), nil
		}
	}
	// A bare number of seconds (some tools print UNIX timestamps).
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		return time.Unix(0, int64(f*float64(time.Second))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("not a date and time: %q", s)
}

// firstWords shortens a statement for error messages.
func firstWords(q string) string {
	if f := strings.Fields(q); len(f) > 3 {
		return strings.Join(f[:3], " ") + " …"
	}
	return q
}

// Compile-time check that *sql.Conn satisfies querier (ReceiverStatus relies
// on it to keep every statement on one session).
var _ querier = (*sql.Conn)(nil)
