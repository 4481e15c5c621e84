package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/store"
)

// Ops is what the executor does to servers. SQLOps implements it over
// internal/mysql; tests use fakes. Every method must honour ctx.
type Ops interface {
	GTIDExecuted(ctx context.Context, s config.Server) (mysql.GTIDSet, error)
	// SetReadOnly sets read_only (and super_read_only where it exists).
	SetReadOnly(ctx context.Context, s config.Server, on bool) error
	// KillClientConnections kills every connection but replication threads,
	// system users, the users in except and the caller's own.
	KillClientConnections(ctx context.Context, s config.Server, except ...string) (int, error)
	StopReplicaIO(ctx context.Context, s config.Server) error
	StopReplica(ctx context.Context, s config.Server) error
	StartReplica(ctx context.Context, s config.Server) error
	ResetReplicaAll(ctx context.Context, s config.Server) error
	// WaitRelayApplied waits until the SQL thread applied everything the IO
	// thread received.
	WaitRelayApplied(ctx context.Context, s config.Server) error
	// ChangeSource points s at src with GTID auto-positioning and the
	// replication account of the configuration.
	ChangeSource(ctx context.Context, s config.Server, src config.Server) error
	// WaitGTID waits until s holds set.
	WaitGTID(ctx context.Context, s config.Server, set mysql.GTIDSet) error
	// WaitReplicating waits until both replication threads run.
	WaitReplicating(ctx context.Context, s config.Server) error
	SetSemiSync(ctx context.Context, s config.Server, source, replica bool) error
	// WritesRunning lists the writing statements running longer than
	// longerThan (switchover pre-check).
	WritesRunning(ctx context.Context, s config.Server, longerThan time.Duration) ([]string, error)
}

// Mover moves the clients' address; see address.Mover.
type Mover = address.Mover

// Hooks runs the external scripts of a failover (MHA's shutdown_script and
// report_script); internal/hooks implements it.
type Hooks interface {
	Shutdown(ctx context.Context, old config.Server, sshReachable bool) error
	Report(ctx context.Context, r *Report) error
}

// SalvageResult is what a Salvager recovered.
type SalvageResult struct {
	Applied      int           // transactions applied on the candidate
	AppliedGTIDs mysql.GTIDSet // their GTIDs
}

// Salvager copies the transactions the candidate lacks from the dead
// primary's binary logs (over SSH) and applies them; internal/binlog
// implements it.
type Salvager interface {
	Salvage(ctx context.Context, dead config.Server, candidate config.Server, have mysql.GTIDSet) (SalvageResult, error)
}

// DefaultStepTimeout bounds a step when Executor.StepTimeout is zero.
const DefaultStepTimeout = 30 * time.Second

// Executor runs plans.
type Executor struct {
	Ops      Ops
	Mover    address.Mover // may be nil: no address to move
	Hooks    Hooks         // may be nil
	Salvager Salvager      // may be nil
	Journal  *store.Journal
	Logger   *slog.Logger
	// StepTimeout bounds every step (default DefaultStepTimeout).
	StepTimeout time.Duration
	Now         func() time.Time
	// Config, when set, supplies the full server entries (the plan's own
	// copies have no secrets) to Hooks and Salvager.
	Config *config.Config
	// HistoryPath, when set, receives every finished report
	// (store.AppendHistory); CompletePath, when set, is MHA's
	// failover.complete file, written after a successful failover.
	HistoryPath, CompletePath string
}

// ErrNothingToResume is returned by Resume when the journal has no
// unfinished run.
var ErrNothingToResume = errors.New("no unfinished failover in the journal")

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Executor) log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (e *Executor) timeout() time.Duration {
	if e.StepTimeout > 0 {
		return e.StepTimeout
	}
	return DefaultStepTimeout
}

// Run carries out a failover plan step by step. A failing step that is not
// optional stops the run: the journal then says where it stopped, and the
// returned report (never nil) says what was done.
func (e *Executor) Run(ctx context.Context, p *Plan) (*Report, error) {
	return e.run(ctx, p, nil)
}

