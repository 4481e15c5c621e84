package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestYAMLMetricsPush(t *testing.T) {
	const doc = `servers: [{hostname: h}]
metrics:
  listen: 127.0.0.1:9104
  push:
    - provider: CloudWatch
      region: ap-southeast-1
      interval: 30s
      metrics: [cloudmha_instance_up, cloudmha_failover_duration_seconds]
      endpoint: http://127.0.0.1:5000
    - provider: aliyun-cms
      region: cn-hangzhou
      group_id: "12345"
      interval: 120
      endpoint: 127.0.0.1:8080
    - provider: cloudwatch
      namespace: Prod/DB
      metrics: "cloudmha_instance_up, cloudmha_manager_running"
`
	c, err := ParseYAML("c.yaml", []byte(doc), newTestEnv().opts())
	if err != nil {
		t.Fatal(err)
	}
	want := []MetricPush{
		{Provider: PushCloudWatch, Region: "ap-southeast-1", Namespace: DefaultPushNamespace, Interval: 30 * time.Second,
			Metrics: []string{"cloudmha_instance_up", "cloudmha_failover_duration_seconds"}, Endpoint: "http://127.0.0.1:5000"},
		{Provider: PushAliyunCMS, Region: "cn-hangzhou", GroupID: "12345", Interval: 2 * time.Minute, Endpoint: "127.0.0.1:8080"},
		{Provider: PushCloudWatch, Namespace: "Prod/DB", Interval: DefaultPushInterval, Metrics: []string{"cloudmha_instance_up", "cloudmha_manager_running"}},
	}
	if !reflect.DeepEqual(c.Metrics.Push, want) {
		t.Errorf("push:\n got %+v\nwant %+v", c.Metrics.Push, want)
	}
	if c.Metrics.Listen != "127.0.0.1:9104" {
		t.Errorf("listen %q", c.Metrics.Listen)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// No push: nothing.
	c, err = ParseYAML("c.yaml", []byte("servers: [{hostname: h}]\nmetrics: {listen: \"127.0.0.1:9104\", push: }\n"), newTestEnv().opts())
	if err != nil || c.Metrics.Push != nil {
		t.Errorf("empty push: %v %+v", err, c)
	}
}

func TestYAMLMetricsPushErrors(t *testing.T) {
	const head = "servers: [{hostname: h}]\nmetrics:\n  push:\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown provider", head + "    - provider: datadog\n",
			[]string{`c.yaml:4: metrics.push[0].provider: must be one of cloudwatch, aliyun-cms (got "datadog")`}},
		{"no provider", head + "    - region: us-east-1\n",
			[]string{`c.yaml:4: metrics.push[0].provider: missing: a push target needs a provider (cloudwatch, aliyun-cms)`}},
		{"cms without group and region", head + "    - provider: aliyun-cms\n      interval: 1m\n",
			[]string{
				`c.yaml:4: metrics.push[0].group_id: missing: provider aliyun-cms needs the application group id (group_id; "0" for none)`,
				`c.yaml:4: metrics.push[0].region: missing: provider aliyun-cms needs the region (e.g. cn-hangzhou)`,
			}},
		{"cms bad values", head + "    - provider: aliyun-cms\n      region: CN_Hangzhou\n      group_id: grp-1\n      namespace: x\n      endpoint: http://metrics.example.com\n",
			[]string{
				`c.yaml:5: metrics.push[0].region: must be a region id such as ap-southeast-1 (got "CN_Hangzhou")`,
				`c.yaml:6: metrics.push[0].group_id: must be the numeric id of a CloudMonitor application group (got "grp-1")`,
				`c.yaml:7: metrics.push[0].namespace: is for provider cloudwatch only`,
				`c.yaml:8: metrics.push[0].endpoint: plain http:// only to a loopback emulator; use https:// (got "http://metrics.example.com")`,
			}},
		{"interval", head + "    - provider: cloudwatch\n      interval: 5s\n    - provider: cloudwatch\n      interval: soon\n    - provider: cloudwatch\n      interval: 2h\n",
			[]string{
				`c.yaml:5: metrics.push[0].interval: must be between 10s and 1h0m0s (got 5s)`,
				`c.yaml:7: metrics.push[1].interval: must be a duration like "5s" or whole seconds (got "soon")`,
				`c.yaml:9: metrics.push[2].interval: must be between 10s and 1h0m0s (got 2h0m0s)`,
			}},
		{"metrics", head + "    - provider: cloudwatch\n      metrics: [cloudmha_instance_up, go_goroutines, cloudmha_failover_duration_seconds_sum, cloudmha_instance_up]\n",
			[]string{
				`c.yaml:5: metrics.push[0].metrics: unknown metric "go_goroutines": want a metric name from docs/metrics.md, e.g. cloudmha_instance_up`,
				`c.yaml:5: metrics.push[0].metrics: unknown metric "cloudmha_failover_duration_seconds_sum": want the histogram's name cloudmha_failover_duration_seconds (its _sum and _count are pushed)`,
				`c.yaml:5: metrics.push[0].metrics: lists cloudmha_instance_up twice`,
			}},
		{"cloudwatch bad values", head + "    - provider: cloudwatch\n      group_id: \"1\"\n      namespace: AWS/RDS\n      endpoint: 127.0.0.1:5000\n      secret: x\n",
			[]string{
				`c.yaml:5: metrics.push[0].group_id: is for provider aliyun-cms only`,
				`c.yaml:6: metrics.push[0].namespace: must not start with ':' or AWS/ (reserved by AWS) (got "AWS/RDS")`,
				`c.yaml:7: metrics.push[0].endpoint: must be http(s)://host[:port] (got "127.0.0.1:5000")`,
				`c.yaml:8: metrics.push[0].secret: unknown key (want provider, region, namespace, group_id, interval, metrics, endpoint)`,
			}},
		{"endpoint with user", head + "    - provider: cloudwatch\n      endpoint: https://u:pw@example.com\n",
			[]string{`c.yaml:5: metrics.push[0].endpoint: must not contain user information`}},
		{"not a list", "servers: [{hostname: h}]\nmetrics:\n  push: {provider: cloudwatch}\n",
			[]string{`c.yaml:3: metrics.push: must be a list of push targets (provider: cloudwatch or aliyun-cms)`}},
		{"item not a mapping", head + "    - cloudwatch\n",
			[]string{
				`c.yaml:4: metrics.push[0]: must be a mapping (got a scalar)`,
				`c.yaml:4: metrics.push[0].provider: missing: a push target needs a provider (cloudwatch, aliyun-cms)`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseYAML("c.yaml", []byte(tc.doc), newTestEnv().opts())
			diffLines(t, errStrings(t, err), tc.want)
			if (err == nil) != (c != nil) {
				t.Errorf("config %v with error %v", c, err)
			}
		})
	}
}

