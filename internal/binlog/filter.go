package binlog

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

// Batch is a run of statements to execute on the candidate: a transaction
// to apply (GTID set) or session statements (GTID zero).
type Batch struct {
	GTID       GTID
	Statements []string
	// Optional statements run before Statements whose failure is not an
	// error (the "use db" of a skipped transaction).
	Optional []string
}

// Plan is what to execute on the candidate, and what was left out.
type Plan struct {
	Batches []Batch
	// Apply lists the transactions to apply, in order.
	Apply []GTID
	// Skipped lists complete transactions the candidate already has.
	Skipped []GTID
	// Incomplete lists transactions whose end is missing from the binlog
	// (written partially when the server died): never applied.
	Incomplete []GTID
}

// Coverage answers "does the candidate already have this transaction?".
//
// For MySQL it is set membership in the candidate's gtid_executed. For
// MariaDB it compares per replication domain, as the server does when a
// replica connects with its GTID position: a transaction d-s-n is covered
// when the candidate has any GTID of domain d with seq_no >= n. With
// gtid_strict_mode (which MariaDB failover needs) seq_nos grow
// monotonically inside a domain, so this is exact; comparing per
// (domain, server) would wrongly treat old transactions as missing on a
// candidate whose binlog state was reset (provisioned from a backup).
type Coverage struct {
	kind mysql.Kind
	set  mysql.GTIDSet
	max  map[uint32]uint64 // MariaDB: highest seq_no per domain
}

// NewCoverage builds the coverage of a candidate's GTID set (MySQL
// gtid_executed; MariaDB gtid_binlog_state, gtid_current_pos or their
// union).
func NewCoverage(have mysql.GTIDSet) (Coverage, error) {
	c := Coverage{kind: have.Kind(), set: have, max: map[uint32]uint64{}}
	if have.Kind() != mysql.MariaDB {
		return c, nil
	}
	entries, err := mariaEntries(have.String())
	if err != nil {
		return c, err
	}
	for _, e := range entries {
		if e.Seq > c.max[e.Domain] {
			c.max[e.Domain] = e.Seq
		}
	}
	return c, nil
}

// Covers reports whether the candidate has g.
func (c Coverage) Covers(g GTID) bool {
	switch g.Kind {
	case mysql.MariaDB:
		if c.kind == mysql.MySQL {
			return false
		}
		seq, ok := c.max[g.Domain]
		return ok && seq >= g.Seq
	case mysql.MySQL:
		if c.kind != mysql.MySQL {
			return false
		}
		return c.set.Contains(g.Set())
	}
	return false
}

// StartPosition is the MariaDB GTID position to give mariadb-binlog
// --start-position: for every domain, the highest seq_no the candidate has
// ("" when it has none).
func (c Coverage) StartPosition() string {
	if c.kind != mysql.MariaDB || len(c.max) == 0 {
		return ""
	}
	entries, _ := mariaEntries(c.set.String())
	best := map[uint32]GTID{}
	for _, e := range entries {
		if b, ok := best[e.Domain]; !ok || e.Seq > b.Seq {
			best[e.Domain] = e
		}
	}
	parts := make([]string, 0, len(best))
	for _, e := range entries { // entries are ordered by domain
		if b, ok := best[e.Domain]; ok && b == e {
			parts = append(parts, e.String())
			delete(best, e.Domain)
		}
	}
	return strings.Join(parts, ",")
}

// CoversList reports whether every entry of a MariaDB Gtid_list (the binlog
// state at the start of a binlog file, "0-1-3,1-2-9") is covered, i.e.
// whether the candidate has every transaction written before that file.
func (c Coverage) CoversList(list string) (bool, error) {
	entries, err := mariaEntries(list)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !c.Covers(e) {
			return false, nil
		}
	}
	return true, nil
}

func mariaEntries(s string) ([]GTID, error) {
	var out []GTID
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		g, err := ParseGTID(p)
		if err != nil || g.Kind != mysql.MariaDB {
			return nil, fmt.Errorf("MariaDB GTID list %q: bad entry %q", s, p)
		}
		out = append(out, g)
	}
	return out, nil
}

// charsetCmdRE matches the client command /*!\C utf8mb4 */ that the
// decoder prints before a statement in another character set.
var charsetCmdRE = regexp.MustCompile(`^/\*!\\C\s+([A-Za-z0-9_]+)\s*\*/$`)

// prepare turns a decoded statement into what the server accepts: the
// client-side /*!\C cs */ becomes SET NAMES cs (what the client does).
func prepare(stmt string) string {
	if m := charsetCmdRE.FindStringSubmatch(strings.TrimSpace(stmt)); m != nil {
		return "SET NAMES " + m[1]
	}
	return stmt
}

// Filter decides, unit by unit, what to run on the candidate: session
// statements always; complete transactions the candidate lacks, each
// preceded by statements that pin its original GTID; for a skipped
// transaction only its session settings (the decoder prints a setting only
// when it changes, so a later transaction relies on them), never its GTID
// settings or its changes. Incomplete transactions are dropped.
func Filter(units []Unit, cov Coverage) (Plan, error) {
	var p Plan
	var pendingUse string
	seen := map[string]bool{}
	for _, u := range units {
		if !u.IsTransaction() {
			b := Batch{}
			for _, s := range u.Statements {
				b.Statements = append(b.Statements, prepare(s))
			}
			p.Batches = append(p.Batches, b)
			continue
		}
		key := u.GTID.String()
		if !u.Complete {
			p.Incomplete = append(p.Incomplete, u.GTID)
			continue
		}
		if seen[key] {
			return p, fmt.Errorf("transaction %s appears twice in the decoded binlog", key)
		}
		seen[key] = true
		if cov.Covers(u.GTID) {
			p.Skipped = append(p.Skipped, u.GTID)
			b := Batch{}
			for _, s := range u.Statements {
				t := stripDelimComment(s)
				switch {
				case useRE.MatchString(t):
					pendingUse = s
				case isSessionSet(t) && !gtidSessionRE.MatchString(t):
					b.Statements = append(b.Statements, prepare(s))
				}
			}
			if len(b.Statements) > 0 {
				p.Batches = append(p.Batches, b)
			}
			continue
		}
		b := Batch{GTID: u.GTID}
		if pendingUse != "" {
			b.Optional = []string{pendingUse}
			pendingUse = ""
		}
		if u.GTID.Kind == mysql.MariaDB {
			// The decoder prints domain and server only when they change;
			// the transaction they changed for may have been skipped.
			b.Statements = append(b.Statements, "SET @@session.gtid_domain_id="+strconv.FormatUint(uint64(u.GTID.Domain), 10)+
				", @@session.server_id="+strconv.FormatUint(uint64(u.GTID.Server), 10)+
				", @@session.gtid_seq_no="+strconv.FormatUint(u.GTID.Seq, 10))
		}
		for _, s := range u.Statements {
			b.Statements = append(b.Statements, prepare(s))
		}
		p.Batches = append(p.Batches, b)
		p.Apply = append(p.Apply, u.GTID)
	}
	return p, nil
}
