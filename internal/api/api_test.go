package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/view"
)

const testToken = "s3cret-Token-0123456789abcdefXYZ"

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	fb   *fakeBackend
	srv  *httptest.Server
	logs *syncBuffer
}

func newEnv(t *testing.T, token string) *env {
	t.Helper()
	e := &env{fb: threeNodes(), logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "cloudmha_up 1")
	})
	e.srv = httptest.NewServer(New(Options{Backend: e.fb, Token: token, Metrics: metrics, Logger: log}))
	t.Cleanup(e.srv.Close)
	return e
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) errMsg(t *testing.T) string {
	t.Helper()
	var b struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &b); err != nil {
		t.Fatalf("error answer is not JSON: %q", a.body)
	}
	return b.Error
}

// call sends a request; auth "" sends no Authorization header.
func (e *env) call(t *testing.T, method, path, auth, body string, hdr ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(data)}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, testToken)
	a := e.call(t, "GET", "/healthz", "", "")
	if a.status != 200 || strings.TrimSpace(a.body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", a.status, a.body)
	}
	e.fb.mu.Lock()
	e.fb.ready = errors.New("loading configuration")
	e.fb.mu.Unlock()
	a = e.call(t, "GET", "/healthz", "", "")
	if a.status != 503 || !strings.Contains(a.body, "loading configuration") {
		t.Fatalf("healthz not ready: %d %s", a.status, a.body)
	}
}

func TestAuth(t *testing.T) {
	bearer := "Bearer " + testToken
	wrong := "Bearer wrong-" + testToken[:10]
	e := newEnv(t, testToken)
	for _, tc := range []struct {
		name, method, path, auth, body string
		want                           int
	}{
		{"read without token", "GET", "/api/v1/clusters", "", "", 401},
		{"read with wrong token", "GET", "/api/v1/clusters", wrong, "", 401},
		{"read with a longer token", "GET", "/api/v1/clusters", bearer + "x", "", 401},
		{"read with a prefix of the token", "GET", "/api/v1/clusters", bearer[:len(bearer)-1], "", 401},
		{"read with basic auth", "GET", "/api/v1/clusters", "Basic " + testToken, "", 401},
		{"read with the bare token", "GET", "/api/v1/clusters", testToken, "", 401},
		{"read with token", "GET", "/api/v1/clusters", bearer, "", 200},
		{"scheme is case-insensitive", "GET", "/api/v1/alerts", "bearer " + testToken, "", 200},
		{"history with token", "GET", "/api/v1/clusters/app1/history", bearer, "", 200},
		{"unknown api path without token", "GET", "/api/v1/secret", "", "", 401},
		{"action without token", "POST", "/api/v1/clusters/app1/pause", "", `{}`, 401},
		{"action with wrong token", "POST", "/api/v1/clusters/app1/pause", wrong, `{}`, 401},
		{"action with token", "POST", "/api/v1/clusters/app1/pause", bearer, `{}`, 200},
		{"healthz is open", "GET", "/healthz", "", "", 200},
		{"metrics is open", "GET", "/metrics", "", "", 200},
		{"page is open", "GET", "/", "", "", 200},
		{"assets are open", "GET", "/assets/app.js", "", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.call(t, tc.method, tc.path, tc.auth, tc.body)
			if a.status != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, a.status, a.body, tc.want)
			}
			if tc.want == 401 {
				if wa := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer ") {
					t.Errorf("WWW-Authenticate = %q", wa)
				} else if tc.auth != "" && !strings.Contains(wa, "invalid_token") {
					t.Errorf("WWW-Authenticate = %q, want error=invalid_token", wa)
				}
				if !strings.HasPrefix(a.errMsg(t), "unauthorized") {
					t.Errorf("error = %q", a.errMsg(t))
				}
			}
		})
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "unauthorized request") {
		t.Errorf("refusals not logged:\n%s", logs)
	}
	for _, secret := range []string{testToken, testToken[:10], "wrong-"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a token (%q):\n%s", secret, logs)
		}
	}
}

