// Package cloudpush pushes a few key cloudmha metrics to a cloud
// monitoring service — AWS CloudWatch (PutMetricData) or Alibaba Cloud
// CloudMonitor (PutCustomMetric) — for users whose alerting lives there
// rather than in Prometheus.
//
// Select reads the chosen metric families from a prometheus.Gatherer (the
// manager's private registry) and turns them into Samples; a Pusher sends
// them; Run does both every interval until its context ends. A push that
// fails is logged and the next round tries again with fresh values: a
// cloud that is down or slow never stops or delays the manager.
//
// Counters are pushed as deltas: the increase since the previous
// successful push of the same series (labels included), with the first
// round only recording the starting value, and a counter that went down
// (a restarted mysqld's Questions) counted from zero, as Prometheus'
// rate() does. So a CloudWatch Sum, or a CloudMonitor sum, over a period
// is the number of events in that period, e.g. failovers. Gauges are
// pushed as they are.
//
// Credentials come only from each cloud's standard chain
// (internal/cloud/aws, internal/cloud/aliyun) and are never logged.
package cloudpush

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cloudmha/cloudmha/internal/config"
)

// Sample is one value to push.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
	Time   time.Time
	// Counter marks a value that only grows (a counter, or a histogram's
	// _sum and _count): pushers send its increase since their last push.
	Counter bool
}

// Pusher sends samples to one cloud monitoring service.
type Pusher interface {
	// Name identifies the pusher in logs ("cloudwatch", "aliyun-cms").
	Name() string
	// Push sends the samples. It returns when they were all sent, one
	// failed (after the others were tried), or ctx ended.
	Push(ctx context.Context, s []Sample) error
}

// DefaultInterval is the time between pushes when none is given.
const DefaultInterval = config.DefaultPushInterval

// DefaultMetrics returns the key metrics pushed when the configuration
// lists none.
func DefaultMetrics() []string {
	return []string{
		"cloudmha_instance_up",
		"cloudmha_replication_seconds_behind_source",
		"cloudmha_instance_threads_connected",
		"cloudmha_primary_probe_ok",
		"cloudmha_manager_running",
		"cloudmha_failovers_total",
		"cloudmha_cluster_failover_blocked",
	}
}

// Select turns what g holds into samples: only the metric families named
// (gauges, counters and untyped metrics as they are; histograms and
// summaries as NAME_sum and NAME_count), labels kept. A sample's time is
// the metric's own timestamp when it has one, else now. Values that are
// not finite (NaN, ±Inf) are left out: no cloud accepts them. When g
// reports an error together with metrics (a collector failed, the others
// did not), the samples read are returned with the error.
func Select(g prometheus.Gatherer, names []string, now time.Time) ([]Sample, error) {
	mfs, gerr := g.Gather()
	if gerr != nil && len(mfs) == 0 {
		return nil, fmt.Errorf("cloudpush: gather metrics: %w", gerr)
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var out []Sample
	for _, mf := range mfs {
		name := mf.GetName()
		if !want[name] {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			t := now
			if m.TimestampMs != nil {
				t = time.UnixMilli(m.GetTimestampMs())
			}
			add := func(n string, v float64, counter bool) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return
				}
				out = append(out, Sample{Name: n, Labels: labels, Value: v, Time: t, Counter: counter})
			}
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue(), false)
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue(), true)
			case dto.MetricType_UNTYPED:
				add(name, m.GetUntyped().GetValue(), false)
			case dto.MetricType_HISTOGRAM:
				add(name+"_sum", m.GetHistogram().GetSampleSum(), true)
				add(name+"_count", float64(m.GetHistogram().GetSampleCount()), true)
			case dto.MetricType_GAUGE_HISTOGRAM:
				add(name+"_sum", m.GetHistogram().GetSampleSum(), false)
				add(name+"_count", float64(m.GetHistogram().GetSampleCount()), false)
			case dto.MetricType_SUMMARY:
				add(name+"_sum", m.GetSummary().GetSampleSum(), true)
				add(name+"_count", float64(m.GetSummary().GetSampleCount()), true)
			}
		}
	}
	if gerr != nil {
		return out, fmt.Errorf("cloudpush: gather metrics (partial, %d samples read): %w", len(out), gerr)
	}
	return out, nil
}

// ForCluster returns a Gatherer that sees, of what g holds, the series of
// one cluster (label cluster = name) and the manager-wide series that
// have no cluster label (cloudmha_build_info, cloudmha_notifications_total):
// for a manager that supervises several clusters from one registry, each
// cluster's metrics.push then sends that cluster's metrics only. A
// manager-wide counter listed in the push settings of several clusters is
// pushed by each of them.
func ForCluster(g prometheus.Gatherer, name string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		out := make([]*dto.MetricFamily, 0, len(mfs))
		for _, mf := range mfs {
			var keep []*dto.Metric
			for _, m := range mf.GetMetric() {
				own, has := "", false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "cluster" {
						own, has = lp.GetValue(), true
					}
				}
				if !has || own == name {
					keep = append(keep, m)
				}
			}
			if len(keep) > 0 {
				out = append(out, &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Unit: mf.Unit, Metric: keep})
			}
		}
		return out, err
	})
}

