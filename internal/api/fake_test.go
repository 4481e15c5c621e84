package api

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/view"
)

// fakeBackend is a view.Backend for tests: a map of clusters and recorded
// actions.
type fakeBackend struct {
	mu       sync.Mutex
	clusters map[string]view.Cluster
	events   []view.Event
	alerts   []view.Alert
	history  map[string][]json.RawMessage
	ready    error

	// Switchover: the result and error to return; block, when set, is
	// waited for (and switchCtxErr records the context's state after it).
	switchRes    view.SwitchResult
	switchErr    error
	block        chan struct{}
	switchCtxErr chan error
	lastSwitch   view.SwitchRequest

	actionErr error    // returned by Ack, Pause and Resume
	calls     []string // "pause app1 by=… reason=…"
	lastLimit int
}

var _ view.Backend = (*fakeBackend)(nil)

func i64(v int64) *int64 { return &v }

// threeNodes is app1: server1 primary holding the VIP, server2 replica in
// sync, server3 replica 42 s behind (with an alert), and one past failover.
func threeNodes() *fakeBackend {
	now := time.Now().UTC().Truncate(time.Second)
	c := view.Cluster{
		Name:           "app1",
		State:          "PING_OK",
		Verdict:        "healthy",
		Primary:        "server1",
		Address:        &view.Address{Mover: "vip", Client: "198.18.0.100", Holder: "server1"},
		ProbeLatencyMS: 0.42,
		ProbeOK:        true,
		UpdatedAt:      now,
		LastFailover:   now.Add(-time.Hour),
		Instances: []view.Instance{
			{Name: "server1", Addr: "198.18.0.11:3306", Zone: "zone-a", Role: view.RolePrimary, Reachable: true,
				SemiSync: true, Version: "10.11.6-MariaDB", GTID: "0-1-1234"},
			{Name: "server2", Addr: "198.18.0.12:3306", Zone: "zone-b", Role: view.RoleReplica, Reachable: true, ReadOnly: true,
				Source: "server1", IORunning: true, SQLRunning: true, LagSeconds: i64(0), SemiSync: true, Version: "10.11.6-MariaDB"},
			{Name: "server3", Addr: "198.18.0.13:3306", Zone: "zone-c", Role: view.RoleReplica, Reachable: true, ReadOnly: true,
				Source: "server1", IORunning: true, SQLRunning: true, LagSeconds: i64(42), Version: "10.11.6-MariaDB"},
		},
	}
	started := now.Add(-time.Hour)
	report := map[string]any{
		"id": "fo-20260301-1100", "kind": "failover", "cluster": "app1",
		"old_primary": "server2", "new_primary": "server1",
		"started": started, "finished": started.Add(2300 * time.Millisecond),
		"steps": []map[string]any{
			{"name": "01-fence-old-server2", "kind": "fence", "server": "server2", "started": started, "elapsed": int64(310 * time.Millisecond)},
			{"name": "02-catch-up-server1", "kind": "catchup", "server": "server1", "started": started.Add(310 * time.Millisecond), "elapsed": int64(900 * time.Millisecond)},
			{"name": "03-promote-server1", "kind": "promote", "server": "server1", "started": started.Add(1210 * time.Millisecond), "elapsed": int64(400 * time.Millisecond)},
			{"name": "04-move-address", "kind": "address", "server": "server1", "started": started.Add(1610 * time.Millisecond), "elapsed": int64(650 * time.Millisecond), "note": "vip moved"},
		},
		"repointed": []string{"server3"},
	}
	raw, _ := json.Marshal(report)
	return &fakeBackend{
		clusters: map[string]view.Cluster{"app1": c},
		events: []view.Event{
			{Time: now.Add(-time.Minute), Cluster: "app1", Kind: "replication_lag", Severity: "warning", Title: "server3 is 42 s behind", Fields: map[string]string{"instance": "server3"}},
			{Time: now.Add(-time.Hour), ID: "fo-20260301-1100", Cluster: "app1", Kind: "failover_end", Severity: "info", Title: "failover to server1 done"},
		},
		alerts: []view.Alert{
			{Cluster: "app1", Name: "ReplicationLag", Severity: "warning", Instance: "server3", Summary: "server3 lags 42 s behind server1", Since: now.Add(-time.Minute)},
		},
		history:   map[string][]json.RawMessage{"app1": {raw}},
		switchRes: view.SwitchResult{Plan: "1. fence server1\n2. promote server2", OK: true},
	}
}

