package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// managerProc is a `cloudmha manager` running inside the manager namespace.
type managerProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startManager runs the manager for conf in the background; it is stopped
// (SIGTERM) when the test ends if still running.
func startManager(t *testing.T, b *testbed.Bed, conf string, args ...string) *managerProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "manager.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"netns", "exec", b.ManagerNS, binary, "manager", "--conf=" + conf, "--global_conf=none", "--log-level=info"}, args...)
	cmd := exec.Command("ip", argv...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &managerProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { m.err = cmd.Wait(); _ = f.Close(); close(m.done) }()
	t.Cleanup(func() {
		m.Stop(t)
		if t.Failed() {
			t.Logf("manager log:\n%s", m.Log())
		}
	})
	return m
}

// Stop sends SIGTERM and waits; SIGKILL after 15 s.
func (m *managerProc) Stop(t *testing.T) {
	select {
	case <-m.done:
		return
	default:
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		t.Errorf("manager did not stop within 15 s of SIGTERM")
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// Kill ends the manager with SIGKILL, as a crash would.
func (m *managerProc) Kill() {
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	<-m.done
}

// Log returns what the manager printed so far.
func (m *managerProc) Log() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// waitLog waits until the manager's log contains s.
func (m *managerProc) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(m.Log(), s) {
		select {
		case <-m.done:
			t.Fatalf("manager exited (%v) before logging %q:\n%s", m.err, s, m.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager did not log %q within %s:\n%s", s, timeout, m.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostState is what the invariant sampler sees of one host.
type hostState struct {
	hasVIP   bool
	writable bool
	linkUp   bool
}

// sampler checks, every few tens of milliseconds while a scenario runs, the
// invariant "never two writable primaries behind the address": at most one
// host that is on the network holds the VIP while writable.
type sampler struct {
	b          *testbed.Bed
	mu         sync.Mutex
	violations []string
	samples    int
	linkDown   map[string]bool
	stop       chan struct{}
	done       chan struct{}
}

func startSampler(t *testing.T, b *testbed.Bed) *sampler {
	s := &sampler{b: b, stop: make(chan struct{}), done: make(chan struct{}), linkDown: map[string]bool{}}
	go s.loop()
	t.Cleanup(func() { s.Stop() })
	return s
}

// setLinkDown tells the sampler which hosts the scenario cut off: a host
// off the network cannot take client writes whatever it holds.
func (s *sampler) setLinkDown(name string, down bool) {
	s.mu.Lock()
	s.linkDown[name] = down
	s.mu.Unlock()
}

func (s *sampler) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		states := s.sample()
		var holders []string
		for name, st := range states {
			if st.hasVIP && st.writable && st.linkUp {
				holders = append(holders, name)
			}
		}
		s.mu.Lock()
		s.samples++
		if len(holders) > 1 {
			s.violations = append(s.violations, fmt.Sprintf("%s: writable VIP holders %v", time.Now().Format("15:04:05.000"), holders))
		}
		s.mu.Unlock()
	}
}

func (s *sampler) sample() map[string]hostState {
	out := map[string]hostState{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range s.b.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			st := hostState{}
			if b, err := exec.CommandContext(ctx, "ip", "-n", h.NS, "-o", "-4", "addr", "show", "dev", "eth0").Output(); err == nil {
				st.hasVIP = strings.Contains(string(b), " "+s.b.VIP+"/")
			}
			if v, err := s.b.SQL(ctx, h, "SELECT @@read_only"); err == nil {
				st.writable = strings.TrimSpace(v) == "0"
			}
			s.mu.Lock()
			st.linkUp = !s.linkDown[h.Name]
			s.mu.Unlock()
			mu.Lock()
			out[h.Name] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Stop ends sampling; Violations may be read after.
func (s *sampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// check fails the test on any violation and when too few samples ran to
// mean anything.
func (s *sampler) check(t *testing.T) {
	t.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples < 5 {
		t.Errorf("invariant sampler took only %d samples", s.samples)
	}
	for _, v := range s.violations {
		t.Errorf("two writable primaries behind the address: %s", v)
	}
}

// vipHolders lists the hosts whose eth0 carries the VIP.
func vipHolders(t *testing.T, b *testbed.Bed) []string {
	t.Helper()
	return vipHoldersQuiet(b)
}

// vipHoldersQuiet lists the hosts with the VIP on any interface (eth0, or
// an ENI); usable from goroutines.
func vipHoldersQuiet(b *testbed.Bed) []string {
	var out []string
	for _, h := range b.Hosts {
		o, err := execOutput("ip", "-n", h.NS, "-o", "-4", "addr", "show")
		if err == nil && strings.Contains(o, " "+b.VIP+"/") {
			out = append(out, h.Name)
		}
	}
	return out
}

func execOutput(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).Output()
	return string(b), err
}

// assertNoSecret fails when secret appears in the manager's log or in any
// file the run left in the cluster's directory (configuration aside: the
// status file, journal, history, failover reports, script logs). It
// insists on having read a failover report, so that it cannot pass by
// looking at nothing.
func assertNoSecret(t *testing.T, secret string, sc *scenario) {
	t.Helper()
	if strings.Contains(sc.m.Log(), secret) {
		t.Errorf("the secret appears in the manager's log")
	}
	var files, reports int
	err := filepath.WalkDir(sc.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if strings.Contains(d.Name(), "report") || strings.Contains(d.Name(), "history") || strings.Contains(d.Name(), "journal") {
			reports++
		}
		if strings.Contains(string(data), secret) {
			t.Errorf("the secret appears in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if reports == 0 {
		t.Errorf("no report, history or journal found under %s (%d files): the secret check looked at nothing", sc.dir, files)
	}
	t.Logf("secret absent from the manager's log and %d files under %s", files, sc.dir)
}
