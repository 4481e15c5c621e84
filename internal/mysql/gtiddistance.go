package mysql

import "fmt"

// TransactionsBehind counts the transactions of ahead that behind lacks: how
// far a replica (behind) trails its primary (ahead). Sets of different
// kinds are an error; an empty set is compatible with either kind.
//
// MySQL sets: the number of GTIDs in ahead − behind, exact.
//
// MariaDB sets: for each domain of ahead, ahead's highest seq_no in the
// domain minus behind's (nothing when not positive), summed. The seq_nos of
// one domain number its transactions whichever server wrote them, so this
// is exact for a linear history (gtid_strict_mode) and an estimate
// otherwise. For a replica pass the union of its @@gtid_binlog_state and
// @@gtid_current_pos: without log_slave_updates the binlog state lacks what
// it replicated.
func TransactionsBehind(ahead, behind GTIDSet) (uint64, error) {
	kind, err := ahead.compatible(behind)
	if err != nil {
		return 0, fmt.Errorf("transactions behind: %w", err)
	}
	if ahead.IsEmpty() {
		return 0, nil
	}
	if kind == MySQL {
		d, err := ahead.Subtract(behind)
		if err != nil {
			return 0, fmt.Errorf("transactions behind: %w", err)
		}
		return d.mysqlCount(), nil
	}
	top, mine := ahead.mariaDomainMax(), behind.mariaDomainMax()
	var n uint64
	for domain, seq := range top {
		if have := mine[domain]; seq > have {
			n += seq - have
		}
	}
	return n, nil
}

// ErrantCount counts the transactions replica has and primary lacks (see
// Errant). MySQL sets: exact. MariaDB sets hold only the last seq_no per
// (domain, server), so the count is an estimate: for each errant entry, its
// seq_no minus primary's highest seq_no in that domain, at least 1.
func ErrantCount(replica, primary GTIDSet) (uint64, error) {
	e, err := Errant(replica, primary)
	if err != nil {
		return 0, err
	}
	if e.IsEmpty() {
		return 0, nil
	}
	if e.kind == MySQL {
		return e.mysqlCount(), nil
	}
	top := primary.mariaDomainMax()
	var n uint64
	for _, entry := range e.mariaEntries() {
		if have := top[entry.DomainID]; entry.SequenceNumber > have {
			n += entry.SequenceNumber - have
		} else {
			n++
		}
	}
	return n, nil
}

// mysqlCount is the number of GTIDs in a MySQL set (intervals are
// half-open: [Start, Stop)).
func (g GTIDSet) mysqlCount() uint64 {
	if g.mysql == nil {
		return 0
	}
	var n uint64
	for _, u := range g.mysql.Sets {
		for _, iv := range u.Intervals {
			if iv.Stop > iv.Start {
				n += uint64(iv.Stop - iv.Start)
			}
		}
	}
	return n
}

// mariaDomainMax maps each domain of a MariaDB set to its highest seq_no.
func (g GTIDSet) mariaDomainMax() map[uint32]uint64 {
	out := map[uint32]uint64{}
	if g.maria == nil {
		return out
	}
	for domain, servers := range g.maria.Sets {
		for _, e := range servers {
			if e.SequenceNumber > out[domain] {
				out[domain] = e.SequenceNumber
			}
		}
	}
	return out
}