// Resume continues the unfinished run of j (a manager restarted in the
// middle of it) from the first step not journaled as done; steps are
// idempotent, so repeating the one that was running is safe. When the run
// cannot be continued (no readable plan), the error says so and the report
// lists what is left.
func Resume(ctx context.Context, e *Executor, j *store.Journal) (*Report, error) {
	rec, ok := j.Unfinished()
	if !ok {
		return nil, ErrNothingToResume
	}
	var p Plan
	if err := json.Unmarshal(rec.Plan, &p); err != nil {
		r := &Report{ID: rec.ID, Kind: rec.Kind, Started: rec.Started, Finished: e.now()}
		for _, s := range rec.Steps {
			if s.State != store.StepDone && s.State != store.StepSkipped {
				r.Failed = append(r.Failed, "not done: "+s.Step)
			}
		}
		r.Err = fmt.Sprintf("journal plan unreadable: %v", err)
		return r, fmt.Errorf("resume run %s: the journaled plan cannot be read, finish it by hand: %w", rec.ID, err)
	}
	done := map[string]bool{}
	for _, s := range rec.Steps {
		if s.State == store.StepDone || s.State == store.StepSkipped {
			done[s.Step] = true
		}
	}
	e.log().Info("resuming unfinished run", "id", p.ID, "kind", p.Kind, "old_primary", p.OldPrimary,
		"new_primary", p.NewPrimary, "steps_done", len(done), "steps", len(p.Steps))
	if e.Journal == nil {
		e.Journal = j
	}
	return e.run(ctx, &p, done)
}

// runState is one run in progress.
type runState struct {
	p      *Plan
	r      *Report
	mu     sync.Mutex
	lost   bool // Lost computed
	blockT time.Time
	bg     sync.WaitGroup // background work (delayed kills) to wait for
}

// parallelGroup says which adjacent steps may run at the same time (0:
// none). Releasing the address and stopping the survivors' IO threads are
// independent and make nothing writable; STOP SLAVE IO_THREAD takes ~2 s on
// MariaDB when the primary is frozen or cut off (the server waits for its
// IO thread in 2 s rounds), so doing them one by one would add 2 s per
// replica to the outage. Replicas are repointed independently too.
func parallelGroup(k StepKind) int {
	switch k {
	case StepReleaseAddress, StepStopIO:
		return 1
	case StepRepoint:
		return 2
	}
	return 0
}

