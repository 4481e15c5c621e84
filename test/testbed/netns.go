package testbed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const netnsDir = "/run/netns"

// Dialer returns a dial function whose sockets are created inside network
// namespace ns (the calling goroutine's OS thread switches into ns for the
// socket call and back). Only addresses of the bed's subnet and loopback are
// allowed. It fits mysql.DialFunc and http.Transport.DialContext.
func (b *Bed) Dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	subnet := b.subnet
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := allowedTarget(subnet, addr); err != nil {
			return nil, err
		}
		var conn net.Conn
		err := inNetNS(ns, func() error {
			d := net.Dialer{FallbackDelay: -1}
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// allowedTarget keeps test traffic inside the bed: IP literals of the
// subnet or loopback only.
func allowedTarget(subnet netip.Prefix, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("testbed: dial %s: only IP literals are allowed", addr)
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || subnet.Contains(ip) {
		return nil
	}
	return fmt.Errorf("testbed: dial %s: outside the test subnet %s", addr, subnet)
}

// inNetNS runs fn on a thread switched into namespace ns. If the thread
// cannot be switched back, it stays locked so the runtime destroys it when
// the goroutine ends, instead of reusing a thread in the wrong namespace.
func inNetNS(ns string, fn func() error) error {
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return fmt.Errorf("testbed: namespace %s: %w", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testbed: setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Deliberately no UnlockOSThread: the thread dies with the goroutine.
		return errors.Join(ferr, fmt.Errorf("testbed: cannot return from namespace %s: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// createNetwork builds the switch namespace with br0 and one namespace per
// endpoint, each with eth0 (a veth whose other end sits on br0) and lo.
func (b *Bed) createNetwork(ctx context.Context) error {
	sw := b.SwitchNS
	if err := run(ctx, "ip", "netns", "add", sw); err != nil {
		return err
	}
	// The switch has no address at all: lo stays down, no IPv6.
	if err := noIPv6(ctx, sw); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"-n", sw, "link", "set", "br0", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	type ep struct{ ns, port, ip string }
	eps := []ep{{b.ClientNS, "client", b.ClientIP}, {b.ManagerNS, "mgr", b.ManagerIP}}
	for _, h := range b.Hosts {
		eps = append(eps, ep{h.NS, h.SwitchIface, h.IP})
	}
	return parallel(len(eps), func(i int) error {
		e := eps[i]
		if err := run(ctx, "ip", "netns", "add", e.ns); err != nil {
			return err
		}
		if err := noIPv6(ctx, e.ns); err != nil {
			return err
		}
		for _, args := range [][]string{
			{"-n", e.ns, "link", "set", "lo", "up"},
			// Created in the switch namespace with its peer moved straight
			// into the host namespace: no end ever appears in the root one.
			{"-n", sw, "link", "add", e.port, "type", "veth", "peer", "name", "eth0", "netns", e.ns},
			{"-n", sw, "link", "set", e.port, "master", "br0", "up"},
			{"-n", e.ns, "addr", "add", e.ip + "/" + strconv.Itoa(b.subnet.Bits()), "dev", "eth0"},
			{"-n", e.ns, "link", "set", "eth0", "up"},
		} {
			if err := run(ctx, "ip", args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// noIPv6 turns IPv6 off in namespace ns before its links exist: test
// traffic is IPv4 on the subnet only (no link-local chatter either).
func noIPv6(ctx context.Context, ns string) error {
	return run(ctx, "ip", "netns", "exec", ns, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
}

// SetLink sets the switch-side veth of port (a host name, "client" or
// "mgr") down or up: the namespace behind it loses or regains the network.
func (b *Bed) SetLink(port string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run(context.Background(), "ip", "-n", b.SwitchNS, "link", "set", port, state)
}

// LinkDown cuts h off the network (its switch port goes down).
func (b *Bed) LinkDown(h *Host) error { return b.SetLink(h.SwitchIface, false) }

// LinkUp reconnects h.
func (b *Bed) LinkUp(h *Host) error { return b.SetLink(h.SwitchIface, true) }

// parallel runs fn(0..n-1) concurrently and joins the errors.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	done := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			errs[i] = fn(i)
		}()
	}
	for i := 0; i < n; i++ {
		<-done
	}
	return errors.Join(errs...)
}

// ---- lock ----

func acquireLock(ctx context.Context, prefix string) (*os.File, error) {
	f, err := os.OpenFile(LockPath, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testbed: lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("testbed: lock %s: %w", LockPath, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("testbed: waiting for %s (another bed is up): %w", LockPath, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d prefix %s since %s\n", os.Getpid(), prefix, time.Now().Format(time.RFC3339))), 0)
	return f, nil
}

func releaseLock(f *os.File) {
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	_ = f.Close()
}

// ---- cleanup and leftovers ----

// prefixNamespaces lists the namespaces named <prefix>-*.
func prefixNamespaces(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// workDirsFor is the default work directory of prefix, the one recorded by a
// running bed of that prefix, and extra ones.
func workDirsFor(prefix string, extra []string) []string {
	dirs := map[string]bool{filepath.Join(BaseDir, prefix): true}
	if data, err := os.ReadFile(filepath.Join(MarkerDir, prefix+".workdir")); err == nil {
		if d := strings.TrimSpace(string(data)); validateWorkDir(d) == nil {
			dirs[d] = true
		}
	}
	for _, d := range extra {
		if d != "" {
			dirs[d] = true
		}
	}
	var out []string
	for d := range dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

type procInfo struct {
	PID    int
	Comm   string
	Reason string
}

func (p procInfo) String() string {
	return fmt.Sprintf("process %d (%s): %s", p.PID, p.Comm, p.Reason)
}

// bedProcesses finds processes of a bed: every process inside one of its
// namespaces (what `ip netns pids` does: compare the network namespace
// inode), and every mariadbd/sshd whose command line names its WorkDir. This
// process and its ancestors are never included.
func bedProcesses(nsNames []string, workDirs []string) ([]procInfo, error) {
	type nsID struct{ dev, ino uint64 }
	nsIDs := map[nsID]string{}
	for _, n := range nsNames {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(netnsDir, n), &st); err == nil {
			nsIDs[nsID{st.Dev, st.Ino}] = n
		}
	}
	skip := map[int]bool{}
	for pid := os.Getpid(); pid > 1; {
		skip[pid] = true
		pp, err := ppid(pid)
		if err != nil || pp == pid {
			break
		}
		pid = pp
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || skip[pid] || pid <= 1 {
			continue
		}
		if isZombieOrGone(pid) {
			continue
		}
		comm := readComm(pid)
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err == nil {
			if n, ok := nsIDs[nsID{st.Dev, st.Ino}]; ok {
				out = append(out, procInfo{pid, comm, "in namespace " + n})
				continue
			}
		}
		if comm != "mariadbd" && comm != "mysqld" && comm != "sshd" {
			continue
		}
		cmdline := readCmdline(pid)
		for _, d := range workDirs {
			if strings.Contains(cmdline, d+"/") {
				out = append(out, procInfo{pid, comm, "runs from " + d})
				break
			}
		}
	}
	return out, nil
}

func readComm(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(data))
}

func readCmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(data), "\x00", " ")
}

func ppid(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("bad stat")
	}
	return strconv.Atoi(f[1])
}

// isZombieOrGone reports whether pid no longer runs (zombies count as gone:
// their parent reaps them).
func isZombieOrGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	st := s[i+2]
	return st == 'Z' || st == 'X'
}

// waitGone polls until every pid is gone or ctx/timeout ends.
func waitGone(ctx context.Context, pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, p := range pids {
			if !isZombieOrGone(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: processes %v still alive after %s", alive, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: waiting for processes %v: %w", alive, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cleanup kills every process of the prefix's bed(s) and deletes its
// namespaces. Used by Down and, before anything else, by Up.
func cleanup(ctx context.Context, prefix string, extraWorkDirs []string, log *slog.Logger) error {
	dirs := workDirsFor(prefix, extraWorkDirs)
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		nss, err := prefixNamespaces(prefix)
		if err != nil {
			return err
		}
		procs, err := bedProcesses(nss, dirs)
		if err != nil {
			return err
		}
		// PID files first: mariadbd/sshd of hosts whose namespace is gone.
		procs = append(procs, pidFileProcesses(dirs)...)
		if len(procs) == 0 {
			break
		}
		var pids []int
		seen := map[int]bool{}
		for _, p := range procs {
			if seen[p.PID] {
				continue
			}
			seen[p.PID] = true
			log.Debug("testbed: killing", "pid", p.PID, "comm", p.Comm, "why", p.Reason)
			_ = unix.Kill(p.PID, unix.SIGKILL)
			pids = append(pids, p.PID)
		}
		if err := waitGone(ctx, pids, 10*time.Second); err != nil {
			errs = append(errs, err)
		} else {
			errs = nil
		}
	}
	nss, err := prefixNamespaces(prefix)
	if err != nil {
		return err
	}
	for _, n := range nss {
		if err := run(ctx, "ip", "netns", "del", n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pidFileProcesses reads the mariadbd and sshd PID files under the work
// directories and returns the processes that still run from there.
func pidFileProcesses(dirs []string) []procInfo {
	var out []procInfo
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*", "mariadbd.pid"))
		more, _ := filepath.Glob(filepath.Join(d, "*", "ssh", "sshd.pid"))
		for _, f := range append(files, more...) {
			pid := readPIDFile(f)
			if pid <= 1 || isZombieOrGone(pid) {
				continue
			}
			if strings.Contains(readCmdline(pid), d+"/") {
				out = append(out, procInfo{pid, readComm(pid), "PID file " + f})
			}
		}
	}
	return out
}

func readPIDFile(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	return pid
}

// Leftovers lists, human-readably, what remains of a bed with this prefix:
// namespaces, processes (inside them, or mariadbd/sshd running from its work
// directory) and root-namespace links named after the prefix. Empty after
// Down. The blackhole route is intentional and not listed.
func Leftovers(prefix string) ([]string, error) {
	var out []string
	nss, err := prefixNamespaces(prefix)
	if err != nil {
		return nil, err
	}
	for _, n := range nss {
		out = append(out, "namespace "+n)
	}
	dirs := workDirsFor(prefix, nil)
	procs, err := bedProcesses(nss, dirs)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	for _, p := range append(procs, pidFileProcesses(dirs)...) {
		if !seen[p.PID] {
			seen[p.PID] = true
			out = append(out, p.String())
		}
	}
	links, err := output(context.Background(), "ip", "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(links), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
		if strings.HasPrefix(name, prefix+"-") || name == prefix {
			out = append(out, "link "+name+" in the root namespace")
		}
	}
	return out, nil
}
