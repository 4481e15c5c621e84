package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Stats are a server's workload statistics, read for metrics on the same
// connection and in the same round as its Status (StatusAndStats). Counters
// are the server's own: they restart from zero when the server restarts.
type Stats struct {
	Questions        uint64 // Questions: statements clients sent
	SlowQueries      uint64 // Slow_queries
	ThreadsConnected uint64 // Threads_connected
	MaxConnections   uint64 // @@max_connections

	// InnodbDeadlocks is Innodb_deadlocks (MariaDB, Percona Server) or, on
	// MySQL, which has no such status variable, lock_deadlocks of
	// information_schema.INNODB_METRICS (needs PROCESS). HasInnodbDeadlocks
	// is false when neither could be read.
	InnodbDeadlocks    uint64
	HasInnodbDeadlocks bool

	// BinlogBytes is the sum of the file sizes SHOW BINARY LOGS lists,
	// BinlogFiles their number. HasBinlog is false when log_bin is off or
	// the list could not be read.
	BinlogBytes uint64
	BinlogFiles int
	HasBinlog   bool

	// SemiSyncTxWaits and SemiSyncNoTx are the source side's
	// Rpl_semi_sync_{source,master}_tx_waits (commits that waited for an
	// acknowledgement) and _no_tx (commits not acknowledged: async
	// fallback). HasSemiSyncCounters is false when the server has neither
	// (no semi-sync source plugin loaded).
	SemiSyncTxWaits, SemiSyncNoTx uint64
	HasSemiSyncCounters           bool

	// DataBytes is the data + index size of every table (DataSizeSQL).
	// DataBytesRead reports whether it was read this time; a caller that
	// reads it only now and then (topology.DataSizeCache) fills in the last
	// value and its time, DataBytesAt. DataBytesAt is zero when DataBytes is
	// unknown.
	DataBytes     uint64
	DataBytesRead bool
	DataBytesAt   time.Time

	// Err is the first error of the optional parts (binary logs, data size,
	// MySQL's deadlock counter) or of parsing; the fields of a part that
	// failed are left unset, with their Has flag false. The status read
	// itself never fails because of statistics.
	Err error

	TakenAt time.Time
	Elapsed time.Duration // the statistics' own queries, beyond the status read
}

// StatsOptions says what StatusAndStats reads besides the cheap statistics.
type StatsOptions struct {
	// DataSize also reads the data size (information_schema.TABLES), which is
	// expensive on a server with many tables: read it rarely.
	DataSize bool
	// DataSizeTimeout bounds the data-size query, on the server (MariaDB
	// max_statement_time, MySQL MAX_EXECUTION_TIME) and on the client, and
	// never beyond ctx's deadline; 0 means DefaultDataSizeTimeout.
	DataSizeTimeout time.Duration
}

// DefaultDataSizeTimeout bounds the data-size query when StatsOptions leaves
// it zero.
const DefaultDataSizeTimeout = 2 * time.Second

// statsVariables are the global variables Stats needs besides the status
// ones; they are read by the status variables query.
var statsVariables = []string{"max_connections"}

// statsStatusSQL reads the status variables of Stats and the semi-sync
// status variables (which Status needs) in one statement.
const statsStatusSQL = "SHOW GLOBAL STATUS WHERE Variable_name IN " +
	"('Questions', 'Slow_queries', 'Threads_connected', 'Innodb_deadlocks', " +
	"'Rpl_semi_sync_master_tx_waits', 'Rpl_semi_sync_master_no_tx', " +
	"'Rpl_semi_sync_source_tx_waits', 'Rpl_semi_sync_source_no_tx') " +
	"OR Variable_name LIKE 'Rpl_semi_sync%'"

// errSpecificAccessDenied is ER_SPECIFIC_ACCESS_DENIED_ERROR: a privilege
// (here PROCESS) is missing.
const errSpecificAccessDenied = 1227

// mysqlDeadlocksSQL reads MySQL's deadlock counter, which SHOW STATUS lacks.
const mysqlDeadlocksSQL = "SELECT `COUNT` FROM information_schema.INNODB_METRICS " +
	"WHERE NAME = 'lock_deadlocks' AND STATUS = 'enabled'"

