package failover

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/store"
	"github.com/cloudmha/cloudmha/internal/topology"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// upBed brings up a 3-host semi-sync bed or skips.
func upBed(t *testing.T) (*testbed.Bed, *config.Config) {
	t.Helper()
	switch {
	case testing.Short():
		t.Skip("test bed skipped with -short")
	case os.Getenv("CLOUDMHA_SKIP_TESTBED") != "":
		t.Skip("test bed skipped: CLOUDMHA_SKIP_TESTBED is set")
	case os.Geteuid() != 0:
		t.Skip("test bed needs root (network namespaces)")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			t.Skip("test bed needs mariadbd")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := testbed.Up(ctx, testbed.Options{Hosts: 3, SemiSync: true, Prefix: "cmhaf",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Down(ctx); err != nil {
			t.Errorf("test bed down: %v", err)
		}
	})
	conf := filepath.Join(t.TempDir(), "app1.cnf")
	if err := b.WriteMHAConfig(conf, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: conf, GlobalPath: config.GlobalNone})
	if err != nil {
		t.Fatal(err)
	}
	return b, cfg
}

// bedHost maps serverN to the bed's dbN.
func bedHost(b *testbed.Bed, server string) *testbed.Host {
	return b.Host("db" + strings.TrimPrefix(server, "server"))
}

// vipMover is a tiny mover for the bed's VIP (the real one is another
// package's): delete it on the old primary, add it on the new one.
type vipMover struct{ b *testbed.Bed }

