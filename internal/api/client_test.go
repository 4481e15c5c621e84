package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudmha/cloudmha/internal/view"
)

func TestClientRoundTrips(t *testing.T) {
	e := newEnv(t, testToken)
	ctx := context.Background()
	c := NewClient(e.srv.URL+"/", testToken, e.srv.Client())

	if err := c.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	cs, err := c.Clusters(ctx)
	if err != nil || len(cs) != 1 || cs[0].Primary != "server1" {
		t.Fatalf("Clusters: %v %+v", err, cs)
	}
	cl, err := c.Cluster(ctx, "app1")
	if err != nil || len(cl.Instances) != 3 || cl.Instances[2].LagSeconds == nil || *cl.Instances[2].LagSeconds != 42 {
		t.Fatalf("Cluster: %v %+v", err, cl)
	}
	ev, err := c.Events(ctx, "app1", 1)
	if err != nil || len(ev) != 1 || e.fb.limit() != 1 {
		t.Fatalf("Events: %v %+v", err, ev)
	}
	if _, err := c.Events(ctx, "", 0); err != nil || e.fb.limit() != DefaultEventLimit {
		t.Fatalf("Events default: %v, limit %d", err, e.fb.limit())
	}
	hist, err := c.History(ctx, "app1")
	if err != nil || len(hist) != 1 {
		t.Fatalf("History: %v %d", err, len(hist))
	}
	var rep struct {
		ID    string `json:"id"`
		Steps []struct {
			Name    string `json:"name"`
			Elapsed int64  `json:"elapsed"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(hist[0], &rep); err != nil || rep.ID != "fo-20260301-1100" || len(rep.Steps) != 4 {
		t.Fatalf("History report: %v %+v", err, rep)
	}
	al, err := c.Alerts(ctx)
	if err != nil || len(al) != 1 || al[0].Instance != "server3" {
		t.Fatalf("Alerts: %v %+v", err, al)
	}
	res, err := c.Switchover(ctx, "app1", view.SwitchRequest{NewPrimary: "server2", By: "erin"})
	if err != nil || !res.OK || res.Plan == "" {
		t.Fatalf("Switchover: %v %+v", err, res)
	}
	if got := e.fb.lastSwitchRequest(); got.NewPrimary != "server2" || got.By != "erin" {
		t.Errorf("backend got %+v", got)
	}
	if err := c.Ack(ctx, "app1", "erin", "seen"); err != nil || e.fb.lastCall() != "ack app1 by=erin note=seen" {
		t.Errorf("Ack: %v %q", err, e.fb.lastCall())
	}
	if err := c.Pause(ctx, "app1", "erin", "upgrade"); err != nil || e.fb.lastCall() != "pause app1 by=erin reason=upgrade" {
		t.Errorf("Pause: %v %q", err, e.fb.lastCall())
	}
	if err := c.Resume(ctx, "app1", ""); err != nil || e.fb.lastCall() != "resume app1 by=127.0.0.1" {
		t.Errorf("Resume: %v %q", err, e.fb.lastCall())
	}
}

func TestClientErrors(t *testing.T) {
	e := newEnv(t, testToken)
	ctx := context.Background()
	c := NewClient(e.srv.URL, testToken, e.srv.Client())

	_, err := c.Cluster(ctx, "nope")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 404 || !errors.Is(err, view.ErrNotFound) || !strings.Contains(ae.Message, `"nope"`) {
		t.Errorf("Cluster(nope): %v", err)
	}
	// Names are escaped in the path.
	if _, err := c.Cluster(ctx, "a/b c"); !errors.Is(err, view.ErrNotFound) {
		t.Errorf("Cluster(a/b c): %v", err)
	}

	e.fb.mu.Lock()
	e.fb.actionErr = fmt.Errorf("a failover is running: %w", view.ErrConflict)
	e.fb.mu.Unlock()
	err = c.Pause(ctx, "app1", "x", "y")
	if !errors.Is(err, view.ErrConflict) || errors.Is(err, view.ErrNotFound) || !strings.Contains(err.Error(), "a failover is running") {
		t.Errorf("Pause during a failover: %v", err)
	}
	e.fb.mu.Lock()
	e.fb.actionErr = fmt.Errorf("server9: %w", view.ErrInvalid)
	e.fb.mu.Unlock()
	if err := c.Ack(ctx, "app1", "", ""); !errors.Is(err, view.ErrInvalid) {
		t.Errorf("Ack invalid: %v", err)
	}

	// A failed switchover returns its plan and report with the error.
	e.fb.mu.Lock()
	e.fb.switchRes = view.SwitchResult{Plan: "p", Report: json.RawMessage(`{"id":"sw-2"}`), Error: "repoint failed"}
	e.fb.mu.Unlock()
	res, err := c.Switchover(ctx, "app1", view.SwitchRequest{})
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Result == nil || res.Plan != "p" || string(res.Report) != `{"id":"sw-2"}` || res.OK {
		t.Errorf("failed switchover: %v %+v", err, res)
	}

	e.fb.mu.Lock()
	e.fb.ready = errors.New("starting")
	e.fb.mu.Unlock()
	if err := c.Health(ctx); !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "starting" {
		t.Errorf("Health: %v", err)
	}

	// Wrong token: 401 with the server's message, and never the token.
	bad := NewClient(e.srv.URL, "not-the-"+testToken, e.srv.Client())
	_, err = bad.Clusters(ctx)
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), "invalid bearer token") {
		t.Errorf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error contains the token: %v", err)
	}

	// Without a token on a server that has none, actions are refused.
	open := newEnv(t, "")
	err = NewClient(open.srv.URL, "", nil).Resume(ctx, "app1", "")
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Errorf("action on a manager without token: %v", err)
	}
}

func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := NewClient(srv.URL, "tok", nil).Alerts(context.Background())
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(ae.Message, "bad gateway") {
		t.Errorf("proxy error: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := NewClient(url, testToken, nil).Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/healthz") || strings.Contains(err.Error(), testToken) {
		t.Errorf("unreachable: %v", err)
	}
}
