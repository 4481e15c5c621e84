package detect

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

var (
	primarySrv = config.Server{Name: "server1", IP: "198.18.0.11", Port: 3306}
	replicaSrv = config.Server{Name: "server2", IP: "198.18.0.12", Port: 3306}
)

func receiver(io string, pos uint64, now, hb time.Time) *mysql.ReceiverStatus {
	return &mysql.ReceiverStatus{
		Replica: &mysql.ReplicaStatus{SourceHost: "198.18.0.11", SourcePort: 3306, IORunning: io,
			SourceLogFile: "mysql-bin.000001", ReadSourceLogPos: pos},
		ServerNow: now, LastHeartbeat: hb, HeartbeatPeriod: time.Second, HeartbeatKnown: true,
	}
}

func TestTrackerView(t *testing.T) {
	var tr tracker
	// First read: busy primary, old heartbeat; the position has never been
	// seen to move, so only the heartbeat dates it.
	v := tr.view(replicaSrv, primarySrv, at(0), receiver(mysql.IOYes, 100, at(0), at(-10*time.Second)), nil)
	if !v.Reachable || !v.Replicating || v.ReadPosMoved || v.LastEventAge != 10*time.Second || v.HeartbeatPeriod != time.Second {
		t.Fatalf("first: %+v", v)
	}
	// Moved between 0 and 1 s: dated to the earlier read (an upper bound).
	v = tr.view(replicaSrv, primarySrv, at(time.Second), receiver(mysql.IOYes, 200, at(time.Second), at(-10*time.Second)), nil)
	if !v.ReadPosMoved || v.LastEventAge != time.Second {
		t.Fatalf("moved: %+v", v)
	}
	// Still since: ages from the read before the move.
	v = tr.view(replicaSrv, primarySrv, at(4*time.Second), receiver(mysql.IOYes, 200, at(4*time.Second), at(-10*time.Second)), nil)
	if v.ReadPosMoved || v.LastEventAge != 4*time.Second {
		t.Fatalf("still: %+v", v)
	}
	// A fresh heartbeat wins.
	v = tr.view(replicaSrv, primarySrv, at(5*time.Second), receiver(mysql.IOYes, 200, at(5*time.Second), at(4*time.Second)), nil)
	if v.LastEventAge != time.Second {
		t.Fatalf("heartbeat: %+v", v)
	}
	// Heartbeats disabled, other source, errors.
	st := receiver(mysql.IOYes, 200, at(6*time.Second), time.Time{})
	st.HeartbeatPeriod = 0
	st.Replica.SourceHost = "198.18.0.13"
	v = tr.view(replicaSrv, primarySrv, at(6*time.Second), st, nil)
	if v.Replicating || v.HeartbeatPeriod != -1 {
		t.Fatalf("other source: %+v", v)
	}
	v = tr.view(replicaSrv, primarySrv, at(7*time.Second), nil, errors.New("boom"))
	if v.Reachable || v.Err != "boom" || v.LastEventAge != -1 {
		t.Fatalf("error: %+v", v)
	}
	v = tr.view(replicaSrv, primarySrv, at(7*time.Second), &mysql.ReceiverStatus{ServerNow: at(7 * time.Second)}, nil)
	if !v.Reachable || v.Replicating {
		t.Fatalf("not a replica: %+v", v)
	}
}

func TestSourceIs(t *testing.T) {
	p := config.Server{Hostname: "DB1.example", IP: "198.18.0.11", Port: 3306}
	for _, tt := range []struct {
		host string
		port int
		want bool
	}{{"198.18.0.11", 3306, true}, {"db1.example", 3306, true}, {"198.18.0.11", 3307, false},
		{"198.18.0.12", 3306, false}, {"198.18.0.11", 0, true}} {
		if got := sourceIs(&mysql.ReplicaStatus{SourceHost: tt.host, SourcePort: tt.port}, p); got != tt.want {
			t.Errorf("%s:%d = %v", tt.host, tt.port, got)
		}
	}
}

// fakeBackend simulates a primary and one replica.
type fakeBackend struct {
	mu         sync.Mutex
	primaryErr error
	ioState    string
	pos        uint64
	broken     chan struct{} // closed to break the watch connection
	clock      func() time.Time
}

func (f *fakeBackend) ProbePrimary(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.primaryErr
}

