package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cloudmha/cloudmha/internal/config"
)

// The files under test, relative to this package's directory.
const (
	rulesFile     = "prometheus/cloudmha-rules.yml"
	rulesTests    = "prometheus/tests"
	amFile        = "alertmanager/alertmanager.yml"
	dashFile      = "grafana/cloudmha-dashboard.json"
	metricsDoc    = "../docs/metrics.md"
	monitoringDoc = "../docs/monitoring.md"
	// dsRef is the only data source reference the dashboard may use: its
	// own data source variable, never a UID of somebody's Grafana.
	dsRef = "${DS_PROMETHEUS}"
)

// tool finds a Prometheus command-line tool or skips the test: CI installs
// them with scripts/install-deps.sh (Debian prometheus and
// prometheus-alertmanager).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s): run scripts/install-deps.sh", name, pkg)
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ---- the rules file ----

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return out
}

// unitFile is what the tests look at in a `promtool test rules` file.
type unitFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

func unitTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rulesTests, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool unit tests in %s (%v)", rulesTests, err)
	}
	return files
}

func TestRulesCheck(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	out := runTool(t, promtool, "check", "rules", rulesFile)
	t.Logf("%s", strings.TrimSpace(out))
}

// TestRulesUnit runs the promtool unit tests: every alert fires above its
// threshold and stays quiet below it or before its `for`.
func TestRulesUnit(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	out := runTool(t, promtool, append([]string{"test", "rules"}, unitTestFiles(t)...)...)
	if strings.Contains(out, "FAILED") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

// TestRulesShape holds every alert to the conventions the routing and the
// runbook rely on, and insists that the unit tests exercise each one both
// firing and not firing.
func TestRulesShape(t *testing.T) {
	rules := loadRules(t)
	anchors := docAnchors(t)
	records := map[string]bool{}
	for _, r := range rules {
		switch {
		case r.Record != "" && r.Alert != "":
			t.Errorf("rule %q is both a recording and an alerting rule", r.Record)
		case r.Record != "":
			if strings.Count(r.Record, ":") != 2 {
				t.Errorf("recording rule %q does not follow level:metric:operations", r.Record)
			}
			records[r.Record] = true
		case r.Alert == "":
			t.Errorf("rule without record or alert: %q", r.Expr)
		}
	}
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		name := r.Alert
		if sev := r.Labels["severity"]; !slices.Contains(config.Severities(), sev) {
			t.Errorf("%s: severity %q, want one of %v (the notify contact groups' severities)", name, sev, config.Severities())
		}
		if r.For == "" {
			t.Errorf("%s: no explicit `for:` (write `for: 0s` for an immediate alert)", name)
		}
		for _, k := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[k]) == "" {
				t.Errorf("%s: no %s annotation", name, k)
			}
		}
		// absent() has no labels to name; every other alert says where.
		if !strings.HasPrefix(strings.TrimSpace(r.Expr), "absent(") {
			text := r.Annotations["summary"] + r.Annotations["description"]
			if !strings.Contains(text, "$labels.cluster") && !strings.Contains(text, "$labels.instance") {
				t.Errorf("%s: summary/description name neither {{ $labels.cluster }} nor {{ $labels.instance }}", name)
			}
		}
		m := regexp.MustCompile(`docs/monitoring\.md#([a-z0-9-]+)`).FindStringSubmatch(r.Annotations["runbook"])
		if m == nil {
			t.Errorf("%s: the runbook annotation does not point to a section of docs/monitoring.md", name)
		} else if anchors != nil && !anchors[m[1]] {
			t.Errorf("%s: runbook section #%s does not exist in %s", name, m[1], monitoringDoc)
		}
	}

	// Coverage by the promtool unit tests.
	type cov struct{ firing, quiet bool }
	seen := map[string]*cov{}           // alertname
	firingSeverity := map[string]bool{} // alertname/severity
	tested := map[string]bool{}         // recording rules named in a promql_expr_test
	for _, f := range unitTestFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitFile
		if err := yaml.Unmarshal(data, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Contains(u.RuleFiles, "../cloudmha-rules.yml") {
			t.Errorf("%s does not load ../cloudmha-rules.yml (rule_files %v)", f, u.RuleFiles)
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				c := seen[a.Alertname]
				if c == nil {
					c = &cov{}
					seen[a.Alertname] = c
				}
				if len(a.ExpAlerts) > 0 {
					c.firing = true
					for _, e := range a.ExpAlerts {
						firingSeverity[a.Alertname+"/"+e.ExpLabels["severity"]] = true
					}
				} else {
					c.quiet = true
				}
			}
			for _, e := range tc.PromQLExprTest {
				for _, n := range identRE.FindAllString(stripStrings(e.Expr), -1) {
					tested[n] = true
				}
			}
		}
	}
	for _, r := range rules {
		switch {
		case r.Alert != "":
			c := seen[r.Alert]
			switch {
			case c == nil:
				t.Errorf("alert %s has no promtool unit test", r.Alert)
			case !c.firing:
				t.Errorf("alert %s: no unit test where it fires", r.Alert)
			case !c.quiet:
				t.Errorf("alert %s: no unit test where it does not fire (below threshold, before `for`)", r.Alert)
			}
			if !firingSeverity[r.Alert+"/"+r.Labels["severity"]] {
				t.Errorf("alert %s: no unit test where its %s rule fires", r.Alert, r.Labels["severity"])
			}
		case r.Record != "" && !tested[r.Record]:
			t.Errorf("recording rule %s has no promql_expr_test", r.Record)
		}
	}
	for name := range seen {
		if !slices.ContainsFunc(rules, func(r rule) bool { return r.Alert == name }) {
			t.Errorf("the unit tests test alert %s, which the rules file does not define", name)
		}
	}
}

