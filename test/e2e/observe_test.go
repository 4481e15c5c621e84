package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/view"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// hookEvent is one notification the manager's webhook notifier delivered.
type hookEvent struct {
	ID       string            `json:"id"`
	Cluster  string            `json:"cluster"`
	Kind     string            `json:"kind"`
	Severity string            `json:"severity"`
	Title    string            `json:"title"`
	Fields   map[string]string `json:"fields"`
	at       time.Time
}

// hookReceiver records the webhook notifications it receives.
type hookReceiver struct {
	mu     sync.Mutex
	events []hookEvent
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var e hookEvent
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.at = time.Now()
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
}

// wait returns the first event of kind, waiting up to timeout.
func (h *hookReceiver) wait(t *testing.T, kind string, timeout time.Duration) hookEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		for _, e := range h.events {
			if e.Kind == kind {
				h.mu.Unlock()
				return e
			}
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s notification within %s; got %+v", kind, timeout, h.events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiClient calls the manager's HTTP listener from inside the manager
// namespace.
type apiClient struct {
	base, token string
	hc          *http.Client
}

func (c apiClient) do(t *testing.T, method, path string, token bool, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if s, ok := out.(*string); ok {
		*s = string(b)
	} else if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func (c apiClient) cluster(t *testing.T) view.Cluster {
	t.Helper()
	var cl view.Cluster
	if code := c.do(t, "GET", "/api/v1/clusters/app1", true, nil, &cl); code != 200 {
		t.Fatalf("GET cluster: %d", code)
	}
	return cl
}

// TestManagerObservability runs a manager with its HTTP listener and a
// webhook notifier on the test bed, and checks from the outside what a DBA
// relies on: the API's topology and authentication, /metrics, the CLI
// through the API, pause/resume, the notifications of a real failover with
// one correlation ID across the events and every log line of the run, the
// history, a switchover requested through the API, and the status page in
// headless Chromium showing the new primary (screenshot kept as an
// artifact).
func TestManagerObservability(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	dir := t.TempDir()

	hooks := &hookReceiver{}
	hl, err := b.Listen(b.ManagerNS, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hsrv := &http.Server{Handler: hooks, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hsrv.Serve(hl) }()
	t.Cleanup(func() { _ = hsrv.Close() })

	conf := filepath.Join(dir, "app1.yaml")
	if err := b.WriteYAMLConfig(conf, dir, "vip", "{}"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(conf)
	yml := strings.Replace(string(raw), "  mover: vip\n  options: {}\n",
		fmt.Sprintf("  mover: vip\n  vip: %s\n  interface: eth0\n  prefix: 24\nnotify:\n  - {name: hook, kind: webhook, url: \"http://%s/hook\"}\n", b.VIP, hl.Addr()), 1)
	if yml == string(raw) {
		t.Fatalf("could not patch the generated configuration:\n%s", raw)
	}
	if err := os.WriteFile(conf, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	const token = "e2e-api-token-4f1c9a"
	tokFile := filepath.Join(dir, "api.token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const listen = "127.0.0.1:19104"
	m := startManager(t, b, conf, "--http-listen="+listen, "--api-token-file="+tokFile)
	m.waitLog(t, "state=0:PING_OK", 30*time.Second)

	api := apiClient{base: "http://" + listen, token: token,
		hc: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DialContext: b.Dialer(b.ManagerNS)}}}
	// Health, without a token.
	if code := api.do(t, "GET", "/healthz", false, nil, nil); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	// The API refuses a missing or wrong token.
	if code := api.do(t, "GET", "/api/v1/clusters", false, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	wrong := api
	wrong.token = "not-the-token"
	if code := wrong.do(t, "GET", "/api/v1/clusters", true, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	// The topology, once both replicas have been read.
	var cl view.Cluster
	deadline := time.Now().Add(20 * time.Second)
	for {
		cl = api.cluster(t)
		running := 0
		for _, in := range cl.Instances {
			if in.Role == view.RoleReplica && in.IORunning && in.SQLRunning && in.Source == "server1" {
				running++
			}
		}
		if cl.Primary == "server1" && running == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topology through the API: %+v", cl)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cl.State != "PING_OK" || cl.Verdict != "healthy" || cl.Address == nil || cl.Address.Holder != "server1" {
		t.Errorf("cluster view: state %s verdict %s address %+v", cl.State, cl.Verdict, cl.Address)
	}
	// Metrics, without a token.
	var metrics string
	if code := api.do(t, "GET", "/metrics", false, nil, &metrics); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`cloudmha_instance_up{cluster="app1",instance="server2"} 1`,
		`cloudmha_manager_running{cluster="app1"} 1`,
		`cloudmha_instance_role{cluster="app1",instance="server1",role="primary"} 1`,
		`cloudmha_replication_sql_running{cluster="app1",instance="server3"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	t.Logf("sample of /metrics:\n%s", grepLines(metrics, `instance="server2"`))
	// The CLI through the API.
	r := cloudmha(t, b, "", "status", "--api=http://"+listen, "--cluster=app1", "--api-token-file="+tokFile)
	if r.code != 0 || !strings.Contains(r.stdout, "server3") || !strings.Contains(r.stdout, "replica") {
		t.Fatalf("status --api: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Pause and resume.
	if r := cloudmha(t, b, "", "pause", "--api=http://"+listen, "--cluster=app1", "--api-token-file="+tokFile, "--reason=e2e"); r.code != 0 {
		t.Fatalf("pause: %d %s", r.code, r.stderr)
	}
	if c := api.cluster(t); !c.Paused || c.PauseReason != "e2e" {
		t.Fatalf("not paused: %+v", c)
	}
	hooks.wait(t, "pause", 10*time.Second)
	if r := cloudmha(t, b, "", "resume", "--api=http://"+listen, "--cluster=app1", "--api-token-file="+tokFile); r.code != 0 {
		t.Fatalf("resume: %d %s", r.code, r.stderr)
	}
	if c := api.cluster(t); c.Paused {
		t.Fatal("still paused after resume")
	}

	// A switchover through the API (the CLI's --api): server1 → server2.
	r = cloudmha(t, b, "", "switch", "--api=http://"+listen, "--cluster=app1", "--api-token-file="+tokFile, "--new_master_host=server2", "--orig_master_is_new_slave", "--interactive=0")
	if r.code != 0 {
		t.Fatalf("switch --api: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sw := hooks.wait(t, "switchover", 10*time.Second)
	if sw.Fields["new_primary"] != "server2" || sw.ID == "" {
		t.Errorf("switchover event %+v", sw)
	}
	deadline = time.Now().Add(20 * time.Second)
	for cl = api.cluster(t); cl.Primary != "server2"; cl = api.cluster(t) {
		if time.Now().After(deadline) {
			t.Fatalf("API after switchover: primary %s, want server2", cl.Primary)
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.waitLog(t, "monitoring primary\" cluster=app1 primary=server2", 20*time.Second)

	// A real failover of the new primary.
	fault := time.Now()
	if err := b.Kill(b.Host("db2")); err != nil {
		t.Fatal(err)
	}
	det := hooks.wait(t, "detection", 60*time.Second)
	end := hooks.wait(t, "failover_end", 60*time.Second)
	start := hooks.wait(t, "failover_start", time.Second)
	t.Logf("notification latency from kill -9: detection %s, failover_end %s",
		det.at.Sub(fault).Round(time.Millisecond), end.at.Sub(fault).Round(time.Millisecond))
	if det.ID == "" || det.ID != start.ID || det.ID != end.ID {
		t.Errorf("one failover, several correlation IDs: detection %q start %q end %q", det.ID, start.ID, end.ID)
	}
	if det.ID == sw.ID {
		t.Errorf("the failover reuses the switchover's ID %s", sw.ID)
	}
	if det.Severity != "critical" || end.Fields["old_primary"] != "server2" || end.Fields["new_primary"] == "" {
		t.Errorf("events: %+v %+v", det, end)
	}
	np := end.Fields["new_primary"]
	m.waitLog(t, "failover complete", 30*time.Second)
	// Every log line of the run carries its ID.
	in := false
	tagged := 0
	for _, line := range strings.Split(m.Log(), "\n") {
		if strings.Contains(line, "primary is dead") {
			in = true
		}
		if !in || line == "" {
			continue
		}
		if !strings.Contains(line, "run="+det.ID) {
			t.Errorf("a line of the run lacks run=%s: %s", det.ID, line)
		}
		tagged++
		if strings.Contains(line, "failover complete") {
			break
		}
	}
	if tagged < 5 {
		t.Errorf("only %d log lines in the run", tagged)
	}
	// The API follows.
	deadline = time.Now().Add(20 * time.Second)
	for cl = api.cluster(t); cl.Primary != np || cl.Address == nil || cl.Address.Holder != np; cl = api.cluster(t) {
		if time.Now().After(deadline) {
			t.Fatalf("API after failover: primary %s address %+v, want %s", cl.Primary, cl.Address, np)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var hist []map[string]any
	if code := api.do(t, "GET", "/api/v1/clusters/app1/history", true, nil, &hist); code != 200 || len(hist) != 2 || hist[0]["id"] != det.ID || hist[1]["id"] != sw.ID {
		t.Fatalf("history: %d %v", code, hist)
	}
	var evs []view.Event
	api.do(t, "GET", "/api/v1/events?cluster=app1&limit=50", true, nil, &evs)
	kinds := map[string]bool{}
	for _, e := range evs {
		kinds[e.Kind] = true
	}
	for _, k := range []string{"detection", "failover_start", "failover_end", "pause", "resume", "switchover"} {
		if !kinds[k] {
			t.Errorf("events lack %s: %+v", k, evs)
		}
	}
	var alerts []view.Alert
	api.do(t, "GET", "/api/v1/alerts", true, nil, &alerts)
	t.Logf("alerts after the failover: %+v", alerts)
	for _, a := range alerts {
		if a.Name == "PrimaryDead" {
			t.Errorf("the dead primary's alert outlived the failover: %+v", a)
		}
	}
	// Acknowledge through the CLI: the anti-flapping block is lifted.
	if r := cloudmha(t, b, "", "ack", "--api=http://"+listen, "--cluster=app1", "--api-token-file="+tokFile, "--note=e2e"); r.code != 0 {
		t.Fatalf("ack: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "app1.failover.complete.ack")); err != nil {
		t.Errorf("ack through the API left no acknowledgement: %v", err)
	}

	// The status page shows the new primary.
	page, err := b.Chromium(b.ManagerNS, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dom, err := page.DumpDOM(context.Background(), "http://"+listen+"/#token="+token)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, fmt.Sprintf(`data-instance="%s"`, np)) || !strings.Contains(dom, `data-role="primary"`) {
		t.Errorf("status page DOM does not show %s as primary:\n%.3000s", np, dom)
	}
	if !strings.Contains(dom, `data-primary="`+np+`"`) {
		t.Errorf("status page's cluster section does not name %s as primary", np)
	}
	shot := filepath.Join(artifactDir(t), "status-page-after-failover.png")
	if err := page.Screenshot(context.Background(), "http://"+listen+"/#token="+token, shot, 1400, 1000); err != nil {
		t.Fatal(err)
	}
	t.Logf("status page screenshot: %s", shot)

}

// artifactDir is $CLOUDMHA_ARTIFACTS, else a directory kept under the
// system's temp dir (t.TempDir would be removed with the test).
func artifactDir(t *testing.T) string {
	d := os.Getenv("CLOUDMHA_ARTIFACTS")
	if d == "" {
		d = filepath.Join(os.TempDir(), "cloudmha-artifacts")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