func (f *fakeBackend) WatchPrimary(ctx context.Context) (bool, error) {
	f.mu.Lock()
	ch, down := f.broken, f.primaryErr != nil
	f.mu.Unlock()
	if down {
		return false, errors.New("refused")
	}
	select {
	case <-ch:
		return true, errors.New("invalid connection")
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

func (f *fakeBackend) ReadReplica(ctx context.Context, i int) (*mysql.ReceiverStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock()
	f.pos++
	return receiver(f.ioState, f.pos, now, now.Add(-100*time.Millisecond)), nil
}

func (f *fakeBackend) Close() {}

func (f *fakeBackend) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.primaryErr = errors.New("dial tcp 198.18.0.11:3306: connect: connection refused")
	f.ioState = mysql.IOConnecting
	close(f.broken)
}

// TestMonitorKillReactsToWatch checks that a broken watch connection makes
// the monitor react long before the next ping_interval tick.
func TestMonitorKillReactsToWatch(t *testing.T) {
	fb := &fakeBackend{ioState: mysql.IOYes, broken: make(chan struct{}), clock: time.Now}
	m := NewMonitor(MonitorOptions{Primary: primarySrv, Replicas: []config.Server{replicaSrv},
		Interval: time.Hour, ProbeTimeout: time.Second})
	m.newBackend = func() backend { return fb }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make(chan Verdict, 16)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, out) }()

	if v := <-out; v.Kind != Healthy {
		t.Fatalf("first verdict %v: %s", v.Kind, v.Reason)
	}
	killed := time.Now()
	fb.kill()
	for {
		select {
		case v := <-out:
			t.Logf("%v after %v: %s", v.Kind, time.Since(killed), v.Reason)
			if v.Kind == DeadPrimary {
				if d := time.Since(killed); d > 5*time.Second {
					t.Errorf("DeadPrimary after %v with a 1 h interval", d)
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
				return
			}
			if v.Kind == UnreachablePrimary {
				t.Fatalf("unexpected %v: %s", v.Kind, v.Reason)
			}
		case <-ctx.Done():
			t.Fatal("no DeadPrimary")
		}
	}
}

func TestMonitorSecondaryCheck(t *testing.T) {
	fb := &fakeBackend{ioState: mysql.IOYes, broken: make(chan struct{}), clock: time.Now}
	var calls int
	var mu sync.Mutex
	m := NewMonitor(MonitorOptions{Primary: primarySrv, Replicas: nil, Interval: 100 * time.Millisecond,
		SecondaryCheck: func(ctx context.Context) (int, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			return 0, nil
		}})
	m.newBackend = func() backend { return fb }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := make(chan Verdict, 16)
	go func() { _ = m.Run(ctx, out) }()
	if v := <-out; v.Kind != Healthy {
		t.Fatalf("first verdict %v", v.Kind)
	}
	fb.kill()
	for v := range out {
		if v.Kind == DeadPrimary {
			if v.Observation.SecondaryCheck == nil || *v.Observation.SecondaryCheck != 0 {
				t.Fatalf("dead without the secondary check: %s", v.Reason)
			}
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("secondary check ran %d times", calls)
	}
}

func TestMonitorOptions(t *testing.T) {
	m := NewMonitor(MonitorOptions{Primary: primarySrv, Config: &config.Config{PingInterval: 3 * time.Second, PingType: "insert"}})
	if m.interval != 3*time.Second || m.probeTimeout != time.Second || m.fast != 500*time.Millisecond || m.pingType != config.PingInsert {
		t.Errorf("defaults: %v %v %v %s", m.interval, m.probeTimeout, m.fast, m.pingType)
	}
	m = NewMonitor(MonitorOptions{Primary: primarySrv, Interval: 200 * time.Millisecond})
	if m.probeTimeout != 500*time.Millisecond || m.fast != 50*time.Millisecond {
		t.Errorf("sub-second: %v %v", m.probeTimeout, m.fast)
	}
	if err := NewMonitor(MonitorOptions{}).Run(context.Background(), nil); err == nil {
		t.Error("no primary accepted")
	}
	bad := NewMonitor(MonitorOptions{Primary: primarySrv, Config: &config.Config{PingType: "PING"}})
	if err := bad.Run(context.Background(), nil); err == nil {
		t.Error("bad ping type accepted")
	}
}
