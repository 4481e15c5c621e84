// Package manager is cloudmha's daemon and the wiring of one cluster's
// parts: it watches each configured cluster (detect), fails over when the
// primary is dead (failover), keeps watching the new topology, and keeps
// MHA's status, journal, history and anti-flapping files in manager_workdir.
// The CLI's one-shot commands (switch, failover) use the same Cluster.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/address/movers"
	"github.com/cloudmha/cloudmha/internal/binlog"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/failover"
	"github.com/cloudmha/cloudmha/internal/hooks"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/remote"
	"github.com/cloudmha/cloudmha/internal/store"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// Deps is how a Cluster reaches the world. The zero value is production:
// direct connections, no logging.
type Deps struct {
	Logger *slog.Logger
	// Dial opens TCP connections for SQL, SSH and address checks; nil means
	// the standard dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// HookWrap prefixes hook script command lines (see hooks.Runner.Wrap).
	HookWrap []string
	// SnapshotBudget bounds one topology snapshot (default 3 s).
	SnapshotBudget time.Duration
	// StepTimeout bounds each failover step (default: the executor's).
	StepTimeout time.Duration
}

// Cluster is one configured cluster with everything needed to act on it.
type Cluster struct {
	Cfg   *config.Config
	log   *slog.Logger
	deps  Deps
	mover address.Mover
	ops   *failover.SQLOps
	run   hooks.Runner
	// runID is the correlation ID of the failover or switchover under way;
	// the cluster's logger adds it to every line (see runTag).
	runID *atomic.Pointer[string]
	// dataSize remembers each server's data size between reads.
	dataSize *topology.DataSizeCache
	// apiRec receives the cloud API requests of the mover, once the
	// manager has a recorder for the cluster (see instrument).
	apiRec *atomic.Pointer[apiRecorder]
}

// apiRecorder is where a cluster's cloud API requests are counted.
type apiRecorder struct {
	rec   Recorder
	mover string
}

// OpenCluster wires a cluster: the address mover named in the
// configuration (validated now, not at failover time), the SQL operations,
// the hook runner and the binlog salvager.
func OpenCluster(cfg *config.Config, d Deps) (*Cluster, error) {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	runID := new(atomic.Pointer[string])
	log = slog.New(newRunTag(log.Handler(), runID)).With("cluster", cfg.Name)
	if d.SnapshotBudget <= 0 {
		d.SnapshotBudget = 3 * time.Second
	}
	if err := os.MkdirAll(cfg.ManagerWorkdir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster %s: manager_workdir: %w", cfg.Name, err)
	}
	run := hooks.Runner{Logger: log, Wrap: d.HookWrap}
	apiRec := new(atomic.Pointer[apiRecorder])
	onAPI := func(api string, err error) {
		if r := apiRec.Load(); r != nil {
			r.rec.APICall(r.mover, api, err)
		}
	}
	mv, err := movers.New(cfg, movers.Options{Dial: remote.DialFunc(d.Dial), Logger: log, Runner: run, Observe: onAPI})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.Name, err)
	}
	return &Cluster{Cfg: cfg, log: log, deps: d, mover: mv, ops: failover.NewSQLOps(cfg, mysql.DialFunc(d.Dial)), run: run, runID: runID, apiRec: apiRec,
		dataSize: topology.NewDataSizeCache(topology.DefaultDataSizeEvery)}, nil
}

// beginRun names the run about to start (or returns the name of the one
// under way): from now on every line of the cluster's log carries it.
func (c *Cluster) beginRun() string {
	if id := c.runID.Load(); id != nil && *id != "" {
		return *id
	}
	id := failover.NewRunID(time.Now())
	c.runID.Store(&id)
	return id
}

// endRun stops tagging the log.
func (c *Cluster) endRun() { c.runID.Store(nil) }