func (e *Executor) run(ctx context.Context, p *Plan, done map[string]bool) (*Report, error) {
	st := &runState{p: p, r: &Report{ID: p.ID, Kind: p.Kind, Cluster: p.Cluster, OldPrimary: p.OldPrimary,
		NewPrimary: p.NewPrimary, Started: e.now()}}
	defer st.bg.Wait()
	log := e.log().With("run", p.ID, "kind", p.Kind)
	if done == nil {
		planJSON, err := json.Marshal(p)
		if err != nil {
			return st.r, fmt.Errorf("%s %s: encode plan for the journal: %w", p.Kind, p.ID, err)
		}
		if err := e.journal(store.JournalRecord{ID: p.ID, Kind: p.Kind, Step: store.StepPlan, State: store.StepStarted, Plan: planJSON}); err != nil {
			st.r.Err = err.Error()
			return st.r, err
		}
	}
	log.Info("run starts", "old_primary", p.OldPrimary, "new_primary", p.NewPrimary, "steps", len(p.Steps))

	for i := 0; i < len(p.Steps); i++ {
		// Adjacent steps of one parallel group run together (see
		// parallelGroup).
		j := i + 1
		if g := parallelGroup(p.Steps[i].Kind); g != 0 {
			for j < len(p.Steps) && parallelGroup(p.Steps[j].Kind) == g {
				j++
			}
		}
		errs := make([]error, j-i)
		results := make([]StepResult, j-i)
		var wg sync.WaitGroup
		for k := i; k < j; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[k-i], errs[k-i] = e.runStep(ctx, st, k, done, log)
			}()
		}
		wg.Wait()
		st.r.Steps = append(st.r.Steps, results...)
		for k := i; k < j; k++ {
			err := errs[k-i]
			s := p.Steps[k]
			if err == nil {
				if s.Kind == StepRepoint {
					st.r.Repointed = append(st.r.Repointed, s.Server)
				}
				continue
			}
			if s.Optional && ctx.Err() == nil {
				st.r.Failed = append(st.r.Failed, fmt.Sprintf("%s %s: %v", s.Kind, s.Server, err))
				continue
			}
			st.r.Finished = e.now()
			st.r.Err = fmt.Sprintf("step %d (%s %s): %v", k+1, s.Kind, s.Server, err)
			_ = e.journal(store.JournalRecord{ID: p.ID, Kind: p.Kind, Step: store.StepFinish, State: store.StepFailed, Detail: st.r.Err})
			log.Error("run stopped", "step", s.Key(k), "err", err)
			return st.r, fmt.Errorf("%s %s stopped at step %d (%s on %s); the journal records where, resume or finish by hand: %w",
				p.Kind, p.ID, k+1, s.Kind, s.Server, err)
		}
		i = j - 1
	}
	st.r.Finished = e.now()
	if st.r.Finished.Before(st.r.Started) {
		st.r.Finished = st.r.Started
	}
	st.r.LostText = st.r.Lost.String()
	if err := e.journal(store.JournalRecord{ID: p.ID, Kind: p.Kind, Step: store.StepFinish, State: store.StepDone,
		Detail: fmt.Sprintf("new primary %s", p.NewPrimary)}); err != nil {
		log.Warn("journal finish record", "err", err)
	}
	if e.HistoryPath != "" {
		if err := store.AppendHistory(e.HistoryPath, st.r); err != nil {
			log.Warn("history not written", "err", err)
		}
	}
	if e.CompletePath != "" && p.Kind == "failover" {
		if err := store.MarkFailoverComplete(e.CompletePath, st.r.Finished, p.ID); err != nil {
			log.Warn("failover.complete not written", "err", err)
		}
	}
	log.Info("run finished", "new_primary", p.NewPrimary, "elapsed", st.r.Finished.Sub(st.r.Started),
		"lost", st.r.LostText, "repointed", strings.Join(st.r.Repointed, ","), "failed", len(st.r.Failed))
	return st.r, nil
}

