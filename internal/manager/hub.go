package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/detect"
	"github.com/cloudmha/cloudmha/internal/failover"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/notify"
	"github.com/cloudmha/cloudmha/internal/store"
	"github.com/cloudmha/cloudmha/internal/topology"
	"github.com/cloudmha/cloudmha/internal/view"
)

// eventsKept is how many events each cluster keeps in memory for the API.
const eventsKept = 500

// lagAlert is seed 000 §5.2's replication delay threshold.
const lagAlert = 5 // seconds

// Manager watches several clusters in one process and answers for them
// (view.Backend): their topology, events, alerts and history, and the
// operator's actions (switchover, acknowledge, pause, resume).
type Manager struct {
	o        Options
	log      *slog.Logger
	clusters []*watched // sorted by name
	byName   map[string]*watched
	running  atomic.Bool
}

// watched is one cluster, its supervisor and what the API shows of it.
type watched struct {
	c     *Cluster
	sup   *supervisor
	rec   Recorder
	notes *notify.Dispatcher // nil without notifiers
	lock  *store.Lock

	mu         sync.Mutex
	state      store.State
	verdict    detect.Verdict
	hasVerdict bool
	probe      detect.ProbeResult
	snap       *topology.Snapshot
	primary    string
	holder     string
	events     []view.Event // oldest first, at most eventsKept
	alerts     map[string]*view.Alert
	acked      time.Time // alerts that began before it are acknowledged
	pause      *pauseRecord
	updated    time.Time
}

// pauseRecord is kept in <workdir>/<cluster>.paused so that a pause
// survives a manager restart.
type pauseRecord struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

func (w *watched) pausePath() string { return w.c.path(".paused") }

// New opens every cluster (mover validated, notifiers built), takes each
// cluster's manager lock and restores a persisted pause. Close (or Run)
// releases them.
func New(cfgs []*config.Config, o Options) (*Manager, error) {
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
	m := &Manager{o: o, log: log, byName: map[string]*watched{}}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	for _, cfg := range cfgs {
		c, err := OpenCluster(cfg, o.Deps)
		if err != nil {
			return nil, err
		}
		w := &watched{c: c, rec: nopRecorder{}, alerts: map[string]*view.Alert{}}
		m.clusters = append(m.clusters, w)
		m.byName[cfg.Name] = w
		lock, err := store.TryLock(c.path(".manager.lock"))
		if err != nil {
			return nil, fmt.Errorf("cluster %s: another manager watches it: %w", cfg.Name, err)
		}
		w.lock = lock
		if o.Recorder != nil {
			if r := o.Recorder(cfg.Name); r != nil {
				w.rec = r
			}
		}
		c.instrument(w.rec)
		if len(cfg.Notify) > 0 {
			d, err := notify.FromConfig(cfg, notify.Options{Logger: log.With("component", "notify"), Cluster: cfg.Name})
			if err != nil {
				return nil, fmt.Errorf("cluster %s: notifications: %w", cfg.Name, err)
			}
			w.notes = d
		}
		if b, err := os.ReadFile(w.pausePath()); err == nil {
			var p pauseRecord
			if err := json.Unmarshal(b, &p); err != nil {
				return nil, fmt.Errorf("cluster %s: %s: %w", cfg.Name, w.pausePath(), err)
			}
			w.pause = &p
			c.log.Warn("automatic failover is paused (persisted); `cloudmha resume` or the API lifts it", "by", p.By, "reason", p.Reason, "since", p.At)
		}
		w.rec.SetPaused(w.pause != nil)
		w.rec.SetBlocked(false)
		if mv := c.Mover(); mv != nil && mv.Kind() == "vip" && cfg.ShutdownScript == "" {
			c.log.Warn("the vip mover cannot take the VIP from a primary that is cut off the network; " +
				"without a shutdown_script (IPMI, cloud stop) such a primary keeps the VIP and can take writes when its link returns, " +
				"until this manager fences it. Configure shutdown_script or use a cloud address mover")
		}
		w.sup = &supervisor{c: c, o: o, log: c.log, w: w, statusPath: store.StatusPath(cfg.ManagerWorkdir, cfg.Name), kick: make(chan struct{}, 1)}
	}
	sort.Slice(m.clusters, func(i, j int) bool { return m.clusters[i].c.Cfg.Name < m.clusters[j].c.Cfg.Name })
	ok = true
	return m, nil
}

