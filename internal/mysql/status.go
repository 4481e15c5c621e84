package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SemiSync is the semi-synchronous replication state of one server. Both the
// old (master/slave) and the new (source/replica) variable spellings are
// read, so a MySQL 8.0.26+ running the old plugins is reported correctly.
type SemiSync struct {
	// Available is true when any rpl_semi_sync variable exists (plugin loaded
	// on MySQL; always on MariaDB 10.3.3+).
	Available bool
	// SourceEnabled and ReplicaEnabled are the *_enabled variables.
	SourceEnabled, ReplicaEnabled bool
	// SourceOn and ReplicaOn are the *_status status variables: semi-sync is
	// actually in effect (the source has not fallen back to async).
	SourceOn, ReplicaOn bool
	SourceClients       int           // Rpl_semi_sync_*_clients
	SourceTimeout       time.Duration // rpl_semi_sync_*_timeout
	WaitPoint           string        // AFTER_SYNC | AFTER_COMMIT
}

// parseSemiSync reads SemiSync from SHOW GLOBAL VARIABLES and SHOW GLOBAL
// STATUS rows (name -> value, names in any case).
func parseSemiSync(vars, status map[string]string) SemiSync {
	v := lowerKeys(vars)
	st := lowerKeys(status)
	var s SemiSync
	for k := range v {
		if strings.HasPrefix(k, "rpl_semi_sync_") {
			s.Available = true
			break
		}
	}
	s.SourceEnabled = isOn(v["rpl_semi_sync_source_enabled"]) || isOn(v["rpl_semi_sync_master_enabled"])
	s.ReplicaEnabled = isOn(v["rpl_semi_sync_replica_enabled"]) || isOn(v["rpl_semi_sync_slave_enabled"])
	s.SourceOn = isOn(st["rpl_semi_sync_source_status"]) || isOn(st["rpl_semi_sync_master_status"])
	s.ReplicaOn = isOn(st["rpl_semi_sync_replica_status"]) || isOn(st["rpl_semi_sync_slave_status"])
	s.SourceClients = atoiOr0(first(st, "rpl_semi_sync_source_clients", "rpl_semi_sync_master_clients"))
	if ms := atoiOr0(first(v, "rpl_semi_sync_source_timeout", "rpl_semi_sync_master_timeout")); ms > 0 {
		s.SourceTimeout = time.Duration(ms) * time.Millisecond
	}
	s.WaitPoint = strings.ToUpper(first(v, "rpl_semi_sync_source_wait_point", "rpl_semi_sync_master_wait_point"))
	return s
}

// first returns the first non-empty value among names (which must be lower case).
func first(m map[string]string, names ...string) string {
	for _, n := range names {
		if v := m[n]; v != "" && v != NullValue {
			return v
		}
	}
	return ""
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// isOn reads a boolean variable: ON/1/YES/TRUE are true, OFF/0/NO/FALSE/""/NULL
// false; any other value (MariaDB 11's read_only=NO_LOCK…) counts as on.
func isOn(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "", "0", "OFF", "NO", "FALSE", NullValue:
		return false
	}
	return true
}

func atoiOr0(v string) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0
	}
	return n
}

// Status is a snapshot of one server's replication-relevant state.
type Status struct {
	Flavor   Flavor
	Addr     string // host:port the instance was opened with
	Hostname string // @@hostname
	Port     int    // @@port

	ServerID   uint32
	ServerUUID string // MySQL only

	ReadOnly, SuperReadOnly bool

	LogBin, LogReplicaUpdates bool
	BinlogFormat              string

	// GTIDMode is MySQL's @@gtid_mode; "ON" on MariaDB, whose GTIDs are always on.
	GTIDMode       string
	GTIDStrictMode bool // MariaDB @@gtid_strict_mode
	// GTIDExecuted is MySQL's @@gtid_executed or MariaDB's @@gtid_binlog_state.
	GTIDExecuted GTIDSet
	// GTIDCurrentPos and GTIDSlavePos are MariaDB's @@gtid_current_pos and
	// @@gtid_slave_pos.
	GTIDCurrentPos, GTIDSlavePos string

	// Binlog is the current binlog position (zero when log_bin is off);
	// BinlogFilters holds binlog_do_db/binlog_ignore_db.
	Binlog        BinlogCoordinates
	BinlogFilters Filters

	// Replica is nil when the server does not replicate from anyone.
	Replica  *ReplicaStatus
	SemiSync SemiSync

	SlaveNetTimeout time.Duration // slave_net_timeout / replica_net_timeout

	TakenAt time.Time
	Elapsed time.Duration
}

