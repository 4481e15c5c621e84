package mysql

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	gm "github.com/go-mysql-org/go-mysql/mysql"
)

// ErrGTIDKindMismatch is returned when a MySQL and a MariaDB GTID set are
// combined.
var ErrGTIDKindMismatch = errors.New("GTID sets of different kinds")

// GTIDSet is an immutable set of GTIDs of one kind. The zero value is an empty
// set of no particular kind, compatible with sets of either kind.
//
// MySQL sets ("uuid:1-5:7,uuid2:1-3", the form of @@gtid_executed) are
// ordinary sets of transactions: Contains, Subtract and Union are interval
// arithmetic (done by go-mysql).
//
// MariaDB sets ("0-1-100,0-12-7,1-2-5", the form of @@gtid_binlog_state) are
// binlog states: for each (domain_id, server_id) the last seq_no that server
// wrote in that domain. Because seq_nos within a domain grow monotonically, an
// entry stands for "everything up to seq_no from that server in that domain":
//
//   - A contains B iff for every (domain, server) in B, A has an entry for
//     the same (domain, server) with seq_no >= B's.
//   - A − B keeps the entries of A for which B has no (domain, server) entry
//     or a smaller seq_no; the entry keeps A's seq_no.
//   - A ∪ B keeps, per (domain, server), the larger seq_no.
//
// So Errant(replica.@@gtid_binlog_state, primary.@@gtid_binlog_state) names
// the local writes of a replica: a replica with server_id 12 that executed a
// transaction of its own shows "0-12-7", which the primary lacks. Compare
// gtid_binlog_state values, not gtid_current_pos/gtid_slave_pos: those keep
// one entry per domain and cannot tell which server wrote what.
//
// MySQL 8.4 tagged GTIDs ("uuid:tag:1-5") are not supported yet.
type GTIDSet struct {
	kind  Kind
	mysql *gm.MysqlGTIDSet
	maria *gm.MariadbGTIDSet
}

// ParseGTIDSet parses a GTID set of the given kind. Whitespace (the newlines
// the server prints after commas) is ignored; the empty string is the empty
// set.
func ParseGTIDSet(kind Kind, s string) (GTIDSet, error) {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	switch kind {
	case MySQL:
		set, err := gm.ParseMysqlGTIDSet(s)
		if err != nil {
			return GTIDSet{}, fmt.Errorf("parse MySQL GTID set %q: %w", s, err)
		}
		return GTIDSet{kind: MySQL, mysql: set.(*gm.MysqlGTIDSet)}, nil
	case MariaDB:
		set := &gm.MariadbGTIDSet{Sets: map[uint32]map[uint32]*gm.MariadbGTID{}}
		if s == "" {
			return GTIDSet{kind: MariaDB, maria: set}, nil
		}
		for _, part := range strings.Split(s, ",") {
			if strings.Count(part, "-") != 2 {
				return GTIDSet{}, fmt.Errorf("parse MariaDB GTID set %q: %q is not domain-server-seq", s, part)
			}
			g, err := gm.ParseMariadbGTID(part)
			if err != nil {
				return GTIDSet{}, fmt.Errorf("parse MariaDB GTID set %q: %w", s, err)
			}
			mariaPut(set, g.DomainID, g.ServerID, g.SequenceNumber)
		}
		return GTIDSet{kind: MariaDB, maria: set}, nil
	default:
		return GTIDSet{}, fmt.Errorf("parse GTID set: unknown kind %q", kind)
	}
}

// MustParseGTIDSet is ParseGTIDSet that panics on error, for tests and
// constants.
func MustParseGTIDSet(kind Kind, s string) GTIDSet {
	g, err := ParseGTIDSet(kind, s)
	if err != nil {
		panic(err)
	}
	return g
}

// mariaPut records seq for (domain, server), keeping the larger seq_no.
func mariaPut(set *gm.MariadbGTIDSet, domain, server uint32, seq uint64) {
	servers := set.Sets[domain]
	if servers == nil {
		servers = map[uint32]*gm.MariadbGTID{}
		set.Sets[domain] = servers
	}
	if cur, ok := servers[server]; ok {
		if seq > cur.SequenceNumber {
			cur.SequenceNumber = seq
		}
		return
	}
	servers[server] = &gm.MariadbGTID{DomainID: domain, ServerID: server, SequenceNumber: seq}
}

// Kind is the set's kind; "" for the zero value.
func (g GTIDSet) Kind() Kind { return g.kind }

// IsEmpty reports whether the set has no GTIDs.
func (g GTIDSet) IsEmpty() bool {
	switch {
	case g.mysql != nil:
		return g.mysql.IsEmpty()
	case g.maria != nil:
		return g.maria.IsEmpty()
	default:
		return true
	}
}

// String formats the set as the server does, canonically ordered: MySQL
// sets by UUID, MariaDB entries by domain then server id.
func (g GTIDSet) String() string {
	switch {
	case g.mysql != nil:
		return g.mysql.String()
	case g.maria != nil:
		entries := g.mariaEntries()
		parts := make([]string, len(entries))
		for i, e := range entries {
			parts[i] = strconv.FormatUint(uint64(e.DomainID), 10) + "-" +
				strconv.FormatUint(uint64(e.ServerID), 10) + "-" +
				strconv.FormatUint(e.SequenceNumber, 10)
		}
		return strings.Join(parts, ",")
	default:
		return ""
	}
}

