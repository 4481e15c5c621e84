package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// TestCheckReplOnTestBed runs check-repl (the binary, in the manager
// namespace) against a real 3-host MariaDB cluster: it must pass on the
// healthy cluster and fail, naming the cause, on each breakage; after each
// repair it must pass again, which proves the failure came from the
// breakage and not from something left over.
func TestCheckReplOnTestBed(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	conf := filepath.Join(t.TempDir(), "app1.cnf")
	if err := b.WriteMHAConfig(conf, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db1, db2, db3 := b.Host("db1"), b.Host("db2"), b.Host("db3")
	sql := func(t *testing.T, h *testbed.Host, q string) {
		t.Helper()
		if _, err := b.SQL(ctx, h, q); err != nil {
			t.Fatalf("%s: %s: %v", h.Name, q, err)
		}
	}
	// waitHealthy polls until check-repl passes; a repaired replica may need
	// a moment to reconnect.
	waitHealthy := func(t *testing.T, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, rep := checkRepl(t, b, conf)
			if r.code == 0 && rep.Healthy {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: check-repl still fails (exit %d): %v", what, r.code, rep.failures())
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	// expectFailure polls until check-repl reports the failure (the breakage
	// may take a moment to show, e.g. lag growing).
	expectFailure := func(t *testing.T, check, server string, words ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, rep := checkRepl(t, b, conf, "--max-lag=2s")
			if r.code == 1 && !rep.Healthy && rep.hasFailure(check, server, words...) {
				return
			}
			if r.code == 0 && rep.Healthy != true {
				t.Fatalf("exit 0 with an unhealthy report")
			}
			if time.Now().After(deadline) {
				t.Fatalf("want failure %s on %s with %q; got exit %d, failures %v", check, server, words, r.code, rep.failures())
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	t.Run("healthy", func(t *testing.T) {
		r, rep := checkRepl(t, b, conf)
		if r.code != 0 || !rep.Healthy || rep.Primary != "server1" {
			t.Fatalf("healthy cluster: exit %d, primary %q, failures %v\n%s", r.code, rep.Primary, rep.failures(), r.stderr)
		}
		for _, f := range rep.Findings {
			if f.Severity == "warn" {
				t.Errorf("warning on the healthy test bed: %s %s", f.Check, f.Message)
			}
		}
		// The figure the issue asks for (MHA: 7–13 s). Logged, not asserted.
		var best time.Duration
		for i := 0; i < 5; i++ {
			r := cloudmha(t, b, "", "check-repl", "--conf="+conf, "--global_conf=none")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stdout)
			}
			if best == 0 || r.elapsed < best {
				best = r.elapsed
			}
		}
		t.Logf("check-repl on a healthy 3-host cluster, whole process, best of 5: %s", best.Round(time.Millisecond))
	})

	t.Run("mha-name-and-text-output", func(t *testing.T) {
		r := cloudmha(t, b, "masterha_check_repl", "-conf="+conf, "--global_conf=none")
		if r.code != 0 || !strings.HasSuffix(r.stdout, "MySQL Replication Health is OK.\n") {
			t.Fatalf("masterha_check_repl: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, h := range b.Hosts {
			if !strings.Contains(r.stdout, h.IP+":3306") {
				t.Errorf("text output does not list %s", h.IP)
			}
		}
	})

	t.Run("sql-thread-stopped", func(t *testing.T) {
		sql(t, db2, "STOP SLAVE SQL_THREAD")
		expectFailure(t, "replica.sql_thread", "server2", "SQL thread is not running")
		sql(t, db2, "START SLAVE SQL_THREAD")
		waitHealthy(t, "after START SLAVE SQL_THREAD")
	})

	t.Run("io-thread-stopped", func(t *testing.T) {
		sql(t, db3, "STOP SLAVE IO_THREAD")
		expectFailure(t, "replica.io_thread", "server3", "IO thread is No")
		sql(t, db3, "START SLAVE IO_THREAD")
		waitHealthy(t, "after START SLAVE IO_THREAD")
	})

	t.Run("replica-points-elsewhere", func(t *testing.T) {
		// db3 follows db2 (a replica) instead of the primary: threads run,
		// only the source is wrong.
		sql(t, db3, "STOP SLAVE")
		sql(t, db3, "CHANGE MASTER TO MASTER_HOST='"+db2.IP+"'")
		sql(t, db3, "START SLAVE")
		expectFailure(t, "replica.source", "server3", "replicates from server2, not from the primary server1")
		// An address that is no server of the cluster at all.
		sql(t, db3, "STOP SLAVE")
		sql(t, db3, "CHANGE MASTER TO MASTER_HOST='198.18.0.99', MASTER_CONNECT_RETRY=1")
		sql(t, db3, "START SLAVE")
		expectFailure(t, "replica.source", "server3", "198.18.0.99:3306", "not a configured server")
		sql(t, db3, "STOP SLAVE")
		sql(t, db3, b.ChangeMasterSQL(db1))
		sql(t, db3, "START SLAVE")
		waitHealthy(t, "after pointing db3 back at db1")
	})

	t.Run("two-writable", func(t *testing.T) {
		sql(t, db2, "SET GLOBAL read_only=OFF")
		expectFailure(t, "primary.writable", "", "2 writable servers", "server1, server2")
		sql(t, db2, "SET GLOBAL read_only=ON")
		waitHealthy(t, "after read_only=ON")
	})

	t.Run("lagging-replica", func(t *testing.T) {
		sql(t, db2, "STOP SLAVE")
		sql(t, db2, "CHANGE MASTER TO MASTER_DELAY=60")
		sql(t, db2, "START SLAVE")
		sql(t, db1, "CREATE DATABASE IF NOT EXISTS e2e")
		sql(t, db1, "CREATE TABLE IF NOT EXISTS e2e.t (id INT PRIMARY KEY, v INT)")
		// Keep writing so the delayed replica always has something pending.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				_, _ = b.SQL(ctx, db1, "REPLACE INTO e2e.t VALUES (1, "+strconv.Itoa(i)+")")
			}
		}()
		expectFailure(t, "replica.lag", "server2", "server2 lags", "limit 2s")
		close(stop)
		<-done
		sql(t, db2, "STOP SLAVE")
		sql(t, db2, "CHANGE MASTER TO MASTER_DELAY=0")
		sql(t, db2, "START SLAVE")
		waitHealthy(t, "after MASTER_DELAY=0")
	})

	t.Run("missing-replication-grant", func(t *testing.T) {
		acct := "'" + b.ReplUser + "'@'198.18.0.%'"
		sql(t, db1, "REVOKE REPLICATION SLAVE ON *.* FROM "+acct)
		expectFailure(t, "grants.replication", "server1", "REPLICATION SLAVE", "server2")
		sql(t, db1, "GRANT REPLICATION SLAVE ON *.* TO "+acct)
		waitHealthy(t, "after GRANT REPLICATION SLAVE")
	})

	// Last: an errant transaction cannot be taken back on MariaDB.
	t.Run("errant-gtid", func(t *testing.T) {
		sql(t, db3, "CREATE DATABASE IF NOT EXISTS local_only")
		id, err := b.SQL(ctx, db3, "SELECT @@server_id")
		if err != nil {
			t.Fatal(err)
		}
		expectFailure(t, "replica.errant_gtid", "server3", "errant GTIDs", "0-"+strings.TrimSpace(id)+"-")
	})
}

// TestCheckSSHAndStatus checks SSH from the manager namespace to every host
// and that status reports no manager running.
func TestCheckSSHAndStatus(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	dir := t.TempDir()
	conf := filepath.Join(dir, "app1.cnf")
	if err := b.WriteMHAConfig(conf, map[string]string{"manager_workdir": dir}); err != nil {
		t.Fatal(err)
	}
	r := cloudmha(t, b, "masterha_check_ssh", "--conf="+conf, "--global_conf=none")
	if r.code != 0 || !strings.Contains(r.stdout, "All SSH connection tests passed successfully.") {
		t.Fatalf("check-ssh: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, h := range b.Hosts {
		if !strings.Contains(r.stdout, h.IP+":22") {
			t.Errorf("check-ssh output lacks %s", h.IP)
		}
	}
	// A host whose link is down fails, and only that host.
	if err := b.LinkDown(b.Host("db2")); err != nil {
		t.Fatal(err)
	}
	r = cloudmha(t, b, "", "check-ssh", "--conf="+conf, "--global_conf=none")
	if err := b.LinkUp(b.Host("db2")); err != nil {
		t.Fatal(err)
	}
	if r.code != 1 || strings.Count(r.stdout, "[FAIL]") != 1 || !strings.Contains(r.stdout, "[FAIL] server2") {
		t.Fatalf("check-ssh with db2 cut off: exit %d\n%s", r.code, r.stdout)
	}

	r = cloudmha(t, b, "masterha_check_status", "--conf="+conf, "--global_conf=none")
	if r.code != 2 || !strings.Contains(r.stdout, "is stopped(2:NOT_RUNNING)") {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestSandboxCLI drives `cloudmha sandbox` as a newcomer would and checks
// that down leaves nothing behind.
func TestSandboxCLI(t *testing.T) {
	if os.Getenv("CLOUDMHA_SKIP_TESTBED") != "" || os.Geteuid() != 0 {
		t.Skip("the sandbox needs root and the test bed")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd not installed: run scripts/install-deps.sh")
	}
	const p = "cmhas"
	run := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	t.Cleanup(func() { run("sandbox", "down", "--prefix="+p) })
	if code, out := run("sandbox", "up", "--prefix="+p, "--hosts=2"); code != 0 || !strings.Contains(out, "is up") {
		t.Fatalf("sandbox up: exit %d\n%s", code, out)
	}
	conf := "/var/tmp/cloudmha-testbed/" + p + "/app1.cnf"
	code, out := run("sandbox", "status", "--prefix="+p)
	if code != 0 || !strings.Contains(out, conf) || !strings.Contains(out, "198.18.0.12") {
		t.Fatalf("sandbox status: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	chk, err := exec.CommandContext(ctx, "ip", "netns", "exec", p+"-mgr", binary, "check-repl", "--conf="+conf, "--global_conf=none").CombinedOutput()
	if err != nil || !strings.Contains(string(chk), "MySQL Replication Health is OK.") {
		t.Fatalf("check-repl on the sandbox: %v\n%s", err, chk)
	}
	sandboxCloudsim(t, p)
	if code, out := run("sandbox", "down", "--prefix="+p); code != 0 || !strings.Contains(out, "is down") {
		t.Fatalf("sandbox down: exit %d\n%s", code, out)
	}
	if left, err := testbed.Leftovers(p); err != nil || len(left) > 0 {
		t.Fatalf("sandbox down left %v (%v)", left, err)
	}
	if code, _ := run("sandbox", "status", "--prefix="+p); code != 2 {
		t.Fatalf("status of a downed sandbox: exit %d, want 2", code)
	}
}

// sandboxCloudsim runs `cloudmha cloudsim` against sandbox p and switches
// the primary over with the aliyun-havip mover and the configuration and
// credentials it wrote: clients then reach db2 through the VIP, which the
// emulated VPC delivers only to the HaVip's master.
func sandboxCloudsim(t *testing.T, p string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sim := exec.CommandContext(ctx, binary, "cloudsim", "--prefix="+p, "--listen=127.0.0.1:18089")
	var out syncBuffer
	sim.Stdout, sim.Stderr = &out, &out
	sim.Cancel = func() error { return sim.Process.Signal(syscall.SIGINT) }
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = sim.Process.Signal(syscall.SIGINT)
		_ = sim.Wait()
		if t.Failed() {
			t.Logf("cloudsim output:\n%s", out.String())
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "In another terminal") {
		if time.Now().After(deadline) {
			t.Fatalf("cloudsim did not come up:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	dir := "/var/tmp/cloudmha-testbed/" + p
	envData, err := os.ReadFile(dir + "/cloudsim.env")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), strings.Fields(string(envData))...)
	sw := exec.CommandContext(ctx, "ip", "netns", "exec", p+"-mgr", binary, "switch", "--conf="+dir+"/app1-aliyun-havip.yaml",
		"--global_conf=none", "--new_master_host=server2", "--orig_master_is_new_slave", "--interactive=0")
	sw.Env = env
	if o, err := sw.CombinedOutput(); err != nil {
		t.Fatalf("switch with aliyun-havip on the sandbox: %v\n%s", err, o)
	}
	q := exec.CommandContext(ctx, "ip", "netns", "exec", p+"-client", "mariadb", "-h", "198.18.0.100", "-u", "cloudmha",
		"-pcloudmha-testbed-pw", "--connect-timeout=3", "-N", "-e", "SELECT @@server_id")
	if o, err := q.CombinedOutput(); err != nil || strings.TrimSpace(string(o)) != "2" {
		t.Fatalf("through the VIP after the switch: %v %q, want server 2", err, o)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
