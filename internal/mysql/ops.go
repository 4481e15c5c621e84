package mysql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gm "github.com/go-mysql-org/go-mysql/mysql"
)

// Statements and helpers used by the failover engine: process lists and
// KILL, waiting for GTIDs, semi-sync switches.

// errUnknownThread is ER_NO_SUCH_THREAD: the connection ended before KILL.
const errUnknownThread = 1094

// Process is one row of the process list.
type Process struct {
	ID      uint64
	User    string
	Host    string
	DB      string
	Command string
	State   string
	Time    time.Duration // MariaDB: millisecond resolution; MySQL: seconds
	Info    string        // the statement, "" when idle
}

// IsReplication reports whether p is a replication thread: a dump thread
// serving a replica, or this server's own replica IO/SQL/worker threads.
func (p Process) IsReplication() bool {
	switch p.Command {
	case "Binlog Dump", "Binlog Dump GTID", "Slave_IO", "Slave_SQL", "Slave_worker",
		"Connect", "Register Slave":
		return true
	}
	return false
}

// IsSystem reports whether p belongs to the server itself (event scheduler,
// background threads, replica threads running as "system user").
func (p Process) IsSystem() bool {
	switch strings.ToLower(p.User) {
	case "system user", "event_scheduler", "":
		return true
	}
	return p.Command == "Daemon"
}

// processListSQL reads the process list with a millisecond running time
// where the server has one (MariaDB's TIME_MS).
func (f Flavor) processListSQL() string {
	if f.Kind == MariaDB {
		return "SELECT ID, USER, HOST, DB, COMMAND, STATE, TIME_MS, INFO FROM information_schema.PROCESSLIST"
	}
	return "SELECT ID, USER, HOST, DB, COMMAND, STATE, TIME * 1000, INFO FROM information_schema.PROCESSLIST"
}

// ProcessList returns every connection of the server (it needs the PROCESS
// privilege to see other users' connections).
func (i *Instance) ProcessList(ctx context.Context) ([]Process, error) {
	rows, err := queryMaps(ctx, i.db, i.flavor.processListSQL())
	if err != nil {
		return nil, fmt.Errorf("%s: read process list: %w", i.addr, err)
	}
	return parseProcesses(rows), nil
}

func parseProcesses(rows []map[string]string) []Process {
	out := make([]Process, 0, len(rows))
	for _, r := range rows {
		val := func(k string) string {
			for col, v := range r {
				if strings.EqualFold(col, k) {
					if v == NullValue {
						return ""
					}
					return v
				}
			}
			return ""
		}
		id, _ := strconv.ParseUint(val("ID"), 10, 64)
		var ms float64
		for col, v := range r {
			if strings.EqualFold(col, "TIME_MS") || strings.EqualFold(col, "TIME * 1000") {
				ms, _ = strconv.ParseFloat(v, 64)
			}
		}
		out = append(out, Process{
			ID: id, User: val("USER"), Host: val("HOST"), DB: val("DB"),
			Command: val("COMMAND"), State: val("STATE"), Info: val("INFO"),
			Time: time.Duration(ms * float64(time.Millisecond)),
		})
	}
	return out
}

// KillClientConnections kills every connection that is not a replication or
// system thread, not one of the users in except, and not the connection
// doing the killing. It returns how many it killed; connections that ended
// on their own meanwhile are not errors.
func (i *Instance) KillClientConnections(ctx context.Context, except ...string) (int, error) {
	conn, err := i.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: kill client connections: %w", i.addr, err)
	}
	defer conn.Close()
	var self uint64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&self); err != nil {
		return 0, fmt.Errorf("%s: kill client connections: read own connection id: %w", i.addr, err)
	}
	rows, err := queryMaps(ctx, conn, i.flavor.processListSQL())
	if err != nil {
		return 0, fmt.Errorf("%s: kill client connections: read process list: %w", i.addr, err)
	}
	skip := map[string]bool{}
	for _, u := range except {
		skip[strings.ToLower(u)] = true
	}
	killed := 0
	var errs []error
	for _, p := range parseProcesses(rows) {
		if p.ID == self || p.IsReplication() || p.IsSystem() || skip[strings.ToLower(p.User)] {
			continue
		}
		if _, err := conn.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(p.ID, 10)); err != nil {
			if ErrorNumber(err) == errUnknownThread {
				continue
			}
			errs = append(errs, fmt.Errorf("KILL CONNECTION %d (%s): %w", p.ID, p.User, err))
			continue
		}
		killed++
	}
	if err := errors.Join(errs...); err != nil {
		return killed, fmt.Errorf("%s: kill client connections: %w", i.addr, err)
	}
	return killed, nil
}

// Position returns the set as a replication position: for MariaDB, per
// domain the GTID with the highest seq_no (the form of @@gtid_current_pos that
// MASTER_GTID_WAIT and MASTER_USE_GTID take); for MySQL the set itself.
func (g GTIDSet) Position() string {
	if g.kind != MariaDB {
		return g.String()
	}
	best := map[uint32]gm.MariadbGTID{}
	var domains []uint32
	for _, e := range g.mariaEntries() {
		cur, ok := best[e.DomainID]
		if !ok {
			domains = append(domains, e.DomainID)
		}
		if !ok || e.SequenceNumber > cur.SequenceNumber {
			best[e.DomainID] = e
		}
	}
	parts := make([]string, 0, len(domains))
	for _, d := range domains {
		e := best[d]
		parts = append(parts, fmt.Sprintf("%d-%d-%d", e.DomainID, e.ServerID, e.SequenceNumber))
	}
	return strings.Join(parts, ",")
}

