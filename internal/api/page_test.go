package api

import (
	"context"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/api/headless"
	"github.com/cloudmha/cloudmha/internal/view"
)

const pageToken = "page-test-token-3f9a1c7e5b2d4086"

func newBrowser(t *testing.T) *headless.Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("headless Chromium test skipped in -short mode")
	}
	b, err := headless.New(t.TempDir())
	if errors.Is(err, headless.ErrNotFound) {
		t.Skipf("skipping the status page test: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dumpDOM(t *testing.T, b *headless.Browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	dom, err := b.DumpDOM(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chromium --dump-dom %s: %d bytes in %s", headless.Redact(url), len(dom), time.Since(start).Round(time.Millisecond))
	return dom
}

var (
	tagRE  = regexp.MustCompile(`<(g|section|li|details|div|body|tr)\s([^>]*)>`)
	attrRE = regexp.MustCompile(`([a-zA-Z_:][-a-zA-Z0-9_:.]*)="([^"]*)"`)
)

// elements returns the attributes of every start tag of kind tag whose
// class attribute is class ("" = any).
func elements(dom, tag, class string) []map[string]string {
	var out []map[string]string
	for _, m := range tagRE.FindAllStringSubmatch(dom, -1) {
		if m[1] != tag {
			continue
		}
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			attrs[a[1]] = a[2]
		}
		if class == "" || attrs["class"] == class {
			out = append(out, attrs)
		}
	}
	return out
}

// find returns the element whose attribute key is value, or fails.
func find(t *testing.T, els []map[string]string, key, value, what string) map[string]string {
	t.Helper()
	for _, e := range els {
		if e[key] == value {
			return e
		}
	}
	t.Fatalf("DOM: no %s with %s=%q (have %v)", what, key, value, els)
	return nil
}

func wantAttr(t *testing.T, e map[string]string, key, want, what string) {
	t.Helper()
	if e[key] != want {
		t.Errorf("DOM: %s: %s=%q, want %q", what, key, e[key], want)
	}
}

// artifactDir is $CLOUDMHA_ARTIFACTS (created) or a temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CLOUDMHA_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func checkBeforeFailover(t *testing.T, dom string) {
	t.Helper()
	body := elements(dom, "body", "")
	if len(body) != 1 || body[0]["data-loaded"] != "true" {
		t.Fatalf("the page did not render (body %v); DOM:\n%s", body, dom)
	}
	sec := find(t, elements(dom, "section", "cluster"), "id", "cluster-app1", "cluster section")
	wantAttr(t, sec, "data-primary", "server1", "cluster-app1")
	wantAttr(t, sec, "data-state", "PING_OK", "cluster-app1")

	nodes := elements(dom, "g", "node")
	if len(nodes) != 3 {
		t.Errorf("DOM: %d topology nodes, want 3: %v", len(nodes), nodes)
	}
	n1 := find(t, nodes, "data-instance", "server1", "node")
	wantAttr(t, n1, "data-role", "primary", "server1")
	wantAttr(t, n1, "data-holder", "true", "server1")
	for _, name := range []string{"server2", "server3"} {
		n := find(t, nodes, "data-instance", name, "node")
		wantAttr(t, n, "data-role", "replica", name)
		wantAttr(t, n, "data-state", "ok", name)
	}
	wantAttr(t, find(t, nodes, "data-instance", "server3", "node"), "data-lag", "42", "server3")

	addr := find(t, elements(dom, "g", "address"), "data-holder", "server1", "address tag")
	wantAttr(t, addr, "data-address", "198.18.0.100", "address tag")
	wantAttr(t, addr, "data-mover", "vip", "address tag")

	edges := elements(dom, "g", "edge")
	e3 := find(t, edges, "data-to", "server3", "edge")
	wantAttr(t, e3, "data-from", "server1", "edge to server3")
	wantAttr(t, e3, "data-lag", "42", "edge to server3")
	wantAttr(t, e3, "data-state", "lagging", "edge to server3")
	wantAttr(t, find(t, edges, "data-to", "server2", "edge"), "data-state", "ok", "edge to server2")
	if !strings.Contains(dom, ">lag 42s</text>") {
		t.Errorf("DOM: no edge label \"lag 42s\"")
	}

	al := find(t, elements(dom, "li", ""), "data-alert", "ReplicationLag", "alert")
	wantAttr(t, al, "data-instance", "server3", "alert")
	wantAttr(t, al, "data-severity", "warning", "alert")
	if !strings.Contains(dom, "server3 lags 42 s behind server1") {
		t.Errorf("DOM: the alert's summary is missing")
	}

	run := find(t, elements(dom, "details", "run"), "data-run", "fo-20260301-1100", "failover run")
	wantAttr(t, run, "data-ok", "true", "run")
	steps := elements(dom, "div", "step")
	if len(steps) != 4 {
		t.Errorf("DOM: %d timeline steps, want 4", len(steps))
	}
	wantAttr(t, find(t, steps, "data-step", "02-catch-up-server1", "step"), "data-elapsed-ms", "900", "step 02")
	if !strings.Contains(dom, "server3 is 42 s behind") {
		t.Errorf("DOM: the recent event is missing")
	}
	if strings.Contains(dom, pageToken) {
		t.Errorf("DOM contains the token")
	}
}

