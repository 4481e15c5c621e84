package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudmha/cloudmha/internal/netprobe"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// Cluster records one cluster's metrics: every series it writes carries
// cluster=name. It is safe for concurrent use and never blocks on I/O.
type Cluster struct {
	m    *Metrics
	name string

	mu      sync.Mutex // orders the one-hot updates and guards net
	state   string
	verdict string
	net     map[string]bool // instances with network series
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.name }

// ObserveSnapshot replaces the cluster's instance metrics with what snap
// shows; primary is the primary's server name ("" when unknown). Instances
// absent from snap lose their series, network ones included.
func (c *Cluster) ObserveSnapshot(snap *topology.Snapshot, primary string) {
	if snap == nil {
		return
	}
	c.m.instances.set(c.name, instanceSamples(c.m.instances.d, c.name, snap, primary))
	present := map[string]bool{}
	for _, n := range snap.Nodes {
		present[n.Server.Name] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for inst := range c.net {
		if !present[inst] {
			l := prometheus.Labels{"cluster": c.name, "instance": inst}
			c.m.netRTT.DeletePartialMatch(l)
			c.m.netProbes.DeletePartialMatch(l)
			delete(c.net, inst)
		}
	}
}

// sawNetwork remembers that instance has network series.
func (c *Cluster) sawNetwork(instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.net == nil {
		c.net = map[string]bool{}
	}
	c.net[instance] = true
}

// SetRunning: 1 while this manager watches the cluster.
func (c *Cluster) SetRunning(b bool) { c.m.running.WithLabelValues(c.name).Set(boolValue(b)) }

// SetLeader: 1 when this manager is the one acting for the cluster.
func (c *Cluster) SetLeader(b bool) { c.m.leader.WithLabelValues(c.name).Set(boolValue(b)) }

// SetState sets cloudmha_cluster_state{state} to 1 and removes the previous
// state's series; "" removes it and sets none.
func (c *Cluster) SetState(state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = oneHot(c.m.state, c.name, c.state, state)
}

// SetVerdict is SetState for cloudmha_cluster_verdict{verdict}.
func (c *Cluster) SetVerdict(verdict string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verdict = oneHot(c.m.verdict, c.name, c.verdict, verdict)
}

// oneHot moves the 1 of a {cluster, value} gauge from old to cur and
// returns cur.
func oneHot(v *prometheus.GaugeVec, cluster, old, cur string) string {
	if old == cur && cur != "" {
		v.WithLabelValues(cluster, cur).Set(1)
		return cur
	}
	// Delete every other value, not only old: a Forget-and-recreate or a
	// concurrent writer cannot leave two ones behind.
	v.DeletePartialMatch(prometheus.Labels{"cluster": cluster})
	if cur != "" {
		v.WithLabelValues(cluster, cur).Set(1)
	}
	return cur
}

// SetPaused: automatic failover paused by an operator.
func (c *Cluster) SetPaused(b bool) { c.m.paused.WithLabelValues(c.name).Set(boolValue(b)) }

// SetBlocked: the anti-flapping guard blocks automatic failover.
func (c *Cluster) SetBlocked(b bool) { c.m.blocked.WithLabelValues(c.name).Set(boolValue(b)) }

// ObserveProbe records one probe of the primary: its latency, whether it
// succeeded, and its outcome (ok, or timeout when timeout is set, else
// error).
func (c *Cluster) ObserveProbe(latency time.Duration, ok, timeout bool) {
	c.m.probeOK.WithLabelValues(c.name).Set(boolValue(ok))
	c.m.probeLatency.WithLabelValues(c.name).Set(seconds(latency))
	outcome := OutcomeError
	switch {
	case ok:
		outcome = OutcomeOK
	case timeout:
		outcome = OutcomeTimeout
	}
	c.m.probes.WithLabelValues(c.name, outcome).Inc()
}

// ObserveDetection records the time from the first failing probe to the
// dead verdict.
func (c *Cluster) ObserveDetection(d time.Duration) {
	c.m.detection.WithLabelValues(c.name).Observe(seconds(d))
}

// ObserveChange records a failover or switchover (kind) that ended with
// outcome (success, error, or blocked for an automatic failover the
// anti-flapping guard refused). d goes to failover_duration_seconds{kind}
// unless the change was blocked (it never ran); writeBlock, for a
// switchover, to switchover_write_block_seconds when positive. An unknown
// kind records nothing.
func (c *Cluster) ObserveChange(kind, outcome string, d, writeBlock time.Duration) {
	switch kind {
	case KindFailover:
		c.m.failovers.WithLabelValues(c.name, outcome).Inc()
	case KindSwitchover:
		c.m.switchovers.WithLabelValues(c.name, outcome).Inc()
	default:
		return
	}
	if outcome != OutcomeBlocked && d > 0 {
		c.m.changeDuration.WithLabelValues(c.name, kind).Observe(seconds(d))
	}
	if kind == KindSwitchover && writeBlock > 0 {
		c.m.writeBlock.WithLabelValues(c.name).Observe(seconds(writeBlock))
	}
}

// SetLastFailover records when the last failover completed.
func (c *Cluster) SetLastFailover(t time.Time) {
	if t.IsZero() {
		return
	}
	c.m.lastFailover.WithLabelValues(c.name).Set(float64(t.UnixNano()) / 1e9)
}

// MoverOp counts an address mover operation (op = release, acquire,
// status); err nil is ok.
func (c *Cluster) MoverOp(mover, op string, err error) {
	c.m.moverOps.WithLabelValues(c.name, mover, op, errOutcome(err)).Inc()
}

// APICall counts a cloud API request of a mover; err nil is ok.
func (c *Cluster) APICall(mover, api string, err error) {
	c.m.apiCalls.WithLabelValues(c.name, mover, api, errOutcome(err)).Inc()
}

// ObserveNetwork records one replica → primary connect from instance's
// host: a success sets the round trip gauge to rtt; a loss only counts.
func (c *Cluster) ObserveNetwork(instance string, rtt time.Duration, ok bool) {
	c.sawNetwork(instance)
	if ok {
		c.m.netRTT.WithLabelValues(c.name, instance).Set(seconds(rtt))
		c.m.netProbes.WithLabelValues(c.name, instance, OutcomeOK).Inc()
		return
	}
	c.m.netProbes.WithLabelValues(c.name, instance, OutcomeLost).Inc()
}

// ObserveNetworkResult records a whole probe round from instance's host:
// each connect is counted, and the round trip gauge is set to the median
// when any connect succeeded.
func (c *Cluster) ObserveNetworkResult(instance string, r netprobe.Result) {
	c.sawNetwork(instance)
	if len(r.RTTs) > 0 {
		c.m.netRTT.WithLabelValues(c.name, instance).Set(seconds(r.Median()))
		c.m.netProbes.WithLabelValues(c.name, instance, OutcomeOK).Add(float64(len(r.RTTs)))
	}
	if r.Lost > 0 {
		c.m.netProbes.WithLabelValues(c.name, instance, OutcomeLost).Add(float64(r.Lost))
	}
}

func errOutcome(err error) string {
	if err != nil {
		return OutcomeError
	}
	return OutcomeOK
}
