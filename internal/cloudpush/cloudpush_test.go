package cloudpush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cloudmha/cloudmha/internal/config"
)

// testRegistry holds a few cloudmha-like metrics of every kind.
func testRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudmha_instance_up"}, []string{"cluster", "instance"})
	up.WithLabelValues("app1", "db1").Set(1)
	up.WithLabelValues("app1", "db2").Set(0)
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudmha_replication_seconds_behind_source"}, []string{"cluster", "instance"})
	lag.WithLabelValues("app1", "db2").Set(math.NaN()) // never pushed
	fo := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloudmha_failovers_total"}, []string{"cluster", "outcome"})
	fo.WithLabelValues("app1", "success").Add(2)
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloudmha_failover_duration_seconds", Buckets: []float64{1, 10}}, []string{"cluster", "kind"})
	dur.WithLabelValues("app1", "failover").Observe(3)
	dur.WithLabelValues("app1", "failover").Observe(4.5)
	sum := prometheus.NewSummary(prometheus.SummaryOpts{Name: "cloudmha_test_summary"})
	sum.Observe(7)
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cloudmha_manager_leader"})
	other.Set(1)
	untyped := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "cloudmha_test_untyped"}, func() float64 { return 42 })
	reg.MustRegister(up, lag, fo, dur, sum, other, untyped)
	return reg
}

func TestSelect(t *testing.T) {
	reg := testRegistry(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	got, err := Select(reg, []string{"cloudmha_instance_up", "cloudmha_replication_seconds_behind_source", "cloudmha_failovers_total",
		"cloudmha_failover_duration_seconds", "cloudmha_test_summary", "cloudmha_test_untyped", "cloudmha_absent"}, now)
	if err != nil {
		t.Fatal(err)
	}
	app := func(kv ...string) map[string]string {
		m := map[string]string{"cluster": "app1"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	want := []Sample{
		{Name: "cloudmha_failover_duration_seconds_sum", Labels: app("kind", "failover"), Value: 7.5, Time: now, Counter: true},
		{Name: "cloudmha_failover_duration_seconds_count", Labels: app("kind", "failover"), Value: 2, Time: now, Counter: true},
		{Name: "cloudmha_failovers_total", Labels: app("outcome", "success"), Value: 2, Time: now, Counter: true},
		{Name: "cloudmha_instance_up", Labels: app("instance", "db1"), Value: 1, Time: now},
		{Name: "cloudmha_instance_up", Labels: app("instance", "db2"), Value: 0, Time: now},
		{Name: "cloudmha_test_summary_sum", Labels: map[string]string{}, Value: 7, Time: now, Counter: true},
		{Name: "cloudmha_test_summary_count", Labels: map[string]string{}, Value: 1, Time: now, Counter: true},
		{Name: "cloudmha_test_untyped", Labels: map[string]string{}, Value: 42, Time: now},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Select:\n got %+v\nwant %+v", got, want)
	}
	// Only what is asked for.
	got, err = Select(reg, []string{"cloudmha_manager_leader"}, now)
	if err != nil || len(got) != 1 || got[0].Name != "cloudmha_manager_leader" || got[0].Value != 1 {
		t.Errorf("one name: %v %+v", err, got)
	}
	if got, err := Select(reg, nil, now); err != nil || len(got) != 0 {
		t.Errorf("no names: %v %+v", err, got)
	}
}

// brokenCollector fails to collect, beside working collectors.
type brokenCollector struct{ desc *prometheus.Desc }

func (b brokenCollector) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }
func (b brokenCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(b.desc, errors.New("the instance did not answer"))
}

func TestSelectPartialGather(t *testing.T) {
	reg := testRegistry(t)
	reg.MustRegister(brokenCollector{prometheus.NewDesc("cloudmha_broken", "x", nil, nil)})
	got, err := Select(reg, []string{"cloudmha_instance_up"}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "the instance did not answer") || !strings.Contains(err.Error(), "partial, 2 samples") {
		t.Errorf("error %v", err)
	}
	if len(got) != 2 {
		t.Errorf("samples %+v", got)
	}
	failing := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, errors.New("closed") })
	if _, err := Select(failing, DefaultMetrics(), time.Now()); err == nil || !strings.Contains(err.Error(), "gather metrics: closed") {
		t.Errorf("total failure: %v", err)
	}
}

func TestForCluster(t *testing.T) {
	reg := testRegistry(t)
	other := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudmha_manager_running"}, []string{"cluster"})
	other.WithLabelValues("app1").Set(1)
	other.WithLabelValues("app2").Set(1)
	reg.MustRegister(other)
	got, err := Select(ForCluster(reg, "app2"), []string{"cloudmha_instance_up", "cloudmha_manager_running", "cloudmha_manager_leader"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name+"/"+s.Labels["cluster"])
	}
	if want := []string{"cloudmha_manager_leader/", "cloudmha_manager_running/app2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("app2 sees %v, want %v", names, want)
	}
}

