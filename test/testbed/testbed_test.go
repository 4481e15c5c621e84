package testbed

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testPrefix keeps tests away from a developer's sandbox ("cmha"); the
// machine-wide lock still serialises them.
const testPrefix = "cmhat"

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testbed: needs root (network namespaces, mariadbd); skipping")
	}
	for _, p := range []string{"mariadbd", "mariadb", "mariadb-install-db", "sshd", "ip"} {
		if _, err := lookPath(p); err != nil {
			t.Skipf("testbed: %s not installed; skipping", p)
		}
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("CLOUDMHA_TESTBED_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

func TestUpRefusesUnsafeSubnets(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range []string{"192.0.2.0/24", "10.11.12.0/24", "198.51.100.0/24"} {
		b, err := Up(ctx, Options{Subnet: s, Prefix: testPrefix})
		if err == nil {
			_ = b.Down(ctx)
			t.Fatalf("Up accepted subnet %s", s)
		}
		t.Logf("%s refused: %v", s, err)
		if s == "192.0.2.0/24" && !strings.Contains(err.Error(), "overlaps") {
			t.Errorf("refusal of %s does not name the overlapping route/address: %v", s, err)
		}
		if left, _ := Leftovers(testPrefix); len(left) > 0 {
			t.Fatalf("refused Up left %v", left)
		}
		out, _ := exec.Command("ip", "-4", "route", "show", "table", "all", "type", "blackhole").CombinedOutput()
		if strings.Contains(string(out), s) {
			t.Fatalf("refused Up installed a blackhole for %s", s)
		}
	}
}

func upBed(t *testing.T, o Options) *Bed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if o.Prefix == "" {
		o.Prefix = testPrefix
	}
	o.Logger = testLogger(t)
	b, err := Up(ctx, o)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("bring-up of %d hosts took %s", len(b.Hosts), b.BringUp.Round(time.Millisecond))
	return b
}

// bedProcs lists processes whose command line mentions dir.
func bedProcs(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || isZombieOrGone(pid) {
			continue
		}
		if cl := readCmdline(pid); strings.Contains(cl, dir+"/") {
			out = append(out, e.Name()+": "+cl)
		}
	}
	return out
}

func checkGone(t *testing.T, b *Bed) {
	t.Helper()
	left, err := Leftovers(b.Opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("leftovers after Down: %v", left)
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, b.Opts.Prefix+"-") {
			t.Errorf("namespace left: %s", l)
		}
	}
	if p := bedProcs(b.Opts.WorkDir); len(p) > 0 {
		t.Errorf("processes left: %v", p)
	}
}

