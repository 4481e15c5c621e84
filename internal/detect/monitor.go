package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// MonitorOptions configures a Monitor. Zero values take the documented
// defaults.
type MonitorOptions struct {
	// Config supplies ping_interval and ping_type when Interval is zero; it
	// may be nil.
	Config   *config.Config
	Primary  config.Server   // the current primary
	Replicas []config.Server // the replicas to consult
	// Interval is ping_interval: how often a healthy primary is probed.
	// 0 means Config.PingInterval, else 3 s. Sub-second values work.
	Interval time.Duration
	// ProbeTimeout bounds one probe (connect and read). 0 means Interval
	// clamped to [500 ms, 1 s].
	ProbeTimeout time.Duration
	Policy       Policy
	// Dial opens network connections (tests dial from a namespace); nil
	// means the standard dialer.
	Dial mysql.DialFunc
	// SecondaryCheck runs MHA's secondary_check_script and returns its
	// exit code. It is called when the replicas cannot decide; nil means
	// none is configured.
	SecondaryCheck func(ctx context.Context) (int, error)
	Logger         *slog.Logger
	// OnProbe, when set, is called with every probe of the primary (for
	// metrics); it must not block.
	OnProbe func(ProbeResult)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Monitor watches one primary and emits Verdicts.
type Monitor struct {
	o            MonitorOptions
	log          *slog.Logger
	now          func() time.Time
	interval     time.Duration // probe cadence while healthy
	fast         time.Duration // probe and replica cadence while not healthy
	probeTimeout time.Duration
	readTimeout  time.Duration // one replica read
	pingType     string

	// newBackend builds the I/O side; tests replace it.
	newBackend func() backend
}

// secondaryTimeout bounds one run of the secondary check.
const secondaryTimeout = 2 * time.Minute

// NewMonitor returns a Monitor for o. It does no I/O.
func NewMonitor(o MonitorOptions) *Monitor {
	m := &Monitor{o: o, log: o.Logger, now: o.Now}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.interval = o.Interval
	if m.interval <= 0 && o.Config != nil {
		m.interval = o.Config.PingInterval
	}
	if m.interval <= 0 {
		m.interval = config.DefaultPingInterval
	}
	m.fast = min(max(m.interval/4, 50*time.Millisecond), 500*time.Millisecond)
	m.probeTimeout = o.ProbeTimeout
	if m.probeTimeout <= 0 {
		m.probeTimeout = min(max(m.interval, 500*time.Millisecond), time.Second)
	}
	m.readTimeout = max(m.probeTimeout, time.Second)
	m.pingType = config.PingSelect
	if o.Config != nil && o.Config.PingType != "" {
		m.pingType = strings.ToUpper(o.Config.PingType)
	}
	m.log = m.log.With("primary", o.Primary.Name, "addr", o.Primary.Addr())
	m.newBackend = func() backend {
		return newMySQLBackend(&m.o, m.pingType, m.probeTimeout, m.readTimeout)
	}
	return m
}

// Run monitors until ctx ends and then returns nil; it returns an error at
// once when the options are unusable. It sends on out the first verdict,
// every verdict whose Kind differs from the previous one, and DeadPrimary
// again at most once per Interval while it lasts (each with fresh evidence).
// Sends block: the caller must keep receiving.
func (m *Monitor) Run(ctx context.Context, out chan<- Verdict) error {
	if m.o.Primary.Host() == "" {
		return errors.New("detect: the primary has no hostname or ip")
	}
	switch m.pingType {
	case config.PingSelect, config.PingConnect, config.PingInsert:
	default:
		return fmt.Errorf("detect: unknown ping_type %q", m.pingType)
	}
	be := m.newBackend()
	defer be.Close()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()

	wake := make(chan struct{}, 1)
	probes := make(chan ProbeResult)
	wg.Go(func() { m.watchLoop(ctx, be, wake) })
	wg.Go(func() { m.probeLoop(ctx, be, wake, probes) })

	m.log.Info("monitoring primary", "interval", m.interval, "probe_timeout", m.probeTimeout,
		"ping_type", m.pingType, "replicas", len(m.o.Replicas))

	var (
		trackers     = make([]tracker, len(m.o.Replicas))
		views        = make(chan []ReplicaView, 1)
		readInFlight bool
		latest       []ReplicaView
		probe        ProbeResult
		haveProbe    bool
		cur          Verdict
		emitted      bool
		lastDead     time.Time
		secResult    = make(chan secondaryResult, 1)
		secRunning   bool
		secCode      *int
		secLastTry   time.Time
		replicaTimer = time.NewTimer(0)
	)
	defer replicaTimer.Stop()

	startRead := func() {
		if readInFlight {
			return
		}
		readInFlight = true
		wg.Go(func() {
			vs := m.readReplicas(ctx, be, trackers)
			select {
			case views <- vs:
			case <-ctx.Done():
			}
		})
	}

	evaluate := func(fromReplicas bool) error {
		obs := Observation{At: m.now(), Primary: probe, Replicas: latest, SecondaryCheck: secCode}
		a := analyze(cur, obs, m.o.Policy)
		next := a.verdict
		send := !emitted || next.Kind != cur.Kind
		if next.Kind == DeadPrimary && fromReplicas && obs.At.Sub(lastDead) >= m.interval {
			send = true
		}
		if next.Kind != cur.Kind || !emitted {
			m.logVerdict(next)
		}
		if next.Kind == Healthy {
			secCode, secLastTry = nil, time.Time{}
		}
		if m.o.SecondaryCheck != nil && !secRunning && secCode == nil &&
			(next.Kind == Suspect || next.Kind == UnreachablePrimary) && a.seesN == 0 &&
			obs.Replicas != nil && !allStale(obs.Replicas, obs.At, next.Since) &&
			(secLastTry.IsZero() || obs.At.Sub(secLastTry) >= 5*m.interval) {
			secRunning, secLastTry = true, obs.At
			wg.Go(func() { m.runSecondary(ctx, secResult) })
		}
		cur = next
		if send {
			emitted = true
			if next.Kind == DeadPrimary {
				lastDead = obs.At
			}
			select {
			case out <- next:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case pr := <-probes:
			probe, haveProbe = pr, true
			if m.o.OnProbe != nil {
				m.o.OnProbe(pr)
			}
			if !pr.OK && !pr.AliveError {
				startRead()
			}
			if err := evaluate(false); err != nil {
				return nil
			}
		case vs := <-views:
			readInFlight = false
			latest = vs
			if haveProbe {
				if err := evaluate(true); err != nil {
					return nil
				}
			}
			next := m.interval
			if cur.Kind != Healthy {
				next = m.fast
			}
			replicaTimer.Reset(next)
		case <-replicaTimer.C:
			startRead()
		case r := <-secResult:
			secRunning = false
			if r.err != nil {
				m.log.Warn("secondary check failed to run", "err", r.err)
			} else if cur.Kind != Healthy {
				code := r.code
				secCode = &code
				m.log.Info("secondary check", "exit", code, "meaning", secondaryMeaning(code))
				if haveProbe {
					if err := evaluate(false); err != nil {
						return nil
					}
				}
			}
		}
	}
}

func (m *Monitor) logVerdict(v Verdict) {
	attrs := []any{"verdict", v.Kind, "reason", v.Reason, "since", v.Since}
	if v.Kind != Healthy {
		attrs = append(attrs, "evidence", strings.Join(v.Evidence, "; "))
	}
	switch v.Kind {
	case Healthy:
		m.log.Info("primary verdict", attrs...)
	case Suspect:
		m.log.Warn("primary verdict", attrs...)
	default:
		m.log.Error("primary verdict", attrs...)
	}
}

type secondaryResult struct {
	code int
	err  error
}

func (m *Monitor) runSecondary(ctx context.Context, res chan<- secondaryResult) {
	sctx, cancel := context.WithTimeout(ctx, secondaryTimeout)
	defer cancel()
	code, err := m.o.SecondaryCheck(sctx)
	select {
	case res <- secondaryResult{code: code, err: err}:
	case <-ctx.Done():
	}
}

// probeLoop probes the primary every Interval while it answers, every fast
// interval while it does not, and at once when the watch connection breaks.
func (m *Monitor) probeLoop(ctx context.Context, be backend, wake <-chan struct{}, probes chan<- ProbeResult) {
	for {
		pr := m.probeOnce(ctx, be)
		if ctx.Err() != nil {
			return
		}
		select {
		case probes <- pr:
		case <-ctx.Done():
			return
		}
		wait := m.fast
		if pr.OK || pr.AliveError {
			wait = max(m.interval-pr.Latency, 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-wake:
			t.Stop()
		}
	}
}

// probeOnce runs one probe within the probe timeout and classifies it.
func (m *Monitor) probeOnce(ctx context.Context, be backend) ProbeResult {
	start := m.now()
	pctx, cancel := context.WithTimeout(ctx, m.probeTimeout)
	defer cancel()
	err := be.ProbePrimary(pctx)
	pr := ProbeResult{At: start, Latency: m.now().Sub(start)}
	if err == nil {
		pr.OK = true
		return pr
	}
	pr.Err = err.Error()
	pr.AliveError = mysql.IsAliveError(err)
	pr.Timeout = !pr.AliveError && (isTimeout(err) || errors.Is(pctx.Err(), context.DeadlineExceeded))
	if ctx.Err() == nil {
		m.log.Debug("probe failed", "err", pr.Err, "timeout", pr.Timeout, "alive_error", pr.AliveError,
			"latency", pr.Latency)
	}
	return pr
}

// watchLoop keeps a connection blocked in a read on the primary and wakes
// the prober the moment it breaks.
func (m *Monitor) watchLoop(ctx context.Context, be backend, wake chan<- struct{}) {
	for {
		established, err := be.WatchPrimary(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := m.interval
		if established {
			m.log.Info("watch connection to the primary broke", "err", err)
			select {
			case wake <- struct{}{}:
			default:
			}
			wait = m.fast
		} else {
			m.log.Debug("watch connection to the primary not open", "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// readReplicas reads every replica in parallel and turns the answers into
// views. trackers[i] is touched only by the goroutine reading replica i, and
// one batch runs at a time.
func (m *Monitor) readReplicas(ctx context.Context, be backend, trackers []tracker) []ReplicaView {
	out := make([]ReplicaView, len(m.o.Replicas))
	var wg sync.WaitGroup
	for i, srv := range m.o.Replicas {
		wg.Go(func() {
			at := m.now()
			rctx, cancel := context.WithTimeout(ctx, m.readTimeout)
			st, err := be.ReadReplica(rctx, i)
			cancel()
			out[i] = trackers[i].view(srv, m.o.Primary, at, st, err)
			if w := trackers[i].warning(); w != "" {
				m.log.Warn(w, "replica", srv.Name)
			}
		})
	}
	wg.Wait()
	return out
}

// tracker follows one replica's read position across reads, so that a
// moving position counts as "receiving" and a still one ages.
type tracker struct {
	seen     bool
	lastRead time.Time // manager clock of the previous successful read
	pos      string    // read position + retrieved GTIDs at lastRead
	// changedAfter is a lower bound of when the current position arrived:
	// the read before the one that first saw it. Zero when the position
	// has never been seen to change.
	changedAfter time.Time
	warnPending  string
	warned       bool
}

// view turns one read into a ReplicaView and advances the tracker.
func (t *tracker) view(srv, primary config.Server, at time.Time, st *mysql.ReceiverStatus, err error) ReplicaView {
	v := ReplicaView{Server: srv.Name, At: at, LastEventAge: -1}
	if err != nil {
		v.Err = err.Error()
		return v
	}
	v.Reachable = true
	if st == nil || st.Replica == nil {
		return v
	}
	rs := st.Replica
	v.Replicating = sourceIs(rs, primary)
	v.IORunning = rs.IORunning
	v.LastIOErrno = rs.LastIOErrno
	v.LastIOError = rs.LastIOError
	switch {
	case !st.HeartbeatKnown:
	case st.HeartbeatPeriod > 0:
		v.HeartbeatPeriod = st.HeartbeatPeriod
	default:
		v.HeartbeatPeriod = -1
	}
	if !t.warned && v.Replicating {
		switch {
		case v.HeartbeatPeriod < 0:
			t.warnPending = "replica has heartbeats disabled: a silent primary is noticed only when its IO thread gives up " +
				"(set MASTER_HEARTBEAT_PERIOD to 1 s)"
		case v.HeartbeatPeriod > time.Second:
			t.warnPending = "replica heartbeat period " + v.HeartbeatPeriod.String() +
				" slows the detection of a silent primary to 3 periods (set MASTER_HEARTBEAT_PERIOD to 1 s)"
		}
		t.warned = true
	}

	pos := rs.ReadPosition().String() + "|" + rs.RetrievedGTIDSet
	if t.seen && pos != t.pos {
		v.ReadPosMoved = true
		t.changedAfter = t.lastRead
	}
	t.seen, t.pos, t.lastRead = true, pos, at

	if hb := st.LastReceived(); !hb.IsZero() && !st.ServerNow.IsZero() {
		v.LastEventAge = max(st.ServerNow.Sub(hb), 0)
	}
	if !t.changedAfter.IsZero() {
		if pa := at.Sub(t.changedAfter); v.LastEventAge < 0 || pa < v.LastEventAge {
			v.LastEventAge = pa
		}
	}
	return v
}

// warning returns (once) a configuration warning found by view.
func (t *tracker) warning() string {
	w := t.warnPending
	t.warnPending = ""
	return w
}

// sourceIs reports whether the replica's configured source is the primary.
func sourceIs(rs *mysql.ReplicaStatus, primary config.Server) bool {
	if rs.SourcePort != 0 && primary.Port != 0 && rs.SourcePort != primary.Port {
		return false
	}
	h := strings.TrimSpace(rs.SourceHost)
	for _, c := range []string{primary.IP, primary.Hostname} {
		if c != "" && strings.EqualFold(h, c) {
			return true
		}
	}
	return false
}