// docAnchors lists the section anchors of docs/monitoring.md as GitHub
// renders them; nil when the document is missing (reported once).
func docAnchors(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(monitoringDoc)
	if err != nil {
		t.Errorf("%s: %v", monitoringDoc, err)
		return nil
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		out[b.String()] = true
	}
	return out
}

// ---- metric names against docs/metrics.md ----

var (
	identRE  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	stringRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
)

// stripStrings removes PromQL string literals (label values), so that only
// identifiers remain.
func stripStrings(expr string) string { return stringRE.ReplaceAllString(expr, `""`) }

// documentedMetrics parses the tables of docs/metrics.md: metric name ->
// type.
func documentedMetrics(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `cloudmha_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		out[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	if len(out) < 10 {
		t.Fatalf("found only %d metrics in the tables of %s: has its format changed?", len(out), metricsDoc)
	}
	return out
}

// checkNames reports each cloudmha_* name of expr that docs/metrics.md
// does not document (a histogram's _bucket/_sum/_count count as it), and
// each recording rule name (level:metric:op) that the rules do not define.
// It returns the documented names used.
func checkNames(expr string, docs map[string]string, records map[string]bool) (used []string, errs []string) {
	for _, id := range identRE.FindAllString(stripStrings(expr), -1) {
		switch {
		case strings.Contains(id, ":"):
			if strings.Contains(id, "cloudmha") && !records[id] {
				errs = append(errs, fmt.Sprintf("recording rule %s is not defined in %s", id, rulesFile))
			}
		case strings.HasPrefix(id, "cloudmha_"):
			base := id
			if _, ok := docs[id]; !ok {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					if b := strings.TrimSuffix(id, s); b != id && docs[b] == "histogram" {
						base = b
					}
				}
			}
			if _, ok := docs[base]; !ok {
				errs = append(errs, fmt.Sprintf("metric %s is not in %s", id, metricsDoc))
				continue
			}
			used = append(used, base)
		}
	}
	return used, errs
}

func TestRulesMetricNames(t *testing.T) {
	docs := documentedMetrics(t)
	rules := loadRules(t)
	records := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			records[r.Record] = true
		}
	}
	for _, r := range rules {
		name := r.Alert + r.Record
		_, errs := checkNames(r.Expr, docs, records)
		for _, a := range r.Annotations {
			_, more := checkNames(a, docs, records)
			errs = append(errs, more...)
		}
		for _, e := range errs {
			t.Errorf("%s: %s", name, e)
		}
	}
}

// ---- the dashboard ----

type dashboard struct {
	raw         map[string]any
	panels      []map[string]any // every panel, rows' nested panels too
	annotations []map[string]any
	variables   []map[string]any
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d.raw); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashFile, err)
	}
	var walk func(v any)
	walk = func(v any) {
		list, _ := v.([]any)
		for _, p := range list {
			if m, ok := p.(map[string]any); ok {
				d.panels = append(d.panels, m)
				walk(m["panels"])
			}
		}
	}
	walk(d.raw["panels"])
	if a, ok := d.raw["annotations"].(map[string]any); ok {
		d.annotations = maps(a["list"])
	}
	if tm, ok := d.raw["templating"].(map[string]any); ok {
		d.variables = maps(tm["list"])
	}
	return d
}

func maps(v any) []map[string]any {
	var out []map[string]any
	list, _ := v.([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// query is one PromQL query of the dashboard.
type query struct {
	where string // "panel 12 \"QPS\" target A", "annotation Failovers", …
	expr  string
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// queries lists every PromQL expression of the dashboard: panel targets,
// annotations, and the selectors of label_values() variables.
func (d dashboard) queries() []query {
	var out []query
	for _, p := range d.panels {
		for _, tg := range maps(p["targets"]) {
			if e := str(tg, "expr"); e != "" {
				out = append(out, query{fmt.Sprintf("panel %v %q target %s", p["id"], str(p, "title"), str(tg, "refId")), e})
			}
		}
	}
	for _, a := range d.annotations {
		if e := str(a, "expr"); e != "" {
			out = append(out, query{"annotation " + str(a, "name"), e})
		}
	}
	for _, v := range d.variables {
		if str(v, "type") != "query" {
			continue
		}
		q := str(v, "definition")
		if m, ok := v["query"].(map[string]any); ok {
			q = str(m, "query")
		} else if s, ok := v["query"].(string); ok {
			q = s
		}
		if m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(q)); m != nil {
			q = m[1]
		}
		out = append(out, query{"variable " + str(v, "name"), q})
	}
	return out
}

// substitute replaces Grafana's variables by values Prometheus accepts.
func substitute(expr string) (string, error) {
	vals := map[string]string{
		"cluster": "app1", "instance": "server1|server2|server3",
		"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "__range_s": "3600", "__interval_ms": "60000",
	}
	var err error
	out := regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?`).ReplaceAllStringFunc(expr, func(s string) string {
		name := strings.Trim(s, "${}")
		v, ok := vals[name]
		if !ok {
			err = fmt.Errorf("unknown variable %s", s)
		}
		return v
	})
	return out, err
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if v, _ := d.raw["schemaVersion"].(float64); v < 36 {
		t.Errorf("schemaVersion %v, want 36 or newer (Grafana 9+; written for 39)", d.raw["schemaVersion"])
	}
	if str(d.raw, "uid") == "" || str(d.raw, "title") == "" {
		t.Errorf("the dashboard needs a uid and a title")
	}
	if d.raw["id"] != nil {
		t.Errorf("id must be null in an importable dashboard, is %v", d.raw["id"])
	}
	ids := map[float64]string{}
	graphs := 0
	for _, p := range d.panels {
		id, ok := p["id"].(float64)
		title := str(p, "title")
		if !ok {
			t.Errorf("panel %q has no numeric id", title)
		} else if other, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share the id %v", other, title, id)
		}
		ids[id] = title
		gp, _ := p["gridPos"].(map[string]any)
		x, _ := gp["x"].(float64)
		w, _ := gp["w"].(float64)
		h, _ := gp["h"].(float64)
		if gp == nil || w <= 0 || h <= 0 || x+w > 24 {
			t.Errorf("panel %q: bad gridPos %v", title, gp)
		}
		if str(p, "type") == "row" {
			continue
		}
		graphs++
		n := 0
		for _, tg := range maps(p["targets"]) {
			if strings.TrimSpace(str(tg, "expr")) != "" {
				n++
			}
		}
		if n == 0 {
			t.Errorf("panel %v %q has no target with an expr", p["id"], title)
		}
	}
	if graphs < 20 {
		t.Errorf("only %d panels", graphs)
	}

	// Data sources: only the DS_PROMETHEUS variable, never a UID.
	var walk func(path string, v any)
	refs := 0
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "datasource" {
					refs++
					ds, ok := e.(map[string]any)
					if !ok || str(ds, "uid") != dsRef || str(ds, "type") != "prometheus" {
						t.Errorf("%s.datasource = %v, want {type: prometheus, uid: %s}", path, e, dsRef)
					}
					continue
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("dashboard", d.raw)
	if refs < graphs {
		t.Errorf("only %d data source references for %d panels", refs, graphs)
	}
	if _, ok := d.raw["__inputs"]; ok {
		t.Errorf("__inputs: the data source is chosen through the DS_PROMETHEUS variable, import must not bake a UID in")
	}
	vars := map[string]map[string]any{}
	for _, v := range d.variables {
		vars[str(v, "name")] = v
	}
	if v := vars["DS_PROMETHEUS"]; v == nil || str(v, "type") != "datasource" || str(v, "query") != "prometheus" {
		t.Errorf("no data source variable DS_PROMETHEUS of type prometheus: %v", v)
	}
	for _, name := range []string{"cluster", "instance"} {
		v := vars[name]
		if v == nil || str(v, "type") != "query" || !strings.HasPrefix(str(v, "definition"), "label_values(") {
			t.Errorf("no label_values query variable %s: %v", name, v)
		}
	}
	// Every variable a query uses exists (or is Grafana's own).
	for _, q := range d.queries() {
		if _, err := substitute(q.expr); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
	}
}

