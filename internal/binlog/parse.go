package binlog

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

// GTID is one global transaction identifier, of either kind.
type GTID struct {
	Kind mysql.Kind
	// MariaDB: domain-server-seq.
	Domain, Server uint32
	Seq            uint64
	// MySQL: source UUID and transaction number (Seq).
	UUID string
}

// String formats g as the server does: "0-1-101" or "uuid:101".
func (g GTID) String() string {
	switch g.Kind {
	case mysql.MariaDB:
		return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq)
	case mysql.MySQL:
		return fmt.Sprintf("%s:%d", g.UUID, g.Seq)
	}
	return ""
}

// IsZero reports whether g is unset.
func (g GTID) IsZero() bool { return g.Kind == "" }

// Set returns g as a one-element GTID set.
func (g GTID) Set() mysql.GTIDSet { return mysql.MustParseGTIDSet(g.Kind, g.String()) }

// ParseGTID parses "0-1-101" (MariaDB) or "uuid:101" (MySQL).
func ParseGTID(s string) (GTID, error) {
	s = strings.TrimSpace(s)
	if u, n, ok := strings.Cut(s, ":"); ok {
		seq, err := strconv.ParseUint(n, 10, 64)
		if err != nil || len(u) != 36 || seq == 0 {
			return GTID{}, fmt.Errorf("parse GTID %q: not uuid:number", s)
		}
		return GTID{Kind: mysql.MySQL, UUID: strings.ToLower(u), Seq: seq}, nil
	}
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return GTID{}, fmt.Errorf("parse GTID %q: not domain-server-seq", s)
	}
	d, err1 := strconv.ParseUint(parts[0], 10, 32)
	sv, err2 := strconv.ParseUint(parts[1], 10, 32)
	q, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return GTID{}, fmt.Errorf("parse GTID %q: not domain-server-seq", s)
	}
	return GTID{Kind: mysql.MariaDB, Domain: uint32(d), Server: uint32(sv), Seq: q}, nil
}

// Unit is a run of consecutive statements of decoded binlog output: either
// one transaction (GTID set) or the session statements between
// transactions (format description events, SET statements of the decoder's
// preamble and epilogue).
type Unit struct {
	// GTID is the transaction's GTID; zero for statements outside any
	// transaction.
	GTID GTID
	// Statements are the statements, in order, without delimiters.
	Statements []string
	// Complete is true for a transaction whose end was seen (COMMIT or
	// XID, ROLLBACK, XA PREPARE, or the one event of a standalone
	// transaction such as DDL). A crash can leave the last transaction of a
	// binlog without its end: it must not be applied. Units outside
	// transactions are always complete.
	Complete bool
	// Line is the first line of the unit in the decoded text.
	Line int

	standalone, bodySeen, ended, queryEvent bool
	pendingMySQLGTID                        bool
}

// IsTransaction reports whether u is a transaction.
func (u *Unit) IsTransaction() bool { return !u.GTID.IsZero() || u.pendingMySQLGTID }

// Events that the parser recognises in mysqlbinlog/mariadb-binlog comments.
var (
	// "#261121 18:55:17 server id 1  end_log_pos 427 CRC32 0xcac2d2ac \tGTID 0-1-4 trans"
	headerRE = regexp.MustCompile(`^#\d{6}\s+\d{1,2}:\d{2}:\d{2}\s+server id\s+\d+\s+end_log_pos\s+\d+(?:\s+CRC32\s+0x[0-9a-fA-F]+)?\s+(.*)$`)
	// MariaDB GTID event: "GTID 0-1-4 trans", "GTID 0-1-1 ddl", "GTID 0-1-9 cid=12 trans".
	mariaGTIDRE = regexp.MustCompile(`^GTID\s+(\d+-\d+-\d+)(.*)$`)
	// MySQL GTID event: "GTID\tlast_committed=0\tsequence_number=1…" and
	// "Anonymous_GTID\t…".
	mysqlGTIDRE = regexp.MustCompile(`^(Anonymous_)?GTID\s+last_committed=`)
	// SET @@SESSION.GTID_NEXT= 'uuid:n'
	gtidNextRE = regexp.MustCompile(`(?i)^SET\s+@@SESSION\.GTID_NEXT\s*=\s*'([^']*)'`)
	// A statement that opens a multi-statement transaction.
	beginRE = regexp.MustCompile(`(?i)^(START\s+TRANSACTION|BEGIN|XA\s+START)\b`)
	// A statement that ends one.
	endRE = regexp.MustCompile(`(?i)^(COMMIT|ROLLBACK|XA\s+PREPARE)\b`)
	// Session-only settings the decoder prints before the events of a
	// transaction: SET @@session.x, SET TIMESTAMP, SET @@SESSION.GTID_NEXT,
	// possibly inside an executable comment, and the client's charset
	// command /*!\C cs */.
	sessionSetRE = regexp.MustCompile(`(?is)^(/\*M?!\d*\s*)?SET\s+(@@session\.|@@SESSION\.|TIMESTAMP\s*=|@@[a-z_]+\s*=|INSERT_ID\s*=|LAST_INSERT_ID\s*=|@[a-z_` + "`" + `])|^/\*!\\C\s`)
)