// Run watches every cluster until ctx ends (SIGTERM: `cloudmha stop`). Each
// cluster has its own supervisor; one failing does not stop the others.
// Run closes the Manager when it returns.
func (m *Manager) Run(ctx context.Context) error {
	defer m.Close()
	var wg sync.WaitGroup
	for _, w := range m.clusters {
		w.rec.SetRunning(true)
		w.rec.SetLeader(true)
		wg.Go(func() { w.sup.run(ctx) })
	}
	m.running.Store(true)
	m.log.Info("manager started", "clusters", len(m.clusters), "pid", os.Getpid())
	wg.Wait()
	m.running.Store(false)
	for _, w := range m.clusters {
		w.rec.SetRunning(false)
		w.rec.SetLeader(false)
		_ = os.Remove(w.sup.statusPath)
	}
	m.log.Info("manager stopped")
	return nil
}

// Close flushes notifications (a few seconds at most) and releases the
// clusters' connections and locks.
func (m *Manager) Close() {
	for _, w := range m.clusters {
		if w.notes != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := w.notes.Close(ctx); err != nil {
				w.c.log.Warn("notifications not all delivered at shutdown", "err", err)
			}
			cancel()
			w.notes = nil
		}
		if w.lock != nil {
			_ = w.lock.Unlock()
			w.lock = nil
		}
		w.c.Close()
	}
}

// NotificationStats are the counters of every cluster's notification
// channels; Name is "cluster/notifier".
func (m *Manager) NotificationStats() []notify.ChannelStats {
	var out []notify.ChannelStats
	for _, w := range m.clusters {
		if d := w.notes; d != nil {
			for _, s := range d.Stats() {
				s.Name = w.c.Cfg.Name + "/" + s.Name
				out = append(out, s)
			}
		}
	}
	return out
}

// Ready implements view.Backend.
func (m *Manager) Ready() error {
	if !m.running.Load() {
		return errors.New("manager not running")
	}
	return nil
}

func (m *Manager) get(name string) (*watched, error) {
	w, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", view.ErrNotFound, name)
	}
	return w, nil
}

// Clusters implements view.Backend.
func (m *Manager) Clusters() []view.Cluster {
	out := make([]view.Cluster, 0, len(m.clusters))
	for _, w := range m.clusters {
		out = append(out, w.view())
	}
	return out
}

// Cluster implements view.Backend.
func (m *Manager) Cluster(name string) (view.Cluster, error) {
	w, err := m.get(name)
	if err != nil {
		return view.Cluster{}, err
	}
	return w.view(), nil
}

