package mysql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the server family: MySQL (including Percona Server) or MariaDB.
type Kind string

// Supported server families.
const (
	MySQL   Kind = "mysql"
	MariaDB Kind = "mariadb"
)

// String returns the product name of the kind ("MySQL", "MariaDB").
func (k Kind) String() string {
	switch k {
	case MySQL:
		return "MySQL"
	case MariaDB:
		return "MariaDB"
	default:
		return string(k)
	}
}

// Version is a server's numeric major.minor.patch version.
type Version struct{ Major, Minor, Patch int }

// AtLeast reports whether v >= major.minor.patch.
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

// String formats v as "8.0.36".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Flavor is a server's kind and version. Its methods choose the statements and
// names that are right for that server; they are pure and need no connection.
type Flavor struct {
	Kind    Kind
	Version Version
	Raw     string // @@version as the server reported it
}

// ErrUnsupportedVersion is wrapped by ParseFlavor for servers older than
// MySQL 5.7 or MariaDB 10.2.
var ErrUnsupportedVersion = errors.New("unsupported server version")

// ParseFlavor detects the flavor from @@version and @@version_comment.
//
// It understands "8.0.36", "8.4.0", "5.7.44-log", "10.11.6-MariaDB-0+deb12u1",
// "11.4.2-MariaDB" and the "5.5.5-10.11.6-MariaDB" form that MariaDB sends in
// its handshake to old clients. The server is MariaDB when either string
// mentions MariaDB; anything else (Percona Server included) is MySQL. MySQL
// older than 5.7 and MariaDB older than 10.2 are rejected with an error
// wrapping ErrUnsupportedVersion: they lack the GTID and read-only
// behaviour cloudmha relies on.
func ParseFlavor(version, versionComment string) (Flavor, error) {
	raw := strings.TrimSpace(version)
	f := Flavor{Kind: MySQL, Raw: raw}
	if strings.Contains(strings.ToLower(raw), "mariadb") ||
		strings.Contains(strings.ToLower(versionComment), "mariadb") {
		f.Kind = MariaDB
	}
	s := raw
	if f.Kind == MariaDB && strings.HasPrefix(s, "5.5.5-") {
		s = strings.TrimPrefix(s, "5.5.5-")
	}
	v, err := parseVersion(s)
	if err != nil {
		return Flavor{}, fmt.Errorf("parse server version %q: %w", raw, err)
	}
	f.Version = v
	switch {
	case f.Kind == MySQL && !v.AtLeast(5, 7, 0):
		return Flavor{}, fmt.Errorf("%s: MySQL older than 5.7: %w", raw, ErrUnsupportedVersion)
	case f.Kind == MariaDB && !v.AtLeast(10, 2, 0):
		return Flavor{}, fmt.Errorf("%s: MariaDB older than 10.2: %w", raw, ErrUnsupportedVersion)
	}
	return f, nil
}

// parseVersion reads the leading "major.minor[.patch]" of s.
func parseVersion(s string) (Version, error) {
	end := 0
	for end < len(s) && (s[end] == '.' || (s[end] >= '0' && s[end] <= '9')) {
		end++
	}
	parts := strings.Split(strings.Trim(s[:end], "."), ".")
	if len(parts) < 2 || parts[0] == "" {
		return Version{}, errors.New("want major.minor[.patch]")
	}
	var nums [3]int
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return Version{}, fmt.Errorf("version component %q: %w", parts[i], err)
		}
		nums[i] = n
	}
	return Version{nums[0], nums[1], nums[2]}, nil
}

// String formats the flavor as "MariaDB 10.11.6" or "MySQL 8.0.36".
func (f Flavor) String() string { return f.Kind.String() + " " + f.Version.String() }

// IsMySQL reports whether the server is MySQL (or Percona Server).
func (f Flavor) IsMySQL() bool { return f.Kind == MySQL }

// IsMariaDB reports whether the server is MariaDB.
func (f Flavor) IsMariaDB() bool { return f.Kind == MariaDB }