func TestNoTokenConfigured(t *testing.T) {
	e := newEnv(t, "")
	if a := e.call(t, "GET", "/api/v1/clusters", "", ""); a.status != 200 {
		t.Fatalf("read without a configured token: %d %s", a.status, a.body)
	}
	for _, action := range []string{"switchover", "ack", "pause", "resume"} {
		// Even a client sending some token cannot act.
		a := e.call(t, "POST", "/api/v1/clusters/app1/"+action, "Bearer anything", `{}`)
		if a.status != 403 || !strings.Contains(a.errMsg(t), "--api-token-file") {
			t.Errorf("%s without a configured token: %d %s", action, a.status, a.body)
		}
	}
	if c := e.fb.lastCall(); c != "" {
		t.Errorf("backend called: %s", c)
	}
}

func TestTokenFileNewlineIgnored(t *testing.T) {
	e := newEnv(t, testToken+"\n")
	if a := e.call(t, "GET", "/api/v1/clusters", "Bearer "+testToken, ""); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
}

func TestReads(t *testing.T) {
	e := newEnv(t, testToken)
	auth := "Bearer " + testToken
	get := func(path string, want int, v any) answer {
		t.Helper()
		a := e.call(t, "GET", path, auth, "")
		if a.status != want {
			t.Fatalf("GET %s: %d %s, want %d", path, a.status, a.body, want)
		}
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if cc := a.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q", path, cc)
		}
		if v != nil {
			if err := json.Unmarshal([]byte(a.body), v); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, a.body)
			}
		}
		return a
	}

	var cs []view.Cluster
	get("/api/v1/clusters", 200, &cs)
	if len(cs) != 1 || cs[0].Name != "app1" || len(cs[0].Instances) != 3 || *cs[0].Instances[2].LagSeconds != 42 {
		t.Errorf("clusters: %+v", cs)
	}
	var c view.Cluster
	get("/api/v1/clusters/app1", 200, &c)
	if c.Primary != "server1" || c.Address.Holder != "server1" {
		t.Errorf("cluster: %+v", c)
	}
	a := get("/api/v1/clusters/nope", 404, nil)
	if msg := a.errMsg(t); !strings.Contains(msg, `"nope"`) || !strings.Contains(msg, view.ErrNotFound.Error()) {
		t.Errorf("404 message: %q", msg)
	}
	var hist []map[string]any
	get("/api/v1/clusters/app1/history", 200, &hist)
	if len(hist) != 1 || hist[0]["id"] != "fo-20260301-1100" {
		t.Errorf("history: %v", hist)
	}
	get("/api/v1/clusters/nope/history", 404, nil)

	var ev []view.Event
	get("/api/v1/events", 200, &ev)
	if len(ev) != 2 || e.fb.limit() != DefaultEventLimit {
		t.Errorf("events: %d, limit %d", len(ev), e.fb.limit())
	}
	get("/api/v1/events?limit=1", 200, &ev)
	if len(ev) != 1 || e.fb.limit() != 1 {
		t.Errorf("events?limit=1: %d, limit %d", len(ev), e.fb.limit())
	}
	get("/api/v1/events?limit=5000", 200, &ev)
	if e.fb.limit() != MaxEventLimit {
		t.Errorf("limit 5000 reached the backend as %d", e.fb.limit())
	}
	get("/api/v1/events?cluster=app1", 200, &ev)
	get("/api/v1/events?cluster=nope", 404, nil)
	for _, bad := range []string{"0", "-1", "x", "1.5"} {
		get("/api/v1/events?limit="+bad, 400, nil)
	}

	var al []view.Alert
	get("/api/v1/alerts", 200, &al)
	if len(al) != 1 || al[0].Name != "ReplicationLag" {
		t.Errorf("alerts: %+v", al)
	}

	// Empty lists are [] and not null.
	e.fb.mu.Lock()
	e.fb.alerts, e.fb.events, e.fb.history = nil, nil, nil
	e.fb.mu.Unlock()
	for _, p := range []string{"/api/v1/alerts", "/api/v1/events", "/api/v1/clusters/app1/history"} {
		if a := get(p, 200, nil); strings.TrimSpace(a.body) != "[]" {
			t.Errorf("GET %s: %s, want []", p, a.body)
		}
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t, testToken)
	auth := "Bearer " + testToken
	a := e.call(t, "GET", "/api/v1/nope", auth, "")
	if a.status != 404 || !strings.Contains(a.errMsg(t), "no such endpoint") {
		t.Errorf("unknown route: %d %s", a.status, a.body)
	}
	a = e.call(t, "GET", "/api/v1/clusters/app1/pause", auth, "")
	if a.status != 405 || a.header.Get("Allow") != "POST" {
		t.Errorf("GET on an action: %d %s Allow=%q", a.status, a.body, a.header.Get("Allow"))
	}
	a = e.call(t, "POST", "/api/v1/clusters", auth, `{}`)
	if a.status != 405 || !strings.Contains(a.header.Get("Allow"), "GET") {
		t.Errorf("POST on a read: %d %s Allow=%q", a.status, a.body, a.header.Get("Allow"))
	}
	a = e.call(t, "DELETE", "/api/v1/clusters/app1", auth, "")
	if a.status != 405 {
		t.Errorf("DELETE: %d %s", a.status, a.body)
	}
	if c := e.fb.lastCall(); c != "" {
		t.Errorf("backend called: %s", c)
	}
}

