// Package binlog salvages a dead primary's binary log: when mysqld is dead
// but its host still answers SSH, it copies the transactions that no
// survivor received from the dead primary's binlog files to the failover
// candidate, keeping their original GTIDs, and reports exactly which GTIDs
// were applied.
//
// One SSH connection runs one command: a POSIX sh script (Script) that finds
// the binlog index in master_binlog_dir, reads the Gtid_list at the start of
// the files from the newest backwards until the candidate has everything
// before a file, and decodes from that file to the end with mariadb-binlog,
// which itself skips to the candidate's GTID position (MariaDB 10.8+).
// Whatever the decoder prints is then split into statements (Split), grouped
// into transactions (Parse), filtered against the candidate's GTID state
// again (Filter: a transaction the candidate has is never applied twice; a
// transaction whose end is missing — the last one of a crashed server — is
// dropped and reported) and executed on one candidate connection, statement
// by statement, so that the session state the decoder sets
// (@@session.gtid_domain_id, server_id, gtid_seq_no) gives every applied
// transaction its original GTID. Finally the candidate's gtid_binlog_state is
// checked to hold every applied GTID.
//
// Row data and passwords never reach the log: only counts, files and GTIDs.
package binlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// DefaultTimeout bounds one Salvage when Salvager.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// Errors that Salvage wraps.
var (
	// ErrUnsupported: the candidate's flavor is not supported (MySQL, for
	// now) or the binlog is not GTID-based.
	ErrUnsupported = errors.New("binlog salvage not supported")
	// ErrGap: the dead primary's oldest binlog starts after a transaction
	// the candidate lacks (older binlogs were purged); applying later
	// transactions would leave a hole, so nothing is applied.
	ErrGap = errors.New("binlogs of the dead primary do not reach back to the candidate's position")
	// ErrNoBinlog: the candidate runs without log_bin, so it cannot
	// record salvaged GTIDs (nor serve as a primary for the other
	// replicas).
	ErrNoBinlog = errors.New("candidate has log_bin off")
	// ErrVerify: after applying, the candidate's GTID state lacks a GTID
	// that was applied.
	ErrVerify = errors.New("salvaged GTIDs missing on the candidate after apply")
	// ErrRemote: the remote side could not list or decode the binlogs.
	ErrRemote = errors.New("reading the binlogs on the dead host failed")
)

// Salvager copies missing transactions from a dead primary's binlog to a
// failover candidate. Its zero value works with the standard dialers; it
// holds no state between calls.
type Salvager struct {
	// Dial opens the SSH TCP connection to the dead host; nil = net.Dialer.
	Dial remote.DialFunc
	// Logger receives progress (counts, files, GTIDs); nil discards it.
	Logger *slog.Logger
	// Timeout bounds the whole salvage (SSH, decode, apply, verify);
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// MySQLDial opens the connection to the candidate; nil = net.Dialer.
	MySQLDial mysql.DialFunc
}

// Result says what a salvage did.
type Result struct {
	// Applied is the number of transactions applied to the candidate, and
	// AppliedGTIDs their GTIDs as a set. For MariaDB the set keeps, per
	// domain and server, the highest seq_no (see mysql.GTIDSet); GTIDs lists
	// every applied GTID in order.
	Applied      int
	AppliedGTIDs mysql.GTIDSet
	GTIDs        []string
	// Skipped counts complete transactions in the decoded range that the
	// candidate already had.
	Skipped int
	// Incomplete lists the GTIDs of transactions that were only partly
	// written when the primary died (no COMMIT/XID): never applied. A client
	// cannot have seen them acknowledged.
	Incomplete []string
	// Files are the decoded binlog files on the dead host, oldest first;
	// Bytes is the size of the decoded text received.
	Files []string
	Bytes int64
	// Tool is the decoder used on the dead host (mariadb-binlog).
	Tool string
	// SSHRoundTrips counts SSH connections plus commands (2 when all went
	// well: one connection, one command).
	SSHRoundTrips int
	// RemoteElapsed is the time spent on SSH (connect, list, decode and
	// transfer); Elapsed the whole salvage.
	RemoteElapsed time.Duration
	Elapsed       time.Duration
}