// TestDashboardMetricNames: a metric renamed in docs/metrics.md (the
// contract of internal/metrics) fails here until the dashboard follows; and
// the dashboard shows what seed 000 §5.4 asks for.
func TestDashboardMetricNames(t *testing.T) {
	d := loadDashboard(t)
	docs := documentedMetrics(t)
	records := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Record != "" {
			records[r.Record] = true
		}
	}
	used := map[string]bool{}
	for _, q := range d.queries() {
		u, errs := checkNames(q.expr, docs, records)
		for _, e := range errs {
			t.Errorf("%s: %s", q.where, e)
		}
		for _, n := range u {
			used[n] = true
		}
	}
	for _, r := range loadRules(t) {
		u, _ := checkNames(r.Expr, docs, records)
		for _, n := range u {
			used[n] = true
		}
	}
	required := map[string]string{
		"cloudmha_instance_up":                       "each server's state",
		"cloudmha_instance_role":                     "each server's role",
		"cloudmha_instance_queries_total":            "QPS",
		"cloudmha_instance_threads_connected":        "connections",
		"cloudmha_instance_max_connections":          "connections against max_connections",
		"cloudmha_replication_seconds_behind_source": "replication delay",
		"cloudmha_replication_transactions_behind":   "transactions behind",
		"cloudmha_instance_binlog_bytes":             "storage: binary logs",
		"cloudmha_instance_data_bytes":               "storage: data",
		"cloudmha_failovers_total":                   "failover history",
		"cloudmha_switchovers_total":                 "switchover history",
		"cloudmha_failover_duration_seconds":         "failover duration",
		"cloudmha_last_failover_timestamp_seconds":   "last failover time",
		"cloudmha_primary_probe_latency_seconds":     "primary probe latency",
		"cloudmha_network_rtt_seconds":               "network RTT",
		"cloudmha_semisync_source_on":                "semi-sync state",
		"cloudmha_mover_api_calls_total":             "mover API calls",
	}
	dashUsed := map[string]bool{}
	alerts := false
	for _, q := range d.queries() {
		u, _ := checkNames(q.expr, docs, records)
		for _, n := range u {
			dashUsed[n] = true
		}
		alerts = alerts || strings.Contains(q.expr, `ALERTS{alertstate="firing"`)
	}
	for m, what := range required {
		if !dashUsed[m] {
			t.Errorf("no panel shows %s (%s)", what, m)
		}
	}
	if !alerts {
		t.Errorf("no panel lists the firing alerts (ALERTS{alertstate=\"firing\"})")
	}
	var unused []string
	for m := range docs {
		if !used[m] {
			unused = append(unused, m)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Logf("documented metrics neither the dashboard nor the rules use: %v", unused)
	}
}