func TestBed(t *testing.T) {
	needRoot(t)
	b := upBed(t, Options{Hosts: 3})
	downed := false
	defer func() {
		if !downed {
			_ = b.Down(context.Background())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Safety: the blackhole is there, no default route in any namespace, no
	// test address in the root namespace.
	out, err := exec.Command("ip", "-4", "route", "show", "type", "blackhole").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "198.18.0.0/24") {
		t.Fatalf("no blackhole route for 198.18.0.0/24: %s %v", out, err)
	}
	for _, ns := range b.Namespaces() {
		out, err := exec.Command("ip", "-n", ns, "-4", "route", "show", "table", "all").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "default") {
			t.Errorf("namespace %s has a default route: %s", ns, out)
		}
	}
	if out, _ := exec.Command("ip", "-4", "-o", "addr").CombinedOutput(); strings.Contains(string(out), " 198.18.") {
		t.Errorf("test address in the root namespace: %s", out)
	}
	if out, _ := exec.Command("ip", "-n", b.SwitchNS, "-o", "addr").CombinedOutput(); strings.Contains(string(out), "inet") {
		t.Errorf("switch namespace has an address: %s", out)
	}

	// Replication runs on both replicas; the VIP and every sshd answer.
	for _, h := range b.Replicas(b.Primary) {
		if ok, err := b.ReplicationRunning(ctx, h); err != nil || !ok {
			st, _ := b.ReplicaStatus(ctx, h)
			t.Fatalf("replication on %s not running: %v %v", h.Name, err, st)
		}
	}
	if err := b.Probe(ctx, b.ClientNS, b.VIP+":3306", "", 2*time.Second); err != nil {
		t.Fatalf("VIP does not answer MySQL from the client namespace: %v", err)
	}
	for _, h := range b.Hosts {
		if err := b.Probe(ctx, b.ManagerNS, h.IP+":22", "SSH-2.0-", 2*time.Second); err != nil {
			t.Fatalf("sshd on %s: %v", h.Name, err)
		}
		if pid := readPIDFile(h.SSHDir + "/sshd.pid"); pid == 0 || isZombieOrGone(pid) {
			t.Errorf("sshd of %s: no live PID in its PID file (%d)", h.Name, pid)
		}
	}
	if left, err := Leftovers(b.Opts.Prefix); err != nil || len(left) < len(b.Namespaces())+2*len(b.Hosts) {
		t.Errorf("Leftovers of a running bed lists too little: %v %v", left, err)
	}
	if _, err := b.Dialer(b.ClientNS)(ctx, "tcp", "192.0.2.1:3306"); err == nil {
		t.Fatal("Dialer allowed an address outside the test subnet")
	}
	testSSH(t, ctx, b)
	testMHAConfig(t, b)
	testLoad(t, b)
	testWorkload(t, ctx, b)
	testFaults(t, ctx, b)

	start := time.Now()
	if err := b.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	downed = true
	t.Logf("Down took %s", time.Since(start).Round(time.Millisecond))
	checkGone(t, b)
	if err := b.Down(ctx); err != nil {
		t.Fatalf("second Down: %v", err)
	}
}

// testSSH logs in with the bed's key from the manager namespace.
func testSSH(t *testing.T, ctx context.Context, b *Bed) {
	if _, err := lookPath("ssh"); err != nil {
		t.Log("ssh client not installed: key login not checked")
		return
	}
	h := b.Hosts[1]
	out, err := b.Exec(ctx, b.ManagerNS, "ssh", "-i", b.SSHKey, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "root@"+h.IP, "ip -4 -o addr show dev eth0")
	if err != nil {
		t.Fatalf("ssh root@%s: %v", h.IP, err)
	}
	if !strings.Contains(string(out), h.IP+"/24") {
		t.Fatalf("ssh landed in the wrong namespace: %s", out)
	}
}