// instrument makes the mover report its operations to rec.
func (c *Cluster) instrument(rec Recorder) {
	if c.mover != nil {
		c.apiRec.Store(&apiRecorder{rec: rec, mover: c.mover.Kind()})
		c.mover = instrumentedMover{Mover: c.mover, rec: rec}
	}
}

// Close releases connections.
func (c *Cluster) Close() { c.ops.Close() }

// Mover is the cluster's address mover (nil when none is configured).
func (c *Cluster) Mover() address.Mover { return c.mover }

// Snapshot reads every server of the cluster except those in skip, which
// are recorded as unreachable without being contacted: a failover must not
// spend its time budget waiting on the frozen primary it declared dead.
func (c *Cluster) Snapshot(ctx context.Context, skip ...string) *topology.Snapshot {
	var r topology.Reader = c.reader()
	if len(skip) > 0 {
		r = skipReader{r: r, skip: skip}
	}
	return topology.Take(ctx, c.Cfg, r, c.deps.SnapshotBudget)
}

// reader reads one server within the snapshot budget, without statistics.
func (c *Cluster) reader() topology.MySQLReader {
	return topology.MySQLReader{ConnectTimeout: time.Second, ReadTimeout: c.deps.SnapshotBudget, Dial: mysql.DialFunc(c.deps.Dial), SkipGrants: true}
}

// watchSnapshot is the supervisor's periodic read: the topology plus the
// statistics the metrics show (one SHOW BINARY LOGS more, the data size at
// most every 5 minutes). Failovers use Snapshot, which reads no statistics.
func (c *Cluster) watchSnapshot(ctx context.Context) *topology.Snapshot {
	r := c.reader()
	r.Stats, r.DataSize = true, c.dataSize
	return topology.Take(ctx, c.Cfg, r, c.deps.SnapshotBudget)
}

// skipReader answers "not read" for the servers in skip.
type skipReader struct {
	r    topology.Reader
	skip []string
}

func (s skipReader) Read(ctx context.Context, srv config.Server) (*topology.NodeState, error) {
	for _, n := range s.skip {
		if n == srv.Name {
			return nil, errors.New("declared dead: not read")
		}
	}
	return s.r.Read(ctx, srv)
}

func (c *Cluster) path(suffix string) string {
	return filepath.Join(c.Cfg.ManagerWorkdir, c.Cfg.Name+suffix)
}

// ChangeLockPath is the lock held while a topology change (failover or
// switchover) runs, by the manager or by an operator's command.
func (c *Cluster) ChangeLockPath() string { return c.path(".change.lock") }

// CompletePath is MHA's anti-flapping file.
func (c *Cluster) CompletePath() string {
	return store.FailoverCompletePath(c.Cfg.ManagerWorkdir, c.Cfg.Name)
}

func (c *Cluster) executor(j *store.Journal) *failover.Executor {
	e := &failover.Executor{
		Ops:          c.ops,
		Journal:      j,
		Logger:       c.log,
		StepTimeout:  c.deps.StepTimeout,
		Config:       c.Cfg,
		Hooks:        clusterHooks{c},
		Salvager:     salvager{&binlog.Salvager{Dial: remote.DialFunc(c.deps.Dial), Logger: c.log, MySQLDial: mysql.DialFunc(c.deps.Dial)}},
		HistoryPath:  store.HistoryPath(c.Cfg.ManagerWorkdir, c.Cfg.Name),
		CompletePath: c.CompletePath(),
	}
	if c.mover != nil {
		e.Mover = c.mover
	}
	return e
}

func (c *Cluster) openJournal() (*store.Journal, error) {
	j, err := store.OpenJournal(store.JournalPath(c.Cfg.ManagerWorkdir, c.Cfg.Name))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Cfg.Name, err)
	}
	return j, nil
}

// Confirm is asked before a plan runs; false cancels. nil means yes.
type Confirm func(plan string) bool

// ErrCancelled is returned when Confirm said no (or --dry-run).
var ErrCancelled = errors.New("cancelled: nothing was changed")

