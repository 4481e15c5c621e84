package mysql

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// NullValue is how SQL NULL is represented in the row maps that
// ParseReplicaStatus and friends read: the literal NULL, as the mysql client
// prints it. The empty string is an empty (non-NULL) value.
const NullValue = "NULL"

// BinlogCoordinates is a position in a binary log.
type BinlogCoordinates struct {
	File string
	Pos  uint64
}

// IsZero reports whether c is unset.
func (c BinlogCoordinates) IsZero() bool { return c.File == "" && c.Pos == 0 }

// String formats c as "mysql-bin.000003:154".
func (c BinlogCoordinates) String() string {
	if c.IsZero() {
		return ""
	}
	return c.File + ":" + strconv.FormatUint(c.Pos, 10)
}

// Compare orders coordinates by file then position; binlog file names of one
// server share a prefix and a zero-padded sequence number, so a plain string
// comparison of the file orders them. It returns -1, 0 or +1.
func (c BinlogCoordinates) Compare(o BinlogCoordinates) int {
	if c.File != o.File {
		if c.File < o.File {
			return -1
		}
		return 1
	}
	switch {
	case c.Pos < o.Pos:
		return -1
	case c.Pos > o.Pos:
		return 1
	}
	return 0
}

// Filters are replication or binlog filters. Each field is a comma-separated
// list as the server prints it; Normalize sorts and trims it so that filters
// of two servers can be compared.
type Filters struct {
	DoDB, IgnoreDB, DoTable, IgnoreTable, WildDoTable, WildIgnoreTable string
}

// normalizeList trims, drops empty items, sorts and de-duplicates a
// comma-separated list.
func normalizeList(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	var items []string
	seen := map[string]bool{}
	for _, it := range strings.Split(s, ",") {
		it = strings.TrimSpace(it)
		if it == "" || seen[it] {
			continue
		}
		seen[it] = true
		items = append(items, it)
	}
	sort.Strings(items)
	return strings.Join(items, ",")
}

// Normalize returns f with every list trimmed, sorted and de-duplicated.
func (f Filters) Normalize() Filters {
	return Filters{
		DoDB:            normalizeList(f.DoDB),
		IgnoreDB:        normalizeList(f.IgnoreDB),
		DoTable:         normalizeList(f.DoTable),
		IgnoreTable:     normalizeList(f.IgnoreTable),
		WildDoTable:     normalizeList(f.WildDoTable),
		WildIgnoreTable: normalizeList(f.WildIgnoreTable),
	}
}

// IsZero reports whether no filter is set.
func (f Filters) IsZero() bool { return f.Normalize() == Filters{} }

// Equal reports whether f and o filter the same way (after normalisation).
func (f Filters) Equal(o Filters) bool { return f.Normalize() == o.Normalize() }

// String formats the non-empty filters as "do_db=a,b; ignore_table=x.y".
func (f Filters) String() string {
	n := f.Normalize()
	var parts []string
	for _, kv := range [...]struct{ k, v string }{
		{"do_db", n.DoDB}, {"ignore_db", n.IgnoreDB},
		{"do_table", n.DoTable}, {"ignore_table", n.IgnoreTable},
		{"wild_do_table", n.WildDoTable}, {"wild_ignore_table", n.WildIgnoreTable},
	} {
		if kv.v != "" {
			parts = append(parts, kv.k+"="+kv.v)
		}
	}
	return strings.Join(parts, "; ")
}

// IO thread states as SHOW REPLICA/SLAVE STATUS reports them.
const (
	IOYes        = "Yes"
	IONo         = "No"
	IOConnecting = "Connecting"
)

