package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// waitSQL polls a query on h until it returns want.
func waitSQL(t *testing.T, b *testbed.Bed, h *testbed.Host, q, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := b.SQL(ctx, h, q)
		cancel()
		if err == nil && strings.TrimSpace(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s: got %q (%v), want %q after %s", q, h.Name, got, err, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestFailoverFreeze: a frozen primary (SIGSTOP: TCP accepted, nothing
// answers) is failed over; when it resumes it is fenced read-only.
func TestFailoverFreeze(t *testing.T) {
	sc := startScenario(t, setup{})
	db1 := sc.b.Host("db1")
	sc.faultAt = time.Now()
	if err := sc.b.Freeze(db1); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 40*time.Second)
	sc.finish(t, np, others(sc.b, "db1", np)...)
	if err := sc.b.Thaw(db1); err != nil {
		t.Fatal(err)
	}
	waitSQL(t, sc.b, db1, "SELECT @@read_only", "1", 10*time.Second)
	if contains(vipHolders(t, sc.b), "db1") {
		t.Errorf("the thawed old primary holds the VIP")
	}
}

// stonithScript writes a shutdown_script that powers off a host the way an
// IPMI or cloud "stop instance" call would: out of band, without the
// network the host was cut from. On the test bed "power off" kills the
// host's mariadbd from the root PID namespace.
func stonithScript(t *testing.T, b *testbed.Bed) string {
	t.Helper()
	var cases strings.Builder
	for _, h := range b.Hosts {
		cases.WriteString("  " + h.IP + ") pidfile=" + h.PIDFile + " ns=" + h.NS + " ;;\n")
	}
	body := "#!/bin/sh\n# STONITH for the test bed (MHA shutdown_script protocol: exit 0 = powered off)\n" +
		"ip=; for a in \"$@\"; do case \"$a\" in --ip=*) ip=${a#--ip=} ;; esac; done\n" +
		"case \"$ip\" in\n" + cases.String() + "  *) echo \"unknown host $ip\"; exit 1 ;;\nesac\n" +
		"[ -s \"$pidfile\" ] && kill -9 \"$(cat \"$pidfile\")\" 2>/dev/null\n" +
		"# a host that boots again has none of its runtime addresses\n" +
		"ip -n \"$ns\" addr del " + b.VIP + "/24 dev eth0 2>/dev/null\necho \"powered off $ip\"\nexit 0\n"
	p := filepath.Join(t.TempDir(), "stonith.sh")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFailoverLinkDown: the primary's link is cut. A classic VIP cannot be
// taken from a host nobody can reach, so the cut-off primary must be fenced
// out of band (shutdown_script, as MHA users do with IPMI): when the link
// returns, no client write may land on it. Without a shutdown_script the
// manager fences it by SQL once it answers again, but a write can slip in
// before that (this test found one), which is why the manager warns at
// start-up when the vip mover runs without a shutdown_script.
func TestFailoverLinkDown(t *testing.T) {
	b, _, _ := haBed(t, true, nil)
	sc := startScenario(t, setup{reuse: b, extra: map[string]string{"shutdown_script": stonithScript(t, b)}})
	db1 := sc.b.Host("db1")
	sc.s.setLinkDown("db1", true)
	sc.faultAt = time.Now()
	if err := sc.b.LinkDown(db1); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 40*time.Second)
	if sc.b.MariadbPID(db1) != 0 {
		t.Fatalf("shutdown_script did not power off the cut-off primary")
	}
	if err := sc.b.LinkUp(db1); err != nil {
		t.Fatal(err)
	}
	sc.s.setLinkDown("db1", false)
	sc.finish(t, np, others(sc.b, "db1", np)...)
	// The old primary "boots" again: mysqld comes back writable, and the
	// manager fences it read-only.
	ctx := context.Background()
	if err := sc.b.Start(ctx, db1); err != nil {
		t.Fatal(err)
	}
	waitSQL(t, sc.b, db1, "SELECT @@read_only", "1", 10*time.Second)
	// No client write may have landed on the cut-off old primary after the
	// new one took over: every row it has, the new primary has.
	oldRows, err := sc.b.WrittenIDs(ctx, db1)
	if err != nil {
		t.Fatal(err)
	}
	newRows, err := sc.b.WrittenIDs(ctx, sc.b.Host(hostOf(np)))
	if err != nil {
		t.Fatal(err)
	}
	have := map[int64]bool{}
	for _, id := range newRows {
		have[id] = true
	}
	// A COMMIT in flight when the link went down is uncertain to the
	// client (it got an error, not an acknowledgement): it may have
	// committed on the old primary alone. It was sent before the cut, so it
	// is not a write that landed after the takeover.
	for _, id := range sc.w.Progress().Uncertain {
		have[id] = true
	}
	for _, id := range oldRows {
		if !have[id] {
			t.Errorf("row %d was written on the cut-off old primary and is not on the new one", id)
		}
	}
}

// TestFailoverSalvage: the replicas stop receiving while the primary keeps
// committing (asynchronous replication), then mysqld dies but its host
// answers SSH: the transactions only the dead primary's binlog holds must
// be salvaged onto the new primary.
func TestFailoverSalvage(t *testing.T) {
	sc := startScenario(t, setup{asyncReplication: true})
	b := sc.b
	db1, db2, db3 := b.Host("db1"), b.Host("db2"), b.Host("db3")
	heal, err := b.Partition(context.Background(), "repl", [2]string{db1.IP, db2.IP}, [2]string{db1.IP, db3.IP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = heal() })
	time.Sleep(2 * time.Second) // writes acknowledged by db1 alone
	sc.faultAt = time.Now()
	if err := b.Kill(db1); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 40*time.Second)
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`binlog salvage: done.* applied=(\d+)`).FindStringSubmatch(sc.m.Log())
	if m == nil {
		t.Fatalf("no salvage in the manager's log")
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("salvage applied nothing although db1 was ahead")
	} else {
		t.Logf("salvaged %d transactions from the dead primary's binlog", n)
	}
	sc.finish(t, np, others(b, "db1", np)...)
}