// Events implements view.Backend.
func (m *Manager) Events(cluster string, limit int) ([]view.Event, error) {
	ws := m.clusters
	if cluster != "" {
		w, err := m.get(cluster)
		if err != nil {
			return nil, err
		}
		ws = []*watched{w}
	}
	var out []view.Event
	for _, w := range ws {
		w.mu.Lock()
		out = append(out, w.events...)
		w.mu.Unlock()
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// History implements view.Backend: the reports of the history file, newest
// first.
func (m *Manager) History(cluster string) ([]json.RawMessage, error) {
	w, err := m.get(cluster)
	if err != nil {
		return nil, err
	}
	h, err := store.ReadHistory(store.HistoryPath(w.c.Cfg.ManagerWorkdir, w.c.Cfg.Name))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	slices.Reverse(h)
	return h, nil
}

// Alerts implements view.Backend.
func (m *Manager) Alerts() []view.Alert {
	var out []view.Alert
	for _, w := range m.clusters {
		w.mu.Lock()
		for _, a := range w.alerts {
			out = append(out, *a)
		}
		w.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := severityRank(out[i].Severity), severityRank(out[j].Severity); ri != rj {
			return ri < rj
		}
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Since.Before(out[j].Since)
	})
	return out
}

func severityRank(s string) int {
	switch s {
	case config.SeverityCritical:
		return 0
	case config.SeverityWarning:
		return 1
	}
	return 2
}

// Switchover implements view.Backend.
func (m *Manager) Switchover(ctx context.Context, cluster string, r view.SwitchRequest) (view.SwitchResult, error) {
	w, err := m.get(cluster)
	if err != nil {
		return view.SwitchResult{}, err
	}
	if r.NewPrimary != "" {
		if _, ok := ServerByName(w.c.Cfg, r.NewPrimary); !ok {
			return view.SwitchResult{}, fmt.Errorf("%w: cluster %s has no server %q", view.ErrInvalid, cluster, r.NewPrimary)
		}
	}
	var res view.SwitchResult
	confirm := func(plan string) bool {
		res.Plan = plan
		return !r.DryRun
	}
	w.c.log.Info("switchover requested", "by", r.By, "new_primary", r.NewPrimary, "dry_run", r.DryRun)
	rep, err := w.switchover(ctx, failover.SwitchOptions{NewPrimary: r.NewPrimary, OrigIsNewReplica: r.OrigMasterIsNewSlave}, confirm, r.By)
	if r.DryRun && errors.Is(err, ErrCancelled) {
		res.OK = true
		return res, nil
	}
	if rep != nil {
		b, jerr := json.Marshal(rep)
		if jerr == nil {
			res.Report = b
		}
	}
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return res, fmt.Errorf("%w: %v", view.ErrConflict, err)
		}
		if rep == nil {
			return res, fmt.Errorf("%w: %v", view.ErrInvalid, err)
		}
		res.Error = err.Error()
		return res, nil
	}
	res.OK = true
	return res, nil
}

// Ack implements view.Backend: the anti-flapping block is lifted (as
// `cloudmha ack`) and the current alerts are marked acknowledged.
func (m *Manager) Ack(cluster, by, note string) error {
	w, err := m.get(cluster)
	if err != nil {
		return err
	}
	now := time.Now()
	if err := store.Ack(w.c.CompletePath(), by, note, now); err != nil {
		return err
	}
	w.mu.Lock()
	w.acked = now
	for _, a := range w.alerts {
		a.Acked = true
	}
	w.mu.Unlock()
	w.c.log.Info("acknowledged", "by", by, "note", note)
	w.emit(notify.Event{Kind: "ack", Severity: notify.SeverityInfo, Title: "acknowledged by " + by,
		Fields: fieldsOf("by", by, "note", note)}, false)
	w.sup.poke()
	return nil
}

// Pause implements view.Backend.
func (m *Manager) Pause(cluster, by, reason string) error {
	w, err := m.get(cluster)
	if err != nil {
		return err
	}
	p := pauseRecord{By: by, Reason: reason, At: time.Now()}
	b, _ := json.Marshal(p)
	if err := os.WriteFile(w.pausePath(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cluster %s: pause: %w", cluster, err)
	}
	w.mu.Lock()
	w.pause = &p
	w.mu.Unlock()
	w.rec.SetPaused(true)
	w.c.log.Warn("automatic failover paused", "by", by, "reason", reason)
	w.emit(notify.Event{Kind: "pause", Severity: notify.SeverityWarning, Title: "automatic failover paused by " + by,
		Fields: fieldsOf("by", by, "reason", reason)}, true)
	w.refreshAlerts()
	return nil
}

// Resume implements view.Backend.
func (m *Manager) Resume(cluster, by string) error {
	w, err := m.get(cluster)
	if err != nil {
		return err
	}
	if err := os.Remove(w.pausePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cluster %s: resume: %w", cluster, err)
	}
	w.mu.Lock()
	w.pause = nil
	w.mu.Unlock()
	w.rec.SetPaused(false)
	w.c.log.Warn("automatic failover resumed", "by", by)
	w.emit(notify.Event{Kind: "resume", Severity: notify.SeverityInfo, Title: "automatic failover resumed by " + by,
		Fields: fieldsOf("by", by)}, true)
	w.refreshAlerts()
	w.sup.poke()
	return nil
}

func (w *watched) paused() *pauseRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pause
}