// ReplicaStatus is one row of SHOW REPLICA/SLAVE STATUS, with MySQL's old
// (Master_*, Slave_*) and new (Source_*, Replica_*) column names and
// MariaDB's columns mapped onto one set of fields.
type ReplicaStatus struct {
	SourceHost string
	SourcePort int
	SourceUser string
	IORunning  string // IOYes | IONo | IOConnecting
	SQLRunning bool
	IOState    string // Replica_IO_State / Slave_IO_State
	SQLState   string // Replica_SQL_Running_State / Slave_SQL_Running_State
	// SecondsBehind is nil when the server reports NULL (SQL thread stopped or
	// IO thread not connected).
	SecondsBehind *int64

	LastIOErrno  int
	LastIOError  string
	LastSQLErrno int
	LastSQLError string

	SourceLogFile      string // file the IO thread reads
	ReadSourceLogPos   uint64
	RelayLogFile       string
	RelayLogPos        uint64
	RelaySourceLogFile string // source file of the last applied event
	ExecSourceLogPos   uint64

	// AutoPosition is MySQL Auto_Position=1 or MariaDB Using_Gtid other than No.
	AutoPosition bool
	UsingGTID    string // MariaDB: No | Slave_Pos | Current_Pos
	// RetrievedGTIDSet is MySQL's Retrieved_Gtid_Set or MariaDB's Gtid_IO_Pos;
	// ExecutedGTIDSet is MySQL's Executed_Gtid_Set (empty on MariaDB). Both
	// have whitespace removed.
	RetrievedGTIDSet, ExecutedGTIDSet string
	// GTIDSlavePos is MariaDB's Gtid_Slave_Pos (SHOW ALL SLAVES STATUS only).
	GTIDSlavePos string

	SourceServerID uint32
	SourceUUID     string // MySQL only

	// HeartbeatPeriod is MariaDB's Slave_heartbeat_period (SHOW ALL SLAVES
	// STATUS only); 0 on MySQL, whose SHOW output lacks it.
	HeartbeatPeriod time.Duration
	ConnectRetry    time.Duration
	SQLDelay        time.Duration

	// ChannelName is MySQL's Channel_Name, ConnectionName MariaDB's
	// Connection_name; "" for the default channel/connection.
	ChannelName, ConnectionName string

	Filters Filters
	// Raw is every column as read, NULL as NullValue.
	Raw map[string]string
}

// IOConnected reports whether the IO thread runs and is connected.
func (r *ReplicaStatus) IOConnected() bool { return r.IORunning == IOYes }

// Running reports whether both replication threads run and the IO thread is
// connected.
func (r *ReplicaStatus) Running() bool { return r.IOConnected() && r.SQLRunning }

// ReadPosition is where the IO thread has read up to in the source's binlog.
func (r *ReplicaStatus) ReadPosition() BinlogCoordinates {
	return BinlogCoordinates{File: r.SourceLogFile, Pos: r.ReadSourceLogPos}
}

// ExecPosition is where the SQL thread has applied up to, in source terms.
func (r *ReplicaStatus) ExecPosition() BinlogCoordinates {
	return BinlogCoordinates{File: r.RelaySourceLogFile, Pos: r.ExecSourceLogPos}
}

// rowReader looks columns up case-insensitively under any of several names and
// remembers the first conversion error.
type rowReader struct {
	cols map[string]string
	err  error
}

func newRowReader(row map[string]string) *rowReader {
	cols := make(map[string]string, len(row))
	for k, v := range row {
		cols[strings.ToLower(k)] = v
	}
	return &rowReader{cols: cols}
}

// lookup returns the raw value of the first present name.
func (r *rowReader) lookup(names ...string) (string, string, bool) {
	for _, n := range names {
		if v, ok := r.cols[strings.ToLower(n)]; ok {
			return v, n, true
		}
	}
	return "", "", false
}

func (r *rowReader) has(names ...string) bool {
	_, _, ok := r.lookup(names...)
	return ok
}

// str returns the value, NULL as "".
func (r *rowReader) str(names ...string) string {
	v, _, _ := r.lookup(names...)
	if v == NullValue {
		return ""
	}
	return strings.TrimSpace(v)
}

func (r *rowReader) fail(name, v string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("column %s: value %q: %w", name, v, err)
	}
}