func TestActions(t *testing.T) {
	e := newEnv(t, testToken)
	auth := "Bearer " + testToken
	for _, tc := range []struct {
		path, body, call string
	}{
		{"/api/v1/clusters/app1/ack", `{"by":"alice","note":"checked"}`, "ack app1 by=alice note=checked"},
		{"/api/v1/clusters/app1/pause", `{"by":"bob","reason":"maintenance"}`, "pause app1 by=bob reason=maintenance"},
		{"/api/v1/clusters/app1/resume", `{"by":"bob"}`, "resume app1 by=bob"},
		// "by" defaults to the client's address; an empty body is {}.
		{"/api/v1/clusters/app1/resume", ``, "resume app1 by=127.0.0.1"},
		{"/api/v1/clusters/app1/pause", `{"reason":"x"}`, "pause app1 by=127.0.0.1 reason=x"},
	} {
		a := e.call(t, "POST", tc.path, auth, tc.body)
		if a.status != 200 {
			t.Errorf("POST %s %s: %d %s", tc.path, tc.body, a.status, a.body)
			continue
		}
		var res ActionResult
		if err := json.Unmarshal([]byte(a.body), &res); err != nil || !res.OK || res.Cluster != "app1" {
			t.Errorf("POST %s: answer %s", tc.path, a.body)
		}
		if got := e.fb.lastCall(); got != tc.call {
			t.Errorf("POST %s %s: backend got %q, want %q", tc.path, tc.body, got, tc.call)
		}
	}
	logs := e.logs.String()
	for _, want := range []string{"action=pause", "cluster=app1", "by=bob", "outcome=ok", "reason=maintenance"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, testToken) {
		t.Errorf("logs contain the token")
	}
}

func TestActionBodies(t *testing.T) {
	e := newEnv(t, testToken)
	auth := "Bearer " + testToken
	path := "/api/v1/clusters/app1/pause"
	big := `{"by":"x","reason":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, body string
		hdr        []string
		want       int
		msg        string
	}{
		{"unknown field", `{"by":"x","force":true}`, nil, 400, "unknown field"},
		{"not JSON", `by=x`, nil, 400, "invalid JSON"},
		{"two values", `{"by":"x"}{"by":"y"}`, nil, 400, "unexpected data"},
		{"trailing garbage", `{"by":"x"} x`, nil, 400, "unexpected data"},
		{"wrong type", `{"by":5}`, nil, 400, "invalid JSON"},
		{"too large", big, nil, 413, "larger than"},
		{"form content type", `{"by":"x"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"by too long", `{"by":"` + strings.Repeat("b", 200) + `"}`, nil, 400, `"by"`},
		{"by with a newline", `{"by":"a\nb"}`, nil, 400, `"by"`},
		{"json with charset", `{"by":"carol"}`, []string{"Content-Type", "application/json; charset=utf-8"}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.call(t, "POST", path, auth, tc.body, tc.hdr...)
			if a.status != tc.want {
				t.Fatalf("%d %s, want %d", a.status, trimBody(a.body), tc.want)
			}
			if tc.msg != "" && !strings.Contains(a.errMsg(t), tc.msg) {
				t.Errorf("error %q lacks %q", a.errMsg(t), tc.msg)
			}
		})
	}
	if got := e.fb.lastCall(); got != "pause app1 by=carol reason=" {
		t.Errorf("backend calls: last %q", got)
	}
}