// TestDashboardQueriesParse has promtool parse every query of the
// dashboard (variables substituted) as the expression of a recording rule.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	d := loadDashboard(t)
	type rec struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rec
	where := map[string]string{}
	for i, q := range d.queries() {
		e, err := substitute(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		name := fmt.Sprintf("dashboard_query_%d", i)
		where[name] = q.where
		rules = append(rules, rec{name, e})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", p).CombinedOutput()
	if err != nil {
		msg := string(out)
		for name, w := range where {
			msg = strings.ReplaceAll(msg, name+" ", w+" ")
		}
		t.Fatalf("promtool cannot parse the dashboard's queries: %v\n%s", err, msg)
	}
	t.Logf("%d dashboard queries parse", len(rules))
}

// ---- Alertmanager ----

func TestAlertmanagerConfig(t *testing.T) {
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	t.Logf("%s", strings.TrimSpace(runTool(t, amtool, "check-config", amFile)))
	// Each severity reaches the receiver of the same name.
	for _, sev := range config.Severities() {
		// stdout only: amtool warns on stderr that --config.file wins over
		// an --alertmanager.url from its own configuration file.
		out, err := exec.Command(amtool, "config", "routes", "test", "--config.file="+amFile, "severity="+sev, "alertname=Any", "cluster=app1").Output()
		if err != nil {
			t.Fatalf("amtool config routes test: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != sev {
			t.Errorf("an alert of severity %s goes to receiver %q, want %q", sev, got, sev)
		}
	}
	// The inhibition rules name alerts that exist.
	data, err := os.ReadFile(amFile)
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, r := range loadRules(t) {
		alerts[r.Alert] = true
	}
	names := 0
	for _, m := range regexp.MustCompile(`alertname=~?"([^"]+)"`).FindAllStringSubmatch(string(data), -1) {
		for _, n := range strings.Split(m[1], "|") {
			names++
			if !alerts[n] {
				t.Errorf("%s names alert %s, which %s does not define", amFile, n, rulesFile)
			}
		}
	}
	if names == 0 {
		t.Errorf("%s names no alert (inhibition rules?)", amFile)
	}
}
