package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// errBadSlave is ER_BAD_SLAVE: the server has no replication configured.
const errBadSlave = 1200

// SQLOps implements Ops over internal/mysql. It keeps one small connection
// pool per server, opened on first use with the credentials of Config (looked
// up by section name, so plans read back from the journal, which hold no
// secrets, work too). Close releases the pools.
type SQLOps struct {
	Config *config.Config
	// Dial opens connections (tests dial from a network namespace); nil
	// means the standard dialer.
	Dial           mysql.DialFunc
	ConnectTimeout time.Duration // default 1 s
	ReadTimeout    time.Duration // default 5 s
	// PollInterval paces the few waits that have no server-side wait
	// function (replication threads starting); default 10 ms.
	PollInterval time.Duration
	// HeartbeatPeriod and ConnectRetry of repointed replicas (default 1 s).
	HeartbeatPeriod, ConnectRetry time.Duration

	mu    sync.Mutex
	conns map[string]*mysql.Instance
}

// NewSQLOps returns an SQLOps for cfg.
func NewSQLOps(cfg *config.Config, dial mysql.DialFunc) *SQLOps {
	return &SQLOps{Config: cfg, Dial: dial}
}

// Close closes every pool.
func (o *SQLOps) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for k, in := range o.conns {
		errs = append(errs, in.Close())
		delete(o.conns, k)
	}
	return errors.Join(errs...)
}

