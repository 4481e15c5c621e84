package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// sleeps records the dispatcher's backoff waits instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testOptions: fast, recorded backoff; a logger into buf.
func testOptions(s *sleeps, buf *bytes.Buffer) Options {
	o := Options{MinBackoff: time.Second, MaxBackoff: 8 * time.Second, MaxRetryAfter: time.Minute, now: fixedNow}
	if s != nil {
		o.sleep = s.sleep
	}
	if buf != nil {
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func closeOK(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func stats(d *Dispatcher, name string) ChannelStats {
	for _, s := range d.Stats() {
		if s.Name == name {
			return s
		}
	}
	return ChannelStats{}
}

func TestDispatcherRetriesThenSucceeds(t *testing.T) {
	rec := newRecorder(t, reply{500, nil, "boom"}, reply{502, nil, ""}, reply{200, nil, "ok"})
	w, _ := NewWebhook(notifier(config.NotifyWebhook, rec.srv.URL, "", nil), chanOpts())
	var s sleeps
	d, err := NewDispatcher([]Channel{{Name: "hook", Kind: "webhook", Notifier: w}}, nil, testOptions(&s, nil))
	if err != nil {
		t.Fatal(err)
	}
	d.Notify(testEvent())
	closeOK(t, d)
	if n := len(rec.requests()); n != 3 {
		t.Fatalf("%d requests", n)
	}
	if st := stats(d, "hook"); st.Sent != 1 || st.Retries != 2 || st.Failed != 0 || st.Dropped != 0 || st.Kind != "webhook" {
		t.Errorf("stats %+v", st)
	}
	// Exponential with jitter: [0.5s, 1s] then [1s, 2s].
	got := s.get()
	if len(got) != 2 || got[0] < 500*time.Millisecond || got[0] > time.Second || got[1] < time.Second || got[1] > 2*time.Second {
		t.Errorf("backoff %v", got)
	}
}

func TestDispatcherBackoffBounds(t *testing.T) {
	d, _ := NewDispatcher(nil, nil, testOptions(nil, nil))
	defer closeOK(t, d)
	for n, hi := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		for range 50 {
			if b := d.backoff(n); b < hi/2 || b > hi {
				t.Fatalf("backoff(%d) = %v, want [%v, %v]", n, b, hi/2, hi)
			}
		}
	}
}

func TestDispatcherHonoursRetryAfter(t *testing.T) {
	rec := newRecorder(t, reply{429, map[string]string{"Retry-After": "7"}, "rate limited"},
		reply{429, map[string]string{"Retry-After": "3600"}, ""}, reply{200, nil, "ok"})
	s, _ := NewSlack(notifier(config.NotifySlack, rec.srv.URL, "", nil), chanOpts())
	var sl sleeps
	d, _ := NewDispatcher([]Channel{{Name: "slack", Notifier: s}}, nil, testOptions(&sl, nil))
	d.Notify(testEvent())
	closeOK(t, d)
	// 7s as asked; 3600s capped at MaxRetryAfter (1m).
	if got := sl.get(); !reflect.DeepEqual(got, []time.Duration{7 * time.Second, time.Minute}) {
		t.Errorf("waits %v", got)
	}
	if st := stats(d, "slack"); st.Sent != 1 || st.Retries != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestDispatcherGivesUp(t *testing.T) {
	// Permanent: one attempt.
	rec := newRecorder(t, reply{403, nil, "invalid_token"})
	s, _ := NewSlack(notifier(config.NotifySlack, rec.srv.URL, "", nil), chanOpts())
	// Retryable: MaxAttempts attempts.
	rec2 := newRecorder(t, reply{500, nil, ""})
	w, _ := NewWebhook(notifier(config.NotifyWebhook, rec2.srv.URL, "", nil), chanOpts())
	var buf bytes.Buffer
	d, _ := NewDispatcher([]Channel{{Name: "slack", Notifier: s}, {Name: "hook", Notifier: w, MaxAttempts: 3}}, nil,
		testOptions(&sleeps{}, &buf))
	d.Notify(testEvent())
	closeOK(t, d)
	if st := stats(d, "slack"); st.Failed != 1 || st.Retries != 0 || len(rec.requests()) != 1 {
		t.Errorf("permanent: %+v, %d requests", st, len(rec.requests()))
	}
	if st := stats(d, "hook"); st.Failed != 1 || st.Retries != 2 || len(rec2.requests()) != 3 {
		t.Errorf("retryable: %+v, %d requests", st, len(rec2.requests()))
	}
	for _, want := range []string{`msg="notification failed" notifier=slack`, "permanent=true", "run=run-42", "event=failover_end", "HTTP 403: invalid_token"} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}

// blocker is a Notifier that records events and blocks each Send until
// released (or its context ends).
type blocker struct {
	started chan string // the title of each event whose Send began
	release chan struct{}
	mu      sync.Mutex
	got     []string
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{})}
}

func (b *blocker) Send(ctx context.Context, e Event) error {
	b.started <- e.Title
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.got = append(b.got, e.Title)
	b.mu.Unlock()
	return nil
}

func (b *blocker) delivered() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

func waitFor[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func titled(title string) Event {
	e := testEvent()
	e.Title = title
	return e
}

// TestNotifyDoesNotBlockOnHungChannel: with one channel hung in the middle
// of a request (a real HTTP endpoint that never answers), Notify returns
// for every event, and the other channel still delivers.
func TestNotifyDoesNotBlockOnHungChannel(t *testing.T) {
	release := make(chan struct{})
	hung := newRecorder(t)
	entered, exited := make(chan struct{}, 10), make(chan struct{}, 10)
	hung.srv.Config.Handler = httpHandlerFunc(func() { entered <- struct{}{} }, blockingHandler(release), func() { exited <- struct{}{} })
	defer close(release)
	dead, _ := NewDingTalk(notifier(config.NotifyDingTalk, hung.srv.URL, "", nil), chanOpts())
	fast := newBlocker()
	close(fast.release)
	d, _ := NewDispatcher([]Channel{{Name: "dead", Notifier: dead, QueueSize: 10}, {Name: "fast", Notifier: fast, QueueSize: 2000}}, nil,
		Options{Timeout: time.Hour, now: fixedNow})

	d.Notify(titled("first"))
	waitFor(t, entered, "the hung request")
	// The dead channel's worker is now stuck in a request. Notify many
	// more events from another goroutine: it must finish while the
	// request still hangs (release is only closed at the end).
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		for i := range 1000 {
			d.Notify(titled("e" + strconv.Itoa(i)))
		}
		done <- time.Since(start)
	}()
	took := waitFor(t, done, "Notify to return while a channel hangs")
	t.Logf("1000 Notify calls with a hung channel took %v", took)
	select {
	case <-exited:
		t.Fatal("the hung request ended before Notify returned: the test proves nothing")
	default:
	}
	if st := stats(d, "dead"); st.Sent != 0 || st.Dropped != 1000-10 {
		t.Errorf("dead channel stats %+v", st)
	}
	// The healthy channel is not held up by the dead one.
	for range 1001 {
		waitFor(t, fast.started, "the healthy channel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	if st := stats(d, "fast"); st.Sent != 1001 {
		t.Errorf("fast channel stats %+v", st)
	}
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	b := newBlocker()
	var buf bytes.Buffer
	d, _ := NewDispatcher([]Channel{{Name: "slow", Notifier: b, QueueSize: 3}}, nil, testOptions(nil, &buf))
	d.Notify(titled("e1"))
	if got := waitFor(t, b.started, "e1"); got != "e1" {
		t.Fatalf("started %s", got)
	}
	// e1 is in flight; the queue (3) takes e2..e4, then e5 and e6 push out
	// e2 and e3.
	for _, title := range []string{"e2", "e3", "e4", "e5", "e6"} {
		d.Notify(titled(title))
	}
	if st := stats(d, "slow"); st.Dropped != 2 || st.Queued != 3 {
		t.Errorf("stats %+v", st)
	}
	close(b.release)
	closeOK(t, d)
	if got := b.delivered(); !reflect.DeepEqual(got, []string{"e1", "e4", "e5", "e6"}) {
		t.Errorf("delivered %v", got)
	}
	if st := stats(d, "slow"); st.Sent != 4 || st.Dropped != 2 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`msg="notification queue full: oldest events dropped" notifier=slow notifier_kind="" dropped=2`)) {
		t.Errorf("drop not logged:\n%s", buf.String())
	}
}