// TestManagerOnlyPartition: only the manager loses the primary. No
// failover, an alert, and PING_FAILING until the path heals.
func TestManagerOnlyPartition(t *testing.T) {
	sc := startScenario(t, setup{})
	b := sc.b
	heal, err := b.Partition(context.Background(), "mgr", [2]string{b.ManagerIP, b.Host("db1").IP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = heal() })
	sc.m.waitLog(t, "not dead: no failover", 15*time.Second)
	r := cloudmha(t, b, "masterha_check_status", "--conf="+sc.conf, "--global_conf=none")
	if r.code != 20 {
		t.Errorf("status during the partition: exit %d (%s), want 20 PING_FAILING", r.code, r.stdout)
	}
	time.Sleep(8 * time.Second)
	if strings.Contains(sc.m.Log(), "run starts") || strings.Contains(sc.m.Log(), "primary is dead") {
		t.Fatalf("the manager failed over on a manager-only partition")
	}
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := cloudmha(t, b, "masterha_check_status", "--conf="+sc.conf, "--global_conf=none")
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after healing: exit %d, want 0", r.code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	sc.finish(t, "server1", "db2", "db3")
	if res := sc.w.Progress(); res.Errors > 0 {
		t.Logf("workload errors during the partition: %d (%s)", res.Errors, res.LastErrorText)
	}
}

// TestErrantReplicaNotChosen: a replica with a local write is never
// promoted, even though it is the first candidate by order.
func TestErrantReplicaNotChosen(t *testing.T) {
	sc := startScenario(t, setup{})
	b := sc.b
	if _, err := b.SQL(context.Background(), b.Host("db2"), "CREATE DATABASE errant_local_write"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // the manager's next topology read
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 30*time.Second)
	if np != "server3" {
		t.Fatalf("new primary %s, want server3 (server2 has an errant GTID)", np)
	}
	if !strings.Contains(sc.m.Log(), "errant") {
		t.Errorf("the manager did not say why server2 was refused")
	}
	sc.finish(t, np) // server2 cannot rejoin by GTID: its errant write conflicts
}

// editConf adds lines under a section of an app.cnf.
func editConf(t *testing.T, conf, section string, lines ...string) {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "["+section+"]\n", "["+section+"]\n"+strings.Join(lines, "\n")+"\n", 1)
	if s == string(b) {
		t.Fatalf("no [%s] in %s", section, conf)
	}
	if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCandidateRules: candidate_master=1 and no_master=1 decide the new
// primary (without them, server2 is chosen: see TestFailoverKill).
func TestCandidateRules(t *testing.T) {
	for _, tc := range []struct {
		name, section, line string
	}{
		{"candidate_master", "server3", "candidate_master=1"},
		{"no_master", "server2", "no_master=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, conf, _ := haBed(t, true, nil)
			editConf(t, conf, tc.section, tc.line)
			sc := &scenario{b: b, conf: conf}
			sc.m = startManager(t, b, conf)
			sc.m.waitLog(t, "state=0:PING_OK", 20*time.Second)
			w, err := b.StartWorkload(context.Background(), testbed.WorkloadOptions{Rate: 100, Duration: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			sc.w = w
			sc.s = startSampler(t, b)
			time.Sleep(time.Second)
			sc.faultAt = time.Now()
			if err := b.Kill(b.Host("db1")); err != nil {
				t.Fatal(err)
			}
			np := sc.waitFailover(t, 30*time.Second)
			if np != "server3" {
				t.Fatalf("new primary %s, want server3 (%s on %s)", np, tc.line, tc.section)
			}
			sc.finish(t, np, "db2")
		})
	}
}

// TestSwitchoverAndBack: masterha_master_switch --master_state=alive to
// server2 and back, with the manager watching and the workload writing.
func TestSwitchoverAndBack(t *testing.T) {
	sc := startScenario(t, setup{})
	b := sc.b
	for _, to := range []string{"server2", "server1"} {
		r := cloudmha(t, b, "masterha_master_switch", "--master_state=alive", "--conf="+sc.conf, "--global_conf=none",
			"--new_master_host="+to, "--orig_master_is_new_slave", "--running_updates_limit=10", "--interactive=0", "--json")
		if r.code != 0 {
			t.Fatalf("switch to %s: exit %d\n%s\n%s", to, r.code, r.stdout, r.stderr)
		}
		m := regexp.MustCompile(`"write_block": (\d+)`).FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("no write_block in the report:\n%s", r.stdout)
		}
		ns, _ := strconv.ParseInt(m[1], 10, 64)
		t.Logf("switch to %s: write block %s, whole command %s", to, time.Duration(ns).Round(time.Millisecond), r.elapsed.Round(time.Millisecond))
		if h := vipHolders(t, b); len(h) != 1 || h[0] != hostOf(to) {
			t.Fatalf("after switching to %s the VIP is on %v", to, h)
		}
		sc.m.waitLog(t, "msg=\"monitoring primary\" cluster=app1 primary="+to, 15*time.Second)
	}
	if strings.Contains(sc.m.Log(), "primary is dead") {
		t.Errorf("the manager took a switchover for a failure")
	}
	sc.finish(t, "server1", "db2", "db3")
}

