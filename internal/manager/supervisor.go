package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/detect"
	"github.com/cloudmha/cloudmha/internal/failover"
	"github.com/cloudmha/cloudmha/internal/hooks"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/notify"
	"github.com/cloudmha/cloudmha/internal/remote"
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
	// Recorder, when set, returns the metrics recorder of a cluster.
	Recorder func(cluster string) Recorder
	// NetworkProbeEvery is how often each replica's host measures its
	// round trip to the primary over SSH (default 15 s; negative: never).
	NetworkProbeEvery time.Duration
}

// Run watches every cluster until ctx ends (SIGTERM: `cloudmha stop`). Each
// cluster has its own supervisor; one failing does not stop the others.
func Run(ctx context.Context, cfgs []*config.Config, o Options) error {
	m, err := New(cfgs, o)
	if err != nil {
		return err
	}
	return m.Run(ctx)
}

// supervisor watches one cluster.
type supervisor struct {
	c          *Cluster
	o          Options
	log        *slog.Logger
	w          *watched
	statusPath string
	// kick asks the watch loop for a topology refresh now (after an
	// operator's action).
	kick chan struct{}

	primary  config.Server
	lastGTID mysql.GTIDSet // the primary's last known GTID set
	// fence lists old primaries to demote if they come back writable.
	fence map[string]bool
	state store.State
}

// poke asks for a topology refresh; it never blocks.
func (s *supervisor) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *supervisor) setStatus(st store.State) {
	if st != s.state {
		s.log.Info("status", "state", st.String(), "primary", s.primary.Name)
	}
	s.state = st
	s.w.setState(st)
	primary := s.primary.Host()
	if err := store.WriteStatus(s.statusPath, store.Status{PID: os.Getpid(), State: st, Primary: primary}); err != nil {
		s.log.Error("write status", "err", err)
	}
}

