package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// The operator-facing files this test runs for real.
const (
	obsRulesFile = "../../deploy/prometheus/cloudmha-rules.yml"
	obsAMFile    = "../../deploy/alertmanager/alertmanager.yml"
	obsDashboard = "../../deploy/grafana/cloudmha-dashboard.json"

	obsMetricsAddr = "127.0.0.1:9104" // the manager's --http-listen, in the manager namespace
	obsPromAddr    = "127.0.0.1:9090"
	obsAMAddr      = "127.0.0.1:9093"
	obsHookAddr    = "127.0.0.1:9099"

	// obsAlertTimeout is the only bound put on an alert's latency: the
	// latencies are measured and logged, not asserted.
	obsAlertTimeout = 60 * time.Second
)

// TestMonitoringStack runs Debian's Prometheus and Alertmanager against a
// manager on the test bed, with the shipped rules, Alertmanager routing
// and dashboard: every dashboard query must return data, and each injected
// fault must reach the webhook receiver as the matching alert. The time
// from fault to webhook delivery is logged as "alert latency: NAME 2.1s".
func TestMonitoringStack(t *testing.T) {
	if os.Getenv("CLOUDMHA_SKIP_TESTBED") != "" || os.Geteuid() != 0 {
		upBed(t, testbed.Options{}) // skips with its message
	}
	for _, bin := range []string{"prometheus", "prometheus-alertmanager"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (Debian packages prometheus, prometheus-alertmanager): run scripts/install-deps.sh", bin)
		}
	}
	if out, _ := exec.Command(binary, "manager", "--help").CombinedOutput(); !strings.Contains(string(out), "http-listen") {
		t.Fatalf("`cloudmha manager` has no --http-listen flag: it cannot serve /metrics\n%s", out)
	}
	rules := obsTestRules(t)

	// a) the bed with a workload, the manager serving /metrics, Prometheus
	// scraping it with the shipped rules, Alertmanager delivering to us.
	sc := startScenario(t, setup{managerArgs: []string{"--http-listen=" + obsMetricsAddr}})
	b := sc.b
	ctx := context.Background()
	hook, err := b.StartWebhookReceiver(b.ManagerNS, obsHookAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hook.Close() })
	am, err := b.StartAlertmanager(ctx, testbed.AlertmanagerOptions{NS: b.ManagerNS, Listen: obsAMAddr, Config: obsTestAlertmanager(t, hook.URL())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obsStop(t, am) })
	prom, err := b.StartPrometheus(ctx, testbed.PrometheusOptions{
		NS: b.ManagerNS, Listen: obsPromAddr, Job: "cloudmha", Targets: []string{obsMetricsAddr},
		RuleFiles: []string{rules}, Alertmanagers: []string{obsAMAddr}, Interval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obsStop(t, prom) })
	if n, err := prom.RuleCount(ctx); err != nil || n < 10 {
		t.Fatalf("Prometheus loaded %d rules from %s (%v):\n%s", n, obsRulesFile, err, obsTail(prom.Log))
	}

	// b) every dashboard query that needs no event returns data.
	queries := obsDashboardQueries(t)
	var always, afterEvent []obsQuery
	for _, q := range queries {
		switch q.needs {
		case "":
			always = append(always, q)
		case "failover":
			afterEvent = append(afterEvent, q)
		default:
			t.Logf("not checked (%s): %s: %s", q.needs, q.where, q.expr)
		}
	}
	start := time.Now()
	if obsWaitData(t, prom, always, 90*time.Second) {
		t.Logf("%d dashboard queries return data (%s after Prometheus started)", len(always), time.Since(start).Round(100*time.Millisecond))
	}
	if s, _ := prom.Query(ctx, `cloudmha_failovers_total{outcome="success"}`); len(s) == 0 {
		t.Errorf(`cloudmha_failovers_total{outcome="success"} does not exist before the first failover: increase() in FailoverHappened cannot see the first one`)
	}
	// A healthy cluster raises nothing but information. The rules run with
	// `for: 0s` here, so a blip of one refresh fires: only an alert firing
	// for the last 15 s counts (the shipped `for:` are 30 s and more).
	if firing, err := prom.Query(ctx, `count_over_time(ALERTS{alertstate="firing",severity!="info"}[15s]) >= 14`); err != nil {
		t.Fatal(err)
	} else {
		for _, s := range firing {
			t.Errorf("alert firing on a healthy cluster: %v", s.Labels)
		}
	}
	if errant, _ := prom.Query(ctx, `max_over_time(cloudmha_replication_errant_transactions[5m]) > 0`); len(errant) > 0 {
		for _, s := range errant {
			t.Logf("note: cloudmha_replication_errant_transactions was %s on %s of a healthy cluster in the last 5 min (read-order race between replica and primary GTID sets?)", s.Value, s.Labels["instance"])
		}
	}

	// c) faults, and the time until Alertmanager delivers each alert.
	// 1. The SQL thread of a replica stops.
	db2 := b.Host("db2")
	faultAt := time.Now()
	if _, err := b.SQL(ctx, db2, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	obsAlert(t, hook, faultAt, "ReplicationStopped", "firing", map[string]string{"instance": "server2", "thread": "sql"})
	healAt := time.Now()
	if _, err := b.SQL(ctx, db2, "START SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	obsAlert(t, hook, healAt, "ReplicationStopped", "resolved", map[string]string{"instance": "server2", "thread": "sql"})

	// 2. The manager alone loses the primary (the replicas still see it):
	// no failover, and the verdict lasts, so PrimaryUnreachable must be
	// delivered. (A dead primary is failed over in well under a second,
	// usually before any scrape sees the dead verdict; FailoverHappened
	// covers that case below.)
	faultAt = time.Now()
	heal, err := b.Partition(ctx, "obs-mgr", [2]string{b.ManagerIP, b.Host("db1").IP})
	if err != nil {
		t.Fatal(err)
	}
	obsAlert(t, hook, faultAt, "PrimaryUnreachable", "firing", nil)
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	sc.m.waitLog(t, "primary answers again", obsAlertTimeout)

	// 3. The primary dies: a completed failover.
	faultAt = time.Now()
	sc.faultAt = faultAt
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, obsAlertTimeout)
	t.Logf("failover to %s done %s after the kill", np, time.Since(faultAt).Round(100*time.Millisecond))
	obsAlert(t, hook, faultAt, "FailoverHappened", "firing", nil)

	// b, continued) the panels that only have data after a failover.
	if obsWaitData(t, prom, afterEvent, 30*time.Second) {
		t.Logf("%d event panel queries return data after the failover", len(afterEvent))
	}

	// 4. The manager dies.
	faultAt = time.Now()
	sc.m.Kill()
	obsAlert(t, hook, faultAt, "ManagerDown", "firing", nil)

	if t.Failed() {
		t.Logf("alerts received: %s", obsReceived(hook))
		t.Logf("prometheus log:\n%s", obsTail(prom.Log))
		t.Logf("alertmanager log:\n%s", obsTail(am.Log))
	}
}

