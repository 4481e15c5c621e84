// Package awstest runs moto_server, the third-party AWS emulator, for the
// tests of the packages that call AWS: one server per test binary, on a
// free loopback port, started by the first test that needs it.
package awstest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Moto is one moto_server. The zero value is ready; a package keeps one in
// a variable and calls Stop from TestMain.
type Moto struct {
	once sync.Once
	url  string
	skip string // why there is none
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// URL returns the server's URL, starting it on first use, or skips t when
// moto_server is not installed or does not start.
func (s *Moto) URL(t testing.TB) string {
	t.Helper()
	s.once.Do(s.start)
	if s.skip != "" {
		t.Skip(s.skip)
	}
	return s.url
}

// start runs moto_server on a free 127.0.0.1 port in its own process
// group and waits until it listens.
func (s *Moto) start() {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		s.skip = "moto_server (the AWS emulator) is not on PATH: skipping the tests against it"
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.skip = "no free port: " + err.Error()
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		s.skip = fmt.Sprintf("moto_server does not start: %v", err)
		return
	}
	s.cmd = cmd
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.skip = fmt.Sprintf("moto_server did not listen on %s within 20s", addr)
			s.Stop()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.url = "http://" + addr
}

// Stop kills the server's process group (if one was started).
func (s *Moto) Stop() {
	if s.cmd != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}