// switchover runs an operator's switchover through the supervisor's
// cluster and records it.
func (w *watched) switchover(ctx context.Context, o failover.SwitchOptions, confirm Confirm, by string) (*failover.Report, error) {
	start := time.Now()
	rep, err := w.c.Switchover(ctx, o, confirm)
	if errors.Is(err, ErrCancelled) {
		return rep, err
	}
	if rep == nil && err != nil {
		return nil, err
	}
	w.changeDone(rep, err, start, by)
	w.sup.poke()
	return rep, err
}

// changeDone records a finished switchover (metrics, event, holder).
func (w *watched) changeDone(rep *failover.Report, err error, start time.Time, by string) {
	outcome := "success"
	sev := notify.SeverityWarning
	title := fmt.Sprintf("switchover %s → %s done", rep.OldPrimary, rep.NewPrimary)
	if err != nil {
		outcome, sev = "error", notify.SeverityCritical
		title = fmt.Sprintf("switchover %s → %s FAILED", rep.OldPrimary, rep.NewPrimary)
	} else {
		w.setHolder(rep.NewPrimary)
	}
	w.rec.ObserveChange("switchover", outcome, time.Since(start), rep.WriteBlock)
	f := reportFields(rep)
	f["by"] = by
	w.emit(notify.Event{ID: rep.ID, Kind: notify.KindSwitchover, Severity: sev, Title: title, Text: errText(err), Fields: f}, true)
	w.moverFailures(rep)
}

// moverFailures sends a mover_failure event for each address step that
// failed in a run.
func (w *watched) moverFailures(rep *failover.Report) {
	for _, s := range rep.Steps {
		if s.Err == "" || !strings.Contains(string(s.Kind), "address") {
			continue
		}
		mover := ""
		if mv := w.c.Mover(); mv != nil {
			mover = mv.Kind()
		}
		w.emit(notify.Event{ID: rep.ID, Kind: notify.KindMoverFailure, Title: fmt.Sprintf("address mover %s failed at %s", mover, s.Kind),
			Text: s.Err, Fields: fieldsOf("mover", mover, "step", string(s.Kind), "server", s.Server)}, true)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func reportFields(rep *failover.Report) map[string]string {
	f := fieldsOf("old_primary", rep.OldPrimary, "new_primary", rep.NewPrimary, "lost", rep.LostText)
	if !rep.Finished.IsZero() && !rep.Started.IsZero() {
		f["elapsed"] = rep.Finished.Sub(rep.Started).Round(time.Millisecond).String()
	}
	if rep.WriteBlock > 0 {
		f["write_block"] = rep.WriteBlock.Round(time.Millisecond).String()
	}
	if rep.Salvaged > 0 {
		f["salvaged"] = strconv.Itoa(rep.Salvaged)
	}
	if len(rep.Failed) > 0 {
		f["failed"] = strings.Join(rep.Failed, "; ")
	}
	return f
}

// fieldsOf builds an event's fields from key/value pairs, leaving out empty
// values.
func fieldsOf(kv ...string) map[string]string {
	f := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			f[kv[i]] = kv[i+1]
		}
	}
	return f
}

// emit records an event for the API and, when send, hands it to the
// notification channels (which never block).
func (w *watched) emit(e notify.Event, send bool) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Cluster == "" {
		e.Cluster = w.c.Cfg.Name
	}
	if e.Severity == "" {
		e.Severity = notify.DefaultSeverity(e.Kind)
	}
	ve := view.Event{Time: e.Time, ID: e.ID, Cluster: e.Cluster, Kind: string(e.Kind), Severity: string(e.Severity), Title: e.Title, Fields: e.Fields}
	if e.Text != "" {
		if ve.Fields == nil {
			ve.Fields = map[string]string{}
		}
		ve.Fields["detail"] = e.Text
	}
	w.mu.Lock()
	w.events = append(w.events, ve)
	if n := len(w.events); n > eventsKept {
		w.events = slices.Delete(w.events, 0, n-eventsKept)
	}
	w.mu.Unlock()
	if send && w.notes != nil {
		w.notes.Notify(e)
	}
}

