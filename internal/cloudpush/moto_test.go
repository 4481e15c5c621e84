package cloudpush

import (
	"context"
	"log/slog"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/prometheus/client_golang/prometheus"

	awscloud "github.com/cloudmha/cloudmha/internal/cloud/aws"
	"github.com/cloudmha/cloudmha/internal/cloud/aws/awstest"
	"github.com/cloudmha/cloudmha/internal/config"
)

// awsSecretMarker is the secret access key during the moto tests; it must
// never appear in logs or errors.
const awsSecretMarker = "AWSSECRETMARKER0123456789abcdefAWSSECRET"

// moto is the package's moto_server, started by the first test that
// needs it and stopped by TestMain.
var moto awstest.Moto

func TestMain(m *testing.M) {
	code := m.Run()
	moto.Stop()
	os.Exit(code)
}

// motoEnv starts moto (or skips), points the AWS chain at fake
// credentials and returns moto's URL.
func motoEnv(t *testing.T) string {
	t.Helper()
	url := moto.URL(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDCLOUDMHAPUSH")
	t.Setenv("AWS_SECRET_ACCESS_KEY", awsSecretMarker)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/cloudmha-test-config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cloudmha-test-credentials")
	return url
}

// TestCloudWatchMoto pushes the key metrics of a registry to moto through
// FromConfig and Run, and reads them back with ListMetrics and
// GetMetricData.
func TestCloudWatchMoto(t *testing.T) {
	url := motoEnv(t)
	const region, ns = "ap-southeast-1", "cloudmha-test"
	mp := config.MetricPush{Provider: config.PushCloudWatch, Region: region, Namespace: ns, Endpoint: url}
	p, err := FromConfig(t.Context(), mp)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudmha_instance_up"}, []string{"cluster", "instance"})
	up.WithLabelValues("app1", "db1").Set(1)
	up.WithLabelValues("app1", "db2").Set(0)
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudmha_replication_seconds_behind_source"}, []string{"cluster", "instance"})
	lag.WithLabelValues("app1", "db2").Set(7)
	fo := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloudmha_failovers_total"}, []string{"cluster", "outcome"})
	fo.WithLabelValues("app1", "success").Add(1)
	reg.MustRegister(up, lag, fo)

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Two rounds by hand: the counter's first value is only recorded.
	now := time.Now().UTC().Truncate(time.Second)
	s, err := Select(reg, DefaultMetrics(), now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Push(t.Context(), s); err != nil {
		t.Fatalf("first push: %v", err)
	}
	fo.WithLabelValues("app1", "success").Add(2) // two failovers since
	s, _ = Select(reg, DefaultMetrics(), now)
	if err := p.Push(t.Context(), s); err != nil {
		t.Fatalf("second push: %v", err)
	}

	api := motoReader(t, url, region)
	ctx := t.Context()
	lm, err := api.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: sdkaws.String(ns)})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range lm.Metrics {
		var dims []string
		for _, d := range m.Dimensions {
			dims = append(dims, sdkaws.ToString(d.Name)+"="+sdkaws.ToString(d.Value))
		}
		listed = append(listed, sdkaws.ToString(m.MetricName)+"{"+strings.Join(dims, ",")+"}")
	}
	sort.Strings(listed)
	listed = slices.Compact(listed) // moto lists a metric once per data point
	want := []string{
		"cloudmha_failovers_total{cluster=app1,outcome=success}",
		"cloudmha_instance_up{cluster=app1,instance=db1}",
		"cloudmha_instance_up{cluster=app1,instance=db2}",
		"cloudmha_replication_seconds_behind_source{cluster=app1,instance=db2}",
	}
	if strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("ListMetrics:\n got %v\nwant %v", listed, want)
	}

	stat := func(id, name, stat string, dims ...string) types.MetricDataQuery {
		var d []types.Dimension
		for i := 0; i+1 < len(dims); i += 2 {
			d = append(d, types.Dimension{Name: sdkaws.String(dims[i]), Value: sdkaws.String(dims[i+1])})
		}
		return types.MetricDataQuery{Id: sdkaws.String(id), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: sdkaws.String(ns), MetricName: sdkaws.String(name), Dimensions: d},
			Period: sdkaws.Int32(60), Stat: sdkaws.String(stat),
		}}
	}
	out, err := api.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: sdkaws.Time(now.Add(-10 * time.Minute)), EndTime: sdkaws.Time(now.Add(5 * time.Minute)),
		MetricDataQueries: []types.MetricDataQuery{
			stat("up1", "cloudmha_instance_up", "Maximum", "cluster", "app1", "instance", "db1"),
			stat("up2", "cloudmha_instance_up", "Maximum", "cluster", "app1", "instance", "db2"),
			stat("lag", "cloudmha_replication_seconds_behind_source", "Maximum", "cluster", "app1", "instance", "db2"),
			stat("fo", "cloudmha_failovers_total", "Sum", "cluster", "app1", "outcome", "success"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	for _, r := range out.MetricDataResults {
		got[sdkaws.ToString(r.Id)] = r.Values
	}
	max := func(v []float64) float64 {
		m := -1.0
		for _, x := range v {
			m = max(m, x)
		}
		return m
	}
	sum := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s
	}
	if max(got["up1"]) != 1 || max(got["up2"]) != 0 || max(got["lag"]) != 7 || sum(got["fo"]) != 2 {
		t.Errorf("GetMetricData: %v (want up1 1, up2 0, lag 7, failovers Sum 2 — the delta, not the counter's 3)", got)
	}

	// Run against moto too: it pushes on its own and logs nothing bad.
	// (Each push may take one interval: leave moto, under the race
	// detector, time enough.)
	runCtx, cancel := context.WithTimeout(t.Context(), 1200*time.Millisecond)
	defer cancel()
	Run(runCtx, log, reg, p, []string{"cloudmha_instance_up"}, 500*time.Millisecond)
	if !strings.Contains(logs.String(), "metrics pushed") || strings.Contains(logs.String(), "push failed") {
		t.Errorf("Run against moto:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), awsSecretMarker) {
		t.Error("the secret access key appears in the logs")
	}
}

// TestCloudWatchMotoErrors: a refused push comes back as an error naming
// the API's code, never the secret.
func TestCloudWatchMotoErrors(t *testing.T) {
	url := motoEnv(t)
	p, err := NewCloudWatch(t.Context(), CloudWatchOptions{Region: "us-east-1", Endpoint: url, Namespace: "cloudmha-test"})
	if err != nil {
		t.Fatal(err)
	}
	// A NaN value (Select never passes one on) is what moto refuses.
	err = p.Push(t.Context(), []Sample{
		{Name: "cloudmha_instance_up", Value: 1, Time: time.Now()},
		{Name: "cloudmha_replication_seconds_behind_source", Value: math.NaN(), Time: time.Now()},
	})
	t.Logf("refused: %v", err)
	if err == nil || !strings.Contains(err.Error(), "InvalidParameterValue") || strings.Contains(err.Error(), awsSecretMarker) ||
		!strings.Contains(err.Error(), "cloudwatch PutMetricData (namespace cloudmha-test, batch 1 of 1, 2 metrics)") {
		t.Errorf("error %v", err)
	}
	// No region anywhere: FromConfig says so.
	if _, err := FromConfig(t.Context(), config.MetricPush{Provider: config.PushCloudWatch, Endpoint: url}); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("no region: %v", err)
	}
}

// motoReader is a CloudWatch client that reads back from moto.
func motoReader(t *testing.T, url, region string) *cloudwatch.Client {
	t.Helper()
	cfg, err := awscloud.LoadConfig(t.Context(), awscloud.Options{Region: region, Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.BaseEndpoint = sdkaws.String(url)
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
	})
}