// Salvage applies to candidate the transactions of dead's binary log that
// candidate lacks. have is the candidate's GTID set as the caller knows it
// (MariaDB gtid_binlog_state or MySQL gtid_executed); the candidate's own
// current state is read too and united with it, so a stale have cannot make
// a transaction run twice.
//
// The candidate's replication threads must be stopped. Its read_only may be
// ON when the configured user has READ_ONLY ADMIN (MariaDB; SUPER on MariaDB
// before 11.0) or SUPER/CONNECTION_ADMIN with super_read_only OFF (MySQL):
// failover salvages before it promotes. The user also needs the privileges
// to run BINLOG statements (BINLOG REPLAY on MariaDB 10.5.2+) and to set
// session server_id, gtid_domain_id and gtid_seq_no (SUPER).
//
// On error the Result still says what was applied before the error.
func (s *Salvager) Salvage(ctx context.Context, dead config.Server, candidate config.Server, have mysql.GTIDSet) (res Result, err error) {
	start := time.Now()
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("dead", dead.Name, "candidate", candidate.Name)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() { res.Elapsed = time.Since(start) }()

	// The candidate first: its flavor and current state decide what to ask
	// the dead host for.
	inst, err := mysql.Open(ctx, mysql.ConnConfig{
		Addr:         candidate.Addr(),
		User:         candidate.User,
		Password:     candidate.Password.Value(),
		Dial:         s.MySQLDial,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		MaxOpenConns: 1,
	})
	if err != nil {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, err)
	}
	defer func() { _ = inst.Close() }()
	if !inst.Flavor().IsMariaDB() {
		return res, fmt.Errorf("salvage to %s (%s): %w: only MariaDB binlogs can be salvaged so far", candidate.Name, inst.Flavor(), ErrUnsupported)
	}
	if !have.IsEmpty() && have.Kind() != mysql.MariaDB {
		return res, fmt.Errorf("salvage to %s: have is a %s GTID set, the candidate runs MariaDB: %w", candidate.Name, have.Kind(), mysql.ErrGTIDKindMismatch)
	}
	sess, err := inst.Session(ctx)
	if err != nil {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, err)
	}
	defer func() { _ = sess.Close() }()

	logBin, err := sess.QueryString(ctx, "SELECT @@GLOBAL.log_bin")
	if err != nil {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, err)
	}
	if logBin != "1" {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, ErrNoBinlog)
	}
	state, err := s.candidateState(ctx, sess)
	if err != nil {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, err)
	}
	known, err := state.Union(have)
	if err != nil {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, err)
	}
	cov, err := NewCoverage(known)
	if err != nil {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, err)
	}
	startPos := cov.StartPosition()
	log.Info("binlog salvage: reading the dead primary's binlog", "ssh", dead.SSHAddr(), "candidate_gtids", known.String(), "start_position", startPos)

	// The dead host: one connection, one command.
	remoteStart := time.Now()
	out, trips, err := s.runRemote(ctx, dead, startPos)
	res.SSHRoundTrips = trips
	res.RemoteElapsed = time.Since(remoteStart)
	if err != nil {
		return res, fmt.Errorf("salvage from %s: %w", dead.Name, err)
	}
	listing, text, err := ParseOutput(out)
	if err != nil {
		return res, fmt.Errorf("salvage from %s: %w: %w", dead.Name, ErrRemote, err)
	}
	res.Tool, res.Files, res.Bytes = listing.Tool, listing.Decoded, int64(len(text))
	if listing.Error != "" {
		return res, fmt.Errorf("salvage from %s: %w: %s", dead.Name, ErrRemote, listing.Error)
	}
	if listing.ExitCode != 0 {
		return res, fmt.Errorf("salvage from %s: %w: %s exited with %d: %s", dead.Name, ErrRemote, listing.Tool, listing.ExitCode, strings.Join(listing.Stderr, "; "))
	}
	log.Info("binlog salvage: decoded", "tool", listing.Tool, "gtid_positioning", listing.GTIDMode, "index", listing.Index,
		"files", listing.Decoded, "bytes", res.Bytes, "ssh_round_trips", trips, "ssh_elapsed", res.RemoteElapsed)
	for _, m := range listing.Stderr {
		// "Event truncated" is what a crash mid-write leaves; the
		// transaction it belongs to is reported as incomplete below.
		lvl := slog.LevelDebug
		if strings.HasPrefix(m, "ERROR") {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "binlog salvage: decoder message", "message", m)
	}
	if !listing.StartCovered {
		oldest := FileInfo{}
		if n := len(listing.Examined); n > 0 {
			oldest = listing.Examined[n-1]
		}
		return res, fmt.Errorf("salvage from %s: %w: oldest binlog %s starts after %s, candidate has %s",
			dead.Name, ErrGap, oldest.Path, oldest.GTIDList, known.String())
	}

	units, err := Parse(Split(string(text)))
	if err != nil {
		return res, fmt.Errorf("salvage from %s: decoded binlog: %w", dead.Name, err)
	}
	plan, err := Filter(units, cov)
	if err != nil {
		return res, fmt.Errorf("salvage from %s: %w", dead.Name, err)
	}
	res.Skipped = len(plan.Skipped)
	for _, g := range plan.Incomplete {
		res.Incomplete = append(res.Incomplete, g.String())
	}
	if len(plan.Incomplete) > 0 {
		log.Warn("binlog salvage: dropping transactions without their end (partly written when the primary died)", "gtids", res.Incomplete)
	}

	err = s.apply(ctx, sess, plan, &res)
	if err != nil {
		return res, fmt.Errorf("salvage to %s: %w", candidate.Name, err)
	}
	if res.Applied > 0 {
		after, err := s.candidateState(ctx, sess)
		if err != nil {
			return res, fmt.Errorf("salvage to %s: verify: %w", candidate.Name, err)
		}
		// Exact check, per domain and server: a transaction applied
		// under the wrong server_id would show up as another GTID.
		var missing []string
		for _, g := range res.GTIDs {
			if !after.Contains(mysql.MustParseGTIDSet(mysql.MariaDB, g)) {
				missing = append(missing, g)
			}
		}
		if len(missing) > 0 {
			return res, fmt.Errorf("salvage to %s: %w: %s (candidate has %s)", candidate.Name, ErrVerify, strings.Join(missing, ","), after)
		}
	}
	log.Info("binlog salvage: done", "applied", res.Applied, "applied_gtids", res.AppliedGTIDs.String(),
		"skipped", res.Skipped, "incomplete", len(res.Incomplete), "files", len(res.Files), "bytes", res.Bytes,
		"ssh_round_trips", res.SSHRoundTrips, "elapsed", time.Since(start))
	return res, nil
}