func (w *watched) setState(st store.State) {
	w.mu.Lock()
	w.state = st
	w.updated = time.Now()
	w.mu.Unlock()
	w.rec.SetState(st.Name())
	w.refreshAlerts()
}

func (w *watched) setVerdict(v detect.Verdict) {
	w.mu.Lock()
	w.verdict, w.hasVerdict = v, true
	w.mu.Unlock()
	w.rec.SetVerdict(v.Kind.Word())
	w.refreshAlerts()
}

// clearVerdict forgets the verdict about a primary that is no longer the
// primary (after a failover), until the new monitor's first verdict.
func (w *watched) clearVerdict() {
	w.mu.Lock()
	w.hasVerdict = false
	w.mu.Unlock()
	w.refreshAlerts()
}

func (w *watched) setProbe(p detect.ProbeResult) {
	w.mu.Lock()
	w.probe = p
	w.mu.Unlock()
	w.rec.ObserveProbe(p.Latency, p.OK, p.Timeout)
}

func (w *watched) setSnapshot(snap *topology.Snapshot, primary string) {
	w.mu.Lock()
	w.snap, w.primary, w.updated = snap, primary, time.Now()
	if w.holder == "" && w.c.Mover() != nil {
		w.holder = primary
	}
	w.mu.Unlock()
	w.rec.ObserveSnapshot(snap, primary)
	w.refreshAlerts()
}

// current is the last snapshot and the primary found in it.
func (w *watched) current() (*topology.Snapshot, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap, w.primary
}

func (w *watched) setPrimary(name string) {
	w.mu.Lock()
	w.primary = name
	w.mu.Unlock()
}

func (w *watched) setHolder(name string) {
	w.mu.Lock()
	w.holder = name
	w.mu.Unlock()
}

// view renders the cluster for the API.
func (w *watched) view() view.Cluster {
	w.mu.Lock()
	defer w.mu.Unlock()
	cfg := w.c.Cfg
	v := view.Cluster{Name: cfg.Name, State: w.state.Name(), Primary: w.primary, UpdatedAt: w.updated,
		ProbeOK: w.probe.OK, ProbeLatencyMS: float64(w.probe.Latency.Microseconds()) / 1000}
	if w.hasVerdict {
		v.Verdict, v.VerdictReason = w.verdict.Kind.Word(), w.verdict.Reason
	}
	if p := w.pause; p != nil {
		v.Paused, v.PausedBy, v.PausedAt, v.PauseReason = true, p.By, p.At, p.Reason
	}
	if at, ok := store.LastFailover(w.c.CompletePath()); ok {
		v.LastFailover = at
		v.Blocked = w.state == store.FailoverError && time.Since(at) <= w.sup.o.BlockPeriod && !w.sup.o.IgnoreLastFailover
	}
	if mv := w.c.Mover(); mv != nil {
		v.Address = &view.Address{Mover: mv.Kind(), Client: cfg.Address.VIP, Holder: w.holder}
	}
	v.Instances = instancesOf(cfg, w.snap, w.primary)
	return v
}