func (m vipMover) Kind() string { return "testbed-vip" }
func (m vipMover) Release(ctx context.Context, c address.Change) error {
	return m.b.DelVIP(ctx, bedHost(m.b, c.Old.Name))
}
func (m vipMover) Acquire(ctx context.Context, c address.Change) error {
	return m.b.AddVIP(ctx, bedHost(m.b, c.New.Name))
}
func (m vipMover) Holder(context.Context) (string, error) { return "", address.ErrHolderUnknown }

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// waitConverged waits until every host but primary replicates from it with
// both threads running.
func waitConverged(t *testing.T, ctx context.Context, b *testbed.Bed, primary *testbed.Host, hosts ...*testbed.Host) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, h := range hosts {
		for {
			st, err := b.ReplicaStatus(ctx, h)
			if err == nil && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" && st["Master_Host"] == primary.IP {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not replicate from %s: %v %v", h.Name, primary.Name, st, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func TestOnTestBed(t *testing.T) {
	b, cfg := upBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reader := topology.MySQLReader{Dial: b.Dialer(b.ManagerNS), SkipGrants: true}
	ops := NewSQLOps(cfg, b.Dialer(b.ManagerNS))
	defer ops.Close()
	dir := t.TempDir()
	j, err := store.OpenJournal(store.JournalPath(dir, cfg.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()

	t.Run("switchover-with-workload", func(t *testing.T) {
		cfg.Address.Mover = "testbed-vip"
		defer func() { cfg.Address.Mover = "" }()
		e := &Executor{Ops: ops, Mover: vipMover{b}, Journal: j, Logger: logger, StepTimeout: 20 * time.Second}
		w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 100, Duration: 3 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		time.Sleep(time.Second)
		var blocks, totals []time.Duration
		primary := "server1"
		for i, to := range []string{"server2", "server1", "server2", "server1", "server2", "server1"} {
			snap := topology.Take(ctx, cfg, reader, 5*time.Second)
			var sp *SwitchPlan
			var err error
			for try := 0; try < 20; try++ { // lag may briefly show after the previous switch
				if sp, err = PlanSwitchover(snap, cfg, SwitchOptions{NewPrimary: to, OrigIsNewReplica: true}); err == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
				snap = topology.Take(ctx, cfg, reader, 5*time.Second)
			}
			if err != nil {
				t.Fatalf("switch %d plan: %v", i, err)
			}
			if i == 0 {
				t.Logf("\n%s", sp.String())
			}
			rep, err := e.Switchover(ctx, sp)
			if err != nil {
				t.Fatalf("switch %d %s->%s: %v\n%s", i, primary, to, err, rep.Text())
			}
			if i == 0 {
				t.Logf("\n%s", rep.Text())
			}
			blocks = append(blocks, rep.WriteBlock)
			totals = append(totals, rep.Finished.Sub(rep.Started))
			if !rep.Lost.IsEmpty() || len(rep.Failed) > 0 {
				t.Fatalf("switch %d: lost %s failed %v", i, rep.Lost, rep.Failed)
			}
			nh, oh := bedHost(b, to), bedHost(b, primary)
			var others []*testbed.Host
			for _, h := range b.Hosts {
				if h != nh {
					others = append(others, h)
				}
			}
			waitConverged(t, ctx, b, nh, others...)
			if ro, err := b.SQL(ctx, oh, "SELECT @@read_only"); err != nil || ro != "1" {
				t.Fatalf("old primary %s read_only=%q %v", oh.Name, ro, err)
			}
			primary = to
			time.Sleep(1500 * time.Millisecond)
		}
		res := w.Stop()
		ph := bedHost(b, primary)
		if err := b.WaitReplicas(ctx, ph); err != nil {
			t.Fatal(err)
		}
		for _, h := range b.Hosts {
			missing, err := b.MissingWrites(ctx, h, res.Acked)
			if err != nil || len(missing) > 0 {
				t.Fatalf("%s misses %d acknowledged writes (%v): %v", h.Name, len(missing), err, missing[:min(len(missing), 10)])
			}
		}
		t.Logf("switchovers: write block %v (median %s); whole switchover %v", blocks, median(blocks), totals)
		t.Logf("workload: %d acked, %d uncertain, %d errors, longest gap without an ack %s",
			len(res.Acked), len(res.Uncertain), res.Errors, res.MaxAckGap)
	})

	t.Run("failover-after-kill", func(t *testing.T) {
		db1 := b.Host("db1")
		before := topology.Take(ctx, cfg, reader, 5*time.Second)
		if p := before.Primaries(); len(p) != 1 || p[0].Server.Name != "server1" {
			t.Fatalf("server1 is not the primary before the kill")
		}
		w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 100, Duration: time.Minute, Addr: db1.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		time.Sleep(2 * time.Second)
		last := topology.Take(ctx, cfg, reader, 5*time.Second)
		dead := last.Nodes[0].Status()
		if dead == nil {
			t.Fatal("server1 unreadable before the kill")
		}
		if err := b.Kill(db1); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		res := w.Stop()
		snap := topology.Take(ctx, cfg, reader, 2*time.Second)
		p, err := PlanFailover(snap, cfg, Options{Dead: "server1", DeadGTIDs: dead.GTIDExecuted, SkipSalvage: true, DeadSSHReachable: No})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("\n%s", p.String())
		e := &Executor{Ops: ops, Journal: j, Logger: logger, StepTimeout: 20 * time.Second,
			HistoryPath: store.HistoryPath(dir, cfg.Name), CompletePath: store.FailoverCompletePath(dir, cfg.Name)}
		rep, err := e.Run(ctx, p)
		if err != nil {
			t.Fatalf("failover: %v\n%s", err, rep.Text())
		}
		done := time.Since(killed)
		t.Logf("\n%s", rep.Text())
		nh := bedHost(b, rep.NewPrimary)
		if nh.Name != "db2" && nh.Name != "db3" {
			t.Fatalf("new primary %s", nh.Name)
		}
		other := b.Host("db2")
		if nh == other {
			other = b.Host("db3")
		}
		waitConverged(t, ctx, b, nh, other)
		if ro, err := b.SQL(ctx, nh, "SELECT @@read_only"); err != nil || ro != "0" {
			t.Fatalf("new primary read_only=%q %v", ro, err)
		}
		if _, err := b.SQL(ctx, nh, "INSERT INTO cloudmha_test.writes (id, writer) VALUES (999999999, 'after-failover')"); err != nil {
			t.Logf("write after failover (columns may differ): %v", err)
		}
		if err := b.WaitReplicas(ctx, nh, other); err != nil {
			t.Fatal(err)
		}
		for _, h := range []*testbed.Host{nh, other} {
			missing, err := b.MissingWrites(ctx, h, res.Acked)
			if err != nil || len(missing) > 0 {
				t.Fatalf("%s misses %d acknowledged writes (%v): %v", h.Name, len(missing), err, missing[:min(len(missing), 10)])
			}
		}
		if !rep.Lost.IsEmpty() {
			t.Fatalf("report names lost transactions %s", rep.Lost)
		}
		t.Logf("failover: plan+run %s (run %s), kill -> new primary writable and replicas repointed %s; %d acked writes before the kill all present",
			rep.Finished.Sub(rep.Started), rep.Finished.Sub(rep.Started), done, len(res.Acked))
	})
}
