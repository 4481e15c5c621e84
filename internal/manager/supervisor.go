package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/detect"
	"github.com/cloudmha/cloudmha/internal/failover"
	"github.com/cloudmha/cloudmha/internal/hooks"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/store"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// Options tune the daemon.
type Options struct {
	Deps Deps
	// IgnoreLastFailover is MHA's --ignore_last_failover.
	IgnoreLastFailover bool
	// BlockPeriod is MHA's --last_failover_minute (default 480 min): no
	// automatic failover that soon after the last one, unless acknowledged.
	BlockPeriod time.Duration
	// RefreshEvery is how often the whole topology is read again (default
	// 5 s): it keeps the primary's last known GTID set fresh, follows
	// switchovers made outside this manager, and fences an old primary
	// that comes back.
	RefreshEvery time.Duration
	// Policy tunes detection.
	Policy detect.Policy
}

// Run watches every cluster until ctx ends (SIGTERM: `cloudmha stop`). Each
// cluster has its own supervisor; one failing does not stop the others.
func Run(ctx context.Context, cfgs []*config.Config, o Options) error {
	if o.BlockPeriod <= 0 {
		o.BlockPeriod = 480 * time.Minute
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = 5 * time.Second
	}
	log := o.Deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var sups []*supervisor
	for _, cfg := range cfgs {
		c, err := OpenCluster(cfg, o.Deps)
		if err != nil {
			return err
		}
		defer c.Close()
		lock, err := store.TryLock(c.path(".manager.lock"))
		if err != nil {
			return fmt.Errorf("cluster %s: another manager watches it: %w", cfg.Name, err)
		}
		defer lock.Unlock()
		if mv := c.Mover(); mv != nil && mv.Kind() == "vip" && cfg.ShutdownScript == "" {
			c.log.Warn("the vip mover cannot take the VIP from a primary that is cut off the network; " +
				"without a shutdown_script (IPMI, cloud stop) such a primary keeps the VIP and can take writes when its link returns, " +
				"until this manager fences it. Configure shutdown_script or use a cloud address mover")
		}
		sups = append(sups, &supervisor{c: c, o: o, log: c.log, statusPath: store.StatusPath(cfg.ManagerWorkdir, cfg.Name)})
	}
	var wg sync.WaitGroup
	for _, s := range sups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	log.Info("manager started", "clusters", len(sups), "pid", os.Getpid())
	wg.Wait()
	for _, s := range sups {
		_ = os.Remove(s.statusPath)
	}
	log.Info("manager stopped")
	return nil
}

// supervisor watches one cluster.
type supervisor struct {
	c          *Cluster
	o          Options
	log        *slog.Logger
	statusPath string

	primary  config.Server
	lastGTID mysql.GTIDSet // the primary's last known GTID set
	// fence lists old primaries to demote if they come back writable.
	fence map[string]bool
	state store.State
}

func (s *supervisor) setStatus(st store.State) {
	if st != s.state {
		s.log.Info("status", "state", st.String(), "primary", s.primary.Name)
	}
	s.state = st
	primary := s.primary.Host()
	if err := store.WriteStatus(s.statusPath, store.Status{PID: os.Getpid(), State: st, Primary: primary}); err != nil {
		s.log.Error("write status", "err", err)
	}
}

func (s *supervisor) run(ctx context.Context) {
	s.fence = map[string]bool{}
	s.setStatus(store.InitializingMonitor)
	if rep, err := s.c.Resume(ctx); err != nil {
		s.log.Error("resuming the failover a previous manager left unfinished failed", "err", err)
		s.setStatus(store.FailoverError)
	} else if rep != nil {
		s.log.Warn("resumed an unfinished failover", "new_primary", rep.NewPrimary, "ok", rep.OK())
	}
	for ctx.Err() == nil {
		if err := s.watch(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("monitoring stopped; retrying", "err", err)
			s.sleep(ctx, s.interval())
		}
	}
}

func (s *supervisor) interval() time.Duration {
	if s.c.Cfg.PingInterval > 0 {
		return s.c.Cfg.PingInterval
	}
	return 3 * time.Second
}

