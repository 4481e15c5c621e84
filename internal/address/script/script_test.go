package script

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
)

// setup writes a recording script (argv to $REC, one per line, exit $EXIT)
// and a configuration using it for both scripts, with embedded arguments.
func setup(t *testing.T, exit string) (*Mover, string) {
	t.Helper()
	dir := t.TempDir()
	rec := filepath.Join(dir, "argv")
	sh := filepath.Join(dir, "master_ip_failover")
	body := "#!/bin/sh\n: > \"$REC\"\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$REC\"; done\nexit ${EXIT:-0}\n"
	if err := os.WriteFile(sh, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		MasterIPFailoverScript:     sh + " --vip=10.0.0.100",
		MasterIPOnlineChangeScript: sh + " --online",
		Servers: []config.Server{
			{Name: "server1", Hostname: "db1", IP: "10.0.0.11", Port: 3306, User: "mha", Password: config.NewSecret("pw1"), SSHUser: "root"},
			{Name: "server2", Hostname: "db2", IP: "10.0.0.12", Port: 3306, User: "mha", Password: config.NewSecret("pw2"), SSHUser: "root", SSHPort: 2222},
		},
	}
	m, err := New(cfg, hooks.Runner{Timeout: 10 * time.Second, Env: []string{"REC=" + rec, "EXIT=" + exit}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, rec
}

func argv(t *testing.T, rec string) []string {
	t.Helper()
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

var (
	old = address.Target{Name: "server1", Hostname: "db1", IP: "10.0.0.11", Port: 3306, SSHReachable: true}
	nw  = address.Target{Name: "server2", Hostname: "db2", IP: "10.0.0.12", Port: 3306, SSHReachable: true}
)

func TestVerbs(t *testing.T) {
	m, rec := setup(t, "0")
	ctx := context.Background()
	dead := old
	dead.SSHReachable = false
	cases := []struct {
		name string
		do   func() error
		want []string
	}{
		{"release, SSH reachable", func() error { return m.Release(ctx, address.Change{Old: old, New: nw}) }, []string{
			"--vip=10.0.0.100", "--orig_master_host=db1", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--command=stopssh", "--ssh_user=root"}},
		{"release, SSH unreachable", func() error { return m.Release(ctx, address.Change{Old: dead, New: nw}) }, []string{
			"--vip=10.0.0.100", "--orig_master_host=db1", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--command=stop"}},
		{"acquire", func() error { return m.Acquire(ctx, address.Change{Old: dead, New: nw}) }, []string{
			"--vip=10.0.0.100", "--command=start", "--ssh_user=root", "--orig_master_host=db1", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306",
			"--new_master_host=db2", "--new_master_ip=10.0.0.12", "--new_master_port=3306", "--new_master_user=mha",
			"--new_master_ssh_port=2222", "--new_master_password=pw2"}},
		{"online release", func() error {
			return m.Release(ctx, address.Change{Old: old, New: nw, Online: true, OldIsNewReplica: true})
		}, []string{
			"--online", "--command=stop", "--orig_master_host=db1", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--orig_master_user=mha",
			"--new_master_host=db2", "--new_master_ip=10.0.0.12", "--new_master_port=3306", "--new_master_user=mha",
			"--orig_master_ssh_user=root", "--new_master_ssh_user=root", "--new_master_ssh_port=2222", "--orig_master_is_new_slave",
			"--orig_master_password=pw1", "--new_master_password=pw2"}},
		{"online acquire", func() error { return m.Acquire(ctx, address.Change{Old: old, New: nw, Online: true}) }, []string{
			"--online", "--command=start", "--orig_master_host=db1", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--orig_master_user=mha",
			"--new_master_host=db2", "--new_master_ip=10.0.0.12", "--new_master_port=3306", "--new_master_user=mha",
			"--orig_master_ssh_user=root", "--new_master_ssh_user=root", "--new_master_ssh_port=2222",
			"--orig_master_password=pw1", "--new_master_password=pw2"}},
		{"status", func() error { return m.Status(ctx, old) }, []string{
			"--vip=10.0.0.100", "--command=status", "--ssh_user=root", "--orig_master_host=db1", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); err != nil {
				t.Fatal(err)
			}
			if got := argv(t, rec); !reflect.DeepEqual(got, c.want) {
				t.Errorf("argv\n got %q\nwant %q", got, c.want)
			}
		})
	}
	if h, err := m.Holder(ctx); h != "" || !errors.Is(err, address.ErrHolderUnknown) {
		t.Errorf("Holder = %q, %v", h, err)
	}
	if m.Kind() != "script" {
		t.Errorf("Kind %q", m.Kind())
	}
}

func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	c := address.Change{Old: old, New: nw}

	m, _ := setup(t, "10")
	for name, err := range map[string]error{"release": m.Release(ctx, c), "acquire": m.Acquire(ctx, c)} {
		var pe *address.ProceedError
		if !errors.As(err, &pe) {
			t.Errorf("exit 10 %s: %v, want *address.ProceedError", name, err)
		}
	}
	if err := m.Status(ctx, old); err == nil {
		t.Error("status with exit 10: no error")
	}

	m, _ = setup(t, "1")
	for name, err := range map[string]error{"release": m.Release(ctx, c), "acquire": m.Acquire(ctx, c), "status": m.Status(ctx, old)} {
		var pe *address.ProceedError
		if err == nil || errors.As(err, &pe) {
			t.Errorf("exit 1 %s: %v, want an abort", name, err)
		}
		if code, ok := hooks.ExitCode(err); !ok || code != 1 {
			t.Errorf("exit 1 %s: code %d %v", name, code, ok)
		}
	}
	if err := m.Release(ctx, address.Change{Old: address.Target{Name: "server9"}, New: nw}); err == nil || !strings.Contains(err.Error(), "server9") {
		t.Errorf("unknown server: %v", err)
	}
}

func TestMissingScriptsAreSkipped(t *testing.T) {
	cfg := &config.Config{MasterIPOnlineChangeScript: "/bin/false", Servers: []config.Server{{Name: "server1"}, {Name: "server2"}}}
	m, err := New(cfg, hooks.Runner{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Release(ctx, address.Change{Old: old, New: nw}); err != nil {
		t.Errorf("failover release without master_ip_failover_script: %v", err)
	}
	if err := m.Status(ctx, old); err != nil {
		t.Errorf("status without master_ip_failover_script: %v", err)
	}
	if err := m.Release(ctx, address.Change{Old: old, New: nw, Online: true}); err == nil {
		t.Error("online release with /bin/false: no error")
	}
}
