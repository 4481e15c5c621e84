package notify

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// fixedNow is the clock of every test: 2026-01-02T03:04:05.678Z.
func fixedNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC) }

func testEvent() Event {
	return Event{
		ID: "run-42", Cluster: "shop", Kind: KindFailoverEnd, Severity: SeverityCritical,
		Title: "failover done: db2 is the new primary", Text: "db1 was fenced.",
		Fields: map[string]string{"old_primary": "db1", "new_primary": "db2"},
		Time:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// wantMarkdown is markdown(testEvent()).
const wantMarkdown = "### [CRITICAL] shop: failover done: db2 is the new primary\n\n" +
	"db1 was fenced.\n\n" +
	"> **cluster**: shop\n\n> **event**: failover_end\n\n> **severity**: critical\n\n" +
	"> **time**: 2026-01-02T03:04:05Z\n\n> **run**: run-42\n\n" +
	"> **new_primary**: db2\n\n> **old_primary**: db1\n\n" +
	"cloudmha"

// request is what a test server received.
type request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// reply is a test server's answer.
type reply struct {
	status int
	header map[string]string
	body   string
}

// recorder is an HTTP endpoint that records requests and answers from a
// script of replies (the last one repeats).
type recorder struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []request
	replies []reply
}

func newRecorder(t *testing.T, replies ...reply) *recorder {
	t.Helper()
	r := &recorder{t: t, replies: replies}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, request{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery, Header: req.Header.Clone(), Body: b})
		rep := reply{status: 200, body: "ok"}
		if n := len(r.reqs) - 1; n < len(r.replies) {
			rep = r.replies[n]
		} else if len(r.replies) > 0 {
			rep = r.replies[len(r.replies)-1]
		}
		r.mu.Unlock()
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func (r *recorder) only() request {
	r.t.Helper()
	reqs := r.requests()
	if len(reqs) != 1 {
		r.t.Fatalf("%d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// jsonEqual compares a JSON body with the expected value, as decoded JSON.
func jsonEqual(t *testing.T, body []byte, want any) {
	t.Helper()
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	wb, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var w any
	_ = json.Unmarshal(wb, &w)
	if !reflect.DeepEqual(got, w) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("body:\n%s\nwant:\n%s", gb, wi)
	}
}

func chanOpts() ChannelOptions { return ChannelOptions{Now: fixedNow, Hostname: "mha1.example.com"} }

func notifier(kind, url, secret string, options map[string]string) config.Notifier {
	return config.Notifier{Name: kind + "-test", Kind: kind, URL: url, Secret: config.NewSecret(secret), Options: options}
}

type obj = map[string]any
type arr = []any

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// blockingHandler hangs until release is closed or the client goes away.
func blockingHandler(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
}

func newTLSConfig(c testCert) *tls.Config { return &tls.Config{RootCAs: c.pool} }

// listen returns a listener closed at the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// closedAddr is an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// httpHandlerFunc calls before, h, then after.
func httpHandlerFunc(before func(), h http.Handler, after func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before()
		h.ServeHTTP(w, r)
		after()
	})
}