func (s *supervisor) run(ctx context.Context) {
	s.fence = map[string]bool{}
	s.setStatus(store.InitializingMonitor)
	if s.o.NetworkProbeEvery >= 0 {
		every := s.o.NetworkProbeEvery
		if every == 0 {
			every = 15 * time.Second
		}
		nw := &netWatch{c: s.c, rec: s.w.rec, every: every, conns: map[string]*remote.Client{}}
		nctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); nw.run(nctx, s.w.current) }()
		defer func() { cancel(); <-done }()
	}
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
	snap := s.c.watchSnapshot(ctx)
	s.fenceReturned(ctx, snap)
	primary, replicas, err := s.findPrimary(snap)
	if err != nil {
		s.setStatus(store.PingFailed)
		return err
	}
	s.primary = primary
	s.remember(snap)
	s.w.setSnapshot(snap, primary.Name)
	if sc, ok := s.c.Mover().(address.StatusChecker); ok && s.c.Mover() != nil {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := sc.Status(sctx, target(primary))
		cancel()
		if err != nil {
			s.setStatus(store.ConfigError)
			s.w.emit(notify.Event{Kind: notify.KindMoverFailure, Title: "address mover status check failed for primary " + primary.Name,
				Text: err.Error(), Fields: fieldsOf("mover", s.c.Mover().Kind(), "primary", primary.Name)}, true)
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
		OnProbe:        s.w.setProbe,
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
		doRefresh := false
		select {
		case <-ctx.Done():
			return nil
		case err := <-monErr:
			return fmt.Errorf("monitor: %w", err)
		case v := <-verdicts:
			prev := lastKind
			lastKind = v.Kind
			s.w.setVerdict(v)
			switch v.Kind {
			case detect.Healthy:
				if prev == detect.UnreachablePrimary {
					s.log.Info("primary answers again", "primary", primary.Name)
					s.w.emit(notify.Event{Kind: "recovered", Severity: notify.SeverityInfo,
						Title: "primary " + primary.Name + " answers again", Fields: fieldsOf("primary", primary.Name)}, true)
				}
				s.setStatus(store.Running)
			case detect.Suspect:
				s.setStatus(store.PingFailing)
			case detect.UnreachablePrimary:
				if prev != detect.UnreachablePrimary {
					s.log.Warn("primary unreachable from the manager but not dead: no failover", "primary", primary.Name, "reason", v.Reason, "evidence", v.Evidence)
					s.w.emit(notify.Event{Kind: notify.KindUnreachablePrimary, Title: "primary " + primary.Name + " unreachable from the manager; the replicas still see it: no failover",
						Text: v.Reason, Fields: fieldsOf("primary", primary.Name, "evidence", strings.Join(v.Evidence, "; "))}, true)
				}
				s.setStatus(store.PingFailing)
			case detect.DeadPrimary:
				first := prev != detect.DeadPrimary
				id := s.c.beginRun()
				s.log.Error("primary is dead", "primary", primary.Name, "reason", v.Reason, "evidence", v.Evidence, "since", v.Since)
				s.setStatus(store.PingFailed)
				if first {
					if !v.Since.IsZero() {
						s.w.rec.ObserveDetection(time.Since(v.Since))
					}
					s.w.emit(notify.Event{ID: id, Kind: notify.KindDetection, Title: "primary " + primary.Name + " is dead",
						Text: v.Reason, Fields: fieldsOf("primary", primary.Name, "evidence", strings.Join(v.Evidence, "; "))}, true)
				}
				if p := s.w.paused(); p != nil {
					if first {
						s.log.Error("automatic failover is paused: not failing over", "paused_by", p.By, "reason", p.Reason)
						s.w.rec.ObserveChange("failover", "blocked", 0, 0)
						s.w.emit(notify.Event{ID: id, Kind: notify.KindAntiFlapBlock, Title: "failover NOT started: automatic failover is paused by " + p.By,
							Text: p.Reason, Fields: fieldsOf("primary", primary.Name, "paused_by", p.By)}, true)
					}
					s.c.endRun()
					continue
				}
				if s.blocked(id) {
					s.c.endRun()
					continue // stays PING_FAILED / FAILOVER_ERROR until acknowledged
				}
				cancel()
				s.failover(ctx, primary, id)
				s.c.endRun()
				return nil
			}
		case <-refresh:
			doRefresh = true
		case <-s.kick:
			doRefresh = true
		}
		if doRefresh {
			snap := s.c.watchSnapshot(ctx)
			s.remember(snap)
			s.fenceReturned(ctx, snap)
			p, _, err := s.findPrimary(snap)
			if err == nil {
				s.w.setSnapshot(snap, p.Name)
			}
			if err == nil && p.Name != primary.Name {
				s.log.Warn("the primary changed; following it", "old", primary.Name, "new", p.Name)
				s.w.emit(notify.Event{Kind: "primary_changed", Severity: notify.SeverityInfo, Title: "primary is now " + p.Name,
					Fields: fieldsOf("old", primary.Name, "new", p.Name)}, false)
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
func (s *supervisor) blocked(id string) bool {
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
		s.w.rec.ObserveChange("failover", "blocked", 0, 0)
		s.w.rec.SetBlocked(true)
		s.w.emit(notify.Event{ID: id, Kind: notify.KindAntiFlapBlock,
			Title:  "failover refused: the last failover was too recent (anti-flapping); acknowledge it to allow a new one",
			Fields: fieldsOf("primary", s.primary.Name, "last_failover", at.Format(time.RFC3339), "block_period", s.o.BlockPeriod.String())}, true)
	}
	s.setStatus(store.FailoverError)
	return true
}

func (s *supervisor) failover(ctx context.Context, dead config.Server, id string) {
	s.setStatus(store.FailoverRunning)
	s.w.emit(notify.Event{ID: id, Kind: notify.KindFailoverStart, Title: "failover of " + dead.Name + " started",
		Fields: fieldsOf("old_primary", dead.Name)}, true)
	start := time.Now()
	rep, err := s.c.Failover(ctx, failover.Options{Dead: dead.Name, DeadGTIDs: s.lastGTID, ID: id}, true, nil)
	s.w.rec.SetBlocked(false)
	if err != nil {
		s.log.Error("failover failed", "dead", dead.Name, "err", err, "elapsed", time.Since(start))
		s.setStatus(store.FailoverError)
		s.w.rec.ObserveChange("failover", "error", time.Since(start), 0)
		f := fieldsOf("old_primary", dead.Name, "elapsed", time.Since(start).Round(time.Millisecond).String())
		if rep != nil {
			f = reportFields(rep)
			s.w.moverFailures(rep)
		}
		s.w.emit(notify.Event{ID: id, Kind: notify.KindFailoverEnd, Severity: notify.SeverityCritical,
			Title: "failover of " + dead.Name + " FAILED", Text: err.Error(), Fields: f}, true)
		return
	}
	s.w.rec.ObserveChange("failover", "success", time.Since(start), 0)
	s.w.rec.SetLastFailover(time.Now())
	s.w.setHolder(rep.NewPrimary)
	s.w.setPrimary(rep.NewPrimary)
	s.w.clearVerdict()
	s.w.moverFailures(rep)
	sev := notify.SeverityWarning
	if rep.LostText != "" || len(rep.Failed) > 0 {
		sev = notify.SeverityCritical
	}
	s.w.emit(notify.Event{ID: id, Kind: notify.KindFailoverEnd, Severity: sev,
		Title: fmt.Sprintf("failover %s → %s done", rep.OldPrimary, rep.NewPrimary), Fields: reportFields(rep)}, true)
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
			s.w.emit(notify.Event{Kind: "fence", Severity: notify.SeverityCritical, Title: "old primary " + n.Server.Name + " came back writable: fencing it",
				Fields: fieldsOf("server", n.Server.Name, "primary", s.primary.Name)}, true)
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