// Origin is how the server's own transactions are named in GTID sets: its
// server_id on MariaDB, its server_uuid on MySQL.
func (s *Status) Origin() string {
	if s.Flavor.Kind == MariaDB {
		return strconv.FormatUint(uint64(s.ServerID), 10)
	}
	return s.ServerUUID
}

// LiveErrant is Errant for two sets read a moment apart from a running
// primary and its replica: the primary's own transactions are left out, as
// the replica may have applied ones written after the primary was read.
// What remains was written by another server and is missing on the
// primary.
func LiveErrant(replica, primary *Status) (GTIDSet, error) {
	return Errant(replica.GTIDExecuted.WithoutOrigin(primary.Origin()), primary.GTIDExecuted)
}

// WithoutOrigin returns the set without the transactions written by origin:
// a server_id (decimal) for MariaDB sets, a server_uuid for MySQL sets. The
// failover engine uses it so that a dead primary's newer transactions, which
// replicas may hold beyond its last known set, never look errant.
func (g GTIDSet) WithoutOrigin(origin string) GTIDSet {
	out := g.clone(g.kind)
	if origin == "" || g.IsEmpty() {
		return out
	}
	switch g.kind {
	case MariaDB:
		id, err := strconv.ParseUint(origin, 10, 32)
		if err != nil {
			return out
		}
		for domain, servers := range out.maria.Sets {
			delete(servers, uint32(id))
			if len(servers) == 0 {
				delete(out.maria.Sets, domain)
			}
		}
	case MySQL:
		for k := range out.mysql.Sets {
			if strings.EqualFold(k, origin) {
				delete(out.mysql.Sets, k)
			}
		}
	}
	return out
}

// WaitGTID waits until the server has applied set (through replication on
// MariaDB: MASTER_GTID_WAIT on its Position; MySQL:
// WAIT_FOR_EXECUTED_GTID_SET), for at most timeout (rounded to milliseconds
// on MariaDB, to seconds, at least one, on MySQL). It returns false, nil on a
// timeout.
func (i *Instance) WaitGTID(ctx context.Context, set GTIDSet, timeout time.Duration) (bool, error) {
	if set.IsEmpty() {
		return true, nil
	}
	var res int64
	var err error
	if i.flavor.Kind == MariaDB {
		err = i.db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", set.Position(), timeout.Seconds()).Scan(&res)
	} else {
		secs := int64(timeout.Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		err = i.db.QueryRowContext(ctx, "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)", set.String(), secs).Scan(&res)
	}
	if err != nil {
		return false, fmt.Errorf("%s: wait for GTIDs %s: %w", i.addr, set, err)
	}
	return res == 0, nil
}

// GTIDExecuted reads @@gtid_executed (MySQL) or @@gtid_binlog_state
// (MariaDB) alone: one round trip.
func (i *Instance) GTIDExecuted(ctx context.Context) (GTIDSet, error) {
	q := "SELECT @@GLOBAL.gtid_executed"
	if i.flavor.Kind == MariaDB {
		q = "SELECT @@GLOBAL.gtid_binlog_state"
	}
	var s string
	if err := i.db.QueryRowContext(ctx, q).Scan(&s); err != nil {
		return GTIDSet{}, fmt.Errorf("%s: %s: %w", i.addr, q, err)
	}
	return ParseGTIDSet(i.flavor.Kind, s)
}

// AlignSlavePos makes a MariaDB server's gtid_slave_pos equal to its
// gtid_current_pos, so that replication with MASTER_USE_GTID=slave_pos
// starts after the transactions it wrote itself while it was a primary.
// The replica threads must be stopped. It does nothing on MySQL.
func (i *Instance) AlignSlavePos(ctx context.Context) error {
	if i.flavor.Kind != MariaDB {
		return nil
	}
	var cur, slave string
	if err := i.db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_current_pos, @@GLOBAL.gtid_slave_pos").Scan(&cur, &slave); err != nil {
		return fmt.Errorf("%s: read GTID positions: %w", i.addr, err)
	}
	if stripSpace(cur) == stripSpace(slave) {
		return nil
	}
	if _, err := i.db.ExecContext(ctx, "SET GLOBAL gtid_slave_pos = "+QuoteString(stripSpace(cur))); err != nil {
		return fmt.Errorf("%s: set gtid_slave_pos to %s: %w", i.addr, cur, err)
	}
	return nil
}

// SetSemiSync switches the source and replica sides of semi-synchronous
// replication. It does nothing when the server has no semi-sync (plugin not
// loaded): the variables are missing. The replica side takes effect when
// the IO thread next starts.
func (i *Instance) SetSemiSync(ctx context.Context, source, replica bool) error {
	n := i.flavor.SemiSyncVariableNames()
	onOff := func(b bool) string {
		if b {
			return "ON"
		}
		return "OFF"
	}
	for _, st := range []string{
		"SET GLOBAL " + n.SourceEnabled + " = " + onOff(source),
		"SET GLOBAL " + n.ReplicaEnabled + " = " + onOff(replica),
	} {
		if _, err := i.db.ExecContext(ctx, st); err != nil {
			if ErrorNumber(err) == ErrUnknownSystemVar {
				return nil
			}
			return fmt.Errorf("%s: %s: %w", i.addr, st, err)
		}
	}
	return nil
}
