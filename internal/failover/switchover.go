package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// Switchover defaults.
const (
	DefaultRunningUpdatesLimit = time.Second
	DefaultSwitchMaxLag        = time.Second
	DefaultGrace               = 100 * time.Millisecond
)

// SwitchOptions tunes PlanSwitchover.
type SwitchOptions struct {
	// NewPrimary is the server to promote (section name, hostname or IP);
	// empty means the candidate selection's choice.
	NewPrimary string `json:"new_primary,omitempty"`
	// OrigIsNewReplica makes the old primary a replica of the new one
	// (MHA --orig_master_is_new_slave).
	OrigIsNewReplica bool `json:"orig_is_new_replica,omitempty"`
	// RunningUpdatesLimit: the switchover is refused while a write on the
	// old primary has been running longer (MHA --running_updates_limit,
	// default 1 s).
	RunningUpdatesLimit time.Duration `json:"running_updates_limit,omitempty"`
	// MaxLag: every replica must be at most this far behind (default 1 s).
	MaxLag time.Duration `json:"max_lag,omitempty"`
	// Grace is how long read_only may wait for running transactions on the
	// old primary before its client connections are killed (they are
	// killed in any case once read_only is on); default 100 ms.
	Grace time.Duration `json:"grace,omitempty"`
	// Force accepts a candidate with errant GTIDs.
	Force bool `json:"force,omitempty"`
	// PreferZone: see ChooseOptions.
	PreferZone string `json:"prefer_zone,omitempty"`
	// ID names the run; empty means a random one.
	ID string `json:"-"`
	// Now stamps the plan; nil means time.Now.
	Now func() time.Time `json:"-"`
}

// SwitchPlan is a planned switchover: a Plan whose Switch is set.
type SwitchPlan struct {
	Plan
}

// ErrPrecheck is wrapped by PlanSwitchover when the cluster is not in a state
// to switch.
var ErrPrecheck = errors.New("switchover pre-check failed")