func (s *supervisor) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// findPrimary picks the primary from a snapshot: the single server that
// replicates from nobody, or, when it cannot be read, the single server the
// reachable replicas replicate from.
func (s *supervisor) findPrimary(snap *topology.Snapshot) (config.Server, []config.Server, error) {
	var primary *topology.Node
	ps := snap.Primaries()
	if len(ps) > 1 && s.primary.Name != "" {
		// After a failover the old primary may come back not replicating:
		// the primary is the one this manager promoted.
		for _, p := range ps {
			if p.Server.Name == s.primary.Name {
				ps = []*topology.Node{p}
				break
			}
		}
	}
	if len(ps) == 1 {
		primary = ps[0]
	} else if len(ps) > 1 {
		return config.Server{}, nil, fmt.Errorf("%d servers replicate from nobody: cannot tell the primary", len(ps))
	} else {
		for _, n := range snap.Nodes {
			if src := snap.SourceOf(n); src != nil && src.Status() == nil {
				if primary != nil && primary != src {
					return config.Server{}, nil, errors.New("the replicas follow different unreachable sources")
				}
				primary = src
			}
		}
		if primary == nil {
			return config.Server{}, nil, errors.New("no primary found")
		}
	}
	var replicas []config.Server
	for _, n := range snap.Nodes {
		if n != primary {
			replicas = append(replicas, n.Server)
		}
	}
	return primary.Server, replicas, nil
}

// watch monitors the current primary until it fails over or the topology
// changes under it; it returns to have the caller start again.
func (s *supervisor) watch(ctx context.Context) error {
	snap := s.c.Snapshot(ctx)
	s.fenceReturned(ctx, snap)
	primary, replicas, err := s.findPrimary(snap)
	if err != nil {
		s.setStatus(store.PingFailed)
		return err
	}
	s.primary = primary
	s.remember(snap)
	if sc, ok := s.c.Mover().(address.StatusChecker); ok && s.c.Mover() != nil {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := sc.Status(sctx, target(primary))
		cancel()
		if err != nil {
			s.setStatus(store.ConfigError)
			return fmt.Errorf("address mover status check: %w", err)
		}
	}

	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	verdicts := make(chan detect.Verdict, 16)
	mon := detect.NewMonitor(detect.MonitorOptions{
		Config: s.c.Cfg, Primary: primary, Replicas: replicas, Policy: s.o.Policy,
		Dial: mysql.DialFunc(s.o.Deps.Dial), Logger: s.log,
		SecondaryCheck: s.secondaryCheck(primary),
	})
	monErr := make(chan error, 1)
	go func() { monErr <- mon.Run(mctx, verdicts) }()
	s.log.Info("monitoring primary", "primary", primary.Name, "addr", primary.Addr(), "replicas", len(replicas))

	var lastKind detect.Kind = -1
	for {
		// Re-read the topology every RefreshEvery, every second while an
		// old primary may come back and must be fenced at once.
		every := s.o.RefreshEvery
		if len(s.fence) > 0 && every > time.Second {
			every = time.Second
		}
		refresh := time.After(every)
		select {
		case <-ctx.Done():
			return nil
		case err := <-monErr:
			return fmt.Errorf("monitor: %w", err)
		case v := <-verdicts:
			prev := lastKind
			lastKind = v.Kind
			switch v.Kind {
			case detect.Healthy:
				s.setStatus(store.Running)
			case detect.Suspect:
				s.setStatus(store.PingFailing)
			case detect.UnreachablePrimary:
				if prev != detect.UnreachablePrimary {
					s.log.Warn("primary unreachable from the manager but not dead: no failover", "primary", primary.Name, "reason", v.Reason, "evidence", v.Evidence)
				}
				s.setStatus(store.PingFailing)
			case detect.DeadPrimary:
				s.log.Error("primary is dead", "primary", primary.Name, "reason", v.Reason, "evidence", v.Evidence, "since", v.Since)
				s.setStatus(store.PingFailed)
				if s.blocked() {
					continue // stays PING_FAILED / FAILOVER_ERROR until acknowledged
				}
				cancel()
				s.failover(ctx, primary)
				return nil
			}
		case <-refresh:
			snap := s.c.Snapshot(ctx)
			s.remember(snap)
			s.fenceReturned(ctx, snap)
			if p, _, err := s.findPrimary(snap); err == nil && p.Name != primary.Name {
				s.log.Warn("the primary changed outside this manager; following it", "old", primary.Name, "new", p.Name)
				return nil
			}
		}
	}
}

// remember keeps the primary's last known GTID set, which names what a
// failover could not recover.
func (s *supervisor) remember(snap *topology.Snapshot) {
	for _, n := range snap.Nodes {
		if n.Server.Name == s.primary.Name && n.Reachable() {
			s.lastGTID = n.Status().GTIDExecuted
		}
	}
}

