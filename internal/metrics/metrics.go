// Package metrics exposes what cloudmha observes as Prometheus metrics
// (docs/metrics.md is the contract for their names, types and labels). It
// owns a private registry: nothing is registered globally. The manager
// reports through a per-cluster recorder (Metrics.Cluster); instance
// metrics come from the last topology snapshot, emitted at scrape time as
// constant metrics, so the servers' own counters stay counters and an
// instance that disappears takes its series with it.
package metrics

import (
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cloudmha/cloudmha/internal/notify"
)

// Namespace prefixes every cloudmha metric.
const Namespace = "cloudmha"

// Buckets are the histogram buckets, in seconds, for durations of detection,
// failover and switchover (and the writes a switchover blocks).
var Buckets = []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120}

// Outcome label values.
const (
	OutcomeOK      = "ok"
	OutcomeError   = "error"
	OutcomeTimeout = "timeout"
	OutcomeLost    = "lost"
	OutcomeSuccess = "success"
	OutcomeBlocked = "blocked"
	OutcomeSent    = "sent"
	OutcomeFailed  = "failed"
	OutcomeDropped = "dropped"
)

// Kinds of change (ObserveChange).
const (
	KindFailover   = "failover"
	KindSwitchover = "switchover"
)

// Metrics owns the registry and the metric vectors shared by all clusters.
// It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	running, leader, paused, blocked *prometheus.GaugeVec
	state, verdict                   *prometheus.GaugeVec
	probeOK, probeLatency            *prometheus.GaugeVec
	probes                           *prometheus.CounterVec
	detection                        *prometheus.HistogramVec
	failovers, switchovers           *prometheus.CounterVec
	changeDuration, writeBlock       *prometheus.HistogramVec
	lastFailover                     *prometheus.GaugeVec
	moverOps, apiCalls               *prometheus.CounterVec
	netRTT                           *prometheus.GaugeVec
	netProbes                        *prometheus.CounterVec

	instances     *instanceCollector
	notifications *notificationCollector

	mu       sync.Mutex
	clusters map[string]*Cluster
}