// uint returns the value as an unsigned integer; missing, empty or NULL is 0.
func (r *rowReader) uint(bits int, names ...string) uint64 {
	v, name, ok := r.lookup(names...)
	v = strings.TrimSpace(v)
	if !ok || v == "" || v == NullValue {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		r.fail(name, v, err)
	}
	return n
}

// int returns the value as an int; missing, empty or NULL is 0.
func (r *rowReader) int(names ...string) int {
	v, name, ok := r.lookup(names...)
	v = strings.TrimSpace(v)
	if !ok || v == "" || v == NullValue {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, v, err)
	}
	return n
}

// nullInt returns nil for missing, empty or NULL values.
func (r *rowReader) nullInt(names ...string) *int64 {
	v, name, ok := r.lookup(names...)
	v = strings.TrimSpace(v)
	if !ok || v == "" || v == NullValue {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(name, v, err)
		return nil
	}
	return &n
}

// seconds reads a (possibly fractional) number of seconds.
func (r *rowReader) seconds(names ...string) time.Duration {
	v, name, ok := r.lookup(names...)
	v = strings.TrimSpace(v)
	if !ok || v == "" || v == NullValue {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err == nil && (f < 0 || f > math.MaxInt64/float64(time.Second) || math.IsNaN(f)) {
		err = errors.New("out of range")
	}
	if err != nil {
		r.fail(name, v, err)
		return 0
	}
	return time.Duration(math.Round(f * float64(time.Second)))
}

// stripSpace removes all whitespace (GTID sets are printed with newlines).
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// ErrNotReplicaStatus is returned by ParseReplicaStatus for a row that lacks
// the source host column.
var ErrNotReplicaStatus = errors.New("not a SHOW REPLICA STATUS row")

// ParseReplicaStatus reads one row of SHOW REPLICA STATUS (MySQL 8.0.22+),
// SHOW SLAVE STATUS (MySQL 5.7/8.0, MariaDB) or SHOW ALL SLAVES STATUS
// (MariaDB), given as column name -> value. Column names match
// case-insensitively; NULL is NullValue ("NULL"), and the empty string and
// missing optional columns read as zero values.
func ParseReplicaStatus(row map[string]string) (*ReplicaStatus, error) {
	r := newRowReader(row)
	if !r.has("Source_Host", "Master_Host") {
		return nil, ErrNotReplicaStatus
	}
	s := &ReplicaStatus{
		SourceHost:         r.str("Source_Host", "Master_Host"),
		SourcePort:         r.int("Source_Port", "Master_Port"),
		SourceUser:         r.str("Source_User", "Master_User"),
		IORunning:          normalizeIORunning(r.str("Replica_IO_Running", "Slave_IO_Running")),
		SQLRunning:         strings.EqualFold(r.str("Replica_SQL_Running", "Slave_SQL_Running"), "Yes"),
		IOState:            r.str("Replica_IO_State", "Slave_IO_State"),
		SQLState:           r.str("Replica_SQL_Running_State", "Slave_SQL_Running_State"),
		SecondsBehind:      r.nullInt("Seconds_Behind_Source", "Seconds_Behind_Master"),
		LastIOErrno:        r.int("Last_IO_Errno"),
		LastIOError:        r.str("Last_IO_Error"),
		LastSQLErrno:       r.int("Last_SQL_Errno"),
		LastSQLError:       r.str("Last_SQL_Error"),
		SourceLogFile:      r.str("Source_Log_File", "Master_Log_File"),
		ReadSourceLogPos:   r.uint(64, "Read_Source_Log_Pos", "Read_Master_Log_Pos"),
		RelayLogFile:       r.str("Relay_Log_File"),
		RelayLogPos:        r.uint(64, "Relay_Log_Pos"),
		RelaySourceLogFile: r.str("Relay_Source_Log_File", "Relay_Master_Log_File"),
		ExecSourceLogPos:   r.uint(64, "Exec_Source_Log_Pos", "Exec_Master_Log_Pos"),
		UsingGTID:          r.str("Using_Gtid"),
		RetrievedGTIDSet:   stripSpace(r.str("Retrieved_Gtid_Set", "Gtid_IO_Pos")),
		ExecutedGTIDSet:    stripSpace(r.str("Executed_Gtid_Set")),
		GTIDSlavePos:       stripSpace(r.str("Gtid_Slave_Pos")),
		SourceServerID:     uint32(r.uint(32, "Source_Server_Id", "Master_Server_Id")),
		SourceUUID:         r.str("Source_UUID", "Master_UUID"),
		HeartbeatPeriod:    r.seconds("Slave_heartbeat_period", "Replica_heartbeat_period"),
		ConnectRetry:       r.seconds("Connect_Retry"),
		SQLDelay:           r.seconds("SQL_Delay"),
		ChannelName:        r.str("Channel_Name"),
		ConnectionName:     r.str("Connection_name"),
		Filters: Filters{
			DoDB:            r.str("Replicate_Do_DB"),
			IgnoreDB:        r.str("Replicate_Ignore_DB"),
			DoTable:         r.str("Replicate_Do_Table"),
			IgnoreTable:     r.str("Replicate_Ignore_Table"),
			WildDoTable:     r.str("Replicate_Wild_Do_Table"),
			WildIgnoreTable: r.str("Replicate_Wild_Ignore_Table"),
		}.Normalize(),
		Raw: make(map[string]string, len(row)),
	}
	if r.has("Auto_Position") {
		s.AutoPosition = r.str("Auto_Position") == "1"
	} else {
		s.AutoPosition = s.UsingGTID != "" && !strings.EqualFold(s.UsingGTID, "No")
	}
	for k, v := range row {
		s.Raw[k] = v
	}
	if r.err != nil {
		return nil, fmt.Errorf("parse replica status: %w", r.err)
	}
	return s, nil
}

// normalizeIORunning maps the IO thread column to IOYes, IONo or
// IOConnecting whatever its case.
func normalizeIORunning(v string) string {
	switch strings.ToLower(v) {
	case "yes":
		return IOYes
	case "no", "":
		return IONo
	case "connecting":
		return IOConnecting
	default:
		return v
	}
}

// ReplicaStatusColumnNames are the names of the key SHOW REPLICA/SLAVE STATUS
// columns on one flavor, for messages and reports that should use the
// server's own words. ParseReplicaStatus accepts every spelling regardless.
type ReplicaStatusColumnNames struct {
	SourceHost, SourcePort, IORunning, SQLRunning, SecondsBehind           string
	ReadSourceLogPos, ExecSourceLogPos, RelaySourceLogFile, SourceServerID string
}

// ReplicaStatusColumns returns the column names this flavor prints: MySQL
// 8.0.22+ renamed Master_* to Source_* and Slave_* to Replica_*; older MySQL
// and every MariaDB use the old names.
func (f Flavor) ReplicaStatusColumns() ReplicaStatusColumnNames {
	if f.mysqlReplicaWords() {
		return ReplicaStatusColumnNames{
			SourceHost: "Source_Host", SourcePort: "Source_Port",
			IORunning: "Replica_IO_Running", SQLRunning: "Replica_SQL_Running",
			SecondsBehind: "Seconds_Behind_Source", ReadSourceLogPos: "Read_Source_Log_Pos",
			ExecSourceLogPos: "Exec_Source_Log_Pos", RelaySourceLogFile: "Relay_Source_Log_File",
			SourceServerID: "Source_Server_Id",
		}
	}
	return ReplicaStatusColumnNames{
		SourceHost: "Master_Host", SourcePort: "Master_Port",
		IORunning: "Slave_IO_Running", SQLRunning: "Slave_SQL_Running",
		SecondsBehind: "Seconds_Behind_Master", ReadSourceLogPos: "Read_Master_Log_Pos",
		ExecSourceLogPos: "Exec_Master_Log_Pos", RelaySourceLogFile: "Relay_Master_Log_File",
		SourceServerID: "Master_Server_Id",
	}
}
