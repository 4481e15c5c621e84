package cloudpush

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// fakeCloudWatch records PutMetricData calls; failBatch makes the call
// with that 1-based number fail.
type fakeCloudWatch struct {
	mu        sync.Mutex
	calls     []*cloudwatch.PutMetricDataInput
	failBatch int
}

func (f *fakeCloudWatch) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	if len(f.calls) == f.failBatch {
		return nil, errors.New("injected: InternalServiceError")
	}
	return &cloudwatch.PutMetricDataOutput{}, nil
}

func TestCloudWatchBatchesAndDimensions(t *testing.T) {
	api := &fakeCloudWatch{}
	cw, err := NewCloudWatch(t.Context(), CloudWatchOptions{API: api})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	var s []Sample
	for i := range 2500 {
		s = append(s, Sample{Name: "cloudmha_instance_up", Labels: map[string]string{"instance": fmt.Sprintf("db%d", i), "cluster": "app1", "zone": "", "role": "replica"}, Value: 1, Time: now})
	}
	wide := map[string]string{}
	for i := range 40 {
		wide[fmt.Sprintf("l%02d", i)] = strings.Repeat("v", 2000)
	}
	s = append(s, Sample{Name: "cloudmha_replication_seconds_behind_source", Labels: wide, Value: 3, Time: now})
	if err := cw.Push(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if len(api.calls) != 3 || len(api.calls[0].MetricData) != 1000 || len(api.calls[2].MetricData) != 501 {
		t.Fatalf("%d calls", len(api.calls))
	}
	d := api.calls[0].MetricData[0]
	if sdkaws.ToString(api.calls[0].Namespace) != "cloudmha" || sdkaws.ToString(d.MetricName) != "cloudmha_instance_up" ||
		sdkaws.ToFloat64(d.Value) != 1 || !sdkaws.ToTime(d.Timestamp).Equal(now) || d.Unit != types.StandardUnitNone {
		t.Errorf("datum %+v", d)
	}
	var dims []string
	for _, x := range d.Dimensions {
		dims = append(dims, sdkaws.ToString(x.Name)+"="+sdkaws.ToString(x.Value))
	}
	if got := strings.Join(dims, ","); got != "cluster=app1,instance=db0,role=replica" {
		t.Errorf("dimensions %s", got)
	}
	last := api.calls[2].MetricData[500]
	if len(last.Dimensions) != MaxCloudWatchDimensions || len(sdkaws.ToString(last.Dimensions[0].Value)) != 1024 || last.Unit != types.StandardUnitSeconds {
		t.Errorf("wide datum: %d dimensions, unit %s", len(last.Dimensions), last.Unit)
	}
}

func TestCloudWatchRequestSizeLimit(t *testing.T) {
	api := &fakeCloudWatch{}
	cw, _ := NewCloudWatch(t.Context(), CloudWatchOptions{API: api, Namespace: "Prod/DB"})
	labels := map[string]string{}
	for i := range 30 {
		labels[fmt.Sprintf("label%02d", i)] = strings.Repeat("x", 100)
	}
	var s []Sample
	for range 600 { // about 4 kB each: 2.4 MB in all
		s = append(s, Sample{Name: "cloudmha_instance_up", Labels: labels, Value: 1, Time: time.Now()})
	}
	if err := cw.Push(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if len(api.calls) < 3 {
		t.Fatalf("%d calls for 2.4 MB: the 1 MB limit is not respected", len(api.calls))
	}
	for _, c := range api.calls {
		if sdkaws.ToString(c.Namespace) != "Prod/DB" {
			t.Errorf("namespace %s", sdkaws.ToString(c.Namespace))
		}
	}
}

func TestCloudWatchCounterDeltas(t *testing.T) {
	api := &fakeCloudWatch{}
	cw, _ := NewCloudWatch(t.Context(), CloudWatchOptions{API: api})
	fo := func(v float64) []Sample {
		return []Sample{
			{Name: "cloudmha_instance_up", Labels: map[string]string{"cluster": "a"}, Value: 1, Time: time.Now()},
			{Name: "cloudmha_failovers_total", Labels: map[string]string{"cluster": "a", "outcome": "success"}, Value: v, Time: time.Now(), Counter: true},
		}
	}
	pushed := func() []string {
		c := api.calls[len(api.calls)-1]
		var out []string
		for _, d := range c.MetricData {
			out = append(out, fmt.Sprintf("%s=%g %s", sdkaws.ToString(d.MetricName), sdkaws.ToFloat64(d.Value), d.Unit))
		}
		return out
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cw.Push(t.Context(), fo(4)))
	if got := strings.Join(pushed(), ","); got != "cloudmha_instance_up=1 None" {
		t.Errorf("first push: %s (the counter's first value is only recorded)", got)
	}
	must(cw.Push(t.Context(), fo(5)))
	if got := strings.Join(pushed(), ","); got != "cloudmha_instance_up=1 None,cloudmha_failovers_total=1 Count" {
		t.Errorf("second push: %s", got)
	}
	api.failBatch = len(api.calls) + 1
	err := cw.Push(t.Context(), fo(7))
	if err == nil || !strings.Contains(err.Error(), "cloudwatch PutMetricData (namespace cloudmha, batch 1 of 1, 2 metrics): injected") {
		t.Fatalf("failed push: %v", err)
	}
	must(cw.Push(t.Context(), fo(8)))
	if got := strings.Join(pushed(), ","); got != "cloudmha_instance_up=1 None,cloudmha_failovers_total=3 Count" {
		t.Errorf("after a failed push: %s (want the increase since the last accepted push)", got)
	}
	// A cancelled context sends nothing.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n := len(api.calls)
	if err := cw.Push(ctx, fo(9)); !errors.Is(err, context.Canceled) || len(api.calls) != n {
		t.Errorf("cancelled: %v, %d calls", err, len(api.calls)-n)
	}
}

func TestCloudWatchUnits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		counter bool
		want    types.StandardUnit
	}{
		{"cloudmha_instance_up", false, types.StandardUnitNone},
		{"cloudmha_replication_seconds_behind_source", false, types.StandardUnitSeconds},
		{"cloudmha_instance_read_duration_seconds", false, types.StandardUnitSeconds},
		{"cloudmha_failover_duration_seconds_sum", true, types.StandardUnitSeconds},
		{"cloudmha_failover_duration_seconds_count", true, types.StandardUnitCount},
		{"cloudmha_instance_binlog_bytes", false, types.StandardUnitBytes},
		{"cloudmha_replication_bytes_behind", false, types.StandardUnitBytes},
		{"cloudmha_last_failover_timestamp_seconds", false, types.StandardUnitNone},
		{"cloudmha_instance_queries_total", true, types.StandardUnitCount},
	} {
		if got := cloudWatchUnit(Sample{Name: tc.name, Counter: tc.counter}); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := truncate("héllo", 2); got != "h" {
		t.Errorf("truncate split a rune: %q", got)
	}
}