// mysqlReplicaWords reports whether this is a MySQL that has the REPLICA
// spelling of the replication statements (8.0.22+).
func (f Flavor) mysqlReplicaWords() bool { return f.Kind == MySQL && f.Version.AtLeast(8, 0, 22) }

// replicaWord is "REPLICA" where the server has it for START/STOP/RESET/SHOW,
// otherwise "SLAVE". MariaDB accepts REPLICA from 10.5.1 but SLAVE works on
// every supported version, so MariaDB always gets SLAVE.
func (f Flavor) replicaWord() string {
	if f.mysqlReplicaWords() {
		return "REPLICA"
	}
	return "SLAVE"
}

// ShowReplicaStatusSQL is SHOW REPLICA STATUS on MySQL 8.0.22+ and SHOW SLAVE
// STATUS elsewhere. MariaDB 10.5.1+ accepts SHOW REPLICA STATUS too, with the
// same (Master_/Slave_) column names; SHOW SLAVE STATUS works on all of them.
// Instance.ReplicaStatus on MariaDB runs SHOW ALL SLAVES STATUS instead (see
// there), because only that form has Gtid_Slave_Pos and Slave_heartbeat_period.
func (f Flavor) ShowReplicaStatusSQL() string { return "SHOW " + f.replicaWord() + " STATUS" }

