package metrics

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/cloudmha/cloudmha/internal/notify"
)

// documented parses the tables of docs/metrics.md: name → type, the labels
// of its section, and its meaning.
type documented struct {
	typ, meaning string
	labels       []string
}

func readContract(t *testing.T) map[string]documented {
	t.Helper()
	data, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]documented{}
	var section []string
	for line := range strings.Lines(string(data)) {
		switch {
		case strings.HasPrefix(line, "## Instances"):
			section = []string{"cluster", "instance"}
		case strings.HasPrefix(line, "## Clusters"):
			section = []string{"cluster"}
		case strings.HasPrefix(line, "## Manager"):
			section = nil
		}
		if !strings.HasPrefix(line, "| `cloudmha_") {
			continue
		}
		cells := strings.Split(line, "|")
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		out[name] = documented{typ: strings.TrimSpace(cells[2]), meaning: strings.Join(cells[3:], "|"), labels: section}
	}
	if len(out) < 40 {
		t.Fatalf("only %d metrics in docs/metrics.md", len(out))
	}
	return out
}

// extraLabels are the labels each metric has beyond its section's.
var extraLabels = map[string][]string{
	"cloudmha_instance_role":             {"role"},
	"cloudmha_network_probes_total":      {"outcome"},
	"cloudmha_cluster_state":             {"state"},
	"cloudmha_cluster_verdict":           {"verdict"},
	"cloudmha_primary_probes_total":      {"outcome"},
	"cloudmha_failovers_total":           {"outcome"},
	"cloudmha_switchovers_total":         {"outcome"},
	"cloudmha_failover_duration_seconds": {"kind"},
	"cloudmha_mover_operations_total":    {"mover", "op", "outcome"},
	"cloudmha_mover_api_calls_total":     {"mover", "api", "outcome"},
	"cloudmha_build_info":                {"version", "goversion"},
	"cloudmha_notifications_total":       {"channel", "outcome"},
}

// TestContract checks every metric of docs/metrics.md against what the
// package exposes once everything has been recorded: name, type and labels.
func TestContract(t *testing.T) {
	m := New("dev")
	c := m.Cluster("app1")
	c.ObserveSnapshot(cluster3(), "db1")
	c.SetRunning(true)
	c.SetLeader(true)
	c.SetState("PING_OK")
	c.SetVerdict("healthy")
	c.SetPaused(false)
	c.SetBlocked(false)
	c.ObserveProbe(time.Millisecond, true, false)
	c.ObserveDetection(time.Second)
	c.ObserveChange(KindFailover, OutcomeSuccess, time.Second, 0)
	c.ObserveChange(KindSwitchover, OutcomeSuccess, time.Second, time.Second)
	c.SetLastFailover(time.Now())
	c.MoverOp("vip", "acquire", nil)
	c.APICall("aws-eip", "AssociateAddress", errors.New("throttled"))
	c.ObserveNetwork("db2", time.Millisecond, true)
	m.WatchNotifications(func() []notify.ChannelStats { return []notify.ChannelStats{{Name: "hook", Sent: 1}} })

	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	types := map[dto.MetricType]string{dto.MetricType_GAUGE: "gauge", dto.MetricType_COUNTER: "counter", dto.MetricType_HISTOGRAM: "histogram"}
	got := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "cloudmha_") {
			got[f.GetName()] = f
		}
	}
	docs := readContract(t)
	for name, d := range docs {
		f := got[name]
		if f == nil {
			t.Errorf("%s: documented, not exposed", name)
			continue
		}
		if types[f.GetType()] != d.typ {
			t.Errorf("%s: type %s, documented %s", name, types[f.GetType()], d.typ)
		}
		want := append(slices.Clone(d.labels), extraLabels[name]...)
		slices.Sort(want)
		for _, metric := range f.Metric {
			var have []string
			for _, l := range metric.Label {
				have = append(have, l.GetName())
			}
			slices.Sort(have)
			if !slices.Equal(have, want) {
				t.Errorf("%s: labels %v, want %v", name, have, want)
				break
			}
		}
		for _, l := range extraLabels[name] {
			if !strings.Contains(d.meaning, "`"+l+"`") {
				t.Errorf("%s: docs do not name label %s", name, l)
			}
		}
	}
	for name := range got {
		if _, ok := docs[name]; !ok {
			t.Errorf("%s: exposed, not documented", name)
		}
	}
}