// obsAlert waits for the webhook delivery of alert name in state status
// (with the given labels) after since, and logs the latency.
func obsAlert(t *testing.T, hook *testbed.WebhookReceiver, since time.Time, name, status string, labels map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), obsAlertTimeout)
	defer cancel()
	a, err := hook.Wait(ctx, since, func(a testbed.AlertArrival) bool {
		if a.Name() != name || a.Status != status {
			return false
		}
		for k, v := range labels {
			if a.Labels[k] != v {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Errorf("alert %s %v not %s within %s of the fault; received: %s", name, labels, status, obsAlertTimeout, obsReceived(hook))
		return
	}
	what := "alert latency"
	if status == "resolved" {
		what = "alert resolved latency"
	}
	t.Logf("%s: %s %.1fs (receiver %s, %s)", what, name, a.At.Sub(since).Seconds(), a.Receiver, a.Annotations["summary"])
}

func obsReceived(hook *testbed.WebhookReceiver) string {
	var out []string
	for _, a := range hook.Arrivals() {
		out = append(out, fmt.Sprintf("%s %s %s/%s@%s", a.At.Format("15:04:05.000"), a.Status, a.Name(), a.Labels["cluster"], a.Labels["instance"]))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, "; ")
}

func obsStop(t *testing.T, d *testbed.Daemon) {
	if err := d.Stop(); err != nil {
		t.Errorf("stop %s: %v", d.Name, err)
	}
}

func obsTail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// obsTestRules is the shipped rules file with every `for:` set to 0s, so
// that the test measures the path from fault to delivery and not the
// waiting periods; the expressions are the shipped ones, byte for byte.
func obsTestRules(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(obsRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s+)for: \S+$`)
	if len(re.FindAllIndex(data, -1)) < 10 {
		t.Fatalf("%s: fewer `for:` lines than expected: has its layout changed?", obsRulesFile)
	}
	p := filepath.Join(t.TempDir(), "cloudmha-rules.yml")
	if err := os.WriteFile(p, re.ReplaceAll(data, []byte("${1}for: 0s")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// obsTestAlertmanager is the shipped Alertmanager example with its webhook
// URLs pointed at the test's receiver (path kept) and no batching delays.
func obsTestAlertmanager(t *testing.T, hookURL string) string {
	t.Helper()
	data, err := os.ReadFile(obsAMFile)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	urls := regexp.MustCompile(`url: https?://[^/\s]+`)
	if !urls.MatchString(s) {
		t.Fatalf("%s has no webhook url", obsAMFile)
	}
	s = urls.ReplaceAllString(s, "url: "+hookURL)
	s = regexp.MustCompile(`(?m)^(\s+)group_wait: \S+$`).ReplaceAllString(s, "${1}group_wait: 0s")
	s = regexp.MustCompile(`(?m)^(\s+)group_interval: \S+$`).ReplaceAllString(s, "${1}group_interval: 1s")
	return s
}

// obsQuery is one PromQL query of the dashboard, variables substituted.
type obsQuery struct {
	where string
	expr  string
	// needs says what must happen before it can return data: "" (nothing),
	// "failover", or a reason this test never checks it.
	needs string
}

// Metrics that only exist after an event, and what this test's bed never
// produces (no switchover, no cloud mover, no notifier configured).
var (
	obsAfterFailover = []string{"ALERTS", "cloudmha_failovers_total", "cloudmha_failover_duration_seconds",
		"cloudmha_detection_duration_seconds", "cloudmha_last_failover_timestamp_seconds", "cloudmha_mover_operations_total"}
	obsNever = map[string]string{
		"cloudmha_switchovers_total":              "no switchover in this test",
		"cloudmha_switchover_write_block_seconds": "no switchover in this test",
		"cloudmha_mover_api_calls_total":          "the vip mover calls no cloud API",
		"cloudmha_notifications_total":            "no notifier configured",
	}
	obsIdentRE = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	obsVarRE   = regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?`)
	obsLVRE    = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
)

// obsDashboardQueries reads every panel target, annotation and
// label_values variable of the dashboard and substitutes Grafana's
// variables with this bed's values.
func obsDashboardQueries(t *testing.T) []obsQuery {
	t.Helper()
	data, err := os.ReadFile(obsDashboard)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels      []panel `json:"panels"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Definition string          `json:"definition"`
				Query      json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", obsDashboard, err)
	}
	vals := map[string]string{
		"cluster": "app1", "instance": "server1|server2|server3",
		"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600", "__interval_ms": "15000",
	}
	var out []obsQuery
	add := func(where, expr string) {
		e := obsVarRE.ReplaceAllStringFunc(expr, func(s string) string {
			v, ok := vals[strings.Trim(s, "${}")]
			if !ok {
				t.Errorf("%s: unknown variable %s", where, s)
			}
			return v
		})
		q := obsQuery{where: where, expr: e}
		ids := obsIdentRE.FindAllString(regexp.MustCompile(`"[^"]*"`).ReplaceAllString(e, `""`), -1)
		for _, id := range ids {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(id, "_bucket"), "_sum"), "_count")
			if why, ok := obsNever[base]; ok {
				q.needs = why
				break
			}
			if contains(obsAfterFailover, base) {
				q.needs = "failover"
			}
		}
		out = append(out, q)
	}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					add(fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			add("annotation "+a.Name, a.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if m := obsLVRE.FindStringSubmatch(strings.TrimSpace(v.Definition)); m != nil {
			add("variable "+v.Name, m[1])
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries in %s", len(out), obsDashboard)
	}
	return out
}

// obsWaitData polls until every query returns at least one series, and
// fails listing those that never did; it reports whether all did.
func obsWaitData(t *testing.T, prom *testbed.Daemon, qs []obsQuery, timeout time.Duration) bool {
	t.Helper()
	ctx := context.Background()
	pending := map[int]string{}
	for i := range qs {
		pending[i] = "not queried"
	}
	deadline := time.Now().Add(timeout)
	for len(pending) > 0 {
		for i := range pending {
			s, err := prom.Query(ctx, qs[i].expr)
			switch {
			case err != nil:
				pending[i] = err.Error()
			case len(s) == 0:
				pending[i] = "no series"
			default:
				delete(pending, i)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(pending) == 0 {
		return true
	}
	var lines []string
	for i, why := range pending {
		lines = append(lines, fmt.Sprintf("%s: %s\n      %s", qs[i].where, why, qs[i].expr))
	}
	sort.Strings(lines)
	te, _ := prom.TargetErrors(ctx)
	t.Errorf("%d of %d dashboard queries returned no data within %s (scrape errors: %v):\n  %s", len(lines), len(qs), timeout, te, strings.Join(lines, "\n  "))
	return false
}