// failover makes newPrimary the primary of app1, as a failover would: the
// old primary is unreachable, the others replicate from the new one, the
// address moved.
func (f *fakeBackend) failover(newPrimary string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.clusters["app1"]
	old := c.Primary
	insts := make([]view.Instance, len(c.Instances))
	copy(insts, c.Instances)
	for k := range insts {
		in := &insts[k]
		switch in.Name {
		case newPrimary:
			in.Role, in.Source, in.ReadOnly, in.LagSeconds = view.RolePrimary, "", false, nil
			in.IORunning, in.SQLRunning = false, false
		case old:
			in.Role, in.Reachable, in.Error = view.RoleUnknown, false, "dial tcp "+in.Addr+": connect: connection refused"
		default:
			in.Source = newPrimary
		}
	}
	c.Instances = insts
	c.Primary = newPrimary
	c.Address = &view.Address{Mover: c.Address.Mover, Client: c.Address.Client, Holder: newPrimary}
	c.State = "PING_OK"
	c.Blocked = true
	f.clusters["app1"] = c
	f.alerts = append(f.alerts, view.Alert{Cluster: "app1", Name: "PrimaryDead", Severity: "critical", Instance: old,
		Summary: old + " is dead; failed over to " + newPrimary, Since: c.UpdatedAt})
}

func (f *fakeBackend) Clusters() []view.Cluster {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]view.Cluster, 0, len(f.clusters))
	for _, c := range f.clusters {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeBackend) Cluster(name string) (view.Cluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clusters[name]
	if !ok {
		return view.Cluster{}, fmt.Errorf("fake: %w", view.ErrNotFound)
	}
	return c, nil
}

func (f *fakeBackend) Events(cluster string, limit int) ([]view.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastLimit = limit
	if _, ok := f.clusters[cluster]; cluster != "" && !ok {
		return nil, view.ErrNotFound
	}
	var out []view.Event
	for _, e := range f.events {
		if cluster == "" || e.Cluster == cluster {
			out = append(out, e)
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeBackend) History(cluster string) ([]json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clusters[cluster]; !ok {
		return nil, view.ErrNotFound
	}
	return f.history[cluster], nil
}

func (f *fakeBackend) Alerts() []view.Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]view.Alert(nil), f.alerts...)
}

func (f *fakeBackend) Switchover(ctx context.Context, cluster string, r view.SwitchRequest) (view.SwitchResult, error) {
	f.mu.Lock()
	f.lastSwitch = r
	f.calls = append(f.calls, fmt.Sprintf("switchover %s by=%s new=%s", cluster, r.By, r.NewPrimary))
	block, ctxErr := f.block, f.switchCtxErr
	res, err := f.switchRes, f.switchErr
	_, ok := f.clusters[cluster]
	f.mu.Unlock()
	if !ok {
		return view.SwitchResult{}, view.ErrNotFound
	}
	if block != nil {
		<-block
		// Give a cancellation of the request time to reach ctx, if it does.
		time.Sleep(50 * time.Millisecond)
		ctxErr <- ctx.Err()
	}
	return res, err
}

func (f *fakeBackend) action(s string, cluster string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clusters[cluster]; !ok {
		return view.ErrNotFound
	}
	if f.actionErr != nil {
		return f.actionErr
	}
	f.calls = append(f.calls, s)
	return nil
}

func (f *fakeBackend) Ack(cluster, by, note string) error {
	return f.action(fmt.Sprintf("ack %s by=%s note=%s", cluster, by, note), cluster)
}

func (f *fakeBackend) Pause(cluster, by, reason string) error {
	return f.action(fmt.Sprintf("pause %s by=%s reason=%s", cluster, by, reason), cluster)
}

func (f *fakeBackend) Resume(cluster, by string) error {
	return f.action(fmt.Sprintf("resume %s by=%s", cluster, by), cluster)
}

func (f *fakeBackend) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeBackend) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeBackend) lastSwitchRequest() view.SwitchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastSwitch
}

func (f *fakeBackend) limit() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastLimit
}