// TestValidateMetricsPushInCode checks the rules on a Config built in
// code, where positions are the fields' paths and 0 means the default
// interval.
func TestValidateMetricsPushInCode(t *testing.T) {
	c := &Config{
		ManagerWorkdir: "/tmp", LogLevel: "info", PingType: PingSelect, PingInterval: DefaultPingInterval,
		Servers: []Server{{Name: "s", Hostname: "h", Port: 3306, SSHPort: 22, SSHConnectionTimeout: 1}},
		Metrics: Metrics{Push: []MetricPush{
			{Provider: PushCloudWatch},
			{Provider: PushAliyunCMS, Region: "cn-hangzhou", GroupID: "0", Interval: time.Second},
		}},
	}
	diffLines(t, errStrings(t, c.Validate()), []string{`metrics.push[1].interval: must be between 10s and 1h0m0s (got 1s)`})
	c.Metrics.Push[1].Interval = 0
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// TestMetricNamesMatchDocs keeps MetricNames in step with the tables of
// docs/metrics.md.
func TestMetricNamesMatchDocs(t *testing.T) {
	data, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(cloudmha_[a-z0-9_]+)` \\|").FindAllStringSubmatch(string(data), -1) {
		documented = append(documented, m[1])
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d metrics in docs/metrics.md: has the table format changed?", len(documented))
	}
	code := MetricNames()
	for _, n := range documented {
		if !slices.Contains(code, n) {
			t.Errorf("%s is in docs/metrics.md but not in config.MetricNames: add it", n)
		}
	}
	for _, n := range code {
		if !slices.Contains(documented, n) {
			t.Errorf("%s is in config.MetricNames but not in docs/metrics.md", n)
		}
	}
}