// candidateState reads the candidate's MariaDB GTID state: gtid_binlog_state
// (per domain and server) united with gtid_slave_pos (what replication
// applied, per domain).
func (s *Salvager) candidateState(ctx context.Context, sess *mysql.Session) (mysql.GTIDSet, error) {
	bs, err := sess.QueryString(ctx, "SELECT @@GLOBAL.gtid_binlog_state")
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	sp, err := sess.QueryString(ctx, "SELECT @@GLOBAL.gtid_slave_pos")
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	a, err := mysql.ParseGTIDSet(mysql.MariaDB, bs)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	b, err := mysql.ParseGTIDSet(mysql.MariaDB, sp)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	return a.Union(b)
}

// runRemote connects to the dead host and runs the salvage script. It
// returns the script's output and the number of SSH round trips used
// (connections plus commands).
func (s *Salvager) runRemote(ctx context.Context, dead config.Server, startPos string) ([]byte, int, error) {
	opts, err := remote.ParseSSHOptions(dead.SSHOptions)
	if err != nil {
		return nil, 0, err
	}
	addr := dead.SSHAddr()
	if opts.Port != 0 {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = net.JoinHostPort(host, strconv.Itoa(opts.Port))
		}
	}
	dirs := dead.MasterBinlogDir
	if len(dirs) == 0 {
		dirs = config.DefaultMasterBinlogDir()
	}
	workdir := dead.RemoteWorkdir
	if workdir == "" {
		workdir = config.DefaultRemoteWorkdir
	}
	c, err := remote.Dial(ctx, remote.Target{Addr: addr, User: dead.SSHUser, Options: opts, Timeout: dead.SSHConnectionTimeout, Dial: s.Dial})
	if err != nil {
		return nil, 1, err
	}
	defer func() { _ = c.Close() }()
	cmd := Script(dirs, startPos, workdir)
	out, err := c.Run(ctx, cmd)
	if err != nil {
		// remote.Run quotes the command in its error: keep the message
		// short, the script is not news.
		return out, 2, &scriptError{msg: strings.ReplaceAll(err.Error(), strconv.Quote(cmd), "<salvage script>"), err: err}
	}
	return out, 2, nil
}

type scriptError struct {
	msg string
	err error
}

func (e *scriptError) Error() string { return e.msg }
func (e *scriptError) Unwrap() error { return e.err }

// apply runs the plan on the candidate session and fills res.
func (s *Salvager) apply(ctx context.Context, sess *mysql.Session, plan Plan, res *Result) error {
	for _, b := range plan.Batches {
		for _, q := range b.Optional {
			// A "use db" kept from a skipped transaction: the database may
			// be gone; the next statement will tell if it mattered.
			_ = sess.Exec(ctx, q)
		}
		for i, q := range b.Statements {
			if err := sess.Exec(ctx, q); err != nil {
				if b.GTID.IsZero() {
					return fmt.Errorf("session statement %d of a non-transaction block: %w%s", i+1, err, hint(err))
				}
				_ = sess.Exec(ctx, "ROLLBACK")
				return fmt.Errorf("apply transaction %s (statement %d of %d): %w%s", b.GTID, i+1, len(b.Statements), err, hint(err))
			}
		}
		if !b.GTID.IsZero() {
			res.Applied++
			res.GTIDs = append(res.GTIDs, b.GTID.String())
			u, err := res.AppliedGTIDs.Union(b.GTID.Set())
			if err != nil {
				return err
			}
			res.AppliedGTIDs = u
		}
	}
	return nil
}

// hint explains the server errors that salvage runs into for a reason.
func hint(err error) string {
	switch mysql.ErrorNumber(err) {
	case 1290:
		return " (the candidate is read-only and the user lacks READ_ONLY ADMIN/SUPER: grant it, or salvage after read_only=OFF)"
	case mysql.ErrSpecificAccess, 1045, 1142:
		return " (the user needs SUPER or BINLOG REPLAY to replay binlog events and set session server_id/gtid_seq_no)"
	case 1950:
		return " (gtid_strict_mode: the GTID is out of order on the candidate: it has diverged from the dead primary)"
	}
	return ""
}