func trimBody(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func TestErrorMapping(t *testing.T) {
	e := newEnv(t, testToken)
	auth := "Bearer " + testToken
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("server9: %w", view.ErrInvalid), 400},
		{fmt.Errorf("a failover is running: %w", view.ErrConflict), 409},
		{fmt.Errorf("wrapped: %w", view.ErrNotFound), 404},
		{errors.New("disk full"), 500},
	} {
		e.fb.mu.Lock()
		e.fb.actionErr = tc.err
		e.fb.mu.Unlock()
		for _, action := range []string{"ack", "pause", "resume"} {
			a := e.call(t, "POST", "/api/v1/clusters/app1/"+action, auth, `{"by":"x"}`)
			if a.status != tc.want || !strings.Contains(a.errMsg(t), tc.err.Error()) {
				t.Errorf("%s with %v: %d %s, want %d", action, tc.err, a.status, a.body, tc.want)
			}
		}
	}
	if a := e.call(t, "POST", "/api/v1/clusters/nope/ack", auth, `{}`); a.status != 404 {
		t.Errorf("ack of an unknown cluster: %d", a.status)
	}
	if !strings.Contains(e.logs.String(), "outcome=error") {
		t.Errorf("failed actions not logged")
	}
}

func TestSwitchover(t *testing.T) {
	e := newEnv(t, testToken)
	auth := "Bearer " + testToken
	path := "/api/v1/clusters/app1/switchover"

	a := e.call(t, "POST", path, auth, `{"new_primary":"server2","orig_master_is_new_slave":true,"by":"dave"}`)
	var res view.SwitchResult
	if a.status != 200 || json.Unmarshal([]byte(a.body), &res) != nil || !res.OK || res.Plan == "" {
		t.Fatalf("switchover: %d %s", a.status, a.body)
	}
	got := e.fb.lastSwitchRequest()
	if got.NewPrimary != "server2" || !got.OrigMasterIsNewSlave || got.By != "dave" || got.DryRun {
		t.Errorf("backend got %+v", got)
	}

	// A dry run succeeds without OK.
	e.fb.mu.Lock()
	e.fb.switchRes = view.SwitchResult{Plan: "plan"}
	e.fb.mu.Unlock()
	if a := e.call(t, "POST", path, auth, `{"dry_run":true}`); a.status != 200 {
		t.Errorf("dry run: %d %s", a.status, a.body)
	}
	if e.fb.lastSwitchRequest().By != "127.0.0.1" {
		t.Errorf("by defaulted to %q", e.fb.lastSwitchRequest().By)
	}

	// Refused: conflict, invalid.
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("failover running: %w", view.ErrConflict), 409},
		{fmt.Errorf("server9 is not configured: %w", view.ErrInvalid), 400},
	} {
		e.fb.mu.Lock()
		e.fb.switchRes, e.fb.switchErr = view.SwitchResult{}, tc.err
		e.fb.mu.Unlock()
		a := e.call(t, "POST", path, auth, `{"new_primary":"server9"}`)
		if a.status != tc.want || !strings.Contains(a.errMsg(t), tc.err.Error()) {
			t.Errorf("switchover with %v: %d %s", tc.err, a.status, a.body)
		}
	}

	// Failed half-way: the answer keeps the plan and the report.
	e.fb.mu.Lock()
	e.fb.switchRes = view.SwitchResult{Plan: "the plan", Report: json.RawMessage(`{"id":"sw-1"}`), Error: "promote: timeout"}
	e.fb.switchErr = nil
	e.fb.mu.Unlock()
	a = e.call(t, "POST", path, auth, `{}`)
	res = view.SwitchResult{}
	if a.status != 500 || json.Unmarshal([]byte(a.body), &res) != nil || res.OK || res.Plan != "the plan" ||
		!strings.Contains(res.Error, "promote: timeout") || string(res.Report) != `{"id":"sw-1"}` {
		t.Errorf("failed switchover: %d %s", a.status, a.body)
	}
	if a := e.call(t, "POST", "/api/v1/clusters/nope/switchover", auth, `{}`); a.status != 404 {
		t.Errorf("unknown cluster: %d", a.status)
	}
	logs := e.logs.String()
	for _, want := range []string{"switchover requested", "switchover failed", "by=dave", "new_primary=server2"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

// A client that gives up must not cancel a switchover half-way.
func TestSwitchoverSurvivesClientDisconnect(t *testing.T) {
	e := newEnv(t, testToken)
	e.fb.mu.Lock()
	e.fb.block = make(chan struct{})
	e.fb.switchCtxErr = make(chan error, 1)
	e.fb.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/api/v1/clusters/app1/switchover", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	done := make(chan error, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Wait until the backend runs the switchover, then hang up.
	deadline := time.Now().Add(5 * time.Second)
	for e.fb.lastCall() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the request was not cancelled")
	}
	close(e.fb.block)
	select {
	case err := <-e.fb.switchCtxErr:
		if err != nil {
			t.Errorf("the switchover's context ended with the client: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("switchover did not finish")
	}
}

func TestStaticPage(t *testing.T) {
	e := newEnv(t, testToken)
	a := e.call(t, "GET", "/", "", "")
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %d %s", a.status, a.header.Get("Content-Type"))
	}
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff")
	}
	for _, ref := range []string{"/assets/app.js", "/assets/app.css", "/assets/favicon.svg"} {
		if !strings.Contains(a.body, ref) {
			t.Errorf("index.html does not reference %s", ref)
		}
	}
	// No external resource anywhere in the page.
	for _, name := range []string{"/", "/assets/app.js", "/assets/app.css"} {
		body := e.call(t, "GET", name, "", "").body
		for _, bad := range []string{"http://", "https://", "//fonts.", "cdn"} {
			for _, line := range strings.Split(body, "\n") {
				if strings.Contains(line, bad) && !strings.Contains(line, "www.w3.org/2000/svg") && !strings.Contains(line, "https://&lt;manager&gt;") {
					t.Errorf("%s references %q: %s", name, bad, strings.TrimSpace(line))
				}
			}
		}
	}
	js := e.call(t, "GET", "/assets/app.js", "", "")
	if !strings.Contains(js.header.Get("Content-Type"), "javascript") {
		t.Errorf("app.js Content-Type %q", js.header.Get("Content-Type"))
	}
	if strings.Contains(js.body, ".innerHTML") || strings.Contains(js.body, "insertAdjacentHTML") {
		t.Errorf("app.js uses innerHTML")
	}
	etag := js.header.Get("ETag")
	if a := e.call(t, "GET", "/assets/app.js", "", "", "If-None-Match", etag); etag == "" || a.status != 304 {
		t.Errorf("If-None-Match %q: %d", etag, a.status)
	}
	if a := e.call(t, "GET", "/assets/nope.js", "", ""); a.status != 404 {
		t.Errorf("unknown asset: %d", a.status)
	}
	if a := e.call(t, "GET", "/assets/", "", ""); a.status != 404 {
		t.Errorf("asset listing: %d", a.status)
	}
	if a := e.call(t, "GET", "/metrics", "", ""); a.status != 200 || !strings.Contains(a.body, "cloudmha_up 1") {
		t.Errorf("metrics: %d %s", a.status, a.body)
	}
}

func TestNoMetricsHandler(t *testing.T) {
	srv := httptest.NewServer(New(Options{Backend: threeNodes()}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/metrics without a handler: %d", resp.StatusCode)
	}
}