// instancesOf lists every configured server with what the last snapshot
// read of it.
func instancesOf(cfg *config.Config, snap *topology.Snapshot, primary string) []view.Instance {
	var pst *mysql.Status
	if snap != nil {
		for _, n := range snap.Nodes {
			if n.Server.Name == primary {
				pst = n.Status()
			}
		}
	}
	out := make([]view.Instance, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		in := view.Instance{Name: s.Name, Addr: s.Addr(), Zone: s.Zone, Role: view.RoleUnknown}
		var n *topology.Node
		if snap != nil {
			for _, x := range snap.Nodes {
				if x.Server.Name == s.Name {
					n = x
				}
			}
		}
		if s.Name == primary {
			in.Role = view.RolePrimary
		}
		if n == nil {
			out = append(out, in)
			continue
		}
		st := n.Status()
		if st == nil {
			if n.Err != nil {
				in.Error = n.Err.Error()
			}
			out = append(out, in)
			continue
		}
		in.Reachable = true
		in.ReadOnly = st.ReadOnly
		in.GTID = st.GTIDExecuted.String()
		in.Version = st.Flavor.String()
		in.SemiSync = st.SemiSync.SourceOn || st.SemiSync.ReplicaOn
		if r := st.Replica; r != nil {
			if in.Role == view.RoleUnknown {
				in.Role = view.RoleReplica
			}
			if src := snap.SourceOf(n); src != nil {
				in.Source = src.Server.Name
			} else {
				in.Source = fmt.Sprintf("%s:%d", r.SourceHost, r.SourcePort)
			}
			in.IORunning = r.IORunning == mysql.IOYes
			in.SQLRunning = r.SQLRunning
			in.LagSeconds = r.SecondsBehind
			in.ReplError = strings.TrimSpace(r.LastIOError + " " + r.LastSQLError)
			if pst != nil && pst.Flavor.Kind == st.Flavor.Kind {
				if e, err := mysql.LiveErrant(st, pst); err == nil && !e.IsEmpty() {
					in.Errant = e.String()
				}
			}
		}
		out = append(out, in)
	}
	return out
}

// refreshAlerts recomputes the conditions that hold now, keeping the time
// each began and whether it was acknowledged.
func (w *watched) refreshAlerts() {
	v := w.view()
	now := time.Now()
	cur := map[string]view.Alert{}
	add := func(name, sev, instance, summary string) {
		cur[name+"|"+instance] = view.Alert{Cluster: v.Name, Name: name, Severity: sev, Instance: instance, Summary: summary}
	}
	switch v.Verdict {
	case detect.DeadPrimary.Word():
		add("PrimaryDead", config.SeverityCritical, v.Primary, "the primary is dead: "+v.VerdictReason)
	case detect.UnreachablePrimary.Word():
		add("PrimaryUnreachable", config.SeverityCritical, v.Primary, "the manager cannot reach the primary: "+v.VerdictReason)
	}
	if v.State == store.FailoverError.Name() {
		if v.Blocked {
			add("FailoverBlocked", config.SeverityCritical, "", "automatic failover refused by the anti-flapping guard; acknowledge the last failover to allow it")
		} else {
			add("FailoverError", config.SeverityCritical, "", "the last failover failed; see the history and the manager log")
		}
	}
	if v.State == store.ConfigError.Name() {
		add("MonitorError", config.SeverityCritical, "", "monitoring stopped: configuration or address mover check failed")
	}
	if v.Paused {
		add("FailoverPaused", config.SeverityWarning, "", "automatic failover paused by "+v.PausedBy+": "+v.PauseReason)
	}
	for _, in := range v.Instances {
		if in.Role == view.RolePrimary {
			continue
		}
		if !in.Reachable {
			if in.Error != "" {
				add("InstanceUnreachable", config.SeverityWarning, in.Name, in.Name+" cannot be read: "+in.Error)
			}
			continue
		}
		if in.Role != view.RoleReplica {
			continue
		}
		if !in.IORunning || !in.SQLRunning {
			add("ReplicationStopped", config.SeverityCritical, in.Name, fmt.Sprintf("%s: replication IO running=%t, SQL running=%t %s", in.Name, in.IORunning, in.SQLRunning, in.ReplError))
		} else if in.LagSeconds != nil && *in.LagSeconds > lagAlert {
			add("ReplicationLag", config.SeverityCritical, in.Name, fmt.Sprintf("%s lags %d s behind its source", in.Name, *in.LagSeconds))
		}
		if in.Errant != "" {
			add("ErrantGTID", config.SeverityWarning, in.Name, in.Name+" has errant GTIDs: "+in.Errant)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.alerts {
		if _, ok := cur[k]; !ok {
			delete(w.alerts, k)
		}
	}
	for k, a := range cur {
		if old, ok := w.alerts[k]; ok {
			old.Summary = a.Summary
			continue
		}
		a.Since = now
		w.alerts[k] = &a
	}
	for _, a := range w.alerts {
		a.Acked = !w.acked.IsZero() && !a.Since.After(w.acked)
	}
}