// Run pushes the named metric families (DefaultMetrics when names is
// empty) read from g to p every interval (DefaultInterval when not
// positive), the first time one interval after the start, until ctx ends.
// Errors are logged, never fatal, and the next round tries again. Each
// push gets at most nine tenths of an interval; while one is still running
// the next round is skipped, and Run returns as soon as ctx ends even when
// p does not honour its context. Run blocks until then: start it in its
// own goroutine.
func Run(ctx context.Context, log *slog.Logger, g prometheus.Gatherer, p Pusher, names []string, interval time.Duration) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(names) == 0 {
		names = DefaultMetrics()
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	log = log.With("pusher", p.Name())
	log.Info("pushing metrics", "interval", interval, "metrics", strings.Join(names, ","))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var (
		busy     bool // a push is under way
		failures int  // consecutive failed rounds
		// results has room for the one push under way, which therefore
		// never blocks on it, even after Run returned.
		results = make(chan error, 1)
	)
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-results:
			busy = false
			failures = report(log, err, failures)
			continue
		case <-tick.C:
		}
		if busy {
			log.Warn("metrics push skipped: the previous push is still running", "interval", interval)
			continue
		}
		samples, err := Select(g, names, time.Now())
		if err != nil {
			log.Warn("reading metrics to push", "err", err)
		}
		if len(samples) == 0 {
			log.Debug("no metric to push")
			continue
		}
		busy = true
		go func() {
			pctx, cancel := context.WithTimeout(ctx, interval-interval/10)
			defer cancel()
			err := p.Push(pctx, samples)
			if err == nil {
				log.Debug("metrics pushed", "samples", len(samples))
			}
			results <- err
		}()
	}
}

// report logs the end of one push and returns the new count of
// consecutive failures.
func report(log *slog.Logger, err error, failures int) int {
	if err != nil {
		failures++
		log.Warn("metrics push failed; retrying next round", "err", err, "consecutive_failures", failures)
		return failures
	}
	if failures > 0 {
		log.Info("metrics push works again", "after_failures", failures)
	}
	return 0
}

// joinErrors returns nil, the one error (so that errors.Unwrap chains
// such as aliyun.ErrorInfo's still reach the API's error), or all joined.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// seriesKey identifies a series: name and sorted labels.
func seriesKey(s Sample) string {
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.Name)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(s.Labels[k])
	}
	return b.String()
}

// orderedLabels returns the label names of s: cluster and instance first
// (when present), then the others sorted, without empty values.
func orderedLabels(labels map[string]string) []string {
	var first, rest []string
	for k, v := range labels {
		if v == "" {
			continue
		}
		if k == "cluster" || k == "instance" {
			first = append(first, k)
		} else {
			rest = append(rest, k)
		}
	}
	sort.Strings(first) // cluster < instance
	sort.Strings(rest)
	return slices.Concat(first, rest)
}

// deltas turns counter samples into increases since the last committed
// value of their series. It is not safe for concurrent use: a pusher
// guards it.
type deltas struct {
	last map[string]float64
}

// pending is a counter value to commit once its push succeeded.
type pending struct {
	key   string
	value float64
}

// apply returns the samples to send (counters as deltas; a counter seen
// for the first time is left out) and, for each one sent, the value to
// commit after a successful push (key "" for a gauge). Series not in s
// are forgotten, so a series that returns starts again.
func (d *deltas) apply(s []Sample) ([]Sample, []pending) {
	if d.last == nil {
		d.last = map[string]float64{}
	}
	seen := make(map[string]bool, len(s))
	out := make([]Sample, 0, len(s))
	commits := make([]pending, 0, len(s))
	for _, x := range s {
		if !x.Counter {
			out = append(out, x)
			commits = append(commits, pending{})
			continue
		}
		k := seriesKey(x)
		seen[k] = true
		prev, ok := d.last[k]
		if !ok {
			d.last[k] = x.Value // the starting value; nothing to send yet
			continue
		}
		raw := x.Value
		x.Value = raw - prev
		if x.Value < 0 {
			x.Value = raw // reset: counted from zero
		}
		out = append(out, x)
		commits = append(commits, pending{key: k, value: raw})
	}
	for k := range d.last {
		if !seen[k] {
			delete(d.last, k)
		}
	}
	return out, commits
}

// commit records the values of counters whose push succeeded.
func (d *deltas) commit(ps []pending) {
	for _, p := range ps {
		if p.key != "" {
			d.last[p.key] = p.value
		}
	}
}
