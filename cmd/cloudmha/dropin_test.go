package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/address/movers"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
)

const dropinSecret = "Pa55-w0rd-never-shown"

// mhaHosts are the two ends as MHA's scripts see them (hooks builds MHA
// 0.58's exact argument lists from them).
var (
	mhaOrig = hooks.Host{Hostname: "db1.example", IP: "198.18.0.11", Port: 3306, User: "mha", Password: config.NewSecret(dropinSecret), SSHUser: "root"}
	mhaNew  = hooks.Host{Hostname: "db2.example", IP: "198.18.0.12", Port: 3307, User: "mha", Password: config.NewSecret(dropinSecret), SSHUser: "admin", SSHPort: 2222}
)

// recorder writes a script that appends its arguments, one a line, to a
// log, and exits with the code in the file code (0 when absent).
func recorder(t *testing.T) (script, logPath, codePath string) {
	t.Helper()
	dir := t.TempDir()
	script = filepath.Join(dir, "record.sh")
	logPath = filepath.Join(dir, "calls.log")
	codePath = filepath.Join(dir, "code")
	body := "#!/bin/sh\n" +
		"{ echo CALL; for a in \"$@\"; do echo \"$a\"; done; echo \"ENV=$" + dropinEnv + "\"; } >> " + logPath + "\n" +
		"[ -f " + codePath + " ] && exit $(cat " + codePath + ")\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, logPath, codePath
}

// scriptConf is an app.cnf whose address mover is the recorder.
func scriptConf(t *testing.T, script string) string {
	return writeConf(t, "[server default]\nuser=mha\npassword="+dropinSecret+"\nmanager_workdir=WORKDIR\n"+
		"master_ip_failover_script="+script+"\nmaster_ip_online_change_script="+script+"\n"+
		"[server1]\nhostname=db1.example\nip=198.18.0.11\n"+
		"[server2]\nhostname=198.18.0.12\nssh_user=admin\nssh_port=2222\nport=3307\n")
}

func calls(t *testing.T, logPath string) [][]string {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "CALL" {
			out = append(out, nil)
			continue
		}
		out[len(out)-1] = append(out[len(out)-1], l)
	}
	return out
}