// blocked applies anti-flapping (MHA's last_failover_minute).
func (s *supervisor) blocked() bool {
	if s.o.IgnoreLastFailover {
		return false
	}
	at, ok := store.LastFailover(s.c.CompletePath())
	if !ok || time.Since(at) > s.o.BlockPeriod {
		return false
	}
	if s.state != store.FailoverError {
		s.log.Error("failover refused: the last failover was too recent (anti-flapping); run `cloudmha ack` to allow it",
			"last_failover", at, "block_period", s.o.BlockPeriod, "file", s.c.CompletePath())
	}
	s.setStatus(store.FailoverError)
	return true
}

func (s *supervisor) failover(ctx context.Context, dead config.Server) {
	s.setStatus(store.FailoverRunning)
	start := time.Now()
	rep, err := s.c.Failover(ctx, failover.Options{Dead: dead.Name, DeadGTIDs: s.lastGTID}, true, nil)
	if err != nil {
		s.log.Error("failover failed", "dead", dead.Name, "err", err, "elapsed", time.Since(start))
		s.setStatus(store.FailoverError)
		return
	}
	s.fence[dead.Name] = true
	s.log.Info("failover complete", "old_primary", rep.OldPrimary, "new_primary", rep.NewPrimary,
		"elapsed", time.Since(start), "salvaged", rep.Salvaged, "lost", rep.LostText, "repointed", rep.Repointed, "failed", rep.Failed)
	if np, ok := ServerByName(s.c.Cfg, rep.NewPrimary); ok {
		s.primary = np
	}
}

// fenceReturned demotes an old primary that comes back writable after a
// failover (a link that returns, a frozen mysqld that resumes): read_only on,
// and its hold on the address released.
func (s *supervisor) fenceReturned(ctx context.Context, snap *topology.Snapshot) {
	for _, n := range snap.Nodes {
		if !s.fence[n.Server.Name] || n.Server.Name == s.primary.Name {
			continue
		}
		st := n.Status()
		if st == nil {
			continue
		}
		if !st.ReadOnly {
			s.log.Error("old primary came back writable: fencing it", "server", n.Server.Name)
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := s.c.ops.SetReadOnly(fctx, n.Server, true); err != nil {
				s.log.Error("fence returned primary: read_only", "server", n.Server.Name, "err", err)
			}
			if _, err := s.c.ops.KillClientConnections(fctx, n.Server); err != nil {
				s.log.Error("fence returned primary: kill connections", "server", n.Server.Name, "err", err)
			}
			if mv := s.c.Mover(); mv != nil {
				old := target(n.Server)
				old.SSHReachable = true
				if err := mv.Release(fctx, address.Change{Old: old, New: target(s.primary)}); err != nil {
					s.log.Error("fence returned primary: release address", "server", n.Server.Name, "err", err)
				}
			}
			cancel()
		}
		// Fenced (or found read-only): it is a stale old primary now; a DBA
		// rejoins it as a replica (it may hold transactions the new primary
		// lacks).
		if st.ReadOnly {
			delete(s.fence, n.Server.Name)
			s.log.Warn("old primary is read-only and detached; rejoin it as a replica after checking its GTIDs", "server", n.Server.Name)
		}
	}
}

func (s *supervisor) secondaryCheck(primary config.Server) func(ctx context.Context) (int, error) {
	script := s.c.Cfg.SecondaryCheckScript
	if script == "" {
		return nil
	}
	return func(ctx context.Context) (int, error) {
		v, err := s.c.run.SecondaryCheck(ctx, script, hostOf(primary), s.c.Cfg.PingType)
		if err != nil {
			return -1, err
		}
		return secondaryExit(v), nil
	}
}

func hostOf(s config.Server) hooks.Host { return hooks.HostFromServer(s) }

// secondaryExit turns the secondary check's verdict back into MHA's exit
// code, which is what detect.Analyze reasons about.
func secondaryExit(v hooks.SecondaryVerdict) int {
	switch v {
	case hooks.PrimaryUnreachable:
		return 0
	case hooks.NetworkProblem:
		return 2
	case hooks.PrimaryReachable:
		return 3
	}
	return -1
}

func target(s config.Server) address.Target {
	return address.Target{Name: s.Name, Hostname: s.Hostname, IP: s.Host(), Port: s.Port}
}
