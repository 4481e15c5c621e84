package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Server error numbers used by this package.
const (
	ErrTableAccessDenied = 1142 // ER_TABLEACCESS_DENIED_ERROR
	ErrAccessDenied      = 1045 // ER_ACCESS_DENIED_ERROR
	ErrUnknownSystemVar  = 1193 // ER_UNKNOWN_SYSTEM_VARIABLE
	ErrNonExistingGrant  = 1141 // ER_NONEXISTING_GRANT
	ErrSpecificAccess    = 1227 // ER_SPECIFIC_ACCESS_DENIED_ERROR
)

// ErrPermission is wrapped by UserHosts when the monitoring user may not read
// mysql.user.
var ErrPermission = errors.New("permission denied")

// Grants returns the SHOW GRANTS FOR 'user'@'host' lines.
func (i *Instance) Grants(ctx context.Context, user, host string) ([]string, error) {
	q := "SHOW GRANTS FOR " + QuoteString(user) + "@" + QuoteString(host)
	g, err := i.queryStrings(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: grants of %s@%s: %w", i.addr, QuoteString(user), QuoteString(host), err)
	}
	return g, nil
}

// CurrentGrants returns SHOW GRANTS for the connected user itself.
func (i *Instance) CurrentGrants(ctx context.Context) ([]string, error) {
	g, err := i.queryStrings(ctx, "SHOW GRANTS")
	if err != nil {
		return nil, fmt.Errorf("%s: own grants: %w", i.addr, err)
	}
	return g, nil
}

// UserHosts returns the host parts of every account named user, sorted. It
// needs SELECT on mysql.user; without it the error wraps ErrPermission.
func (i *Instance) UserHosts(ctx context.Context, user string) ([]string, error) {
	hosts, err := i.queryStrings(ctx, "SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host", user)
	if err != nil {
		if n := ErrorNumber(err); n == ErrTableAccessDenied || n == 1044 || n == ErrSpecificAccess {
			return nil, fmt.Errorf("%s: hosts of user %q: reading mysql.user needs SELECT on mysql.user: %w: %w",
				i.addr, user, ErrPermission, err)
		}
		return nil, fmt.Errorf("%s: hosts of user %q: %w", i.addr, user, err)
	}
	return hosts, nil
}

// queryStrings returns the first column of every row.
func (i *Instance) queryStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := i.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	vals := make([]any, len(cols))
	var s string
	vals[0] = &s
	for j := 1; j < len(cols); j++ {
		vals[j] = new(any)
	}
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// canonicalPrivilege upper-cases p, collapses spaces and maps MariaDB 10.5+
// spellings to the classic ones: REPLICATION REPLICA is REPLICATION SLAVE,
// BINLOG MONITOR is REPLICATION CLIENT, REPLICA MONITOR is SLAVE MONITOR.
func canonicalPrivilege(p string) string {
	p = strings.ToUpper(strings.Join(strings.Fields(p), " "))
	switch p {
	case "REPLICATION REPLICA":
		return "REPLICATION SLAVE"
	case "BINLOG MONITOR":
		return "REPLICATION CLIENT"
	case "REPLICA MONITOR":
		return "SLAVE MONITOR"
	case "ALL PRIVILEGES":
		return "ALL"
	}
	return p
}

// HasGlobalPrivilege reports whether the SHOW GRANTS lines grant priv on *.*,
// directly or through ALL [PRIVILEGES]. Privilege names compare
// case-insensitively, and MariaDB's newer spellings are equivalent to the old
// ones (REPLICATION REPLICA = REPLICATION SLAVE, BINLOG MONITOR = REPLICATION
// CLIENT, REPLICA MONITOR = SLAVE MONITOR); "GRANT OPTION" is matched by
// WITH GRANT OPTION. Privileges that come through roles are not seen (roles
// are out of scope: grant the monitoring and replication users directly).
func HasGlobalPrivilege(grants []string, priv string) bool {
	want := canonicalPrivilege(priv)
	for _, g := range grants {
		privs, on, ok := splitGrant(g)
		if !ok || on != "*.*" {
			continue
		}
		if want == "GRANT OPTION" && strings.Contains(strings.ToUpper(g), "WITH GRANT OPTION") {
			return true
		}
		for _, p := range privs {
			if c := canonicalPrivilege(p); c == want || c == "ALL" {
				return true
			}
		}
	}
	return false
}

// splitGrant splits "GRANT a, b (col), c ON db.tbl TO ..." into its privilege
// list and the object ("*.*", with identifier quotes removed). Role grants
// ("GRANT `r`@`%` TO ...") and PROXY grants report ok=false.
func splitGrant(g string) (privs []string, on string, ok bool) {
	s := strings.TrimSpace(g)
	if len(s) < 6 || !strings.EqualFold(s[:6], "GRANT ") {
		return nil, "", false
	}
	s = s[6:]
	// Find the top-level " ON " (not inside a column list or quotes).
	depth, quote := 0, byte(0)
	idx := -1
	for j := 0; j < len(s); j++ {
		c := s[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '`' || c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && (c == ' ' || c == '\t') && j+4 <= len(s) &&
			strings.EqualFold(s[j:j+4], " ON ") && idx < 0:
			idx = j
		}
	}
	if idx < 0 {
		return nil, "", false
	}
	rest := strings.TrimSpace(s[idx+4:])
	// Skip an optional object type (ON TABLE/FUNCTION/PROCEDURE x).
	obj, _, _ := strings.Cut(rest, " ")
	obj = strings.NewReplacer("`", "", `"`, "").Replace(obj)
	for _, p := range splitTopLevel(s[:idx]) {
		if p = strings.TrimSpace(p); p != "" {
			if k := strings.IndexByte(p, '('); k >= 0 { // column privileges
				p = strings.TrimSpace(p[:k])
			}
			privs = append(privs, p)
		}
	}
	return privs, obj, true
}

// splitTopLevel splits on commas outside parentheses.
func splitTopLevel(s string) []string {
	var out []string
	depth, startAt := 0, 0
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[startAt:j])
				startAt = j + 1
			}
		}
	}
	return append(out, s[startAt:])
}

// IsAliveError reports whether err is a server error that MHA treats as "the
// server is alive" although the connection was refused: 1040, 1042, 1043,
// 1044, 1045, 1129, 1130, 1203, 1226, 1251 and 1275.
//
// Those are: too many connections, bad host, bad handshake, access denied
// (database or user), host blocked or not privileged, per-user limits and
// authentication-mode mismatches.
func IsAliveError(err error) bool {
	switch ErrorNumber(err) {
	case 1040, 1042, 1043, 1044, 1045, 1129, 1130, 1203, 1226, 1251, 1275:
		return true
	}
	return false
}