// Parse groups the items of decoded binlog output into units.
// kind is the server family the output comes from (it decides which GTID
// notation to expect; "" accepts both).
//
// A transaction begins at a GTID event header comment. A transaction that
// began with START TRANSACTION / BEGIN ends at COMMIT (the XID event),
// ROLLBACK or XA PREPARE; any other (standalone: DDL, statement events
// outside BEGIN) ends with its first Query event. A transaction still open
// when the next GTID event or "# End of log file" comes, or when the output
// ends, is incomplete.
func Parse(items []Item) ([]Unit, error) {
	var units []Unit
	var cur *Unit // open transaction
	closeCur := func() {
		if cur == nil {
			return
		}
		cur.Complete = cur.ended || (cur.standalone && cur.queryEvent)
		units = append(units, *cur)
		cur = nil
	}
	appendOutside := func(it Item) {
		if n := len(units); n > 0 && !units[n-1].IsTransaction() {
			units[n-1].Statements = append(units[n-1].Statements, it.Text)
			return
		}
		units = append(units, Unit{Statements: []string{it.Text}, Complete: true, Line: it.Line})
	}
	for _, it := range items {
		switch it.Kind {
		case Comment:
			if strings.HasPrefix(it.Text, "# End of log file") {
				closeCur()
				continue
			}
			m := headerRE.FindStringSubmatch(it.Text)
			if m == nil {
				continue
			}
			ev := strings.TrimSpace(m[1])
			if g := mariaGTIDRE.FindStringSubmatch(ev); g != nil {
				closeCur()
				id, err := ParseGTID(g[1])
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", it.Line, err)
				}
				cur = &Unit{GTID: id, Line: it.Line, standalone: !strings.Contains(g[2], "trans")}
				continue
			}
			if g := mysqlGTIDRE.FindStringSubmatch(ev); g != nil {
				closeCur()
				if g[1] != "" {
					return nil, fmt.Errorf("line %d: anonymous transaction (gtid_mode is not ON): cannot salvage by GTID", it.Line)
				}
				cur = &Unit{Line: it.Line, pendingMySQLGTID: true}
				continue
			}
			if cur == nil {
				continue
			}
			if cur.standalone && cur.queryEvent {
				// The event after a standalone transaction's Query event
				// belongs to what follows.
				closeCur()
				continue
			}
			if strings.HasPrefix(ev, "Query") {
				cur.queryEvent = true
			}
		case Delimiter:
			// The decoder prints "DELIMITER ;" at the end of each file and
			// "DELIMITER /*!*/;" at the start: no effect on grouping.
		case Statement:
			if cur == nil {
				appendOutside(it)
				continue
			}
			if !it.Terminated {
				// Output cut inside a statement: the transaction cannot be
				// complete.
				closeCur()
				continue
			}
			cur.Statements = append(cur.Statements, it.Text)
			text := stripDelimComment(it.Text)
			if cur.pendingMySQLGTID {
				if g := gtidNextRE.FindStringSubmatch(text); g != nil {
					id, err := ParseGTID(g[1])
					if err != nil {
						return nil, fmt.Errorf("line %d: GTID_NEXT: %w", it.Line, err)
					}
					cur.GTID, cur.pendingMySQLGTID = id, false
					continue
				}
			}
			if isSessionSet(text) {
				continue
			}
			if !cur.bodySeen {
				cur.bodySeen = true
				if beginRE.MatchString(text) {
					cur.standalone = false
					continue
				}
				if cur.GTID.Kind == mysql.MySQL || cur.pendingMySQLGTID {
					// MySQL prints no "trans" flag: a transaction without
					// BEGIN is a standalone statement (DDL).
					cur.standalone = true
				}
			}
			if !cur.standalone && endRE.MatchString(text) {
				cur.ended = true
				closeCur()
			}
		}
	}
	closeCur()
	for i := range units {
		if units[i].pendingMySQLGTID {
			return nil, fmt.Errorf("line %d: GTID event without SET @@SESSION.GTID_NEXT", units[i].Line)
		}
	}
	return units, nil
}

// stripDelimComment removes what the decoder puts around statements that
// do not matter to classification: surrounding space and a trailing /*!*/
// left when the delimiter was ";".
func stripDelimComment(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, "/*!*/")
	return strings.TrimSpace(s)
}

// isSessionSet reports whether a statement only changes session state.
func isSessionSet(s string) bool { return sessionSetRE.MatchString(s) }

// gtidSessionRE matches the statements that set a transaction's GTID; they
// are not replayed for a skipped transaction.
var gtidSessionRE = regexp.MustCompile(`(?i)@@session\.(gtid_domain_id|server_id|gtid_seq_no|skip_parallel_replication|gtid_next)\b`)

// useRE matches "use `db`".
var useRE = regexp.MustCompile("(?i)^use\\s+`")