// full returns the configuration entry of s (with secrets).
func (o *SQLOps) full(s config.Server) config.Server {
	if o.Config != nil {
		for _, c := range o.Config.Servers {
			if c.Name == s.Name {
				return c
			}
		}
	}
	return s
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// inst returns the pool of s, opening it when needed.
func (o *SQLOps) inst(ctx context.Context, s config.Server) (*mysql.Instance, error) {
	s = o.full(s)
	key := s.Name + "@" + s.Addr()
	o.mu.Lock()
	if in, ok := o.conns[key]; ok {
		o.mu.Unlock()
		return in, nil
	}
	o.mu.Unlock()
	in, err := mysql.Open(ctx, mysql.ConnConfig{
		Addr: s.Addr(), User: s.User, Password: s.Password.Value(),
		ConnectTimeout: orDur(o.ConnectTimeout, time.Second),
		ReadTimeout:    orDur(o.ReadTimeout, 5*time.Second),
		WriteTimeout:   orDur(o.ReadTimeout, 5*time.Second),
		Dial:           o.Dial, MaxOpenConns: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.Name, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conns == nil {
		o.conns = map[string]*mysql.Instance{}
	}
	if prev, ok := o.conns[key]; ok {
		_ = in.Close()
		return prev, nil
	}
	o.conns[key] = in
	return in, nil
}

// GTIDExecuted implements Ops.
func (o *SQLOps) GTIDExecuted(ctx context.Context, s config.Server) (mysql.GTIDSet, error) {
	in, err := o.inst(ctx, s)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	return in.GTIDExecuted(ctx)
}

// SetReadOnly implements Ops.
func (o *SQLOps) SetReadOnly(ctx context.Context, s config.Server, on bool) error {
	in, err := o.inst(ctx, s)
	if err != nil {
		return err
	}
	for _, q := range in.Flavor().SetReadOnlySQL(on) {
		if err := in.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// KillClientConnections implements Ops.
func (o *SQLOps) KillClientConnections(ctx context.Context, s config.Server, except ...string) (int, error) {
	in, err := o.inst(ctx, s)
	if err != nil {
		return 0, err
	}
	return in.KillClientConnections(ctx, except...)
}

// exec runs q, tolerating "not configured as a replica" when tolerant.
func (o *SQLOps) exec(ctx context.Context, s config.Server, q func(mysql.Flavor) string, tolerant bool) error {
	in, err := o.inst(ctx, s)
	if err != nil {
		return err
	}
	st := q(in.Flavor())
	if err := in.Exec(ctx, st); err != nil {
		if tolerant && mysql.ErrorNumber(err) == errBadSlave {
			return nil
		}
		return fmt.Errorf("%s: %w", st, err)
	}
	return nil
}

// StopReplicaIO implements Ops.
func (o *SQLOps) StopReplicaIO(ctx context.Context, s config.Server) error {
	return o.exec(ctx, s, mysql.Flavor.StopReplicaIOThreadSQL, true)
}

// StopReplica implements Ops.
func (o *SQLOps) StopReplica(ctx context.Context, s config.Server) error {
	return o.exec(ctx, s, mysql.Flavor.StopReplicaSQL, true)
}

// StartReplica implements Ops.
func (o *SQLOps) StartReplica(ctx context.Context, s config.Server) error {
	return o.exec(ctx, s, mysql.Flavor.StartReplicaSQL, false)
}

// ResetReplicaAll implements Ops.
func (o *SQLOps) ResetReplicaAll(ctx context.Context, s config.Server) error {
	return o.exec(ctx, s, mysql.Flavor.ResetReplicaAllSQL, true)
}

// WaitRelayApplied implements Ops: with GTIDs it waits (server side) for the
// retrieved position; otherwise it polls the coordinates.
func (o *SQLOps) WaitRelayApplied(ctx context.Context, s config.Server) error {
	in, err := o.inst(ctx, s)
	if err != nil {
		return err
	}
	rs, err := in.ReplicaStatus(ctx)
	if err != nil {
		return err
	}
	if rs == nil {
		return nil
	}
	if rs.LastSQLErrno != 0 {
		return fmt.Errorf("%s: SQL thread error %d: %s", s.Name, rs.LastSQLErrno, rs.LastSQLError)
	}
	if !rs.SQLRunning {
		if err := in.Exec(ctx, in.Flavor().StartReplicaSQLThreadSQL()); err != nil {
			return fmt.Errorf("start the SQL thread: %w", err)
		}
	}
	if rs.RetrievedGTIDSet != "" {
		set, err := mysql.ParseGTIDSet(in.Flavor().Kind, rs.RetrievedGTIDSet)
		if err == nil {
			return o.waitGTID(ctx, in, set)
		}
	}
	for {
		rs, err := in.ReplicaStatus(ctx)
		if err != nil {
			return err
		}
		if rs == nil || (rs.RelaySourceLogFile == rs.SourceLogFile && rs.ExecSourceLogPos >= rs.ReadSourceLogPos) {
			return nil
		}
		if rs.LastSQLErrno != 0 {
			return fmt.Errorf("%s: SQL thread error %d: %s", s.Name, rs.LastSQLErrno, rs.LastSQLError)
		}
		if err := o.sleep(ctx); err != nil {
			return fmt.Errorf("SQL thread at %s, IO thread at %s: %w", rs.ExecPosition(), rs.ReadPosition(), err)
		}
	}
}

func (o *SQLOps) sleep(ctx context.Context) error {
	t := time.NewTimer(orDur(o.PollInterval, 10*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ChangeSource implements Ops. On MariaDB gtid_slave_pos is first aligned
// with gtid_current_pos, so that a former primary resumes after its own
// transactions.
func (o *SQLOps) ChangeSource(ctx context.Context, s config.Server, src config.Server) error {
	in, err := o.inst(ctx, s)
	if err != nil {
		return err
	}
	full, fsrc := o.full(s), o.full(src)
	user, pw := full.ReplUser, full.ReplPassword
	if user == "" {
		user, pw = fsrc.ReplUser, fsrc.ReplPassword
	}
	if user == "" {
		user, pw = full.User, full.Password
	}
	if err := in.AlignSlavePos(ctx); err != nil {
		return err
	}
	return in.ChangeSource(ctx, mysql.SourceOptions{
		Host: fsrc.Host(), Port: fsrc.Port, User: user, Password: pw.Value(), AutoPosition: true,
		HeartbeatPeriod: orDur(o.HeartbeatPeriod, time.Second), ConnectRetry: orDur(o.ConnectRetry, time.Second),
	})
}

// WaitGTID implements Ops with the server's own wait function, in slices of
// at most a second so that no read times out.
func (o *SQLOps) WaitGTID(ctx context.Context, s config.Server, set mysql.GTIDSet) error {
	in, err := o.inst(ctx, s)
	if err != nil {
		return err
	}
	return o.waitGTID(ctx, in, set)
}

func (o *SQLOps) waitGTID(ctx context.Context, in *mysql.Instance, set mysql.GTIDSet) error {
	for {
		slice := time.Second
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < slice {
				slice = left
			}
		}
		if slice <= 0 {
			return fmt.Errorf("wait for %s: %w", set, context.DeadlineExceeded)
		}
		ok, err := in.WaitGTID(ctx, set, slice)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for %s: %w", set, err)
		}
		// A stopped SQL thread never gets there: say so instead of waiting.
		if rs, err := in.ReplicaStatus(ctx); err == nil && rs != nil && rs.LastSQLErrno != 0 {
			return fmt.Errorf("wait for %s: SQL thread error %d: %s", set, rs.LastSQLErrno, rs.LastSQLError)
		}
	}
}

// WaitReplicating implements Ops.
func (o *SQLOps) WaitReplicating(ctx context.Context, s config.Server) error {
	in, err := o.inst(ctx, s)
	if err != nil {
		return err
	}
	for {
		rs, err := in.ReplicaStatus(ctx)
		if err != nil {
			return err
		}
		if rs == nil {
			return fmt.Errorf("%s has no replication configured", s.Name)
		}
		if rs.Running() {
			return nil
		}
		if rs.LastSQLErrno != 0 {
			return fmt.Errorf("SQL thread error %d: %s", rs.LastSQLErrno, rs.LastSQLError)
		}
		// An IO thread that stopped with an error (1236: the source lacks
		// the GTIDs the replica asks for, typically an errant transaction)
		// does not recover by waiting.
		if rs.IORunning == mysql.IONo && rs.LastIOErrno != 0 {
			return fmt.Errorf("IO thread stopped with error %d: %s", rs.LastIOErrno, rs.LastIOError)
		}
		if err := o.sleep(ctx); err != nil {
			last := ""
			if rs.LastIOErrno != 0 {
				last = fmt.Sprintf(", last IO error %d: %s", rs.LastIOErrno, rs.LastIOError)
			}
			return fmt.Errorf("IO thread %s, SQL thread running %v%s: %w", rs.IORunning, rs.SQLRunning, last, err)
		}
	}
}

// SetSemiSync implements Ops.
func (o *SQLOps) SetSemiSync(ctx context.Context, s config.Server, source, replica bool) error {
	in, err := o.inst(ctx, s)
	if err != nil {
		return err
	}
	return in.SetSemiSync(ctx, source, replica)
}

// WritesRunning implements Ops: client statements other than reads running
// for longer than longerThan.
func (o *SQLOps) WritesRunning(ctx context.Context, s config.Server, longerThan time.Duration) ([]string, error) {
	in, err := o.inst(ctx, s)
	if err != nil {
		return nil, err
	}
	ps, err := in.ProcessList(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if p.IsReplication() || p.IsSystem() || p.Command != "Query" || p.Time < longerThan {
			continue
		}
		q := strings.TrimSpace(p.Info)
		head := strings.ToUpper(strings.SplitN(q+" ", " ", 2)[0])
		if head == "SELECT" || head == "SHOW" || head == "SET" || head == "" {
			continue
		}
		if len(q) > 80 {
			q = q[:80] + "…"
		}
		out = append(out, fmt.Sprintf("id %d user %s for %s: %s", p.ID, p.User, p.Time.Round(time.Millisecond), q))
	}
	return out, nil
}