func (e *Executor) journal(r store.JournalRecord) error {
	if e.Journal == nil {
		return nil
	}
	if r.At.IsZero() {
		r.At = e.now()
	}
	if err := e.Journal.Append(r); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// runStep runs step k with a timeout and journals it before and after.
func (e *Executor) runStep(ctx context.Context, st *runState, k int, done map[string]bool, log *slog.Logger) (StepResult, error) {
	p := st.p
	s := p.Steps[k]
	key := s.Key(k)
	res := StepResult{Name: key, Kind: s.Kind, Server: s.Server, Started: e.now()}
	if done[key] {
		res.Note = "done before the restart"
		return res, nil
	}
	if err := e.journal(store.JournalRecord{ID: p.ID, Kind: p.Kind, Step: key, Index: k, State: store.StepStarted}); err != nil {
		res.Err = err.Error()
		return res, err
	}
	timeout := e.timeout()
	if s.Kind == StepCatchUp && p.MaxCatchUp > 0 {
		timeout = p.MaxCatchUp
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	t0 := time.Now()
	note, err := e.do(sctx, st, s)
	cancel()
	res.Elapsed = time.Since(t0)
	res.Note = note
	state := store.StepDone
	detail := note
	if err != nil {
		if sctx.Err() != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (step timeout %s)", err, timeout)
		}
		res.Err = err.Error()
		state, detail = store.StepFailed, err.Error()
		log.Warn("step failed", "step", key, "optional", s.Optional, "elapsed", res.Elapsed, "err", err)
	} else {
		log.Info("step done", "step", key, "elapsed", res.Elapsed, "note", note)
	}
	if jerr := e.journal(store.JournalRecord{ID: p.ID, Kind: p.Kind, Step: key, Index: k, State: state, Detail: detail}); jerr != nil && err == nil {
		err = jerr
		res.Err = err.Error()
	}
	return res, err
}

// server returns the full configuration entry of a plan's server.
func (e *Executor) server(p *Plan, name string) (config.Server, error) {
	if e.Config != nil {
		for _, s := range e.Config.Servers {
			if s.Name == name {
				return s, nil
			}
		}
	}
	if s, ok := p.Server(name); ok {
		return s, nil
	}
	return config.Server{}, fmt.Errorf("server %q is not in the plan", name)
}

func target(s config.Server, ssh bool) address.Target {
	return address.Target{Name: s.Name, Hostname: s.Hostname, IP: s.Host(), Port: s.Port, SSHReachable: ssh}
}

func (e *Executor) change(p *Plan) (address.Change, error) {
	old, err := e.server(p, p.OldPrimary)
	if err != nil {
		return address.Change{}, err
	}
	nw, err := e.server(p, p.NewPrimary)
	if err != nil {
		return address.Change{}, err
	}
	c := address.Change{Old: target(old, p.DeadSSHReachable != No), New: target(nw, true)}
	if p.Switch != nil {
		c.Online = true
		c.Old.SSHReachable = true
		c.OldIsNewReplica = p.Switch.OrigIsNewReplica
	}
	return c, nil
}

// do performs one step and returns a note for the report.
func (e *Executor) do(ctx context.Context, st *runState, s Step) (string, error) {
	p := st.p
	srv, err := e.server(p, s.Server)
	if err != nil {
		return "", err
	}
	switch s.Kind {
	case StepPrecheck:
		return e.precheck(ctx, p, srv)

	case StepReleaseAddress:
		st.markBlock(e.now())
		if e.Mover == nil {
			return "skipped: no address mover", nil
		}
		c, err := e.change(p)
		if err != nil {
			return "", err
		}
		if err := e.Mover.Release(ctx, c); err != nil {
			var pe *address.ProceedError
			if errors.As(err, &pe) {
				return "release failed, tolerated: " + err.Error(), nil
			}
			return "", fmt.Errorf("release the address from %s with %s: %w", s.Server, e.Mover.Kind(), err)
		}
		return "address released by " + e.Mover.Kind(), nil

	case StepFenceOld:
		if err := e.Ops.SetReadOnly(ctx, srv, true); err != nil {
			return "", fmt.Errorf("set read_only on the old primary %s: %w", s.Server, err)
		}
		n, err := e.Ops.KillClientConnections(ctx, srv)
		if err != nil {
			return "", fmt.Errorf("kill client connections on the old primary %s: %w", s.Server, err)
		}
		return fmt.Sprintf("read_only on, %d client connections killed", n), nil

	case StepBlockWrite:
		return e.blockWrites(ctx, st, srv)

	case StepShutdownOld:
		if e.Hooks == nil {
			return "skipped: no hooks", nil
		}
		if err := e.Hooks.Shutdown(ctx, srv, p.DeadSSHReachable == Yes); err != nil {
			return "", fmt.Errorf("shutdown_script for %s: %w", s.Server, err)
		}
		return "shutdown_script done", nil

	case StepStopIO:
		if err := e.Ops.StopReplicaIO(ctx, srv); err != nil {
			return "", fmt.Errorf("stop the IO thread of %s: %w", s.Server, err)
		}
		if err := e.Ops.WaitRelayApplied(ctx, srv); err != nil {
			return "", fmt.Errorf("wait for %s to apply its relay log: %w", s.Server, err)
		}
		return "", nil

	case StepChoose:
		set, err := e.Ops.GTIDExecuted(ctx, srv)
		if err != nil {
			return "", fmt.Errorf("the chosen new primary %s does not answer: %w", s.Server, err)
		}
		return "GTIDs " + set.String(), nil

	case StepCatchUp:
		return e.catchUp(ctx, p, srv, s)

	case StepSync:
		return e.sync(ctx, st, srv)

	case StepSalvage:
		if e.Salvager == nil {
			return "skipped: no binlog salvager", nil
		}
		dead, err := e.server(p, s.Source)
		if err != nil {
			return "", err
		}
		have, err := e.Ops.GTIDExecuted(ctx, srv)
		if err != nil {
			return "", fmt.Errorf("read GTIDs of %s before salvage: %w", s.Server, err)
		}
		res, err := e.Salvager.Salvage(ctx, dead, srv, have)
		if err != nil {
			return "", fmt.Errorf("salvage the binary logs of %s: %w", s.Source, err)
		}
		st.mu.Lock()
		st.r.Salvaged += res.Applied
		st.mu.Unlock()
		return fmt.Sprintf("%d transactions applied (%s)", res.Applied, res.AppliedGTIDs), nil

	case StepPromote:
		if err := e.Ops.StopReplica(ctx, srv); err != nil {
			return "", fmt.Errorf("stop replication on the new primary %s: %w", s.Server, err)
		}
		if err := e.Ops.ResetReplicaAll(ctx, srv); err != nil {
			return "", fmt.Errorf("reset replication on the new primary %s: %w", s.Server, err)
		}
		if p.SemiSync {
			if err := e.Ops.SetSemiSync(ctx, srv, true, false); err != nil {
				return "", fmt.Errorf("semi-sync source side on %s: %w", s.Server, err)
			}
		}
		return "", nil

	case StepRepoint:
		src, err := e.server(p, s.Source)
		if err != nil {
			return "", err
		}
		if err := e.Ops.StopReplica(ctx, srv); err != nil {
			return "", fmt.Errorf("stop replication on %s: %w", s.Server, err)
		}
		if err := e.Ops.ChangeSource(ctx, srv, src); err != nil {
			return "", fmt.Errorf("point %s at %s: %w", s.Server, s.Source, err)
		}
		if p.SemiSync {
			if err := e.Ops.SetSemiSync(ctx, srv, false, true); err != nil {
				return "", fmt.Errorf("semi-sync replica side on %s: %w", s.Server, err)
			}
		}
		if err := e.Ops.StartReplica(ctx, srv); err != nil {
			return "", fmt.Errorf("start replication on %s: %w", s.Server, err)
		}
		if err := e.Ops.WaitReplicating(ctx, srv); err != nil {
			return "", fmt.Errorf("%s does not replicate from %s: %w", s.Server, s.Source, err)
		}
		return "replicating from " + s.Source, nil

	case StepOpenWrites:
		note := ""
		if set, err := e.Ops.GTIDExecuted(ctx, srv); err == nil {
			st.setLost(p, set)
		} else {
			note = "could not read GTIDs for the loss report: " + err.Error()
		}
		if err := e.Ops.SetReadOnly(ctx, srv, false); err != nil {
			return "", fmt.Errorf("make the new primary %s writable: %w", s.Server, err)
		}
		if !hasStep(p, StepAcquireAddress) {
			st.endBlock(e.now())
		}
		return note, nil

	case StepAcquireAddress:
		defer st.endBlock(e.now())
		if e.Mover == nil {
			return "skipped: no address mover", nil
		}
		c, err := e.change(p)
		if err != nil {
			return "", err
		}
		if err := e.Mover.Acquire(ctx, c); err != nil {
			var pe *address.ProceedError
			if errors.As(err, &pe) {
				return "acquire failed, tolerated: " + err.Error(), nil
			}
			return "", fmt.Errorf("bring the address up on %s with %s: %w", s.Server, e.Mover.Kind(), err)
		}
		return "address acquired by " + e.Mover.Kind(), nil

	case StepReport:
		st.mu.Lock()
		computed := st.lost
		st.mu.Unlock()
		if !computed { // open-writes ran before a restart
			if set, err := e.Ops.GTIDExecuted(ctx, e.mustServer(p, p.NewPrimary)); err == nil {
				st.setLost(p, set)
			}
		}
		st.mu.Lock()
		st.r.Finished = e.now()
		st.r.LostText = st.r.Lost.String()
		st.mu.Unlock()
		if e.Hooks == nil {
			return "", nil
		}
		if err := e.Hooks.Report(ctx, st.r); err != nil {
			return "", fmt.Errorf("report_script: %w", err)
		}
		return "report_script done", nil
	}
	return "", fmt.Errorf("unknown step kind %q", s.Kind)
}

// mustServer is server without the error: the plan's own copy when the
// configuration lacks it.
func (e *Executor) mustServer(p *Plan, name string) config.Server {
	s, _ := e.server(p, name)
	return s
}

func hasStep(p *Plan, k StepKind) bool {
	for _, s := range p.Steps {
		if s.Kind == k {
			return true
		}
	}
	return false
}

func (st *runState) markBlock(t time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.blockT.IsZero() {
		st.blockT = t
	}
}

func (st *runState) endBlock(t time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.p.Switch != nil && !st.blockT.IsZero() {
		st.r.WriteBlock = t.Sub(st.blockT)
	}
}

// setLost computes Report.Lost from the old primary's last known set.
func (st *runState) setLost(p *Plan, newSet mysql.GTIDSet) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if p.DeadGTIDs == "" || p.GTIDKind == "" {
		return
	}
	dead, err := mysql.ParseGTIDSet(p.GTIDKind, p.DeadGTIDs)
	if err != nil {
		return
	}
	if lost, err := dead.Subtract(newSet); err == nil {
		st.r.Lost, st.r.LostText, st.lost = lost, lost.String(), true
	}
}