func has(args []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, a := range args {
			if a == w {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestDropinScriptMoverEndToEnd feeds the drop-in MHA 0.58's exact
// arguments and checks what the script mover passes on.
func TestDropinScriptMoverEndToEnd(t *testing.T) {
	script, logPath, _ := recorder(t)
	conf := scriptConf(t, script)
	base := []string{"cloudmha", "master-ip-failover", "--conf=" + conf, "--global_conf=none"}

	steps := []struct {
		args []string
		want []string
	}{
		{hooks.IPFailoverArgs(hooks.CommandStopSSH, mhaOrig, hooks.Host{}), []string{"--command=stopssh", "--orig_master_host=db1.example", "--orig_master_ip=198.18.0.11"}},
		{hooks.IPFailoverArgs(hooks.CommandStop, mhaOrig, hooks.Host{}), []string{"--command=stop", "--orig_master_host=db1.example"}},
		{hooks.IPFailoverArgs(hooks.CommandStart, mhaOrig, mhaNew), []string{"--command=start", "--new_master_host=db2.example", "--new_master_ip=198.18.0.12", "--new_master_port=3307", "--ssh_user=admin", "--new_master_ssh_port=2222"}},
		{hooks.IPFailoverArgs(hooks.CommandStatus, mhaOrig, hooks.Host{}), []string{"--command=status", "--orig_master_host=db1.example"}},
	}
	for i, s := range steps {
		code, out, errOut := runCLI(t, append(base, s.args...)...)
		if code != 0 {
			t.Fatalf("step %d %v: exit %d\nstdout %s\nstderr %s", i, s.args, code, out, errOut)
		}
		if strings.Contains(out+errOut, dropinSecret) {
			t.Errorf("step %d: the password leaked:\n%s\n%s", i, out, errOut)
		}
		got := calls(t, logPath)
		if len(got) != i+1 {
			t.Fatalf("step %d: %d script calls, want %d", i, len(got), i+1)
		}
		if last := got[i]; !has(last, s.want...) || !has(last, "ENV=1") {
			t.Errorf("step %d: script got %q, want %q and %s=1", i, last, s.want, dropinEnv)
		}
	}

	// Online change, Perl-style single-dash options and an unknown option
	// with a separate value.
	online := hooks.OnlineChangeArgs(hooks.CommandStop, mhaOrig, mhaNew, true)
	for i, a := range online {
		online[i] = strings.TrimPrefix(a, "-")
	}
	args := append([]string{"cloudmha", "master-ip-online-change", "-conf=" + conf, "--global_conf", "none", "--future_option", "value"}, online...)
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("online stop: exit %d\n%s\n%s", code, out, errOut)
	}
	got := calls(t, logPath)
	if last := got[len(got)-1]; !has(last, "--command=stop", "--orig_master_is_new_slave", "--orig_master_host=db1.example", "--new_master_host=db2.example") {
		t.Errorf("online stop: script got %q", last)
	}
}

func TestDropinExitCodes(t *testing.T) {
	script, _, codePath := recorder(t)
	conf := scriptConf(t, script)
	args := append([]string{"cloudmha", "master-ip-failover", "--conf=" + conf, "--global_conf=none", "--log-level=debug"},
		hooks.IPFailoverArgs(hooks.CommandStart, mhaOrig, mhaNew)...)
	for _, c := range []struct {
		script string
		want   int
	}{{"0", 0}, {"10", 10}, {"3", 1}} {
		if err := os.WriteFile(codePath, []byte(c.script), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, args...)
		if code != c.want {
			t.Errorf("script exit %s: drop-in exit %d, want %d\n%s", c.script, code, c.want, errOut)
		}
		if c.want != 0 && !strings.Contains(errOut, "master_ip_failover_script --command=start") {
			t.Errorf("script exit %s: stderr does not explain: %s", c.script, errOut)
		}
		if strings.Contains(out+errOut, dropinSecret) {
			t.Errorf("script exit %s: the password leaked:\n%s\n%s", c.script, out, errOut)
		}
	}
}

// fakeMover records the changes it is given.
type fakeMover struct {
	release, acquire []address.Change
	err              error
	status           *error // nil: no StatusChecker behaviour recorded
	statusOf         []address.Target
}

func (f *fakeMover) Kind() string { return "fake" }
func (f *fakeMover) Release(_ context.Context, c address.Change) error {
	f.release = append(f.release, c)
	return f.err
}
func (f *fakeMover) Acquire(_ context.Context, c address.Change) error {
	f.acquire = append(f.acquire, c)
	return f.err
}
func (f *fakeMover) Holder(context.Context) (string, error) { return "", address.ErrHolderUnknown }

type fakeStatusMover struct{ *fakeMover }

func (f fakeStatusMover) Status(_ context.Context, p address.Target) error {
	f.statusOf = append(f.statusOf, p)
	return *f.status
}

// withFake returns a runCLI whose drop-ins use m, and where the
// configuration they built is recorded.
func withFake(t *testing.T, m address.Mover) (func(t *testing.T, args ...string) (int, string, string), **config.Config) {
	t.Helper()
	var got *config.Config
	run := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := runWith(context.Background(), args, &globals{stdout: &out, stderr: &errb,
			newMover: func(cfg *config.Config, o movers.Options) (address.Mover, error) {
				got = cfg
				return m, nil
			}})
		return code, out.String(), errb.String()
	}
	return run, &got
}

func TestDropinStandaloneMapping(t *testing.T) {
	f := &fakeMover{}
	runCLI, cfgp := withFake(t, f)
	flags := []string{"--mover=vip", "--vip=198.18.0.100", "--vip_interface=eth0", "--vip_prefix=24", "--ssh_options=-i /k -o StrictHostKeyChecking=no", "--mover-option", "arping=none"}
	run := func(sub string, mha []string) (int, string) {
		t.Helper()
		code, out, errOut := runCLI(t, append(append([]string{"cloudmha", sub}, flags...), mha...)...)
		if strings.Contains(out+errOut, dropinSecret) {
			t.Errorf("the password leaked:\n%s\n%s", out, errOut)
		}
		return code, errOut
	}
	if code, e := run("master-ip-failover", hooks.IPFailoverArgs(hooks.CommandStop, mhaOrig, hooks.Host{})); code != 0 {
		t.Fatalf("stop: %d %s", code, e)
	}
	if code, e := run("master-ip-failover", hooks.IPFailoverArgs(hooks.CommandStopSSH, mhaOrig, hooks.Host{})); code != 0 {
		t.Fatalf("stopssh: %d %s", code, e)
	}
	if code, e := run("master-ip-failover", hooks.IPFailoverArgs(hooks.CommandStart, mhaOrig, mhaNew)); code != 0 {
		t.Fatalf("start: %d %s", code, e)
	}
	if len(f.release) != 2 || len(f.acquire) != 1 {
		t.Fatalf("release %d acquire %d", len(f.release), len(f.acquire))
	}
	if f.release[0].Old.SSHReachable || !f.release[1].Old.SSHReachable {
		t.Errorf("stop must mark the old primary unreachable over SSH, stopssh reachable: %+v", f.release)
	}
	wantOld := address.Target{Name: "db1.example", Hostname: "db1.example", IP: "198.18.0.11", Port: 3306}
	if o := f.release[0].Old; o != wantOld {
		t.Errorf("old = %+v, want %+v", o, wantOld)
	}
	wantNew := address.Target{Name: "db2.example", Hostname: "db2.example", IP: "198.18.0.12", Port: 3307, SSHReachable: true}
	if n := f.acquire[0].New; n != wantNew || f.acquire[0].Online {
		t.Errorf("new = %+v (online %t), want %+v", n, f.acquire[0].Online, wantNew)
	}
	cfg := *cfgp
	wantAddr := config.Address{Mover: "vip", VIP: "198.18.0.100", Interface: "eth0", Prefix: 24, Options: map[string]string{"arping": "none"}}
	if !reflect.DeepEqual(cfg.Address, wantAddr) {
		t.Errorf("address = %+v, want %+v", cfg.Address, wantAddr)
	}
	if len(cfg.Servers) != 2 {
		t.Fatalf("servers %+v", cfg.Servers)
	}
	s := cfg.Servers[1]
	if s.Name != "db2.example" || s.SSHUser != "admin" || s.SSHPort != 2222 || s.SSHOptions != "-i /k -o StrictHostKeyChecking=no" || s.Password.Value() != dropinSecret {
		t.Errorf("new server = %+v", s)
	}

	// Online change.
	if code, e := run("master-ip-online-change", hooks.OnlineChangeArgs(hooks.CommandStart, mhaOrig, mhaNew, true)); code != 0 {
		t.Fatalf("online start: %d %s", code, e)
	}
	if c := f.acquire[1]; !c.Online || !c.OldIsNewReplica || !c.Old.SSHReachable || c.New.Name != "db2.example" {
		t.Errorf("online change = %+v", c)
	}
	if code, _ := run("master-ip-online-change", hooks.IPFailoverArgs(hooks.CommandStatus, mhaOrig, hooks.Host{})); code != 1 {
		t.Errorf("online --command=status: exit %d, want 1", code)
	}

	// Failures: plain → 1, ProceedError → 10.
	f.err = errors.New("api says no")
	if code, e := run("master-ip-failover", hooks.IPFailoverArgs(hooks.CommandStart, mhaOrig, mhaNew)); code != 1 || !strings.Contains(e, "api says no") {
		t.Errorf("failure: exit %d, stderr %s", code, e)
	}
	f.err = &address.ProceedError{Err: errors.New("old ENI detach timed out")}
	if code, e := run("master-ip-failover", hooks.IPFailoverArgs(hooks.CommandStopSSH, mhaOrig, hooks.Host{})); code != 10 || !strings.Contains(e, "detach timed out") {
		t.Errorf("proceed: exit %d, stderr %s", code, e)
	}
}

func TestDropinStatus(t *testing.T) {
	f := &fakeMover{}
	runCLI, _ := withFake(t, f)
	args := append([]string{"cloudmha", "master-ip-failover", "--mover=aliyun/eni"}, hooks.IPFailoverArgs(hooks.CommandStatus, mhaOrig, hooks.Host{})...)
	if code, out, e := runCLI(t, args...); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("mover without status check: exit %d %s %s", code, out, e)
	}

	var statusErr error
	sm := fakeStatusMover{&fakeMover{status: &statusErr}}
	runCLI, _ = withFake(t, sm)
	if code, out, e := runCLI(t, args...); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("status ok: exit %d %s %s", code, out, e)
	}
	statusErr = errors.New("VIP held by db9")
	if code, _, e := runCLI(t, args...); code != 1 || !strings.Contains(e, "VIP held by db9") {
		t.Errorf("status failing: exit %d %s", code, e)
	}
}