// DataSizeSQL is the query for Stats.DataBytes: data + index length of every
// table outside the virtual schemas, limited on the server to timeout
// (rounded up to whole milliseconds) where the flavor allows it. On MySQL 8
// the lengths are the dictionary's cached statistics
// (information_schema_stats_expiry).
func (f Flavor) DataSizeSQL(timeout time.Duration) string {
	const q = "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES " +
		"WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema')"
	ms := int64(math.Ceil(float64(timeout) / float64(time.Millisecond)))
	switch {
	case timeout <= 0:
		return q
	case f.Kind == MariaDB && f.Version.AtLeast(10, 1, 2):
		return "SET STATEMENT max_statement_time=" + strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) + " FOR " + q
	case f.Kind == MySQL && f.Version.AtLeast(5, 7, 8):
		return "SELECT /*+ MAX_EXECUTION_TIME(" + strconv.FormatInt(ms, 10) + ") */" + strings.TrimPrefix(q, "SELECT")
	}
	return q
}

// StatusAndStats reads the server's Status and its Stats in one round on one
// connection: the statistics' variables ride on the status queries, and
// only SHOW BINARY LOGS (when log_bin is on), the data size (when o asks)
// and, on MySQL, the deadlock counter add round trips. err concerns the
// status: when it is set, both results are nil. Failures of the statistics
// alone land in Stats.Err.
func (i *Instance) StatusAndStats(ctx context.Context, o StatsOptions) (*Status, *Stats, error) {
	return i.readStatus(ctx, &o)
}

// readStats completes the statistics after the status read on conn: vars and
// status are the answers of the variables and status queries.
func (i *Instance) readStats(ctx context.Context, conn *sql.Conn, st *Status, vars, status map[string]string, o StatsOptions) *Stats {
	start := time.Now()
	s, err := parseStats(vars, status)
	s.TakenAt = st.TakenAt
	fail := func(e error) {
		if err == nil {
			err = e
		}
	}
	if !s.HasInnodbDeadlocks && i.flavor.Kind == MySQL {
		var n sql.NullString
		switch qerr := conn.QueryRowContext(ctx, mysqlDeadlocksSQL).Scan(&n); {
		case errors.Is(qerr, sql.ErrNoRows), ErrorNumber(qerr) == errSpecificAccessDenied:
			// Counter disabled (innodb_monitor_disable), or no PROCESS
			// privilege: leave it unknown, as documented.
		case qerr != nil:
			fail(fmt.Errorf("stats of %s: read lock_deadlocks: %w", i.addr, qerr))
		default:
			if v, perr := parseUintValue(n); perr != nil {
				fail(fmt.Errorf("stats of %s: lock_deadlocks: %w", i.addr, perr))
			} else {
				s.InnodbDeadlocks, s.HasInnodbDeadlocks = v, true
			}
		}
	}
	if st.LogBin {
		rows, qerr := queryMaps(ctx, conn, "SHOW BINARY LOGS")
		if qerr != nil {
			fail(fmt.Errorf("stats of %s: SHOW BINARY LOGS: %w", i.addr, qerr))
		} else if s.BinlogBytes, s.BinlogFiles, qerr = parseBinaryLogs(rows); qerr != nil {
			fail(fmt.Errorf("stats of %s: %w", i.addr, qerr))
		} else {
			s.HasBinlog = true
		}
	}
	if o.DataSize {
		if n, derr := i.dataSize(ctx, conn, o.DataSizeTimeout); derr != nil {
			fail(derr)
		} else {
			s.DataBytes, s.DataBytesRead, s.DataBytesAt = n, true, time.Now()
		}
	}
	s.Err = err
	s.Elapsed = time.Since(start)
	return &s
}