func checkAfterFailover(t *testing.T, dom string) {
	t.Helper()
	sec := find(t, elements(dom, "section", "cluster"), "id", "cluster-app1", "cluster section")
	wantAttr(t, sec, "data-primary", "server2", "cluster-app1")
	wantAttr(t, sec, "data-blocked", "true", "cluster-app1")
	nodes := elements(dom, "g", "node")
	n2 := find(t, nodes, "data-instance", "server2", "node")
	wantAttr(t, n2, "data-role", "primary", "server2")
	wantAttr(t, n2, "data-holder", "true", "server2")
	n1 := find(t, nodes, "data-instance", "server1", "node")
	wantAttr(t, n1, "data-state", "unreachable", "server1")
	if n1["data-role"] == "primary" {
		t.Errorf("DOM: server1 still drawn as the primary")
	}
	wantAttr(t, find(t, elements(dom, "g", "edge"), "data-to", "server3", "edge"), "data-from", "server2", "edge to server3")
	find(t, elements(dom, "li", ""), "data-alert", "PrimaryDead", "alert")
}

// checkPNG verifies that path is a real, non-blank screenshot.
func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot %s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), w, h)
	}
	if n := colours(img, 200); n < 20 || st.Size() < 20<<10 {
		t.Errorf("screenshot %s looks blank: %d colours, %d bytes", path, n, st.Size())
	}
}

func colours(img image.Image, max int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}] = true
			if len(seen) >= max {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// TestStatusPageChromium loads the status page in headless Chromium: the
// 3-node cluster with its lagging replica and alert, then the same page
// after a failover, and keeps screenshots of both.
func TestStatusPageChromium(t *testing.T) {
	br := newBrowser(t)
	fb := threeNodes()
	srv := httptest.NewServer(New(Options{Backend: fb, Token: pageToken}))
	defer srv.Close()
	url := srv.URL + "/#token=" + pageToken

	checkBeforeFailover(t, dumpDOM(t, br, url))
	dir := artifactDir(t)
	shot := func(name string) {
		path := filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := br.Screenshot(ctx, url, path, 1400, 1000); err != nil {
			t.Fatal(err)
		}
		checkPNG(t, path, 1400, 1000)
		t.Logf("screenshot: %s", path)
	}
	shot("status-page.png")

	fb.failover("server2")
	checkAfterFailover(t, dumpDOM(t, br, url))
	shot("status-page-after-failover.png")
}

// flipBackend fails over to server2 once the page has read the clusters
// twice: only a page that polls shows the new primary.
type flipBackend struct {
	*fakeBackend
	reads atomic.Int32
}

func (f *flipBackend) Clusters() []view.Cluster {
	if f.reads.Add(1) == 2 {
		f.failover("server2")
	}
	return f.fakeBackend.Clusters()
}

func TestStatusPagePolls(t *testing.T) {
	br := newBrowser(t)
	fb := &flipBackend{fakeBackend: threeNodes()}
	srv := httptest.NewServer(New(Options{Backend: fb, Token: pageToken}))
	defer srv.Close()
	// The budget covers the first load and at least one 2 s poll.
	dom := dumpDOM(t, br, srv.URL+"/#token="+pageToken)
	if n := fb.reads.Load(); n < 2 {
		t.Fatalf("the page read the clusters %d times in 5 s of virtual time; it does not poll", n)
	}
	checkAfterFailover(t, dom)
}

func TestStatusPageAsksForToken(t *testing.T) {
	br := newBrowser(t)
	var reads atomic.Int32
	h := New(Options{Backend: threeNodes(), Token: pageToken})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/clusters" {
			reads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	for _, tc := range []struct{ name, url, reason string }{
		{"no token", srv.URL + "/", "requires an API token"},
		{"wrong token", srv.URL + "/#token=wrong-token-123", "refused the token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads.Store(0)
			dom := dumpDOM(t, br, tc.url)
			// Refused once, the page waits for a token instead of polling.
			if n := reads.Load(); n != 1 {
				t.Errorf("the page read /api/v1/clusters %d times, want 1", n)
			}
			if b := elements(dom, "body", ""); len(b) != 1 || b[0]["data-auth"] != "required" {
				t.Errorf("body %v: want data-auth=required", b)
			}
			if !regexp.MustCompile(`<section id="auth-prompt" class="auth">`).MatchString(dom) {
				t.Errorf("the token prompt is not shown")
			}
			if !strings.Contains(dom, tc.reason) {
				t.Errorf("the prompt does not say %q", tc.reason)
			}
			if len(elements(dom, "g", "node")) != 0 {
				t.Errorf("topology drawn without a valid token")
			}
		})
	}
}

func TestStatusPageOpenWithoutToken(t *testing.T) {
	br := newBrowser(t)
	srv := httptest.NewServer(New(Options{Backend: threeNodes()}))
	defer srv.Close()
	dom := dumpDOM(t, br, srv.URL+"/")
	checkBeforeFailover(t, dom)
}