// Switchover plans and runs an online switch of the primary, holding the
// change lock.
func (c *Cluster) Switchover(ctx context.Context, o failover.SwitchOptions, confirm Confirm) (*failover.Report, error) {
	lock, err := store.TryLock(c.ChangeLockPath())
	if err != nil {
		return nil, fmt.Errorf("another topology change is running: %w", err)
	}
	defer lock.Unlock()
	if o.ID == "" {
		o.ID = c.beginRun()
		defer c.endRun()
	}
	snap := c.Snapshot(ctx)
	plan, err := failover.PlanSwitchover(snap, c.Cfg, o)
	if err != nil {
		return nil, fmt.Errorf("plan switchover: %w", err)
	}
	return c.execute("switchover", plan.String(), confirm, func(e *failover.Executor) (*failover.Report, error) {
		return e.Switchover(ctx, plan)
	})
}

// execute logs the plan, asks confirm, and runs it with a journal, keeping
// a report of the outcome.
func (c *Cluster) execute(kind, planText string, confirm Confirm, run func(*failover.Executor) (*failover.Report, error)) (*failover.Report, error) {
	c.log.Info(kind+" plan", "plan", planText)
	if confirm != nil && !confirm(planText) {
		return nil, ErrCancelled
	}
	j, err := c.openJournal()
	if err != nil {
		return nil, err
	}
	defer j.Close()
	rep, err := run(c.executor(j))
	c.writeReport(rep)
	return rep, err
}

// Failover plans and runs a failover of a dead primary, holding the change
// lock. confirmedDead says the detector has just judged o.Dead dead: it is
// then not read again (a frozen server would only cost time); otherwise a
// primary that still answers and is writable is refused.
func (c *Cluster) Failover(ctx context.Context, o failover.Options, confirmedDead bool, confirm Confirm) (*failover.Report, error) {
	lock, err := store.TryLock(c.ChangeLockPath())
	if err != nil {
		return nil, fmt.Errorf("another topology change is running: %w", err)
	}
	defer lock.Unlock()
	if o.ID == "" {
		o.ID = c.beginRun()
		defer c.endRun()
	}
	// Whether the dead host answers SSH decides salvage; find out while the
	// survivors are read, not after.
	sshProbe := make(chan failover.Tristate, 1)
	if o.DeadSSHReachable == failover.Unknown && o.Dead != "" {
		go func() { sshProbe <- c.sshReachable(ctx, o.Dead) }()
	} else {
		sshProbe <- o.DeadSSHReachable
	}
	var snap *topology.Snapshot
	if o.Dead != "" && confirmedDead {
		snap = c.Snapshot(ctx, o.Dead)
	} else {
		snap = c.Snapshot(ctx)
		if n := nodeByName(snap, o.Dead); o.Dead != "" && n != nil && n.Reachable() && n.Status().Replica == nil && !n.Status().ReadOnly {
			return nil, fmt.Errorf("%s answers and is writable: it is not dead; use a switchover instead", o.Dead)
		}
	}
	o.DeadSSHReachable = <-sshProbe
	plan, err := failover.PlanFailover(snap, c.Cfg, o)
	if err != nil {
		return nil, fmt.Errorf("plan failover: %w", err)
	}
	return c.execute("failover", plan.String(), confirm, func(e *failover.Executor) (*failover.Report, error) {
		return e.Run(ctx, plan)
	})
}

// Resume continues a failover that a previous manager left unfinished.
// It returns (nil, nil) when there is nothing to resume.
func (c *Cluster) Resume(ctx context.Context) (*failover.Report, error) {
	j, err := c.openJournal()
	if err != nil {
		return nil, err
	}
	defer j.Close()
	if _, ok := j.Unfinished(); !ok {
		return nil, nil
	}
	lock, err := store.AcquireLock(ctx, c.ChangeLockPath())
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	rep, err := failover.Resume(ctx, c.executor(j), j)
	if errors.Is(err, failover.ErrNothingToResume) {
		return nil, nil
	}
	c.writeReport(rep)
	return rep, err
}