// ShowBinlogStatusSQL is SHOW BINARY LOG STATUS on MySQL 8.2+ (SHOW MASTER
// STATUS was removed in 8.4) and SHOW MASTER STATUS elsewhere. MariaDB has
// SHOW BINLOG STATUS only from 10.5.2, while SHOW MASTER STATUS works on
// every MariaDB version, so MariaDB gets SHOW MASTER STATUS.
func (f Flavor) ShowBinlogStatusSQL() string {
	if f.Kind == MySQL && f.Version.AtLeast(8, 2, 0) {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

// StartReplicaSQL starts both replication threads.
func (f Flavor) StartReplicaSQL() string { return "START " + f.replicaWord() }

// StopReplicaSQL stops both replication threads.
func (f Flavor) StopReplicaSQL() string { return "STOP " + f.replicaWord() }

// StopReplicaIOThreadSQL stops only the receiver (IO) thread.
func (f Flavor) StopReplicaIOThreadSQL() string { return "STOP " + f.replicaWord() + " IO_THREAD" }

// StartReplicaIOThreadSQL starts only the receiver (IO) thread.
func (f Flavor) StartReplicaIOThreadSQL() string { return "START " + f.replicaWord() + " IO_THREAD" }

// StopReplicaSQLThreadSQL stops only the applier (SQL) thread.
func (f Flavor) StopReplicaSQLThreadSQL() string { return "STOP " + f.replicaWord() + " SQL_THREAD" }

// StartReplicaSQLThreadSQL starts only the applier (SQL) thread.
func (f Flavor) StartReplicaSQLThreadSQL() string {
	return "START " + f.replicaWord() + " SQL_THREAD"
}

// ResetReplicaAllSQL forgets the replication source entirely (the replica
// threads must be stopped first).
func (f Flavor) ResetReplicaAllSQL() string { return "RESET " + f.replicaWord() + " ALL" }

// HasSuperReadOnly reports whether the server has super_read_only (MySQL
// 5.7.8+; MariaDB has none).
func (f Flavor) HasSuperReadOnly() bool { return f.Kind == MySQL && f.Version.AtLeast(5, 7, 8) }

// SetReadOnlySQL returns the statements that make the server read-only (on)
// or writable (!on), in the order they must run: read_only before
// super_read_only when turning on, super_read_only before read_only when
// turning off (read_only=OFF fails while super_read_only is ON).
func (f Flavor) SetReadOnlySQL(on bool) []string {
	if !f.HasSuperReadOnly() {
		if on {
			return []string{"SET GLOBAL read_only = ON"}
		}
		return []string{"SET GLOBAL read_only = OFF"}
	}
	if on {
		return []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}
	}
	return []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
}

// SourceOptions says where a replica should replicate from.
type SourceOptions struct {
	Host     string
	Port     int
	User     string
	Password string // never appears in errors
	// AutoPosition selects GTID positioning: MySQL SOURCE_AUTO_POSITION=1,
	// MariaDB MASTER_USE_GTID=slave_pos. When false, File and Pos are required.
	AutoPosition bool
	// HeartbeatPeriod is optional (0 leaves the server's value); resolution is
	// one millisecond.
	HeartbeatPeriod time.Duration
	// ConnectRetry is optional (0 leaves the server's value); rounded up to
	// whole seconds.
	ConnectRetry time.Duration
	File         string // binlog file, when !AutoPosition
	Pos          uint64 // binlog position (>= 4), when !AutoPosition
}

// maxHeartbeat is the largest heartbeat period MySQL and MariaDB accept.
const maxHeartbeat = 4294967 * time.Second

// ChangeSourceSQL builds the statement that points a replica at o.
//
// MySQL 8.0.23+ gets CHANGE REPLICATION SOURCE TO with SOURCE_* options; older
// MySQL gets CHANGE MASTER TO with MASTER_* options (MASTER_AUTO_POSITION);
// MariaDB gets CHANGE MASTER TO with MASTER_USE_GTID=slave_pos (or no, for
// file/position replication). String literals are quoted for the default
// sql_mode: the server must not run with NO_BACKSLASH_ESCAPES. Errors never
// contain the password.
func (f Flavor) ChangeSourceSQL(o SourceOptions) (string, error) {
	if err := validateHost(o.Host); err != nil {
		return "", err
	}
	if o.Port < 1 || o.Port > 65535 {
		return "", fmt.Errorf("change source: port %d out of range 1-65535", o.Port)
	}
	if o.User == "" {
		return "", errors.New("change source: empty replication user")
	}
	if o.HeartbeatPeriod < 0 || o.HeartbeatPeriod > maxHeartbeat ||
		(o.HeartbeatPeriod > 0 && o.HeartbeatPeriod < time.Millisecond) {
		return "", fmt.Errorf("change source: heartbeat period %s out of range 1ms-%s", o.HeartbeatPeriod, maxHeartbeat)
	}
	if o.ConnectRetry < 0 || o.ConnectRetry > 365*24*time.Hour {
		return "", fmt.Errorf("change source: connect retry %s out of range", o.ConnectRetry)
	}
	if !o.AutoPosition {
		if o.File == "" {
			return "", errors.New("change source: binlog file required without auto-position")
		}
		if o.Pos < 4 {
			return "", fmt.Errorf("change source: binlog position %d < 4", o.Pos)
		}
	}

	stmt, p := "CHANGE MASTER TO ", "MASTER_"
	if f.Kind == MySQL && f.Version.AtLeast(8, 0, 23) {
		stmt, p = "CHANGE REPLICATION SOURCE TO ", "SOURCE_"
	}
	opts := []string{
		p + "HOST=" + QuoteString(o.Host),
		p + "PORT=" + strconv.Itoa(o.Port),
		p + "USER=" + QuoteString(o.User),
		p + "PASSWORD=" + QuoteString(o.Password),
	}
	if o.ConnectRetry > 0 {
		secs := int64(math.Ceil(o.ConnectRetry.Seconds()))
		opts = append(opts, p+"CONNECT_RETRY="+strconv.FormatInt(secs, 10))
	}
	if o.HeartbeatPeriod > 0 {
		ms := o.HeartbeatPeriod.Round(time.Millisecond)
		opts = append(opts, p+"HEARTBEAT_PERIOD="+strconv.FormatFloat(ms.Seconds(), 'f', -1, 64))
	}
	switch {
	case f.Kind == MariaDB && o.AutoPosition:
		opts = append(opts, "MASTER_USE_GTID=slave_pos")
	case f.Kind == MariaDB:
		opts = append(opts, "MASTER_USE_GTID=no",
			"MASTER_LOG_FILE="+QuoteString(o.File),
			"MASTER_LOG_POS="+strconv.FormatUint(o.Pos, 10))
	case o.AutoPosition:
		opts = append(opts, p+"AUTO_POSITION=1")
	default:
		opts = append(opts, p+"AUTO_POSITION=0",
			p+"LOG_FILE="+QuoteString(o.File),
			p+"LOG_POS="+strconv.FormatUint(o.Pos, 10))
	}
	return stmt + strings.Join(opts, ", "), nil
}

// validateHost accepts host names, IPv4 and IPv6 literals (without brackets)
// up to 255 characters.
func validateHost(h string) error {
	if h == "" {
		return errors.New("change source: empty host")
	}
	if len(h) > 255 {
		return fmt.Errorf("change source: host name longer than 255 characters")
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == '_', r == ':', r == '%':
		default:
			return fmt.Errorf("change source: invalid character %q in host %q", r, h)
		}
	}
	return nil
}

