package detect

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/test/testbed"
)

const bedPrefix = "cmhad"

// upBed brings up a 3-host semi-sync bed with 1 s replica heartbeats, or
// skips the test when that is impossible.
func upBed(t *testing.T) *testbed.Bed {
	t.Helper()
	switch {
	case os.Getenv("CLOUDMHA_SKIP_TESTBED") != "":
		t.Skip("CLOUDMHA_SKIP_TESTBED is set")
	case testing.Short():
		t.Skip("test bed skipped with -short")
	case os.Geteuid() != 0:
		t.Skip("the test bed needs root (network namespaces)")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			t.Skip("mariadbd not installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := testbed.Up(ctx, testbed.Options{Hosts: 3, SemiSync: true, Prefix: bedPrefix})
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Down(ctx); err != nil {
			t.Errorf("test bed down: %v", err)
		}
	})
	for _, h := range b.Replicas(b.Primary) {
		if _, err := b.SQL(ctx, h, "STOP SLAVE; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=1; START SLAVE"); err != nil {
			t.Fatalf("heartbeat period on %s: %v", h.Name, err)
		}
	}
	for _, h := range b.Replicas(b.Primary) {
		for {
			ok, err := b.ReplicationRunning(ctx, h)
			if err != nil {
				t.Fatalf("%s: %v", h.Name, err)
			}
			if ok {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("test bed up in %v", b.BringUp.Round(time.Millisecond))
	return b
}

func serverOf(b *testbed.Bed, i int, h *testbed.Host) config.Server {
	return config.Server{Name: fmt.Sprintf("server%d", i+1), Hostname: h.Name, IP: h.IP, Port: h.Port,
		User: b.User, Password: config.NewSecret(b.Password)}
}

// monitorRun is a Monitor running against a bed, with every verdict kept.
type monitorRun struct {
	t      *testing.T
	out    chan Verdict
	cancel context.CancelFunc
	done   chan error

	mu       sync.Mutex
	verdicts []timedVerdict
}

type timedVerdict struct {
	at time.Time
	v  Verdict
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startMonitor(t *testing.T, b *testbed.Bed) *monitorRun {
	t.Helper()
	primary := b.Host(b.Primary)
	var replicas []config.Server
	var prim config.Server
	for i, h := range b.Hosts {
		if h == primary {
			prim = serverOf(b, i, h)
		} else {
			replicas = append(replicas, serverOf(b, i, h))
		}
	}
	m := NewMonitor(MonitorOptions{
		Primary: prim, Replicas: replicas, Interval: time.Second,
		Dial:   b.Dialer(b.ManagerNS),
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	ctx, cancel := context.WithCancel(context.Background())
	r := &monitorRun{t: t, out: make(chan Verdict, 64), cancel: cancel, done: make(chan error, 1)}
	raw := make(chan Verdict)
	go func() { r.done <- m.Run(ctx, raw) }()
	go func() {
		for {
			select {
			case v := <-raw:
				r.mu.Lock()
				r.verdicts = append(r.verdicts, timedVerdict{time.Now(), v})
				r.mu.Unlock()
				select {
				case r.out <- v:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(r.stop)
	r.await(Healthy, 10*time.Second)
	return r
}

func (r *monitorRun) stop() {
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	r.done <- nil // idempotent
}

// await waits for a verdict of kind and returns when it arrived.
func (r *monitorRun) await(kind Kind, timeout time.Duration) (Verdict, time.Time) {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case v := <-r.out:
			r.t.Logf("verdict %v: %s", v.Kind, v.Reason)
			if v.Kind == kind {
				return v, time.Now()
			}
		case <-deadline:
			r.t.Fatalf("no %v within %v", kind, timeout)
		}
	}
}

// kindsSince lists the kinds received after from.
func (r *monitorRun) kindsSince(from time.Time) []Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []Kind
	for _, tv := range r.verdicts {
		if !tv.at.Before(from) {
			ks = append(ks, tv.v.Kind)
		}
	}
	return ks
}

// awaitDead waits for DeadPrimary after a fault injected at fault and checks
// that no alert-only verdict came first.
func awaitDead(t *testing.T, r *monitorRun, fault time.Time, scenario string) {
	t.Helper()
	v, got := r.await(DeadPrimary, 20*time.Second)
	d := got.Sub(fault)
	t.Logf("DETECTION %s: DeadPrimary %v after the fault (failure since %v after it)\n  %s",
		scenario, d.Round(time.Millisecond), v.Since.Sub(fault).Round(time.Millisecond), strings.Join(v.Evidence, "\n  "))
	for _, k := range r.kindsSince(fault) {
		if k == UnreachablePrimary {
			t.Errorf("%s: UnreachablePrimary before DeadPrimary: %v", scenario, r.kindsSince(fault))
		}
		if k == DeadPrimary {
			break
		}
	}
}

func TestTestbedKill(t *testing.T) {
	b := upBed(t)
	ctx := context.Background()
	w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 50, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	r := startMonitor(t, b)
	time.Sleep(2 * time.Second) // a few healthy rounds and replica baselines
	fault := time.Now()
	if err := b.Kill(b.Host(b.Primary)); err != nil {
		t.Fatal(err)
	}
	awaitDead(t, r, fault, "kill -9")
}

func TestTestbedFreeze(t *testing.T) {
	b := upBed(t)
	r := startMonitor(t, b)
	time.Sleep(2 * time.Second)
	p := b.Host(b.Primary)
	fault := time.Now()
	if err := b.Freeze(p); err != nil {
		t.Fatal(err)
	}
	awaitDead(t, r, fault, "SIGSTOP")
	thawed := time.Now()
	if err := b.Thaw(p); err != nil {
		t.Fatal(err)
	}
	_, back := r.await(Healthy, 20*time.Second)
	t.Logf("Healthy again %v after the thaw", back.Sub(thawed).Round(time.Millisecond))
}

func TestTestbedLinkDown(t *testing.T) {
	b := upBed(t)
	r := startMonitor(t, b)
	time.Sleep(2 * time.Second)
	p := b.Host(b.Primary)
	fault := time.Now()
	if err := b.LinkDown(p); err != nil {
		t.Fatal(err)
	}
	awaitDead(t, r, fault, "link down")
	if err := b.LinkUp(p); err != nil {
		t.Fatal(err)
	}
	r.await(Healthy, 20*time.Second)
}

// TestTestbedManagerPartition cuts only the manager <-> primary traffic on
// the bridge: the replicas keep replicating, so the verdict must be
// UnreachablePrimary and never DeadPrimary.
func TestTestbedManagerPartition(t *testing.T) {
	b := upBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 50, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	r := startMonitor(t, b)
	time.Sleep(2 * time.Second)

	p := b.Host(b.Primary)
	table := bedPrefix + "_partition"
	nft := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := b.Exec(ctx, b.SwitchNS, "nft", args...); err != nil {
			t.Fatalf("nft %v: %v\n%s", args, err, out)
		}
	}
	removed := false
	remove := func() {
		if !removed {
			removed = true
			nft("delete", "table", "bridge", table)
		}
	}
	fault := time.Now()
	nft("add", "table", "bridge", table)
	t.Cleanup(remove)
	nft("add", "chain", "bridge", table, "cut", "{ type filter hook forward priority 0; policy accept; }")
	nft("add", "rule", "bridge", table, "cut", "ip", "saddr", b.ManagerIP, "ip", "daddr", p.IP, "drop")
	nft("add", "rule", "bridge", table, "cut", "ip", "saddr", p.IP, "ip", "daddr", b.ManagerIP, "drop")

	v, got := r.await(UnreachablePrimary, 15*time.Second)
	t.Logf("DETECTION manager-only partition: UnreachablePrimary %v after the cut\n  %s",
		got.Sub(fault).Round(time.Millisecond), strings.Join(v.Evidence, "\n  "))
	time.Sleep(8 * time.Second)
	for _, k := range r.kindsSince(fault) {
		if k == DeadPrimary {
			t.Fatalf("DeadPrimary on a manager-only partition: %v", r.kindsSince(fault))
		}
	}
	t.Logf("verdicts during the partition: %v", r.kindsSince(fault))
	healed := time.Now()
	remove()
	r.await(Healthy, 15*time.Second)
	t.Logf("Healthy %v after the partition healed", time.Since(healed).Round(time.Millisecond))
	if res := w.Progress(); len(res.Acked) == 0 {
		t.Errorf("workload made no progress: %+v", res.LastErrorText)
	}
}
