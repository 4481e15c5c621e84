package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// closeGrace is how long Close waits for the workers once its deadline has
// passed and their contexts are cancelled.
const closeGrace = 100 * time.Millisecond

// Dispatcher defaults.
const (
	DefaultQueueSize     = 100
	DefaultTimeout       = 10 * time.Second
	DefaultMaxAttempts   = 5
	DefaultMinBackoff    = time.Second
	DefaultMaxBackoff    = time.Minute
	DefaultMaxRetryAfter = 5 * time.Minute
)

// Channel is one destination of a Dispatcher.
type Channel struct {
	Name     string // unique; contact groups refer to it
	Kind     string // for stats and logs (config.Notify*)
	Notifier Notifier
	// QueueSize, Timeout (per attempt) and MaxAttempts override the
	// Dispatcher's Options when positive.
	QueueSize   int
	Timeout     time.Duration
	MaxAttempts int
	// Redact, if set, cleans error messages before they are logged (the
	// channels from FromConfig remove their URL's token and secret).
	Redact func(string) string
}

// Options configure a Dispatcher. The zero value uses the defaults above.
type Options struct {
	Logger *slog.Logger // default: discard
	// Cluster is given to events that have none.
	Cluster     string
	QueueSize   int           // events waiting per channel; default 100
	Timeout     time.Duration // per attempt; default 10s
	MaxAttempts int           // attempts per event and channel; default 5
	// Backoff before attempt n+1 is MinBackoff·2^(n-1), at most MaxBackoff,
	// with jitter (between half and all of it). A Retry-After from the
	// destination replaces it, capped at MaxRetryAfter.
	MinBackoff    time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	// Channel options for FromConfig.
	Channel ChannelOptions

	// sleep waits d or until ctx ends (tests replace it).
	sleep func(ctx context.Context, d time.Duration) error
	// now stamps events without a time (tests replace it).
	now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.sleep == nil {
		o.sleep = sleepCtx
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ChannelStats are a channel's counters since the Dispatcher started.
type ChannelStats struct {
	Name, Kind string
	Sent       uint64 // events delivered
	Failed     uint64 // events given up after the last attempt or a permanent error
	Dropped    uint64 // events discarded: queue full (oldest first), or not delivered by Close's deadline
	Retries    uint64 // attempts after the first
	Queued     int    // events waiting now
}

// Dispatcher routes events to channels and delivers them in the
// background. Its methods are safe for concurrent use.
type Dispatcher struct {
	opts    Options
	log     *slog.Logger
	workers []*worker
	byName  map[string]*worker
	groups  []config.ContactGroup

	// sendCtx bounds every attempt and backoff; Close cancels it at its
	// deadline.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	closing    chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup
}

// NewDispatcher starts one worker per channel. groups route events (see
// config.ContactGroup); without any, every channel receives every event.
func NewDispatcher(channels []Channel, groups []config.ContactGroup, o Options) (*Dispatcher, error) {
	o = o.withDefaults()
	d := &Dispatcher{opts: o, log: o.Logger, byName: map[string]*worker{}, groups: slices.Clone(groups),
		closing: make(chan struct{})}
	var errs []error
	for _, ch := range channels {
		switch {
		case ch.Name == "":
			errs = append(errs, errors.New("notify: a channel has no name"))
			continue
		case ch.Notifier == nil:
			errs = append(errs, fmt.Errorf("notify: channel %s has no notifier", ch.Name))
			continue
		case d.byName[ch.Name] != nil:
			errs = append(errs, fmt.Errorf("notify: duplicate channel name %s", ch.Name))
			continue
		}
		w := newWorker(ch, o)
		d.workers = append(d.workers, w)
		d.byName[ch.Name] = w
	}
	for _, g := range groups {
		for _, n := range g.Notifiers {
			if d.byName[n] == nil {
				errs = append(errs, fmt.Errorf("notify: contact group %s: no channel named %s", g.Name, n))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.sendCtx, d.cancelSend = context.WithCancel(context.Background())
	for _, w := range d.workers {
		d.wg.Add(1)
		go d.run(w)
	}
	return d, nil
}

// FromConfig builds the channels of c.Notify (with their options timeout,
// retries and queue_size) and routes by c.ContactGroups.
func FromConfig(c *config.Config, o Options) (*Dispatcher, error) {
	var channels []Channel
	var errs []error
	for i, name := range config.NotifierNames(c.Notify) {
		n := c.Notify[i]
		n.Name = name
		ch, err := channelFromConfig(n, o.Channel)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		channels = append(channels, ch)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Cluster == "" {
		o.Cluster = c.Name
	}
	return NewDispatcher(channels, c.ContactGroups, o)
}

func channelFromConfig(n config.Notifier, co ChannelOptions) (Channel, error) {
	nt, err := New(n, co)
	if err != nil {
		return Channel{}, err
	}
	red := notifierRedactor(n)
	ch := Channel{Name: n.Name, Kind: n.Kind, Notifier: nt, Redact: red.String}
	if v, ok := n.Options["timeout"]; ok {
		if ch.Timeout, err = config.ParseNotifyDuration(v); err != nil || ch.Timeout <= 0 {
			return Channel{}, fmt.Errorf("notifier %s: options.timeout: invalid %q", n.Name, v)
		}
	}
	if v, ok := n.Options["retries"]; ok {
		r, err := strconv.Atoi(v)
		if err != nil || r < 0 {
			return Channel{}, fmt.Errorf("notifier %s: options.retries: invalid %q", n.Name, v)
		}
		ch.MaxAttempts = r + 1
	}
	if v, ok := n.Options["queue_size"]; ok {
		if ch.QueueSize, err = strconv.Atoi(v); err != nil || ch.QueueSize < 1 {
			return Channel{}, fmt.Errorf("notifier %s: options.queue_size: invalid %q", n.Name, v)
		}
	}
	return ch, nil
}

// Route returns the names of the channels an event goes to.
func (d *Dispatcher) Route(e Event) []string {
	e = d.normalize(e)
	var out []string
	if len(d.groups) == 0 {
		for _, w := range d.workers {
			out = append(out, w.ch.Name)
		}
		return out
	}
	for _, g := range d.groups {
		if !g.Selects(string(e.Severity), string(e.Kind)) {
			continue
		}
		for _, n := range g.Notifiers {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func (d *Dispatcher) normalize(e Event) Event {
	if e.Severity == "" {
		e.Severity = DefaultSeverity(e.Kind)
	}
	if e.Cluster == "" {
		e.Cluster = d.opts.Cluster
	}
	if e.Time.IsZero() {
		e.Time = d.opts.now()
	}
	return e
}

// Notify queues e for every channel of the contact groups that select it
// and returns at once: it never waits for a channel. When a channel's
// queue is full its oldest event is dropped (and counted). After Close,
// events are dropped.
func (d *Dispatcher) Notify(e Event) {
	e = d.normalize(e)
	// The caller may reuse its map.
	e.Fields = maps.Clone(e.Fields)
	for _, name := range d.Route(e) {
		d.byName[name].push(e)
	}
}

// Stats returns every channel's counters, in configuration order.
func (d *Dispatcher) Stats() []ChannelStats {
	out := make([]ChannelStats, 0, len(d.workers))
	for _, w := range d.workers {
		out = append(out, ChannelStats{Name: w.ch.Name, Kind: w.ch.Kind, Sent: w.sent.Load(), Failed: w.failed.Load(),
			Dropped: w.dropped.Load(), Retries: w.retries.Load(), Queued: w.len()})
	}
	return out
}

// Close stops accepting events and delivers those queued (including their
// retries) until ctx ends; then it abandons the rest, counting them as
// dropped, and returns an error wrapping ctx's. Calling it again waits
// again.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		for _, w := range d.workers {
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
		}
		close(d.closing)
	})
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		d.cancelSend()
		return nil
	case <-ctx.Done():
	}
	var left int
	for _, w := range d.workers {
		left += w.len()
	}
	d.cancelSend()
	// Every attempt and backoff honours sendCtx, so the workers stop
	// promptly (counting what they abandon as dropped); a Notifier that
	// ignores its context is not waited for.
	select {
	case <-done:
	case <-time.After(closeGrace):
	}
	return fmt.Errorf("notify: close: gave up with %d notification(s) still queued: %w", left, ctx.Err())
}

// worker delivers one channel's events in order.
type worker struct {
	ch          Channel
	timeout     time.Duration
	maxAttempts int

	mu     sync.Mutex
	buf    []Event // ring buffer
	head   int
	n      int
	closed bool // Close was called: push drops
	// unlogged counts drops not yet logged (Notify does not log, so that
	// a slow log cannot slow it down).
	unlogged uint64
	wake     chan struct{}

	sent, failed, dropped, retries atomic.Uint64
}

func newWorker(ch Channel, o Options) *worker {
	w := &worker{ch: ch, timeout: o.Timeout, maxAttempts: o.MaxAttempts, wake: make(chan struct{}, 1)}
	size := o.QueueSize
	if ch.QueueSize > 0 {
		size = ch.QueueSize
	}
	if ch.Timeout > 0 {
		w.timeout = ch.Timeout
	}
	if ch.MaxAttempts > 0 {
		w.maxAttempts = ch.MaxAttempts
	}
	w.buf = make([]Event, size)
	return w
}

// push queues e, dropping the oldest event when the queue is full.
func (w *worker) push(e Event) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.dropped.Add(1)
		return
	}
	if w.n == len(w.buf) {
		w.buf[w.head] = Event{}
		w.head = (w.head + 1) % len(w.buf)
		w.n--
		w.unlogged++
		w.dropped.Add(1)
	}
	w.buf[(w.head+w.n)%len(w.buf)] = e
	w.n++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest event, and how many drops are waiting to be logged.
func (w *worker) pop() (Event, bool, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	dropped := w.unlogged
	w.unlogged = 0
	if w.n == 0 {
		return Event{}, false, dropped
	}
	e := w.buf[w.head]
	w.buf[w.head] = Event{}
	w.head = (w.head + 1) % len(w.buf)
	w.n--
	return e, true, dropped
}

func (w *worker) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (d *Dispatcher) run(w *worker) {
	defer d.wg.Done()
	log := d.log.With("notifier", w.ch.Name, "notifier_kind", w.ch.Kind)
	for {
		e, ok, dropped := w.pop()
		if dropped > 0 {
			log.Warn("notification queue full: oldest events dropped", "dropped", dropped, "queue_size", len(w.buf))
		}
		if ok {
			if d.sendCtx.Err() != nil {
				w.dropped.Add(1)
				continue
			}
			d.deliver(w, log, e)
			continue
		}
		select {
		case <-w.wake:
		case <-d.closing:
			// Closing: the queue is empty and stays so.
			if w.len() == 0 {
				return
			}
		}
	}
}

// deliver sends e with retries.
func (d *Dispatcher) deliver(w *worker, log *slog.Logger, e Event) {
	log = log.With("run", e.ID, "cluster", e.Cluster, "event", string(e.Kind), "severity", string(e.Severity))
	redact := w.ch.Redact
	if redact == nil {
		redact = func(s string) string { return s }
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(d.sendCtx, w.timeout)
		err := w.ch.Notifier.Send(ctx, e)
		cancel()
		if err == nil {
			w.sent.Add(1)
			log.Info("notification sent", "attempt", attempt)
			return
		}
		msg := redact(err.Error())
		if d.sendCtx.Err() != nil {
			w.dropped.Add(1)
			log.Warn("notification abandoned at shutdown", "attempt", attempt, "err", msg)
			return
		}
		if IsPermanent(err) || attempt >= w.maxAttempts {
			w.failed.Add(1)
			log.Error("notification failed", "attempt", attempt, "permanent", IsPermanent(err), "err", msg)
			return
		}
		delay := d.backoff(attempt)
		if ra, ok := RetryAfter(err); ok {
			delay = min(ra, d.opts.MaxRetryAfter)
		}
		w.retries.Add(1)
		log.Warn("notification attempt failed, will retry", "attempt", attempt, "retry_in", delay, "err", msg)
		if d.opts.sleep(d.sendCtx, delay) != nil {
			w.dropped.Add(1)
			log.Warn("notification abandoned at shutdown", "attempt", attempt)
			return
		}
	}
}

// backoff is the wait after failed attempt n (1-based): exponential, with
// "equal jitter" (half fixed, half random).
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.opts.MinBackoff
	for i := 1; i < n && b < d.opts.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.opts.MaxBackoff)
	half := b / 2
	return half + rand.N(b-half+1)
}