// QuoteString returns s as a single-quoted SQL string literal, escaping
// backslash, quote and the control characters the server treats specially.
// It assumes the server's sql_mode lacks NO_BACKSLASH_ESCAPES (the default).
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`''`) // valid with and without NO_BACKSLASH_ESCAPES
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// SemiSyncNames are the semi-synchronous replication variable and plugin
// names of one flavor. Status variable names are the names SHOW GLOBAL
// STATUS prints (capitalised).
type SemiSyncNames struct {
	SourcePlugin, ReplicaPlugin   string // plugin names; "" when built in (MariaDB 10.3.3+)
	SourceLibrary, ReplicaLibrary string // plugin shared libraries; "" when built in
	SourceEnabled                 string // rpl_semi_sync_{source,master}_enabled
	ReplicaEnabled                string // rpl_semi_sync_{replica,slave}_enabled
	SourceTimeout                 string // milliseconds
	SourceWaitPoint               string // AFTER_SYNC | AFTER_COMMIT
	SourceStatus                  string // Rpl_semi_sync_{source,master}_status
	ReplicaStatus                 string // Rpl_semi_sync_{replica,slave}_status
	SourceClients                 string // Rpl_semi_sync_{source,master}_clients
}

// SemiSyncVariableNames returns the names to use when configuring semi-sync:
// MySQL 8.0.26+ has the new rpl_semi_sync_source/replica plugins, older MySQL
// and MariaDB the master/slave names. A MySQL 8.0.26+ may still run the old
// plugins, so readers (Instance.Status) accept both spellings.
func (f Flavor) SemiSyncVariableNames() SemiSyncNames {
	src, rep := "master", "slave"
	if f.Kind == MySQL && f.Version.AtLeast(8, 0, 26) {
		src, rep = "source", "replica"
	}
	n := SemiSyncNames{
		SourceEnabled:   "rpl_semi_sync_" + src + "_enabled",
		ReplicaEnabled:  "rpl_semi_sync_" + rep + "_enabled",
		SourceTimeout:   "rpl_semi_sync_" + src + "_timeout",
		SourceWaitPoint: "rpl_semi_sync_" + src + "_wait_point",
		SourceStatus:    "Rpl_semi_sync_" + src + "_status",
		ReplicaStatus:   "Rpl_semi_sync_" + rep + "_status",
		SourceClients:   "Rpl_semi_sync_" + src + "_clients",
	}
	if f.Kind == MySQL || !f.Version.AtLeast(10, 3, 3) {
		n.SourcePlugin, n.ReplicaPlugin = "rpl_semi_sync_"+src, "rpl_semi_sync_"+rep
		n.SourceLibrary, n.ReplicaLibrary = "semisync_"+src+".so", "semisync_"+rep+".so"
	}
	return n
}

// ChangeSource runs the flavor's ChangeSourceSQL for o. The replica threads
// must be stopped. Errors never contain the password, even when the server
// echoes part of the statement.
func (i *Instance) ChangeSource(ctx context.Context, o SourceOptions) error {
	q, err := i.flavor.ChangeSourceSQL(o)
	if err != nil {
		return fmt.Errorf("%s: %w", i.addr, err)
	}
	if _, err := i.db.ExecContext(ctx, q); err != nil {
		if o.Password != "" {
			err = redact(redact(err, QuoteString(o.Password)), o.Password)
		}
		return fmt.Errorf("%s: change source to %s:%d: %w", i.addr, o.Host, o.Port, err)
	}
	return nil
}