func TestDefaultMetricsAreDocumented(t *testing.T) {
	for _, n := range DefaultMetrics() {
		if !slices.Contains(config.MetricNames(), n) {
			t.Errorf("default metric %s is not in config.MetricNames (docs/metrics.md)", n)
		}
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakePusher records pushes; fail makes them fail, block makes them hang
// without looking at their context.
type fakePusher struct {
	mu     sync.Mutex
	pushes [][]Sample
	calls  atomic.Int32
	fail   atomic.Bool
	block  chan struct{} // nil: no blocking
}

func (f *fakePusher) Name() string { return "fake" }

func (f *fakePusher) Push(_ context.Context, s []Sample) error {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	f.pushes = append(f.pushes, s)
	f.mu.Unlock()
	if f.fail.Load() {
		return fmt.Errorf("injected failure")
	}
	return nil
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunPushesAndSurvivesFailures(t *testing.T) {
	reg := testRegistry(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := &fakePusher{}
	p.fail.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, log, reg, p, nil, 20*time.Millisecond)
	}()
	waitUntil(t, "three failed pushes", func() bool { return p.calls.Load() >= 3 })
	p.fail.Store(false)
	waitUntil(t, "recovery", func() bool { return strings.Contains(logs.String(), "metrics push works again") })
	cancel()
	<-done
	out := logs.String()
	for _, want := range []string{"pushing metrics", "pusher=fake", "metrics push failed; retrying next round", "injected failure", "consecutive_failures=3"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// Default metrics: instance_up (2 series) and failovers_total.
	p.mu.Lock()
	defer p.mu.Unlock()
	var names []string
	for _, s := range p.pushes[0] {
		names = append(names, s.Name)
	}
	if want := []string{"cloudmha_failovers_total", "cloudmha_instance_up", "cloudmha_instance_up"}; !reflect.DeepEqual(names, want) {
		t.Errorf("pushed %v, want %v", names, want)
	}
}

// TestRunNotBlockedBySlowPusher: a push that hangs, ignoring its context,
// neither piles up pushes nor keeps Run from returning when ctx ends.
func TestRunNotBlockedBySlowPusher(t *testing.T) {
	reg := testRegistry(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	p := &fakePusher{block: make(chan struct{})}
	defer close(p.block)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, log, reg, p, []string{"cloudmha_instance_up"}, 10*time.Millisecond)
	}()
	waitUntil(t, "a skipped round", func() bool { return strings.Contains(logs.String(), "previous push is still running") })
	if n := p.calls.Load(); n != 1 {
		t.Errorf("%d pushes started while the first hangs, want 1", n)
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run returned %s after cancel", d)
	}
}

func TestRunNothingToPush(t *testing.T) {
	p := &fakePusher{}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	Run(ctx, nil, prometheus.NewRegistry(), p, nil, 10*time.Millisecond)
	if n := p.calls.Load(); n != 0 {
		t.Errorf("%d pushes of nothing", n)
	}
}

func TestDeltas(t *testing.T) {
	var d deltas
	c := func(v float64, labels ...string) Sample {
		m := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			m[labels[i]] = labels[i+1]
		}
		return Sample{Name: "c_total", Labels: m, Value: v, Counter: true}
	}
	g := Sample{Name: "g", Value: 5}
	values := func(s []Sample) []float64 {
		var out []float64
		for _, x := range s {
			out = append(out, x.Value)
		}
		return out
	}
	// First sight: counters only recorded.
	out, commits := d.apply([]Sample{g, c(10, "a", "1"), c(3, "a", "2")})
	d.commit(commits)
	if !reflect.DeepEqual(values(out), []float64{5}) {
		t.Fatalf("round 1: %v", values(out))
	}
	// Deltas; a failed push commits nothing.
	out, _ = d.apply([]Sample{g, c(12, "a", "1"), c(3, "a", "2")})
	if !reflect.DeepEqual(values(out), []float64{5, 2, 0}) {
		t.Fatalf("round 2: %v", values(out))
	}
	// The next round catches up; a reset counts from zero.
	out, commits = d.apply([]Sample{c(15, "a", "1"), c(1, "a", "2")})
	d.commit(commits)
	if !reflect.DeepEqual(values(out), []float64{5, 1}) {
		t.Fatalf("round 3: %v", values(out))
	}
	// A series that vanished starts again when it returns.
	out, commits = d.apply([]Sample{c(16, "a", "1")})
	d.commit(commits)
	out2, _ := d.apply([]Sample{c(16, "a", "1"), c(9, "a", "2")})
	if !reflect.DeepEqual(values(out), []float64{1}) || !reflect.DeepEqual(values(out2), []float64{0}) {
		t.Fatalf("round 4/5: %v %v", values(out), values(out2))
	}
}
