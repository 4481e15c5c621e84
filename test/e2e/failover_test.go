package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// haBed brings up a 3-host semi-sync cluster and writes an MHA app.cnf for
// the manager with the VIP mover and ping_interval=1. extra adds keys.
func haBed(t *testing.T, semiSync bool, extra map[string]string) (*testbed.Bed, string, string) {
	t.Helper()
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: semiSync})
	dir := t.TempDir()
	conf := filepath.Join(dir, "app1.cnf")
	keys := map[string]string{
		"manager_workdir": dir,
		"ping_interval":   "1",
		"vip":             b.VIP,
		"vip_interface":   "eth0",
		"vip_prefix":      "24",
	}
	for k, v := range extra {
		keys[k] = v
	}
	if err := b.WriteMHAConfig(conf, keys); err != nil {
		t.Fatal(err)
	}
	return b, conf, dir
}

// scenario is one fault with the manager watching and a workload writing
// through the VIP.
type scenario struct {
	b       *testbed.Bed
	conf    string
	dir     string
	m       *managerProc
	w       *testbed.Workload
	s       *sampler
	faultAt time.Time
}

// setup tunes a scenario.
type setup struct {
	asyncReplication bool              // semi-sync off
	extra            map[string]string // more app.cnf keys
	managerArgs      []string
	reuse            *testbed.Bed // a bed already up (its settings win)
}

func startScenario(t *testing.T, o setup) *scenario {
	t.Helper()
	var b *testbed.Bed
	var conf, dir string
	if o.reuse != nil {
		b, dir = o.reuse, t.TempDir()
		conf = filepath.Join(dir, "app1.cnf")
		keys := map[string]string{"manager_workdir": dir, "ping_interval": "1", "vip": b.VIP, "vip_interface": "eth0", "vip_prefix": "24"}
		for k, v := range o.extra {
			keys[k] = v
		}
		if err := b.WriteMHAConfig(conf, keys); err != nil {
			t.Fatal(err)
		}
	} else {
		b, conf, dir = haBed(t, !o.asyncReplication, o.extra)
	}
	managerArgs := o.managerArgs
	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf, managerArgs...)
	sc.m.waitLog(t, "monitoring primary", 20*time.Second)
	sc.m.waitLog(t, "state=0:PING_OK", 20*time.Second)
	w, err := b.StartWorkload(context.Background(), testbed.WorkloadOptions{Rate: 100, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	t.Cleanup(func() { w.Stop() })
	sc.s = startSampler(t, b)
	time.Sleep(2 * time.Second) // acknowledged writes before the fault
	return sc
}

// waitFailover waits for the manager to report a completed failover and
// returns the new primary's section name.
func (sc *scenario) waitFailover(t *testing.T, timeout time.Duration) string {
	t.Helper()
	sc.m.waitLog(t, "failover complete", timeout)
	for _, line := range strings.Split(sc.m.Log(), "\n") {
		if i := strings.Index(line, "new_primary="); i >= 0 && strings.Contains(line, "failover complete") {
			return strings.Fields(line[i+len("new_primary="):])[0]
		}
	}
	t.Fatalf("no new_primary in the manager's log:\n%s", sc.m.Log())
	return ""
}

// finish stops the workload after writes flowed again and checks the
// invariants: no acknowledged write lost, never two writable primaries
// behind the address, the VIP on the new primary only, every survivor
// replicating from it with both threads. It returns the client-side outage.
func (sc *scenario) finish(t *testing.T, newPrimary string, survivors ...string) time.Duration {
	t.Helper()
	b := sc.b
	// Writes must flow again through the VIP.
	before := len(sc.w.Progress().Acked)
	deadline := time.Now().Add(20 * time.Second)
	for len(sc.w.Progress().Acked) < before+50 {
		if time.Now().After(deadline) {
			t.Fatalf("writes through the VIP did not resume: %d acked, last error %s", len(sc.w.Progress().Acked), sc.w.Progress().LastErrorText)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res := sc.w.Stop()
	sc.s.check(t)
	np := b.Host(hostOf(newPrimary))
	if np == nil {
		t.Fatalf("new primary %q is no test bed host", newPrimary)
	}
	ctx := context.Background()
	missing, err := b.MissingWrites(ctx, np, res.Acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged writes lost on the new primary %s (first %v)", len(missing), np.Name, missing[:min(5, len(missing))])
	}
	if h := vipHolders(t, b); len(h) != 1 || h[0] != np.Name {
		t.Errorf("VIP holders %v, want only %s", h, np.Name)
	}
	for _, name := range survivors {
		h := b.Host(name)
		ok, err := b.ReplicationRunning(ctx, h)
		if err != nil || !ok {
			t.Errorf("%s does not replicate with both threads (%v)", name, err)
			continue
		}
		st, err := b.ReplicaStatus(ctx, h)
		if err != nil || st["Master_Host"] != np.IP {
			t.Errorf("%s replicates from %q, want %s (%v)", name, st["Master_Host"], np.IP, err)
		}
		if err := b.WaitReplicas(ctx, np, h); err != nil {
			t.Errorf("%s does not catch up with %s: %v", name, np.Name, err)
		}
		if missing, err := b.MissingWrites(ctx, h, res.Acked); err != nil || len(missing) > 0 {
			t.Errorf("%s lacks %d acknowledged writes (%v)", name, len(missing), err)
		}
	}
	outage := res.MaxAckGap
	t.Logf("acked %d writes, %d uncertain, %d errors; longest gap without an acknowledged write %s; failover done %s after the fault",
		len(res.Acked), len(res.Uncertain), res.Errors, outage.Round(time.Millisecond), time.Since(sc.faultAt).Round(time.Millisecond))
	return outage
}

// hostOf maps a configuration section name (server2) to the bed's host (db2).
func hostOf(section string) string { return strings.Replace(section, "server", "db", 1) }

func others(b *testbed.Bed, except ...string) []string {
	var out []string
	for _, h := range b.Hosts {
		skip := false
		for _, e := range except {
			skip = skip || h.Name == hostOf(e) || h.Name == e
		}
		if !skip {
			out = append(out, h.Name)
		}
	}
	return out
}

func TestFailoverKill(t *testing.T) {
	sc := startScenario(t, setup{})
	sc.faultAt = time.Now()
	if err := sc.b.Kill(sc.b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 30*time.Second)
	if np == "server1" {
		t.Fatalf("the dead primary was chosen")
	}
	sc.finish(t, np, others(sc.b, "db1", np)...)
	// The manager keeps watching the new topology (MHA would have exited).
	sc.m.waitLog(t, "msg=\"monitoring primary\" cluster=app1 primary="+np, 10*time.Second)
	if _, err := os.Stat(filepath.Join(sc.dir, "app1.failover.complete")); err != nil {
		t.Errorf("anti-flapping file not written: %v", err)
	}
}
