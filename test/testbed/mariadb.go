package testbed

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// bringUp does everything of Up after the safety checks, the lock and the
// cleanup.
func (b *Bed) bringUp(ctx context.Context) error {
	t0 := time.Now()
	var tmpl string
	// The template (cached after the first run), the client key and the
	// network are independent.
	err := parallel(3, func(i int) error {
		var err error
		switch i {
		case 0:
			tmpl, err = ensureTemplate(ctx)
		case 1:
			err = writeClientKey(b.SSHKey)
		case 2:
			err = b.createNetwork(ctx)
		}
		return err
	})
	if err != nil {
		return err
	}
	b.log.Debug("testbed: network and template ready", "took", time.Since(t0))
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	pub, err := os.ReadFile(b.SSHKey + ".pub")
	if err != nil {
		return err
	}
	err = parallel(len(b.Hosts), func(i int) error {
		h := b.Hosts[i]
		if err := b.prepareHost(ctx, h, tmpl); err != nil {
			return err
		}
		if err := b.startMariadb(ctx, h); err != nil {
			return err
		}
		if err := b.createUsers(ctx, h); err != nil {
			return err
		}
		return b.startSSHD(ctx, h, pub)
	})
	if err != nil {
		return err
	}
	b.log.Debug("testbed: mariadbd and sshd running", "took", time.Since(t0))
	primary := b.Host(b.Primary)
	if err := b.setupPrimary(ctx, primary); err != nil {
		return err
	}
	err = parallel(len(b.Hosts)-1, func(i int) error {
		return b.setupReplica(ctx, b.Replicas(b.Primary)[i], primary)
	})
	if err != nil {
		return err
	}
	b.log.Debug("testbed: replication running", "took", time.Since(t0))
	if err := b.WaitReplicas(ctx, primary); err != nil {
		return err
	}
	if err := b.AddVIP(ctx, primary); err != nil {
		return err
	}
	b.log.Debug("testbed: replicas in sync, VIP added", "took", time.Since(t0))
	// Everything must answer through the bridge, from where its users sit.
	checks := []struct{ ns, addr, banner string }{{b.ClientNS, b.VIP + ":3306", ""}}
	for _, h := range b.Hosts {
		checks = append(checks, struct{ ns, addr, banner string }{b.ManagerNS, h.IP + ":22", "SSH-"}, struct{ ns, addr, banner string }{b.ManagerNS, h.Addr(), ""})
	}
	return parallel(len(checks), func(i int) error {
		c := checks[i]
		t1 := time.Now()
		err := b.waitAnswer(ctx, c.ns, c.addr, c.banner, 20*time.Second)
		if d := time.Since(t1); d > time.Second {
			b.log.Warn("testbed: slow to answer", "ns", c.ns, "addr", c.addr, "took", d)
		}
		return err
	})
}

// waitAnswer polls until addr, dialled from ns, sends a greeting (starting
// with banner when given).
func (b *Bed) waitAnswer(ctx context.Context, ns, addr, banner string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = b.Probe(ctx, ns, addr, banner, time.Second)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("testbed: %s does not answer from %s: %w", addr, ns, last)
}