// mariaEntries lists a MariaDB set's entries sorted by domain, server.
func (g GTIDSet) mariaEntries() []gm.MariadbGTID {
	if g.maria == nil {
		return nil
	}
	var out []gm.MariadbGTID
	for _, servers := range g.maria.Sets {
		for _, e := range servers {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DomainID != out[j].DomainID {
			return out[i].DomainID < out[j].DomainID
		}
		return out[i].ServerID < out[j].ServerID
	})
	return out
}

// compatible checks that g and o can be combined and returns the common kind
// ("" when both are zero values).
func (g GTIDSet) compatible(o GTIDSet) (Kind, error) {
	switch {
	case g.kind == "":
		return o.kind, nil
	case o.kind == "" || o.kind == g.kind:
		return g.kind, nil
	default:
		return "", fmt.Errorf("%w: %s and %s", ErrGTIDKindMismatch, g.kind, o.kind)
	}
}

// Contains reports whether o ⊆ g. An empty o is contained in every set; sets
// of different kinds never contain each other's non-empty sets.
func (g GTIDSet) Contains(o GTIDSet) bool {
	if o.IsEmpty() {
		return true
	}
	if g.IsEmpty() || g.kind != o.kind {
		return false
	}
	if g.kind == MySQL {
		return g.mysql.Contain(o.mysql)
	}
	return g.maria.Contain(o.maria)
}

// Equal reports whether g and o hold the same GTIDs. Two empty sets are equal
// whatever their kinds.
func (g GTIDSet) Equal(o GTIDSet) bool {
	if g.IsEmpty() || o.IsEmpty() {
		return g.IsEmpty() && o.IsEmpty()
	}
	if g.kind != o.kind {
		return false
	}
	if g.kind == MySQL {
		return g.mysql.Equal(o.mysql)
	}
	return g.maria.Equal(o.maria)
}

// Subtract returns g − o. It fails when the kinds differ.
func (g GTIDSet) Subtract(o GTIDSet) (GTIDSet, error) {
	kind, err := g.compatible(o)
	if err != nil {
		return GTIDSet{}, fmt.Errorf("subtract GTID sets: %w", err)
	}
	if g.IsEmpty() || o.IsEmpty() {
		return g.clone(kind), nil
	}
	out := g.clone(kind)
	if kind == MySQL {
		if err := out.mysql.Minus(*o.mysql); err != nil {
			return GTIDSet{}, fmt.Errorf("subtract GTID sets: %w", err)
		}
		return out, nil
	}
	for domain, servers := range out.maria.Sets {
		for server, e := range servers {
			if oe, ok := o.maria.Sets[domain][server]; ok && oe.SequenceNumber >= e.SequenceNumber {
				delete(servers, server)
			}
		}
		if len(servers) == 0 {
			delete(out.maria.Sets, domain)
		}
	}
	return out, nil
}

// Union returns g ∪ o. It fails when the kinds differ.
func (g GTIDSet) Union(o GTIDSet) (GTIDSet, error) {
	kind, err := g.compatible(o)
	if err != nil {
		return GTIDSet{}, fmt.Errorf("union of GTID sets: %w", err)
	}
	out := g.clone(kind)
	if o.IsEmpty() {
		return out, nil
	}
	if kind == MySQL {
		add := o.mysql.Clone().(*gm.MysqlGTIDSet) // AddSet keeps the pointers it is given
		if err := out.mysql.Add(*add); err != nil {
			return GTIDSet{}, fmt.Errorf("union of GTID sets: %w", err)
		}
		return out, nil
	}
	for _, e := range o.mariaEntries() {
		mariaPut(out.maria, e.DomainID, e.ServerID, e.SequenceNumber)
	}
	return out, nil
}

// clone returns a deep copy of g as kind (an empty set of kind when g is the
// zero value).
func (g GTIDSet) clone(kind Kind) GTIDSet {
	switch {
	case g.mysql != nil:
		return GTIDSet{kind: MySQL, mysql: g.mysql.Clone().(*gm.MysqlGTIDSet)}
	case g.maria != nil:
		return GTIDSet{kind: MariaDB, maria: g.maria.Clone().(*gm.MariadbGTIDSet)}
	case kind == MySQL:
		return GTIDSet{kind: MySQL, mysql: &gm.MysqlGTIDSet{Sets: map[string]*gm.UUIDSet{}}}
	case kind == MariaDB:
		return GTIDSet{kind: MariaDB, maria: &gm.MariadbGTIDSet{Sets: map[uint32]map[uint32]*gm.MariadbGTID{}}}
	default:
		return GTIDSet{}
	}
}

// Errant returns the GTIDs a replica has that the primary lacks (replica −
// primary): transactions written on the replica itself. For MariaDB pass both
// servers' @@gtid_binlog_state (see GTIDSet).
func Errant(replica, primary GTIDSet) (GTIDSet, error) {
	e, err := replica.Subtract(primary)
	if err != nil {
		return GTIDSet{}, fmt.Errorf("errant GTIDs: %w", err)
	}
	return e, nil
}