func TestCloseFlushes(t *testing.T) {
	rec := newRecorder(t, reply{500, nil, ""}, reply{200, nil, "ok"})
	w, _ := NewWebhook(notifier(config.NotifyWebhook, rec.srv.URL, "", nil), chanOpts())
	d, _ := NewDispatcher([]Channel{{Name: "hook", Notifier: w}}, nil, testOptions(&sleeps{}, nil))
	for i := range 5 {
		d.Notify(titled("e" + strconv.Itoa(i)))
	}
	closeOK(t, d)
	var titles []string
	for _, r := range rec.requests() {
		var e Event
		if err := jsonUnmarshal(r.Body, &e); err != nil {
			t.Fatal(err)
		}
		titles = append(titles, e.Title)
	}
	// e0 failed once and was retried before the others (order kept).
	if want := []string{"e0", "e0", "e1", "e2", "e3", "e4"}; !reflect.DeepEqual(titles, want) {
		t.Errorf("requests %v, want %v", titles, want)
	}
	if st := stats(d, "hook"); st.Sent != 5 || st.Retries != 1 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	// After Close, events are dropped, and Close again returns at once.
	d.Notify(testEvent())
	if st := stats(d, "hook"); st.Dropped != 1 || st.Sent != 5 {
		t.Errorf("after close %+v", st)
	}
	closeOK(t, d)
}

