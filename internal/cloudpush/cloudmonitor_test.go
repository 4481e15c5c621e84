package cloudpush

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudmha/cloudmha/internal/cloud/aliyun"
	sim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
	"github.com/cloudmha/cloudmha/internal/config"
)

const (
	cmsAK     = "LTAI5tPushTestKey"
	cmsSecret = "push-secret-DO-NOT-LOG-77"
)

// cmsEnv starts the Alibaba Cloud emulator and points the default
// credential chain at the test key only (no file, profile or instance
// metadata).
func cmsEnv(t *testing.T) *sim.Server {
	t.Helper()
	for _, k := range []string{"ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_ROLE_ARN",
		"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_ECS_METADATA",
		"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, "")
	}
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", cmsAK)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", cmsSecret)
	s := sim.New(sim.Options{Credentials: map[string]string{cmsAK: cmsSecret}, Region: "cn-hangzhou"})
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestCloudMonitorEmulator(t *testing.T) {
	s := cmsEnv(t)
	p, err := FromConfig(t.Context(), config.MetricPush{Provider: config.PushAliyunCMS, Region: "cn-hangzhou", GroupID: "12345", Endpoint: s.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "aliyun-cms" {
		t.Errorf("name %s", p.Name())
	}
	reg := prometheus.NewRegistry()
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudmha_instance_up"}, []string{"cluster", "instance"})
	for i := range 25 { // more than one call's 21 points
		up.WithLabelValues("app1", fmt.Sprintf("db%02d", i)).Set(float64(i % 2))
	}
	fo := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloudmha_failovers_total"}, []string{"cluster", "outcome"})
	fo.WithLabelValues("app1", "success").Add(1)
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudmha_build_info"}, []string{"version", "goversion"})
	build.WithLabelValues("v1.2.3+dirty", "go1.26").Set(1)
	reg.MustRegister(up, fo, build)
	names := []string{"cloudmha_instance_up", "cloudmha_failovers_total", "cloudmha_build_info"}

	t0 := time.UnixMilli(1_800_000_000_000)
	smp, err := Select(reg, names, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Push(t.Context(), smp); err != nil {
		t.Fatalf("first push: %v", err)
	}
	if n := s.Calls("PutCustomMetric"); n != 2 {
		t.Errorf("%d PutCustomMetric calls for 26 points, want 2", n)
	}
	fo.WithLabelValues("app1", "success").Add(2)
	smp, _ = Select(reg, names, t0.Add(time.Minute))
	if err := p.Push(t.Context(), smp); err != nil {
		t.Fatalf("second push: %v", err)
	}

	got := s.CustomMetrics()
	if len(got) != 26+27 {
		t.Fatalf("%d points stored, want 53 (26, then 27 with the counter's delta)", len(got))
	}
	byKey := map[string]sim.CustomMetric{}
	for _, m := range got {
		var dims []string
		for _, k := range m.DimensionKeys {
			dims = append(dims, k+"="+m.Dimensions[k])
		}
		byKey[fmt.Sprintf("%s{%s}@%d", m.MetricName, strings.Join(dims, ","), m.Time.UnixMilli())] = m
		if m.GroupID != "12345" || m.Type != 0 {
			t.Errorf("point %+v", m)
		}
	}
	want := map[string]float64{
		"cloudmha_failovers_total{cluster=app1,outcome=success}@1800000060000":     2, // the delta; the first value is only recorded
		"cloudmha_build_info{goversion=go1.26,version=v1.2.3_dirty}@1800000000000": 1, // '+' is refused: replaced
		"cloudmha_build_info{goversion=go1.26,version=v1.2.3_dirty}@1800000060000": 1,
	}
	for i := range 25 {
		for _, ms := range []int{1800000000000, 1800000060000} {
			want[fmt.Sprintf("cloudmha_instance_up{cluster=app1,instance=db%02d}@%d", i, ms)] = float64(i % 2)
		}
	}
	if len(byKey) != len(want) {
		t.Errorf("%d distinct points, want %d", len(byKey), len(want))
	}
	for key, want := range want {
		m, ok := byKey[key]
		if !ok {
			t.Errorf("missing point %s", key)
			continue
		}
		if !reflect.DeepEqual(m.Values, map[string]float64{"value": want}) {
			t.Errorf("%s: values %v, want %v", key, m.Values, want)
		}
	}
}

// TestCloudMonitorErrors: refusals come back as errors naming the code,
// never the secret; a failed batch's counter deltas are caught up.
func TestCloudMonitorErrors(t *testing.T) {
	s := cmsEnv(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := NewCloudMonitor(t.Context(), CloudMonitorOptions{Region: "cn-hangzhou", GroupID: "7", Endpoint: "http://" + s.Endpoint(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	counter := func(v float64) []Sample {
		return []Sample{{Name: "cloudmha_failovers_total", Labels: map[string]string{"cluster": "c"}, Value: v, Time: time.Now(), Counter: true}}
	}
	if err := p.Push(t.Context(), counter(1)); err != nil {
		t.Fatal(err)
	}
	s.InjectError(sim.Fault{Action: "PutCustomMetric", Code: "Throttling.User", Status: http.StatusBadRequest})
	err = p.Push(t.Context(), counter(3))
	var errs []error
	errs = append(errs, err)
	if err == nil || !strings.Contains(err.Error(), "cloudmonitor PutCustomMetric (") || !strings.Contains(err.Error(), "Throttling.User") || !aliyun.IsThrottling(err) {
		t.Fatalf("throttled push: %v", err)
	}
	if err := p.Push(t.Context(), counter(4)); err != nil {
		t.Fatal(err)
	}
	got := s.CustomMetrics()
	if len(got) != 1 || got[0].Values["value"] != 3 {
		t.Errorf("stored %+v, want one point of 3 (the increase since the last accepted push)", got)
	}
	// A value the API refuses: the emulator's validation, seen through
	// the SDK.
	err = p.Push(t.Context(), []Sample{{Name: "cloudmha instance up", Value: 1, Time: time.Now()}})
	errs = append(errs, err)
	if err == nil || !strings.Contains(err.Error(), "InvalidParameter") || !strings.Contains(err.Error(), "MetricList.1.MetricName") {
		t.Errorf("bad name: %v", err)
	}
	// A wrong secret.
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-"+cmsSecret)
	p2, err := NewCloudMonitor(t.Context(), CloudMonitorOptions{Region: "cn-hangzhou", GroupID: "7", Endpoint: s.Endpoint(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	err = p2.Push(t.Context(), []Sample{{Name: "cloudmha_instance_up", Value: 1, Time: time.Now()}})
	errs = append(errs, err)
	if err == nil || !aliyun.IsAuth(err) {
		t.Errorf("wrong secret: %v", err)
	}
	for _, e := range errs {
		if e != nil && (strings.Contains(e.Error(), cmsSecret) || strings.Contains(e.Error(), "string to sign")) {
			t.Errorf("error reveals too much: %v", e)
		}
	}
	if strings.Contains(logs.String(), cmsSecret) {
		t.Error("the secret appears in the logs")
	}
	// Settings refused before any call.
	for _, o := range []CloudMonitorOptions{
		{Region: "cn-hangzhou"},
		{GroupID: "1"},
		{Region: "cn-hangzhou", GroupID: "1", Endpoint: "http://metrics.example.com"},
	} {
		if _, err := NewCloudMonitor(t.Context(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := FromConfig(t.Context(), config.MetricPush{Provider: "datadog"}); err == nil || !strings.Contains(err.Error(), `unknown provider "datadog"`) {
		t.Errorf("unknown provider: %v", err)
	}
	var be *cmsBodyError
	if errors.As(err, &be) {
		t.Error("unexpected body error")
	}
}

func TestCMSDimensions(t *testing.T) {
	got := cmsDimensions(map[string]string{"role": "primary", "instance": "db 1", "cluster": "app1", "empty": "", "mover": "aliyun/havip",
		"long": strings.Repeat("x", 70)})
	want := `{"cluster":"app1","instance":"db_1","long":"` + strings.Repeat("x", 64) + `","mover":"aliyun/havip","role":"primary"}`
	if got != want {
		t.Errorf("dimensions\n got %s\nwant %s", got, want)
	}
	if got := cmsDimensions(nil); got != "{}" {
		t.Errorf("no labels: %s", got)
	}
}