// Probe dials addr from namespace ns and reads the server's greeting (the
// MySQL handshake, the SSH banner) within timeout. banner, if not empty,
// must prefix the greeting. A frozen or unreachable server fails it.
func (b *Bed) Probe(ctx context.Context, ns, addr, banner string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := b.Dialer(ns)(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetReadDeadline(dl)
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if banner != "" && !strings.HasPrefix(string(buf[:n]), banner) {
		return fmt.Errorf("%s: unexpected greeting %q", addr, buf[:n])
	}
	if banner == "" && n > 4 && buf[4] == 0xff {
		return fmt.Errorf("%s: server refused the connection: %q", addr, buf[5:n])
	}
	return nil
}

// ---- template ----

// ensureTemplate initialises a datadir once per mariadbd version and keeps
// it in BaseDir/template-<hash>; hosts get copies.
func ensureTemplate(ctx context.Context) (string, error) {
	mariadbd, err := lookPath("mariadbd")
	if err != nil {
		return "", err
	}
	ver, err := output(ctx, mariadbd, "--version")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(ver, []byte(strings.Join(templateArgs, " "))...))
	dir := filepath.Join(BaseDir, "template-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "mysql", "user.frm")); err == nil {
		return dir, nil
	}
	installDB, err := lookPath("mariadb-install-db")
	if err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	if err := run(ctx, "chown", "mysql:mysql", tmp); err != nil {
		return "", err
	}
	args := append([]string{"--no-defaults", "--auth-root-authentication-method=socket", "--user=mysql",
		"--datadir=" + tmp, "--skip-test-db"}, templateArgs...)
	if err := run(ctx, installDB, args...); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("testbed: initialise template datadir: %w", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// templateArgs must match what every mariadbd runs with where it matters for
// files on disk (the redo log size).
var templateArgs = []string{"--innodb-log-file-size=16M", "--innodb-buffer-pool-size=32M"}

func (b *Bed) prepareHost(ctx context.Context, h *Host, tmpl string) error {
	if err := os.MkdirAll(filepath.Join(h.Dir, "tmp"), 0o755); err != nil {
		return err
	}
	if err := run(ctx, "cp", "-a", tmpl, h.DataDir); err != nil {
		return err
	}
	return run(ctx, "chown", "-R", "mysql:mysql", h.Dir)
}

// ---- mariadbd ----

func (b *Bed) mariadbdArgs(h *Host) []string {
	args := []string{
		"--no-defaults",
		"--user=mysql",
		"--datadir=" + h.DataDir,
		"--socket=" + h.Socket,
		"--pid-file=" + h.PIDFile,
		// All IPv4 addresses of the namespace: its own and the VIP when it
		// holds it (the namespace has nothing else but lo).
		"--bind-address=0.0.0.0",
		"--port=" + strconv.Itoa(h.Port),
		"--server-id=" + strconv.Itoa(h.ServerID),
		"--report-host=" + h.IP,
		"--report-port=" + strconv.Itoa(h.Port),
		"--log-bin=" + filepath.Join(h.DataDir, "mysql-bin"),
		"--log-bin-index=" + filepath.Join(h.DataDir, "mysql-bin.index"),
		"--relay-log=" + filepath.Join(h.Dir, "relay-bin"),
		"--relay-log-index=" + filepath.Join(h.Dir, "relay-bin.index"),
		"--log-slave-updates",
		"--binlog-format=ROW",
		"--gtid-strict-mode=1",
		"--skip-name-resolve",
		"--log-error=" + filepath.Join(h.Dir, "error.log"),
		"--tmpdir=" + filepath.Join(h.Dir, "tmp"),
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M",
		"--performance-schema=OFF",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--max-connections=300",
		"--slave-net-timeout=4",
		"--master-retry-count=100000",
	}
	// Faults here are process and network faults, never power loss: what a
	// commit wrote to the page cache survives kill -9, so fsync on every
	// commit only makes the bed slow when the machine's disk is busy.
	if b.Opts.Durable {
		args = append(args, "--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1")
	} else {
		args = append(args, "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0")
	}
	if b.Opts.SemiSync {
		args = append(args,
			"--rpl-semi-sync-slave-enabled=ON",
			"--rpl-semi-sync-master-wait-point=AFTER_SYNC",
			"--rpl-semi-sync-master-timeout="+strconv.FormatInt(b.Opts.SemiSyncTimeout.Milliseconds(), 10),
		)
	}
	return args
}

// startMariadb launches mariadbd inside h's namespace, in its own session
// (so a terminal's ^C or the end of the test process does not reach it),
// and waits until its socket answers.
func (b *Bed) startMariadb(ctx context.Context, h *Host) error {
	mariadbd, err := lookPath("mariadbd")
	if err != nil {
		return err
	}
	_ = os.Remove(h.PIDFile)
	pid, err := spawn(filepath.Join(h.Dir, "mariadbd.out"), "ip", append([]string{"netns", "exec", h.NS, mariadbd}, b.mariadbdArgs(h)...)...)
	if err != nil {
		return fmt.Errorf("testbed: start mariadbd on %s: %w", h.Name, err)
	}
	b.log.Debug("testbed: mariadbd started", "host", h.Name, "pid", pid)
	if err := waitSocket(ctx, h, pid, 60*time.Second); err != nil {
		return err
	}
	return nil
}

// spawn starts a daemon with output to logFile, in a new session, and reaps
// it in the background. `ip netns exec` execs the program, so the PID is the
// daemon's.
func spawn(logFile string, name string, args ...string) (int, error) {
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// waitSocket polls h's unix socket until the server sends its handshake,
// failing early if the process dies.
func waitSocket(ctx context.Context, h *Host, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := handshake(h.Socket); err == nil {
			return nil
		}
		if pid > 0 && isZombieOrGone(pid) {
			return fmt.Errorf("testbed: mariadbd on %s exited during start-up: %s", h.Name, tail(filepath.Join(h.Dir, "error.log"), 15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: mariadbd on %s not ready after %s: %s", h.Name, timeout, tail(filepath.Join(h.Dir, "error.log"), 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func handshake(socket string) error {
	c, err := net.DialTimeout("unix", socket, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 5)
	if _, err := c.Read(buf); err != nil {
		return err
	}
	if buf[4] == 0xff {
		return errors.New("server refused")
	}
	return nil
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no " + path + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return path + ":\n" + strings.Join(lines, "\n")
}

// SQL runs query as root over h's unix socket with the mariadb client
// (-N -B) and returns its output without the trailing newline. Works from
// the root namespace: a unix socket needs no network.
func (b *Bed) SQL(ctx context.Context, h *Host, query string) (string, error) {
	client, err := lookPath("mariadb")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, client, "--no-defaults", "--user=root", "--socket="+h.Socket,
		"--batch", "--skip-column-names", "--connect-timeout=5", "-e", query)
	cmd.WaitDelay = 2 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w: %s", h.Name, shorten(query), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(string(out), "\n"), nil
}

func shorten(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 80 {
		return q[:77] + "..."
	}
	return q
}

// ReplicaStatus returns SHOW SLAVE STATUS of h as field → value; empty when
// h has no replication configured.
func (b *Bed) ReplicaStatus(ctx context.Context, h *Host) (map[string]string, error) {
	client, err := lookPath("mariadb")
	if err != nil {
		return nil, err
	}
	out, err := output(ctx, client, "--no-defaults", "--user=root", "--socket="+h.Socket, "--connect-timeout=5", "--vertical", "-e", "SHOW SLAVE STATUS")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.HasPrefix(k, "***") {
			continue
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

// ReplicationRunning reports whether both of h's replication threads run.
func (b *Bed) ReplicationRunning(ctx context.Context, h *Host) (bool, error) {
	st, err := b.ReplicaStatus(ctx, h)
	if err != nil {
		return false, err
	}
	return st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes", nil
}

func (b *Bed) createUsers(ctx context.Context, h *Host) error {
	uh := b.userHost()
	q := fmt.Sprintf(`SET SESSION sql_log_bin=0;
CREATE USER IF NOT EXISTS '%[1]s'@'%[3]s' IDENTIFIED BY '%[2]s';
GRANT ALL PRIVILEGES ON *.* TO '%[1]s'@'%[3]s' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '%[4]s'@'%[3]s' IDENTIFIED BY '%[5]s';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO '%[4]s'@'%[3]s';`,
		b.User, b.Password, uh, b.ReplUser, b.ReplPassword)
	_, err := b.SQL(ctx, h, q)
	return err
}

func (b *Bed) setupPrimary(ctx context.Context, h *Host) error {
	q := fmt.Sprintf(`CREATE DATABASE IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.%[2]s (
  id BIGINT NOT NULL PRIMARY KEY,
  writer VARCHAR(64) NOT NULL DEFAULT '',
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;`, TestDatabase, TestTable)
	if b.Opts.SemiSync {
		q += "SET GLOBAL rpl_semi_sync_master_enabled=ON;"
	}
	_, err := b.SQL(ctx, h, q)
	return err
}

// ChangeMasterSQL is the statement that points a replica at primary.
// The 1 s heartbeat lets cloudmha tell a silent primary from an idle one
// within seconds (detect.Policy: 3 heartbeats).
func (b *Bed) ChangeMasterSQL(primary *Host) string {
	return fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
		primary.IP, primary.Port, b.ReplUser, b.ReplPassword)
}

func (b *Bed) setupReplica(ctx context.Context, h, primary *Host) error {
	q := "SET GLOBAL read_only=ON; " + b.ChangeMasterSQL(primary) + "; START SLAVE;"
	if _, err := b.SQL(ctx, h, q); err != nil {
		return err
	}
	return b.waitReplicationRunning(ctx, h, 15*time.Second)
}

func (b *Bed) waitReplicationRunning(ctx context.Context, h *Host, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := b.ReplicaStatus(ctx, h)
		if err == nil && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("testbed: replication on %s not running after %s: IO=%s SQL=%s IO error=%q SQL error=%q",
				h.Name, timeout, st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitReplicas waits until every given replica (every host but primary when
// none are given) has applied everything primary has binlogged so far.
func (b *Bed) WaitReplicas(ctx context.Context, primary *Host, replicas ...*Host) error {
	if len(replicas) == 0 {
		replicas = b.Replicas(primary.Name)
	}
	pos, err := b.SQL(ctx, primary, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		return err
	}
	return parallel(len(replicas), func(i int) error {
		h := replicas[i]
		out, err := b.SQL(ctx, h, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 30)", pos))
		if err != nil {
			return err
		}
		if out != "0" {
			return fmt.Errorf("testbed: %s did not reach %s within 30 s (MASTER_GTID_WAIT=%s)", h.Name, pos, out)
		}
		return nil
	})
}

// AddVIP puts the VIP on h's eth0 (/24, secondary) and announces it with a
// gratuitous ARP (skipped when arping is missing).
func (b *Bed) AddVIP(ctx context.Context, h *Host) error {
	if err := run(ctx, "ip", "-n", h.NS, "addr", "replace", fmt.Sprintf("%s/%d", b.VIP, b.subnet.Bits()), "dev", h.Iface); err != nil {
		return err
	}
	if arping, err := lookPath("arping"); err == nil {
		// In the background: arping lingers for its interval after sending.
		// It runs inside the namespace, so Down's sweep ends it at worst.
		go func() {
			if _, err := b.Exec(context.Background(), h.NS, arping, "-q", "-U", "-c", "1", "-w", "1", "-I", h.Iface, b.VIP); err != nil {
				b.log.Debug("testbed: arping failed", "err", err)
			}
		}()
	}
	return nil
}

// DelVIP removes the VIP from h (no error when absent).
func (b *Bed) DelVIP(ctx context.Context, h *Host) error {
	out, err := output(ctx, "ip", "-n", h.NS, "-o", "addr", "show", "dev", h.Iface)
	if err != nil {
		return err
	}
	if !strings.Contains(string(out), " "+b.VIP+"/") {
		return nil
	}
	return run(ctx, "ip", "-n", h.NS, "addr", "del", fmt.Sprintf("%s/%d", b.VIP, b.subnet.Bits()), "dev", h.Iface)
}

// ---- faults and lifecycle ----

// MariadbPID returns the PID of h's running mariadbd (0 when none runs). It
// trusts the PID file only if that process runs from h's datadir, and
// otherwise looks for one in /proc.
func (b *Bed) MariadbPID(h *Host) int {
	marker := "--datadir=" + h.DataDir + " "
	if pid := readPIDFile(h.PIDFile); pid > 1 && !isZombieOrGone(pid) && strings.Contains(readCmdline(pid)+" ", marker) {
		return pid
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		if readComm(pid) == "mariadbd" && !isZombieOrGone(pid) && strings.Contains(readCmdline(pid)+" ", marker) {
			return pid
		}
	}
	return 0
}

func (b *Bed) signal(h *Host, sig unix.Signal) (int, error) {
	pid := b.MariadbPID(h)
	if pid == 0 {
		return 0, fmt.Errorf("testbed: no mariadbd runs on %s", h.Name)
	}
	if err := unix.Kill(pid, sig); err != nil {
		return pid, fmt.Errorf("testbed: signal %v to mariadbd %d on %s: %w", sig, pid, h.Name, err)
	}
	return pid, nil
}

// Kill sends SIGKILL to h's mariadbd and waits until it is gone.
func (b *Bed) Kill(h *Host) error {
	pid, err := b.signal(h, unix.SIGKILL)
	if err != nil {
		return err
	}
	return waitGone(context.Background(), []int{pid}, 10*time.Second)
}

// Freeze stops h's mariadbd with SIGSTOP: its sockets stay open, nothing
// answers.
func (b *Bed) Freeze(h *Host) error {
	_, err := b.signal(h, unix.SIGSTOP)
	return err
}

// Thaw resumes a frozen mariadbd with SIGCONT.
func (b *Bed) Thaw(h *Host) error {
	_, err := b.signal(h, unix.SIGCONT)
	return err
}

// Start (re)starts mariadbd on h's existing datadir and waits until it
// answers; a no-op when it already runs. Settings that do not survive a
// restart are restored by role: a host with replication configured gets
// read_only=ON (its replication threads start by themselves), a host without
// gets rpl_semi_sync_master_enabled=ON when the bed uses semi-sync. It is
// left writable otherwise, like a real crashed primary that comes back.
func (b *Bed) Start(ctx context.Context, h *Host) error {
	if pid := b.MariadbPID(h); pid != 0 {
		return waitSocket(ctx, h, pid, 60*time.Second)
	}
	if err := b.startMariadb(ctx, h); err != nil {
		return err
	}
	st, err := b.ReplicaStatus(ctx, h)
	if err != nil {
		return err
	}
	switch {
	case len(st) > 0:
		_, err = b.SQL(ctx, h, "SET GLOBAL read_only=ON")
	case b.Opts.SemiSync:
		_, err = b.SQL(ctx, h, "SET GLOBAL rpl_semi_sync_master_enabled=ON")
	}
	return err
}

// Stop shuts h's mariadbd down cleanly (SIGTERM, and SIGCONT in case it is
// frozen) and waits until it has exited.
func (b *Bed) Stop(ctx context.Context, h *Host) error {
	pid, err := b.signal(h, unix.SIGTERM)
	if err != nil {
		return err
	}
	_ = unix.Kill(pid, unix.SIGCONT)
	return waitGone(ctx, []int{pid}, 120*time.Second)
}