func testMHAConfig(t *testing.T, b *Bed) {
	path := b.Opts.WorkDir + "/mgr/app.cnf"
	if err := b.WriteMHAConfig(path, map[string]string{"ping_interval": "3", "candidate_master": "1"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{"[server default]", "user=cloudmha", "repl_user=repl", "ssh_user=root", "ping_interval=3\n",
		"ssh_options=-i " + b.SSHKey, "[server3]\nhostname=198.18.0.13\nport=3306\nmaster_binlog_dir=" + b.Hosts[2].DataDir} {
		if !strings.Contains(s, want) {
			t.Errorf("app.cnf lacks %q:\n%s", want, s)
		}
	}
}

func testLoad(t *testing.T, b *Bed) {
	l, err := Load(b.Opts.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Hosts) != 3 || l.VIP != b.VIP || l.Host("db2").Socket != b.Host("db2").Socket || l.Password != b.Password {
		t.Fatalf("Load: %+v", l)
	}
}

func testFaults(t *testing.T, ctx context.Context, b *Bed) {
	db2, db3 := b.Host("db2"), b.Host("db3")

	// Kill / Start.
	if err := b.Kill(db2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SQL(ctx, db2, "SELECT 1"); err == nil {
		t.Fatal("db2 answers after Kill")
	}
	if err := b.Probe(ctx, b.ClientNS, db2.Addr(), "", time.Second); err == nil {
		t.Fatal("db2 answers over TCP after Kill")
	}
	if err := b.Start(ctx, db2); err != nil {
		t.Fatal(err)
	}
	if err := b.waitReplicationRunning(ctx, db2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if ro, err := b.SQL(ctx, db2, "SELECT @@read_only"); err != nil || ro != "1" {
		t.Fatalf("db2 read_only after restart: %q %v", ro, err)
	}

	// Freeze / Thaw: TCP still accepted by the kernel, no greeting.
	if err := b.Freeze(db3); err != nil {
		t.Fatal(err)
	}
	if err := b.Probe(ctx, b.ClientNS, db3.Addr(), "", 700*time.Millisecond); err == nil {
		_ = b.Thaw(db3)
		t.Fatal("frozen db3 greets")
	}
	if err := b.Thaw(db3); err != nil {
		t.Fatal(err)
	}
	if err := b.waitAnswer(ctx, b.ClientNS, db3.Addr(), "", 20*time.Second); err != nil {
		t.Fatalf("thawed db3: %v", err)
	}

	// LinkDown / LinkUp.
	if err := b.LinkDown(db2); err != nil {
		t.Fatal(err)
	}
	if err := b.Probe(ctx, b.ClientNS, db2.Addr(), "", time.Second); err == nil {
		_ = b.LinkUp(db2)
		t.Fatal("db2 reachable with its link down")
	}
	if _, err := b.SQL(ctx, db2, "SELECT 1"); err != nil {
		t.Fatalf("db2's mariadbd should still run behind a down link: %v", err)
	}
	if err := b.LinkUp(db2); err != nil {
		t.Fatal(err)
	}
	if err := b.waitAnswer(ctx, b.ClientNS, db2.Addr(), "", 20*time.Second); err != nil {
		t.Fatalf("db2 after LinkUp: %v", err)
	}

	// Stop / Start.
	if err := b.Stop(ctx, db3); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx, db3); err != nil {
		t.Fatal(err)
	}
	if err := b.waitReplicationRunning(ctx, db3, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitReplicas(ctx, b.Host(b.Primary)); err != nil {
		t.Fatal(err)
	}
}

// testWorkload runs ~2 s at 100/s against the VIP from the client namespace
// and checks every acknowledged id on every host.
func testWorkload(t *testing.T, ctx context.Context, b *Bed) {
	w, err := b.StartWorkload(ctx, WorkloadOptions{Rate: 100, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-w.Done()
	r := w.Stop()
	t.Logf("workload: %d acked, %d uncertain, %d errors (last %q), max gap without ack %s",
		len(r.Acked), len(r.Uncertain), r.Errors, r.LastErrorText, r.MaxAckGap.Round(time.Millisecond))
	// No throughput assertion: on a loaded 2-core machine the rate is not
	// guaranteed. What matters is that acknowledged writes exist and are kept.
	if len(r.Acked) < 10 {
		t.Fatalf("only %d writes acknowledged in 2 s at 100/s (%d errors, last %q)", len(r.Acked), r.Errors, r.LastErrorText)
	}
	if err := b.WaitReplicas(ctx, b.Host(b.Primary)); err != nil {
		t.Fatal(err)
	}
	for _, h := range b.Hosts {
		missing, err := b.MissingWrites(ctx, h, r.Acked)
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) > 0 {
			t.Errorf("%s misses %d acknowledged writes: %v", h.Name, len(missing), missing)
		}
	}
	// And the check does see a missing row.
	if _, err := b.SQL(ctx, b.Host("db3"), fmt.Sprintf("SET SESSION sql_log_bin=0; DELETE FROM %s.%s WHERE id=%d", TestDatabase, TestTable, r.Acked[0])); err != nil {
		t.Fatal(err)
	}
	if missing, err := b.MissingWrites(ctx, b.Host("db3"), r.Acked); err != nil || len(missing) != 1 || missing[0] != r.Acked[0] {
		t.Fatalf("MissingWrites after deleting %d: %v %v", r.Acked[0], missing, err)
	}
}

// TestBedSemiSync brings up two hosts with semi-sync and checks the primary
// waits for the replica's ack, and falls back to async after the timeout
// once the replica is gone.
func TestBedSemiSync(t *testing.T) {
	needRoot(t)
	b := upBed(t, Options{Hosts: 2, SemiSync: true})
	defer func() {
		if err := b.Down(context.Background()); err != nil {
			t.Error(err)
		}
		checkGone(t, b)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, r := b.Host("db1"), b.Host("db2")
	status := func(h *Host, name string) string {
		out, err := b.SQL(ctx, h, "SHOW GLOBAL STATUS LIKE '"+name+"'")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(strings.TrimPrefix(out, name))
	}
	if v := status(p, "Rpl_semi_sync_master_status"); v != "ON" {
		t.Fatalf("primary semi-sync status %q", v)
	}
	if v := status(p, "Rpl_semi_sync_master_clients"); v != "1" {
		t.Fatalf("semi-sync clients %q", v)
	}
	if v, err := b.SQL(ctx, p, "SELECT @@rpl_semi_sync_master_wait_point"); err != nil || v != "AFTER_SYNC" {
		t.Fatalf("wait point %q %v", v, err)
	}
	if v := status(r, "Rpl_semi_sync_master_status"); v != "OFF" {
		t.Fatalf("replica has semi-sync source side on: %q", v)
	}
	w, err := b.StartWorkload(ctx, WorkloadOptions{Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-w.Done()
	res := w.Stop()
	if len(res.Acked) < 5 {
		t.Fatalf("semi-sync workload: %d acked, %d errors (%s)", len(res.Acked), res.Errors, res.LastErrorText)
	}
	if v := status(p, "Rpl_semi_sync_master_yes_tx"); v == "0" {
		t.Fatal("no transaction was acknowledged by the replica")
	}
	// Without its replica the primary stalls for the timeout, then goes async.
	if err := b.Kill(r); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.SQL(ctx, p, fmt.Sprintf("INSERT INTO %s.%s (id, writer) VALUES (1, 'semisync')", TestDatabase, TestTable)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("commit without replica took %s (timeout %s)", took.Round(time.Millisecond), b.Opts.SemiSyncTimeout)
	if took < b.Opts.SemiSyncTimeout/2 {
		t.Errorf("commit did not wait for the semi-sync timeout: %s", took)
	}
	if err := b.Start(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := b.waitReplicationRunning(ctx, r, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitReplicas(ctx, p); err != nil {
		t.Fatal(err)
	}
	if missing, err := b.MissingWrites(ctx, r, append(res.Acked, 1)); err != nil || len(missing) > 0 {
		t.Fatalf("replica misses %v %v", missing, err)
	}
}

// TestCrashRecovery leaves a bed behind as a crashed process would (lock
// released, nothing torn down), checks the lock serialises Up, that the next
// Up of the same prefix cleans the leftovers, and that a Load-ed bed (as in
// another process) tears everything down.
func TestCrashRecovery(t *testing.T) {
	needRoot(t)
	b1 := upBed(t, Options{Hosts: 1})
	old := b1.MariadbPID(b1.Hosts[0])
	if old == 0 {
		t.Fatal("no mariadbd PID")
	}
	// While b1 holds the lock, another Up waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := Up(ctx, Options{Hosts: 1, Prefix: "cmhau"})
	cancel()
	if err == nil || !strings.Contains(err.Error(), LockPath) {
		t.Fatalf("Up did not wait for the lock: %v", err)
	}
	b1.releaseLock() // the process "crashed"

	b2 := upBed(t, Options{Hosts: 1})
	if !isZombieOrGone(old) {
		t.Fatalf("mariadbd %d of the crashed bed survived the next Up", old)
	}
	defer b2.Down(context.Background())
	l, err := Load(b2.Opts.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkGone(t, b2)
	if _, err := Load(b2.Opts.WorkDir); err == nil {
		t.Fatal("Load found a bed after Down")
	}
}