func TestCloseDeadlineAbandons(t *testing.T) {
	b := newBlocker() // never released: Send ends only with its context
	var sl sleeps
	d, _ := NewDispatcher([]Channel{{Name: "stuck", Notifier: b}}, nil, testOptions(&sl, nil))
	d.Notify(titled("e1"))
	d.Notify(titled("e2"))
	waitFor(t, b.started, "e1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := d.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	// The in-flight e1 and the queued e2 are counted as dropped once the
	// worker has stopped.
	deadline := time.Now().Add(10 * time.Second)
	for stats(d, "stuck").Dropped != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := stats(d, "stuck"); st.Dropped != 2 || st.Sent != 0 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// counter counts events per title.
type counter struct {
	mu  sync.Mutex
	got []string
}

func (c *counter) Send(_ context.Context, e Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, string(e.Kind)+"/"+string(e.Severity))
	return nil
}

func TestRouting(t *testing.T) {
	a, b, c := &counter{}, &counter{}, &counter{}
	groups := []config.ContactGroup{
		{Name: "dba", Notifiers: []string{"a", "b"}, Severities: []string{"critical", "warning"}},
		{Name: "ops", Notifiers: []string{"b", "c"}, Kinds: []string{"failover_start", "failover_end"}},
	}
	d, err := NewDispatcher([]Channel{{Name: "a", Notifier: a}, {Name: "b", Notifier: b}, {Name: "c", Notifier: c}}, groups, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		e    Event
		want []string
	}{
		{Event{Kind: KindDetection}, []string{"a", "b"}}, // default severity critical
		{Event{Kind: KindFailoverStart, Severity: SeverityInfo}, []string{"b", "c"}},
		{Event{Kind: KindFailoverEnd, Severity: SeverityWarning}, []string{"a", "b", "c"}},
		{Event{Kind: KindTest}, nil}, // info, not a failover
	} {
		if got := d.Route(tc.e); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Route(%s/%s) = %v, want %v", tc.e.Kind, tc.e.Severity, got, tc.want)
		}
		d.Notify(tc.e)
	}
	closeOK(t, d)
	if !reflect.DeepEqual(a.got, []string{"detection/critical", "failover_end/warning"}) ||
		!reflect.DeepEqual(b.got, []string{"detection/critical", "failover_start/info", "failover_end/warning"}) ||
		!reflect.DeepEqual(c.got, []string{"failover_start/info", "failover_end/warning"}) {
		t.Errorf("delivered a=%v b=%v c=%v", a.got, b.got, c.got)
	}

	// Without groups, every channel gets everything.
	d2, _ := NewDispatcher([]Channel{{Name: "a", Notifier: a}, {Name: "b", Notifier: b}}, nil, Options{})
	defer closeOK(t, d2)
	if got := d2.Route(Event{Kind: KindTest}); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("no groups: %v", got)
	}

	// Bad wiring is refused.
	if _, err := NewDispatcher([]Channel{{Name: "a", Notifier: a}, {Name: "a", Notifier: b}, {Name: "x"}},
		[]config.ContactGroup{{Name: "g", Notifiers: []string{"zz"}}}, Options{}); err == nil {
		t.Error("bad channels accepted")
	}
}

func TestNotifyFillsDefaultsAndCopiesFields(t *testing.T) {
	c := &counterEvents{}
	d, _ := NewDispatcher([]Channel{{Name: "c", Notifier: c}}, nil, Options{Cluster: "app1", now: fixedNow})
	fields := map[string]string{"k": "v"}
	d.Notify(Event{Kind: KindMoverFailure, Title: "t", Fields: fields})
	fields["k"] = "changed"
	closeOK(t, d)
	if len(c.got) != 1 {
		t.Fatalf("got %v", c.got)
	}
	e := c.got[0]
	if e.Cluster != "app1" || e.Severity != SeverityCritical || !e.Time.Equal(fixedNow()) || e.Fields["k"] != "v" {
		t.Errorf("event %+v", e)
	}
}

type counterEvents struct {
	mu  sync.Mutex
	got []Event
}

func (c *counterEvents) Send(_ context.Context, e Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, e)
	return nil
}

func TestEventKindsMatchConfig(t *testing.T) {
	kinds := []Kind{KindDetection, KindUnreachablePrimary, KindFailoverStart, KindFailoverEnd, KindSwitchover,
		KindAntiFlapBlock, KindMoverFailure, KindTest}
	var got []string
	for _, k := range kinds {
		got = append(got, string(k))
	}
	if !reflect.DeepEqual(got, config.NotifyEventKinds()) {
		t.Errorf("kinds %v, config %v", got, config.NotifyEventKinds())
	}
	if !reflect.DeepEqual([]string{string(SeverityCritical), string(SeverityWarning), string(SeverityInfo)}, config.Severities()) {
		t.Error("severities")
	}
}