// catchUp makes the candidate hold every transaction of the most advanced
// survivor, replicating from it when needed.
func (e *Executor) catchUp(ctx context.Context, p *Plan, cand config.Server, s Step) (string, error) {
	have, err := e.Ops.GTIDExecuted(ctx, cand)
	if err != nil {
		return "", fmt.Errorf("read GTIDs of %s: %w", cand.Name, err)
	}
	// Re-read every survivor: the snapshot may be older than the drain.
	source, want := "", have
	for _, name := range append([]string{s.Source}, p.Survivors...) {
		if name == "" || name == cand.Name {
			continue
		}
		srv, err := e.server(p, name)
		if err != nil {
			return "", err
		}
		set, err := e.Ops.GTIDExecuted(ctx, srv)
		if err != nil {
			e.log().Warn("survivor not readable during catch-up", "server", name, "err", err)
			continue
		}
		if !want.Contains(set) && set.Contains(want) {
			source, want = name, set
		}
	}
	if source == "" {
		return "already holds every survivor's transactions", nil
	}
	src, err := e.server(p, source)
	if err != nil {
		return "", err
	}
	if err := e.Ops.StopReplica(ctx, cand); err != nil {
		return "", fmt.Errorf("stop replication on %s before catch-up: %w", cand.Name, err)
	}
	if err := e.Ops.ChangeSource(ctx, cand, src); err != nil {
		return "", fmt.Errorf("point %s at %s for catch-up: %w", cand.Name, source, err)
	}
	if err := e.Ops.StartReplica(ctx, cand); err != nil {
		return "", fmt.Errorf("start catch-up replication on %s: %w", cand.Name, err)
	}
	if err := e.Ops.WaitGTID(ctx, cand, want); err != nil {
		return "", fmt.Errorf("%s did not reach %s from %s: %w", cand.Name, want, source, err)
	}
	if err := e.Ops.StopReplica(ctx, cand); err != nil {
		return "", fmt.Errorf("stop catch-up replication on %s: %w", cand.Name, err)
	}
	return fmt.Sprintf("caught up from %s to %s", source, want), nil
}