// IsReplica reports whether the server has a replication source configured.
func (s *Status) IsReplica() bool { return s.Replica != nil }

// Writable reports whether ordinary clients can write (read_only off).
func (s *Status) Writable() bool { return !s.ReadOnly && !s.SuperReadOnly }

// querier is what *sql.DB and *sql.Conn have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryMaps runs query and returns every row as column -> value, NULL as
// NullValue.
func queryMaps(ctx context.Context, q querier, query string, args ...any) ([]map[string]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]string, len(cols))
		for i, c := range cols {
			if vals[i].Valid {
				m[c] = vals[i].String
			} else {
				m[c] = NullValue
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// queryNameValue runs a SHOW VARIABLES/STATUS style query and returns
// name -> value with lower-case names.
func queryNameValue(ctx context.Context, q querier, query string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name string
		var val sql.NullString
		if err := rows.Scan(&name, &val); err != nil {
			return nil, err
		}
		if val.Valid {
			out[strings.ToLower(name)] = val.String
		} else {
			out[strings.ToLower(name)] = NullValue
		}
	}
	return out, rows.Err()
}

// statusVariables lists the global variables Status reads for a flavor; a
// variable the server lacks is simply absent from the answer.
func (f Flavor) statusVariables() []string {
	vars := []string{"server_id", "hostname", "port", "read_only", "log_bin", "binlog_format"}
	if f.Kind == MariaDB {
		return append(vars, "log_slave_updates", "slave_net_timeout", "gtid_strict_mode",
			"gtid_binlog_state", "gtid_current_pos", "gtid_slave_pos")
	}
	vars = append(vars, "server_uuid", "gtid_mode", "gtid_executed", "super_read_only",
		"log_slave_updates", "slave_net_timeout")
	if f.Version.AtLeast(8, 0, 26) {
		vars = append(vars, "log_replica_updates", "replica_net_timeout")
	}
	return vars
}

// statusVariablesSQL reads the status variables, extra ones and every
// semi-sync variable in one statement.
func (f Flavor) statusVariablesSQL(extra ...string) string {
	names := append(f.statusVariables(), extra...)
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	return "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + strings.Join(quoted, ", ") +
		") OR Variable_name LIKE 'rpl_semi_sync%'"
}

// Status reads the server's state in four round trips on one connection:
// global variables (including semi-sync), semi-sync status variables, replica
// status and binlog status. It needs the REPLICATION CLIENT privilege
// (BINLOG MONITOR and SLAVE MONITOR on MariaDB 10.5+).
func (i *Instance) Status(ctx context.Context) (*Status, error) {
	st, _, err := i.readStatus(ctx, nil)
	return st, err
}

// readStatus is Status, and StatusAndStats when so is not nil.
func (i *Instance) readStatus(ctx context.Context, so *StatsOptions) (*Status, *Stats, error) {
	start := time.Now()
	conn, err := i.db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("status of %s: %w", i.addr, err)
	}
	defer conn.Close()

	f := i.flavor
	varsSQL, statusSQL := f.statusVariablesSQL(), "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'"
	if so != nil {
		varsSQL, statusSQL = f.statusVariablesSQL(statsVariables...), statsStatusSQL
	}
	vars, err := queryNameValue(ctx, conn, varsSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("status of %s: read variables: %w", i.addr, err)
	}
	globalStatus, err := queryNameValue(ctx, conn, statusSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("status of %s: read global status: %w", i.addr, err)
	}
	st, err := statusFromVariables(f, vars)
	if err != nil {
		return nil, nil, fmt.Errorf("status of %s: %w", i.addr, err)
	}
	st.Addr = i.addr
	st.TakenAt = start
	st.SemiSync = parseSemiSync(vars, globalStatus)

	if st.Replica, err = i.replicaStatus(ctx, conn); err != nil {
		return nil, nil, fmt.Errorf("status of %s: %w", i.addr, err)
	}
	if st.LogBin {
		rows, err := queryMaps(ctx, conn, f.ShowBinlogStatusSQL())
		if err != nil {
			return nil, nil, fmt.Errorf("status of %s: %s: %w", i.addr, f.ShowBinlogStatusSQL(), err)
		}
		if len(rows) > 0 {
			if st.Binlog, st.BinlogFilters, err = parseBinlogStatus(rows[0]); err != nil {
				return nil, nil, fmt.Errorf("status of %s: %w", i.addr, err)
			}
		}
	}
	st.Elapsed = time.Since(start)
	if so == nil {
		return st, nil, nil
	}
	return st, i.readStats(ctx, conn, st, vars, globalStatus, *so), nil
}