// New creates the registry with cloudmha_build_info{version, goversion} and
// the Go runtime and process collectors.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, clusters: map[string]*Cluster{}}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: Buckets}, labels)
		reg.MustRegister(v)
		return v
	}
	m.running = gauge("manager_running", "1 while this manager watches the cluster.", "cluster")
	m.leader = gauge("manager_leader", "1 when this manager is the one acting for the cluster.", "cluster")
	m.state = gauge("cluster_state", "1, with label state = MHA's status word (PING_OK, PING_FAILING, FAILOVER_RUNNING, ...).", "cluster", "state")
	m.verdict = gauge("cluster_verdict", "1, with label verdict = healthy, suspect, unreachable_primary, dead_primary.", "cluster", "verdict")
	m.paused = gauge("cluster_paused", "Automatic failover paused by an operator.", "cluster")
	m.blocked = gauge("cluster_failover_blocked", "The anti-flapping guard blocks automatic failover.", "cluster")
	m.probeOK = gauge("primary_probe_ok", "The last probe of the primary succeeded.", "cluster")
	m.probeLatency = gauge("primary_probe_latency_seconds", "The last probe's latency.", "cluster")
	m.probes = counter("primary_probes_total", "Probes of the primary, by outcome (ok, error, timeout).", "cluster", "outcome")
	m.detection = histogram("detection_duration_seconds", "First failing probe to dead verdict.", "cluster")
	m.failovers = counter("failovers_total", "Failovers, by outcome (success, error, blocked).", "cluster", "outcome")
	m.switchovers = counter("switchovers_total", "Switchovers, by outcome (success, error).", "cluster", "outcome")
	m.changeDuration = histogram("failover_duration_seconds", "Duration of failovers and switchovers (label kind).", "cluster", "kind")
	m.writeBlock = histogram("switchover_write_block_seconds", "Writes blocked during a switchover.", "cluster")
	m.lastFailover = gauge("last_failover_timestamp_seconds", "Unix time of the last completed failover.", "cluster")
	m.moverOps = counter("mover_operations_total", "Address mover operations (op = release, acquire, status), by outcome (ok, error).", "cluster", "mover", "op", "outcome")
	m.apiCalls = counter("mover_api_calls_total", "Cloud API requests of the address movers, by outcome (ok, error).", "cluster", "mover", "api", "outcome")
	m.netRTT = gauge("network_rtt_seconds", "Replica to primary round trip (TCP connect to the primary's MySQL port, run over SSH on the replica's host).", "cluster", "instance")
	m.netProbes = counter("network_probes_total", "Replica to primary network probes, by outcome (ok, lost).", "cluster", "instance", "outcome")

	build := gauge("build_info", "1, labels version and goversion.", "version", "goversion")
	build.WithLabelValues(version, runtime.Version()).Set(1)

	m.instances = newInstanceCollector()
	m.notifications = &notificationCollector{desc: prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "notifications_total"),
		"Notifications by channel and outcome (sent, failed, dropped).", []string{"channel", "outcome"}, nil)}
	reg.MustRegister(m.instances, m.notifications,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the private registry (a prometheus.Gatherer for pushers).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. A
// collector's failure is logged in the answer's body rather than failing
// the scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Cluster returns the recorder bound to cluster name, creating it (with
// its outcome counters at zero) on first use; later calls return the same
// one.
func (m *Metrics) Cluster(name string) *Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.clusters[name]; c != nil {
		return c
	}
	c := &Cluster{m: m, name: name}
	for _, o := range []string{OutcomeOK, OutcomeError, OutcomeTimeout} {
		m.probes.WithLabelValues(name, o)
	}
	for _, o := range []string{OutcomeSuccess, OutcomeError, OutcomeBlocked} {
		m.failovers.WithLabelValues(name, o)
	}
	for _, o := range []string{OutcomeSuccess, OutcomeError} {
		m.switchovers.WithLabelValues(name, o)
	}
	m.clusters[name] = c
	return c
}

// Forget removes every series of cluster name: for a cluster no longer in
// the configuration. A later Cluster(name) starts afresh.
func (m *Metrics) Forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.clusters, name)
	l := prometheus.Labels{"cluster": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.running, m.leader, m.paused, m.blocked, m.state, m.verdict, m.probeOK, m.probeLatency,
		m.probes, m.detection, m.failovers, m.switchovers, m.changeDuration, m.writeBlock,
		m.lastFailover, m.moverOps, m.apiCalls, m.netRTT, m.netProbes,
	} {
		v.DeletePartialMatch(l)
	}
	m.instances.forget(name)
}

// WatchNotifications exports the dispatcher's per-channel counters as
// cloudmha_notifications_total{channel, outcome}, read at scrape time.
// Calling it again replaces stats; nil stops the export.
func (m *Metrics) WatchNotifications(stats func() []notify.ChannelStats) {
	m.notifications.set(stats)
}

// notificationCollector calls the dispatcher's Stats at each scrape.
type notificationCollector struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	stats func() []notify.ChannelStats
}

func (c *notificationCollector) set(f func() []notify.ChannelStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = f
}

func (c *notificationCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *notificationCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.stats
	c.mu.Unlock()
	if f == nil {
		return
	}
	seen := map[string]bool{}
	for _, s := range f() {
		if seen[s.Name] { // two channels of one name would fail the scrape
			continue
		}
		seen[s.Name] = true
		for _, v := range []struct {
			outcome string
			n       uint64
		}{{OutcomeSent, s.Sent}, {OutcomeFailed, s.Failed}, {OutcomeDropped, s.Dropped}} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v.n), s.Name, v.outcome)
		}
	}
}

// boolValue is 1 for true, 0 for false.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// seconds converts d for a metric.
func seconds(d time.Duration) float64 { return d.Seconds() }