func TestDropinRefusals(t *testing.T) {
	runCLI, _ := withFake(t, &fakeMover{})
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"master-ip-failover", "--mover=vip", "--vip=198.18.0.100", "--vip_interface=eth0", "--orig_master_host=a"}, "--command is required"},
		{"bad command", []string{"master-ip-online-change", "--mover=x", "--command=stopssh", "--orig_master_host=a", "--new_master_host=b"}, "unknown command"},
		{"no orig", []string{"master-ip-failover", "--mover=x", "--command=stop"}, "--orig_master_host is required"},
		{"no new", []string{"master-ip-failover", "--mover=x", "--command=start", "--orig_master_host=a"}, "--new_master_host is required"},
		{"no address", []string{"master-ip-failover", "--command=stop", "--orig_master_host=a"}, "--mover"},
		{"vip without interface", []string{"master-ip-failover", "--mover=vip", "--vip=198.18.0.100", "--command=stop", "--orig_master_host=a"}, "--vip_interface"},
		{"bad option", []string{"master-ip-failover", "--mover=x", "--mover-option=novalue", "--command=stop", "--orig_master_host=a"}, "key=value"},
	}
	for _, c := range cases {
		code, _, e := runCLI(t, append([]string{"cloudmha"}, c.args...)...)
		if code != 1 || !strings.Contains(e, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want 1 and %q", c.name, code, e, c.want)
		}
	}

	// An MHA app.cnf whose master_ip_failover_script is this command,
	// without a mover: recursion refused.
	conf := writeConf(t, "[server default]\nmaster_ip_failover_script=/usr/local/bin/cloudmha master-ip-failover --conf=/etc/app1.cnf\n[server1]\nhostname=198.18.0.11\n")
	code, _, e := runCLI(t, "cloudmha", "master-ip-failover", "--conf="+conf, "--global_conf=none", "--command=stop", "--orig_master_host=198.18.0.11")
	if code != 1 || !strings.Contains(e, "which is this command") {
		t.Errorf("self-recursion: exit %d, %s", code, e)
	}
	// … while the same file with --mover works, and MHA's host must be
	// one of its servers.
	code, _, e = runCLI(t, "cloudmha", "master-ip-failover", "--conf="+conf, "--global_conf=none", "--mover=x", "--command=stop", "--orig_master_host=198.18.0.11")
	if code != 0 {
		t.Errorf("app.cnf + --mover: exit %d, %s", code, e)
	}
	code, _, e = runCLI(t, "cloudmha", "master-ip-failover", "--conf="+conf, "--global_conf=none", "--mover=x", "--command=stop", "--orig_master_host=db7")
	if code != 1 || !strings.Contains(e, "not a server") {
		t.Errorf("unknown host: exit %d, %s", code, e)
	}

	// Called from a script the drop-in itself runs.
	t.Setenv(dropinEnv, "1")
	code, _, e = runCLI(t, "cloudmha", "master-ip-failover", "--mover=x", "--command=stop", "--orig_master_host=a")
	if code != 1 || !strings.Contains(e, dropinEnv) {
		t.Errorf("recursion through the environment: exit %d, %s", code, e)
	}
}

func TestPerlStyleArgs(t *testing.T) {
	in := []string{"-command=stop", "-orig_master_host", "h", "-h", "--conf=x", "-", "--", "-keep"}
	want := []string{"--command=stop", "--orig_master_host", "h", "-h", "--conf=x", "-", "--", "-keep"}
	if got := perlStyleArgs(in); !reflect.DeepEqual(got, want) {
		t.Errorf("perlStyleArgs = %q, want %q", got, want)
	}
}
