package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/detect"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/notify"
	"github.com/cloudmha/cloudmha/internal/store"
	"github.com/cloudmha/cloudmha/internal/view"
)

func testConfig(t *testing.T, name string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name+".cnf")
	cnf := "[server default]\nmanager_workdir=" + dir + "\nuser=mha\npassword=x\n" +
		"[server1]\nhostname=198.18.0.11\n[server2]\nhostname=198.18.0.12\n[server3]\nhostname=198.18.0.13\n"
	if err := os.WriteFile(p, []byte(cnf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: p, GlobalPath: "none"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newTestManager(t *testing.T, names ...string) *Manager {
	t.Helper()
	var cfgs []*config.Config
	for _, n := range names {
		cfgs = append(cfgs, testConfig(t, n))
	}
	m, err := New(cfgs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestManagerViewAndAlerts(t *testing.T) {
	m := newTestManager(t, "b", "a")
	if got := m.Clusters(); len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("clusters not sorted by name: %+v", got)
	}
	if _, err := m.Cluster("nope"); !errors.Is(err, view.ErrNotFound) {
		t.Fatalf("unknown cluster: %v", err)
	}
	w := m.byName["a"]
	s := snap(map[string]string{"server2": "198.18.0.11", "server3": "198.18.0.11"})
	lag := int64(42)
	s.Nodes[1].Status().Replica.IORunning = mysql.IOYes
	s.Nodes[1].Status().Replica.SQLRunning = true
	s.Nodes[1].Status().Replica.SecondsBehind = &lag
	// server3: IO thread connecting → replication stopped.
	w.setSnapshot(s, "server1")
	w.setState(store.Running)
	c, err := m.Cluster("a")
	if err != nil {
		t.Fatal(err)
	}
	if c.Primary != "server1" || c.State != "PING_OK" || len(c.Instances) != 3 {
		t.Fatalf("view %+v", c)
	}
	if in := c.Instances[1]; in.Role != view.RoleReplica || in.Source != "server1" || in.LagSeconds == nil || *in.LagSeconds != 42 {
		t.Fatalf("server2 %+v", in)
	}
	alerts := m.Alerts()
	names := map[string]string{}
	for _, a := range alerts {
		names[a.Name] = a.Instance
	}
	if names["ReplicationLag"] != "server2" || names["ReplicationStopped"] != "server3" || len(alerts) != 2 {
		t.Fatalf("alerts %+v", alerts)
	}
	// A dead verdict adds a critical alert.
	w.setVerdict(detect.Verdict{Kind: detect.DeadPrimary, Reason: "no replica sees it"})
	if a := m.Alerts(); len(a) != 3 || a[2].Name != "PrimaryDead" || a[2].Severity != "critical" || a[2].Instance != "server1" {
		t.Fatalf("alerts %+v", a)
	}
	// The condition clears: the alert goes.
	w.setVerdict(detect.Verdict{Kind: detect.Healthy})
	for _, a := range m.Alerts() {
		if a.Name == "PrimaryDead" {
			t.Fatalf("cleared alert still listed: %+v", a)
		}
	}
	// Ack marks what holds now as acknowledged and lifts the block file.
	if err := store.MarkFailoverComplete(w.c.CompletePath(), time.Now().Add(-time.Minute), "x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.LastFailover(w.c.CompletePath()); !ok {
		t.Fatal("no failover recorded")
	}
	if err := m.Ack("a", "alice", "checked"); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.LastFailover(w.c.CompletePath()); ok {
		t.Fatal("ack did not lift the anti-flapping block")
	}
	for _, a := range m.Alerts() {
		if a.Cluster == "a" && !a.Acked {
			t.Fatalf("alert not acknowledged: %+v", a)
		}
	}
	ev, _ := m.Events("a", 10)
	if len(ev) == 0 || ev[0].Kind != "ack" || ev[0].Fields["by"] != "alice" {
		t.Fatalf("events %+v", ev)
	}
}

func TestManagerPausePersists(t *testing.T) {
	cfg := testConfig(t, "app1")
	m, err := New([]*config.Config{cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Pause("app1", "bob", "maintenance"); err != nil {
		t.Fatal(err)
	}
	if c, _ := m.Cluster("app1"); !c.Paused || c.PausedBy != "bob" || c.PauseReason != "maintenance" {
		t.Fatalf("not paused: %+v", c)
	}
	found := false
	for _, a := range m.Alerts() {
		found = found || a.Name == "FailoverPaused"
	}
	if !found {
		t.Fatal("no FailoverPaused alert")
	}
	m.Close()
	// A restarted manager is still paused.
	m2, err := New([]*config.Config{cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if c, _ := m2.Cluster("app1"); !c.Paused || c.PausedBy != "bob" {
		t.Fatalf("pause lost on restart: %+v", c)
	}
	if err := m2.Resume("app1", "bob"); err != nil {
		t.Fatal(err)
	}
	if c, _ := m2.Cluster("app1"); c.Paused {
		t.Fatal("still paused after resume")
	}
	if _, err := os.Stat(m2.byName["app1"].pausePath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pause file left: %v", err)
	}
}

func TestManagerLocksCluster(t *testing.T) {
	cfg := testConfig(t, "app1")
	m, err := New([]*config.Config{cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := New([]*config.Config{cfg}, Options{}); err == nil || !strings.Contains(err.Error(), "another manager watches it") {
		t.Fatalf("second manager on the same cluster: %v", err)
	}
}

func TestEventsKeptBounded(t *testing.T) {
	m := newTestManager(t, "app1")
	w := m.byName["app1"]
	for i := 0; i < eventsKept+10; i++ {
		w.emit(notifyEvent("test", i), false)
	}
	ev, _ := m.Events("", 0)
	if len(ev) != eventsKept {
		t.Fatalf("%d events kept", len(ev))
	}
	if ev[0].Fields["n"] != "509" {
		t.Fatalf("newest first: %+v", ev[0])
	}
	if _, err := m.Events("nope", 1); !errors.Is(err, view.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestSwitchoverUnknownServer(t *testing.T) {
	m := newTestManager(t, "app1")
	_, err := m.Switchover(context.Background(), "app1", view.SwitchRequest{NewPrimary: "server9"})
	if !errors.Is(err, view.ErrInvalid) {
		t.Fatalf("err %v", err)
	}
}

func TestRunTagAddsCorrelationID(t *testing.T) {
	var buf bytes.Buffer
	id := new(atomic.Pointer[string])
	log := slog.New(newRunTag(slog.NewJSONHandler(&buf, nil), id)).With("cluster", "app1")
	log.Info("before")
	run := "20261121T000000Z-abcdef"
	id.Store(&run)
	log.With("component", "mover").Info("during")
	log.With("run", run).Info("executor line")
	id.Store(nil)
	log.Info("after")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range []int{0, 1, 1, 0} {
		if got := strings.Count(lines[i], `"run":"`+run+`"`); got != want {
			t.Errorf("line %d has the run %d times, want %d: %s", i, got, want, lines[i])
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Errorf("line %d not JSON: %v", i, err)
		}
	}
}

func notifyEvent(kind string, n int) notify.Event {
	return notify.Event{Kind: notify.Kind(kind), Title: "t", Fields: map[string]string{"n": strconv.Itoa(n)},
		Time: time.Now().Add(time.Duration(n) * time.Millisecond)}
}