// PlanSwitchover plans a switch of a healthy cluster's primary: it checks that
// every replica replicates with little lag and that the new primary is
// eligible, then orders the steps: pre-check for long writes, release the
// address, block writes on the old primary, wait until the new primary holds
// all of the old one's transactions, promote it, repoint the replicas (and
// the old primary, with OrigIsNewReplica), open writes, acquire the address.
func PlanSwitchover(snap *topology.Snapshot, cfg *config.Config, o SwitchOptions) (*SwitchPlan, error) {
	if o.RunningUpdatesLimit <= 0 {
		o.RunningUpdatesLimit = DefaultRunningUpdatesLimit
	}
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultSwitchMaxLag
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	prims := snap.Primaries()
	var old *topology.Node
	switch len(prims) {
	case 1:
		old = prims[0]
	case 0:
		return nil, fmt.Errorf("plan switchover of %s: %w: no reachable primary", cfg.Name, ErrPrecheck)
	default:
		names := make([]string, len(prims))
		for i, n := range prims {
			names[i] = n.Server.Name
		}
		return nil, fmt.Errorf("plan switchover of %s: %w: more than one server replicates from no one: %s", cfg.Name, ErrPrecheck, strings.Join(names, ", "))
	}
	var problems []string
	for _, n := range snap.Nodes {
		if n == old {
			continue
		}
		if !n.Reachable() {
			if n.Server.IgnoreFail {
				continue
			}
			problems = append(problems, fmt.Sprintf("%s does not answer: %v", n.Server.Name, n.Err))
			continue
		}
		rs := n.Status().Replica
		switch {
		case rs == nil:
			problems = append(problems, fmt.Sprintf("%s does not replicate", n.Server.Name))
		case snap.SourceOf(n) != old:
			problems = append(problems, fmt.Sprintf("%s does not replicate from %s", n.Server.Name, old.Server.Name))
		case !rs.Running():
			problems = append(problems, fmt.Sprintf("%s: replication threads not both running (IO %s, SQL %v)", n.Server.Name, rs.IORunning, rs.SQLRunning))
		case rs.SecondsBehind == nil || time.Duration(*rs.SecondsBehind)*time.Second > o.MaxLag:
			lag := "unknown"
			if rs.SecondsBehind != nil {
				lag = fmt.Sprintf("%ds", *rs.SecondsBehind)
			}
			problems = append(problems, fmt.Sprintf("%s lags %s (limit %s)", n.Server.Name, lag, o.MaxLag))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("plan switchover of %s: %w: %s", cfg.Name, ErrPrecheck, strings.Join(problems, "; "))
	}
	cand, rej, err := ChooseCandidate(snap, cfg, old.Server.Name, ChooseOptions{NewPrimary: o.NewPrimary, Force: o.Force, PreferZone: o.PreferZone})
	if err != nil {
		return nil, fmt.Errorf("plan switchover of %s: %w", cfg.Name, err)
	}
	p := &SwitchPlan{Plan{ID: o.ID, Kind: "switchover", Cluster: cfg.Name, Created: now(),
		OldPrimary: old.Server.Name, NewPrimary: cand.Server.Name, CatchUpSource: old.Server.Name,
		DeadSSHReachable: Yes, Rejections: rej, Switch: &o}}
	if p.ID == "" {
		p.ID = newID(p.Created)
	}
	ost := old.Status()
	p.GTIDKind = ost.GTIDExecuted.Kind()
	p.DeadGTIDs = ost.GTIDExecuted.String()
	p.SemiSync = ost.SemiSync.SourceEnabled
	p.Servers = append(p.Servers, endpointOf(old.Server), endpointOf(cand.Server))
	for _, n := range snap.Nodes {
		if n == old || n == cand || !n.Reachable() {
			continue
		}
		if st := n.Status(); st.SemiSync.ReplicaEnabled {
			p.SemiSync = true
		}
		p.Survivors = append(p.Survivors, n.Server.Name)
		p.Servers = append(p.Servers, endpointOf(n.Server))
	}
	if o.OrigIsNewReplica {
		p.Survivors = append(p.Survivors, old.Server.Name)
	}
	oldN, newN := old.Server.Name, cand.Server.Name
	p.Steps = append(p.Steps, Step{Kind: StepPrecheck, Server: oldN,
		Why: fmt.Sprintf("refuse if a write on %s has been running longer than %s", oldN, o.RunningUpdatesLimit)})
	if cfg.Address.Mover != "" || cfg.MasterIPOnlineChangeScript != "" {
		p.Steps = append(p.Steps, Step{Kind: StepReleaseAddress, Server: oldN,
			Why: fmt.Sprintf("take the client address away from %s (writes are blocked from here on)", describe(old.Server))})
	}
	p.Steps = append(p.Steps,
		Step{Kind: StepBlockWrite, Server: oldN,
			Why: fmt.Sprintf("set read_only on %s and kill its client connections (after at most %s for running transactions)", oldN, o.Grace)},
		Step{Kind: StepSync, Server: newN, Source: oldN,
			Why: fmt.Sprintf("wait until %s has applied every transaction of %s", newN, oldN)},
		Step{Kind: StepPromote, Server: newN,
			Why: fmt.Sprintf("stop replication on %s and forget its source%s", newN, semiWhy(p.SemiSync, "; semi-sync source side on"))})
	for _, s := range p.Survivors {
		p.Steps = append(p.Steps, Step{Kind: StepRepoint, Server: s, Source: newN, Optional: true,
			Why: fmt.Sprintf("point %s at %s with GTID auto-positioning and wait until both threads run", s, newN)})
	}
	p.Steps = append(p.Steps, Step{Kind: StepOpenWrites, Server: newN, Why: fmt.Sprintf("set read_only=OFF on %s: it accepts writes", newN)})
	if cfg.Address.Mover != "" || cfg.MasterIPOnlineChangeScript != "" {
		p.Steps = append(p.Steps, Step{Kind: StepAcquireAddress, Server: newN,
			Why: fmt.Sprintf("bring the client address up on %s (writes resume)", describe(cand.Server))})
	}
	p.Steps = append(p.Steps, Step{Kind: StepReport, Server: newN, Optional: true, Why: "write the report and record the switchover"})
	if !o.OrigIsNewReplica {
		p.Notes = append(p.Notes, fmt.Sprintf("%s stays read-only and replicates from no one", oldN))
	}
	return p, nil
}

// Switchover carries out a switchover plan; the report's WriteBlock says how
// long writes were blocked.
func (e *Executor) Switchover(ctx context.Context, p *SwitchPlan) (*Report, error) {
	if p.Switch == nil {
		return nil, fmt.Errorf("switchover %s: the plan has no switchover settings (use PlanSwitchover)", p.ID)
	}
	return e.run(ctx, &p.Plan, nil)
}

// precheck refuses a switchover while long writes run on the old primary.
func (e *Executor) precheck(ctx context.Context, p *Plan, old config.Server) (string, error) {
	limit := DefaultRunningUpdatesLimit
	if p.Switch != nil && p.Switch.RunningUpdatesLimit > 0 {
		limit = p.Switch.RunningUpdatesLimit
	}
	w, err := e.Ops.WritesRunning(ctx, old, limit)
	if err != nil {
		return "", fmt.Errorf("read running statements on %s: %w", old.Name, err)
	}
	if len(w) > 0 {
		return "", fmt.Errorf("%w: writes running longer than %s on %s: %s", ErrPrecheck, limit, old.Name, strings.Join(w, "; "))
	}
	return "no long-running writes", nil
}

// blockWrites sets read_only on the old primary, killing client connections
// when read_only has not taken effect within the grace (a long transaction
// holds it up) and in any case once it has.
func (e *Executor) blockWrites(ctx context.Context, st *runState, old config.Server) (string, error) {
	st.markBlock(e.now())
	grace := DefaultGrace
	if st.p.Switch != nil && st.p.Switch.Grace > 0 {
		grace = st.p.Switch.Grace
	}
	ro := make(chan error, 1)
	go func() { ro <- e.Ops.SetReadOnly(ctx, old, true) }()
	killed := 0
	timer := time.NewTimer(grace)
	defer timer.Stop()
	var err error
	select {
	case err = <-ro:
	case <-timer.C:
		n, kerr := e.Ops.KillClientConnections(ctx, old)
		if kerr != nil {
			e.log().Warn("kill client connections to unblock read_only", "server", old.Name, "err", kerr)
		}
		killed += n
		err = <-ro
	}
	if err != nil {
		return "", fmt.Errorf("set read_only on %s: %w", old.Name, err)
	}
	n, err := e.Ops.KillClientConnections(ctx, old)
	if err != nil {
		return "", fmt.Errorf("kill client connections on %s: %w", old.Name, err)
	}
	return fmt.Sprintf("read_only on, %d client connections killed", killed+n), nil
}

// sync waits until the new primary holds every transaction of the old one
// (read after writes were blocked).
func (e *Executor) sync(ctx context.Context, st *runState, nw config.Server) (string, error) {
	old, err := e.server(st.p, st.p.OldPrimary)
	if err != nil {
		return "", err
	}
	set, err := e.Ops.GTIDExecuted(ctx, old)
	if err != nil {
		return "", fmt.Errorf("read GTIDs of the old primary %s: %w", old.Name, err)
	}
	st.mu.Lock()
	st.p.DeadGTIDs, st.p.GTIDKind = set.String(), set.Kind()
	st.mu.Unlock()
	if err := e.Ops.WaitGTID(ctx, nw, set); err != nil {
		return "", fmt.Errorf("%s did not apply %s of %s: %w", nw.Name, set, old.Name, err)
	}
	return "holds " + set.String(), nil
}