// TestAntiFlapping: a second failure soon after a failover is not failed
// over automatically until a person acknowledges the first.
func TestAntiFlapping(t *testing.T) {
	sc := startScenario(t, setup{})
	b := sc.b
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	first := sc.waitFailover(t, 30*time.Second)
	sc.m.waitLog(t, "msg=\"monitoring primary\" cluster=app1 primary="+first, 15*time.Second)
	if err := b.Kill(b.Host(hostOf(first))); err != nil {
		t.Fatal(err)
	}
	sc.m.waitLog(t, "failover refused", 20*time.Second)
	r := cloudmha(t, b, "masterha_check_status", "--conf="+sc.conf, "--global_conf=none")
	if r.code != 51 {
		t.Errorf("status while blocked: exit %d (%s), want 51 FAILOVER_ERROR", r.code, r.stdout)
	}
	if n := strings.Count(sc.m.Log(), "failover complete"); n != 1 {
		t.Fatalf("%d failovers, want 1 while blocked", n)
	}
	r = cloudmha(t, b, "", "ack", "--conf="+sc.conf, "--global_conf=none", "--note=e2e")
	if r.code != 0 {
		t.Fatalf("ack: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	sc.faultAt = time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(sc.m.Log(), "failover complete") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no failover after ack:\n%s", sc.m.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	sc.finish(t, "server3")
}

// TestManagerKilledMidFailover: the manager dies in the middle of a
// failover (during shutdown_script); a new manager resumes it from the
// journal.
func TestManagerKilledMidFailover(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "shutdown.sh")
	marker := filepath.Join(dir, "started")
	body := "#!/bin/sh\n# first run: stall so the test can kill the manager; later runs: mysqld is already dead\n" +
		"if [ ! -e " + marker + " ]; then touch " + marker + "; sleep 30; fi\nexit 10\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	sc := startScenario(t, setup{extra: map[string]string{"shutdown_script": script}})
	b := sc.b
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shutdown_script never ran:\n%s", sc.m.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sc.m.Kill()
	if strings.Contains(sc.m.Log(), "failover complete") {
		t.Fatal("the failover finished before the manager was killed")
	}
	sc.m = startManager(t, b, sc.conf)
	sc.m.waitLog(t, "resumed an unfinished failover", 40*time.Second)
	np := ""
	if m := regexp.MustCompile(`resumed an unfinished failover.* new_primary=(\S+)`).FindStringSubmatch(sc.m.Log()); m != nil {
		np = m[1]
	}
	if np == "" || np == "server1" {
		t.Fatalf("resumed failover chose %q:\n%s", np, sc.m.Log())
	}
	sc.finish(t, np, others(b, "db1", np)...)
}

// TestMHAScriptDrivesVIP: an unmodified MHA-style Perl master_ip_failover
// script moves the VIP during the failover.
func TestMHAScriptDrivesVIP(t *testing.T) {
	src, err := filepath.Abs("../../internal/address/script/testdata/master_ip_failover")
	if err != nil {
		t.Fatal(err)
	}
	b, conf, dir := haBed(t, true, nil)
	setting := src + " --vip=" + b.VIP + "/24 --iface=eth0 --key=" + b.SSHKey
	if err := b.WriteMHAConfig(conf, map[string]string{"manager_workdir": dir, "ping_interval": "1", "master_ip_failover_script": setting}); err != nil {
		t.Fatal(err)
	}
	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "state=0:PING_OK", 20*time.Second)
	w, err := b.StartWorkload(context.Background(), testbed.WorkloadOptions{Rate: 100, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	sc.s = startSampler(t, b)
	time.Sleep(time.Second)
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 30*time.Second)
	if !strings.Contains(sc.m.Log(), "--command=start") {
		t.Errorf("the script was not called with --command=start")
	}
	sc.finish(t, np, others(b, "db1", np)...)
}