// statusFromVariables fills a Status from lower-case variable name -> value.
func statusFromVariables(f Flavor, v map[string]string) (*Status, error) {
	st := &Status{
		Flavor:        f,
		Hostname:      v["hostname"],
		ServerUUID:    v["server_uuid"],
		ReadOnly:      isOn(v["read_only"]),
		SuperReadOnly: isOn(v["super_read_only"]),
		LogBin:        isOn(v["log_bin"]),
		BinlogFormat:  v["binlog_format"],
	}
	id, err := strconv.ParseUint(v["server_id"], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("server_id %q: %w", v["server_id"], err)
	}
	st.ServerID = uint32(id)
	st.Port = atoiOr0(v["port"])
	st.LogReplicaUpdates = isOn(first(v, "log_replica_updates", "log_slave_updates"))
	if secs := atoiOr0(first(v, "replica_net_timeout", "slave_net_timeout")); secs > 0 {
		st.SlaveNetTimeout = time.Duration(secs) * time.Second
	}
	gtids := v["gtid_executed"]
	if f.Kind == MariaDB {
		st.GTIDMode = "ON"
		st.GTIDStrictMode = isOn(v["gtid_strict_mode"])
		st.GTIDCurrentPos = stripSpace(v["gtid_current_pos"])
		st.GTIDSlavePos = stripSpace(v["gtid_slave_pos"])
		gtids = v["gtid_binlog_state"]
	} else {
		st.GTIDMode = strings.ToUpper(v["gtid_mode"])
	}
	if gtids == NullValue {
		gtids = ""
	}
	if st.GTIDExecuted, err = ParseGTIDSet(f.Kind, gtids); err != nil {
		return nil, err
	}
	return st, nil
}

// parseBinlogStatus reads a SHOW MASTER STATUS / SHOW BINARY LOG STATUS row.
func parseBinlogStatus(row map[string]string) (BinlogCoordinates, Filters, error) {
	r := newRowReader(row)
	c := BinlogCoordinates{File: r.str("File"), Pos: r.uint(64, "Position")}
	fl := Filters{DoDB: r.str("Binlog_Do_DB"), IgnoreDB: r.str("Binlog_Ignore_DB")}.Normalize()
	if r.err != nil {
		return BinlogCoordinates{}, Filters{}, fmt.Errorf("parse binlog status: %w", r.err)
	}
	return c, fl, nil
}

// replicaStatusSQL is the query Instance.ReplicaStatus runs: on MariaDB SHOW
// ALL SLAVES STATUS, whose rows also carry Gtid_Slave_Pos and
// Slave_heartbeat_period (the default connection's row is used).
func (f Flavor) replicaStatusSQL() string {
	if f.Kind == MariaDB {
		return "SHOW ALL SLAVES STATUS"
	}
	return f.ShowReplicaStatusSQL()
}

// ReplicaStatus reads the replica status of the default replication channel
// (MySQL) or default connection (MariaDB); it returns nil, nil when the server
// does not replicate. Other channels and named multi-source connections are
// ignored.
func (i *Instance) ReplicaStatus(ctx context.Context) (*ReplicaStatus, error) {
	rs, err := i.replicaStatus(ctx, i.db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.addr, err)
	}
	return rs, nil
}

func (i *Instance) replicaStatus(ctx context.Context, q querier) (*ReplicaStatus, error) {
	query := i.flavor.replicaStatusSQL()
	rows, err := queryMaps(ctx, q, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	for _, row := range rows {
		rs, err := ParseReplicaStatus(row)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", query, err)
		}
		if rs.ChannelName == "" && rs.ConnectionName == "" {
			return rs, nil
		}
	}
	return nil, nil
}

// Ping checks that the server answers on a pooled connection.
func (i *Instance) Ping(ctx context.Context) error {
	if err := i.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", i.addr, err)
	}
	return nil
}