// sshReachable tells whether the server's SSH port accepts a connection
// within half a second (a host on the LAN answers a SYN in milliseconds):
// enough to decide whether binlog salvage is worth trying, without an SSH
// handshake on the hot path.
func (c *Cluster) sshReachable(ctx context.Context, name string) failover.Tristate {
	for _, s := range c.Cfg.Servers {
		if s.Name != name {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		dial := c.deps.Dial
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		conn, err := dial(ctx, "tcp", s.SSHAddr())
		if err != nil {
			return failover.No
		}
		_ = conn.Close()
		return failover.Yes
	}
	return failover.Unknown
}

// writeReport keeps a human-readable report of every run in the workdir, as
// MHA leaves its failover report in the manager log.
func (c *Cluster) writeReport(rep *failover.Report) {
	if rep == nil {
		return
	}
	name := c.path(fmt.Sprintf(".%s.%s.report", rep.Kind, rep.Started.UTC().Format("20060102T150405Z")))
	if err := os.WriteFile(name, []byte(rep.Text()), 0o644); err != nil {
		c.log.Error("write report", "path", name, "err", err)
		return
	}
	c.log.Info("report written", "path", name)
}

func nodeByName(snap *topology.Snapshot, name string) *topology.Node {
	for _, n := range snap.Nodes {
		if n.Server.Name == name || n.Server.Hostname == name || n.Server.IP == name {
			return n
		}
	}
	return nil
}

// ServerByName finds a server by section name, hostname or IP.
func ServerByName(cfg *config.Config, name string) (config.Server, bool) {
	for _, s := range cfg.Servers {
		if s.Name == name || s.Hostname == name || s.IP == name {
			return s, true
		}
	}
	return config.Server{}, false
}

// clusterHooks runs MHA's shutdown_script and report_script for the executor.
type clusterHooks struct{ c *Cluster }

func (h clusterHooks) Shutdown(ctx context.Context, old config.Server, sshReachable bool) error {
	if h.c.Cfg.ShutdownScript == "" {
		return nil
	}
	cmd := "stopssh"
	if !sshReachable {
		cmd = "stop"
	}
	out, err := h.c.run.Shutdown(ctx, h.c.Cfg.ShutdownScript, cmd, hooks.HostFromServer(old))
	if err != nil {
		return err
	}
	h.c.log.Info("shutdown_script done", "server", old.Name, "outcome", out.String())
	return nil
}

func (h clusterHooks) Report(ctx context.Context, r *failover.Report) error {
	if h.c.Cfg.ReportScript == "" {
		return nil
	}
	host := func(name string) string {
		if s, ok := ServerByName(h.c.Cfg, name); ok {
			return s.Hostname
		}
		return name
	}
	var slaves []string
	for _, n := range r.Repointed {
		slaves = append(slaves, host(n))
	}
	subject := fmt.Sprintf("%s %s: %s -> %s", r.Kind, h.c.Cfg.Name, host(r.OldPrimary), host(r.NewPrimary))
	if !r.OK() {
		subject += " failed"
	}
	conf := strings.Join(h.c.Cfg.Files, ",")
	rep := hooks.Report{OrigMasterHost: host(r.OldPrimary), Conf: conf, Subject: subject, Body: r.Text()}
	if r.OK() {
		rep.NewMasterHost, rep.NewSlaveHosts = host(r.NewPrimary), slaves
	}
	return h.c.run.SendReport(ctx, h.c.Cfg.ReportScript, rep)
}

// salvager adapts binlog.Salvager to the executor's interface.
type salvager struct{ s *binlog.Salvager }

func (s salvager) Salvage(ctx context.Context, dead, candidate config.Server, have mysql.GTIDSet) (failover.SalvageResult, error) {
	r, err := s.s.Salvage(ctx, dead, candidate, have)
	return failover.SalvageResult{Applied: r.Applied, AppliedGTIDs: r.AppliedGTIDs}, err
}