// dataSize runs DataSizeSQL within timeout (and ctx's deadline).
func (i *Instance) dataSize(ctx context.Context, conn *sql.Conn, timeout time.Duration) (uint64, error) {
	if timeout <= 0 {
		timeout = DefaultDataSizeTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		// Leave the server-side limit room to answer before ctx ends.
		if rem := time.Until(dl) * 3 / 4; rem < timeout {
			timeout = rem
		}
	}
	if timeout < 10*time.Millisecond {
		return 0, fmt.Errorf("stats of %s: data size: no time left within the deadline", i.addr)
	}
	// The client waits a little longer than the server-side limit, so the
	// server's clean interruption wins over closing the connection.
	qctx, cancel := context.WithTimeout(ctx, timeout+timeout/4+50*time.Millisecond)
	defer cancel()
	var n sql.NullString
	if err := conn.QueryRowContext(qctx, i.flavor.DataSizeSQL(timeout)).Scan(&n); err != nil {
		return 0, fmt.Errorf("stats of %s: data size (limit %s): %w", i.addr, timeout, err)
	}
	v, err := parseUintValue(n)
	if err != nil {
		return 0, fmt.Errorf("stats of %s: data size: %w", i.addr, err)
	}
	return v, nil
}

// parseStats reads the cheap statistics from SHOW GLOBAL VARIABLES and SHOW
// GLOBAL STATUS answers (name -> value, names in any case). The error names
// the first missing or malformed value; the others are still filled.
func parseStats(vars, status map[string]string) (Stats, error) {
	v, st := lowerKeys(vars), lowerKeys(status)
	var s Stats
	var err error
	num := func(m map[string]string, name string, required bool) (uint64, bool) {
		raw, ok := m[name]
		raw = strings.TrimSpace(raw)
		if !ok || raw == "" || raw == NullValue {
			if required && err == nil {
				err = fmt.Errorf("parse stats: %s missing", name)
			}
			return 0, false
		}
		n, perr := strconv.ParseUint(raw, 10, 64)
		if perr != nil {
			if err == nil {
				err = fmt.Errorf("parse stats: %s = %q: %w", name, raw, perr)
			}
			return 0, false
		}
		return n, true
	}
	s.Questions, _ = num(st, "questions", true)
	s.SlowQueries, _ = num(st, "slow_queries", true)
	s.ThreadsConnected, _ = num(st, "threads_connected", true)
	s.MaxConnections, _ = num(v, "max_connections", true)
	s.InnodbDeadlocks, s.HasInnodbDeadlocks = num(st, "innodb_deadlocks", false)

	// Both spellings, as parseSemiSync: the new one wins when both exist.
	waits, okW := num(st, "rpl_semi_sync_source_tx_waits", false)
	if !okW {
		waits, okW = num(st, "rpl_semi_sync_master_tx_waits", false)
	}
	noTx, okN := num(st, "rpl_semi_sync_source_no_tx", false)
	if !okN {
		noTx, okN = num(st, "rpl_semi_sync_master_no_tx", false)
	}
	s.SemiSyncTxWaits, s.SemiSyncNoTx, s.HasSemiSyncCounters = waits, noTx, okW || okN
	return s, err
}

// parseBinaryLogs sums the File_size column of SHOW BINARY LOGS rows.
func parseBinaryLogs(rows []map[string]string) (bytes uint64, files int, err error) {
	for _, row := range rows {
		r := newRowReader(row)
		if !r.has("File_size") {
			return 0, 0, errors.New("parse binary logs: no File_size column")
		}
		n := r.uint(64, "File_size")
		if r.err != nil {
			return 0, 0, fmt.Errorf("parse binary logs: %w", r.err)
		}
		bytes += n
		files++
	}
	return bytes, files, nil
}

// parseUintValue reads a non-negative integer the server may print as a
// DECIMAL ("1234" or "1234.0000"); NULL is 0.
func parseUintValue(v sql.NullString) (uint64, error) {
	s := strings.TrimSpace(v.String)
	if !v.Valid || s == "" || s == NullValue {
		return 0, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, nil
	}
	whole, frac, ok := strings.Cut(s, ".")
	if ok && strings.Trim(frac, "0") == "" {
		if n, err := strconv.ParseUint(whole, 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("value %q is not a non-negative integer", s)
}
