package hooks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// recorder writes a script that records its argv, one argument per line,
// to the file named by $REC and exits with $EXIT (default 0).
func recorder(t *testing.T) (script, rec string) {
	t.Helper()
	dir := t.TempDir()
	script = filepath.Join(dir, "record.sh")
	rec = filepath.Join(dir, "argv")
	body := "#!/bin/sh\n: > \"$REC\"\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$REC\"; done\necho \"ran with $# arguments\"\nexit ${EXIT:-0}\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, rec
}

func readArgv(t *testing.T, rec string) []string {
	t.Helper()
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func runner(rec string, exit int, logBuf *bytes.Buffer) Runner {
	r := Runner{Timeout: 10 * time.Second, Env: []string{"REC=" + rec, "EXIT=" + strconv.Itoa(exit)}}
	if logBuf != nil {
		r.Logger = slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return r
}

var (
	orig = Host{Hostname: "db1.example", IP: "10.0.0.11", Port: 3306, User: "mha", Password: config.NewSecret("origpw"), SSHUser: "root"}
	nw   = Host{Hostname: "db2.example", IP: "10.0.0.12", Port: 3307, User: "mha2", Password: config.NewSecret("newpw"), SSHUser: "admin"}
)

func TestArgumentsAreMHAs(t *testing.T) {
	sshOrig := orig
	sshOrig.SSHIP, sshOrig.SSHPort = "192.168.0.11", 2222
	pid := orig
	pid.PIDFile = "/var/run/mysqld.pid"
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"failover stop", IPFailoverArgs(CommandStop, orig, Host{}), []string{
			"--orig_master_host=db1.example", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--command=stop"}},
		{"failover stopssh", IPFailoverArgs(CommandStopSSH, orig, Host{}), []string{
			"--orig_master_host=db1.example", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--command=stopssh", "--ssh_user=root"}},
		{"failover start", IPFailoverArgs(CommandStart, orig, nw), []string{
			"--command=start", "--ssh_user=admin",
			"--orig_master_host=db1.example", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306",
			"--new_master_host=db2.example", "--new_master_ip=10.0.0.12", "--new_master_port=3307", "--new_master_user=mha2",
			"--new_master_password=newpw"}},
		{"failover status", IPFailoverArgs(CommandStatus, orig, Host{}), []string{
			"--command=status", "--ssh_user=root", "--orig_master_host=db1.example", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306"}},
		{"failover stopssh, other ssh address", IPFailoverArgs(CommandStopSSH, sshOrig, Host{}), []string{
			"--orig_master_host=db1.example", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--command=stopssh", "--ssh_user=root",
			"--orig_master_ssh_host=db1.example", "--orig_master_ssh_ip=192.168.0.11", "--orig_master_ssh_port=2222"}},
		{"online stop", OnlineChangeArgs(CommandStop, orig, nw, false), []string{
			"--command=stop",
			"--orig_master_host=db1.example", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--orig_master_user=mha",
			"--new_master_host=db2.example", "--new_master_ip=10.0.0.12", "--new_master_port=3307", "--new_master_user=mha2",
			"--orig_master_ssh_user=root", "--new_master_ssh_user=admin",
			"--orig_master_password=origpw", "--new_master_password=newpw"}},
		{"online start, orig is new slave", OnlineChangeArgs(CommandStart, orig, nw, true), []string{
			"--command=start",
			"--orig_master_host=db1.example", "--orig_master_ip=10.0.0.11", "--orig_master_port=3306", "--orig_master_user=mha",
			"--new_master_host=db2.example", "--new_master_ip=10.0.0.12", "--new_master_port=3307", "--new_master_user=mha2",
			"--orig_master_ssh_user=root", "--new_master_ssh_user=admin", "--orig_master_is_new_slave",
			"--orig_master_password=origpw", "--new_master_password=newpw"}},
		{"shutdown stop", ShutdownArgs(CommandStop, orig), []string{
			"--command=stop", "--host=db1.example", "--ip=10.0.0.11", "--port=3306"}},
		{"shutdown stopssh with pid file", ShutdownArgs(CommandStopSSH, pid), []string{
			"--command=stopssh", "--ssh_user=root", "--host=db1.example", "--ip=10.0.0.11", "--port=3306", "--pid_file=/var/run/mysqld.pid"}},
		{"shutdown status, other ssh port", ShutdownArgs(CommandStatus, sshOrig), []string{
			"--command=status", "--ssh_user=root", "--host=db1.example", "--ip=10.0.0.11",
			"--ssh_host=db1.example", "--ssh_ip=192.168.0.11", "--ssh_port=2222"}},
		{"report", ReportArgs(Report{OrigMasterHost: "db1", NewMasterHost: "db2", NewSlaveHosts: []string{"db3", "db4"}, Conf: "/etc/app1.cnf", Subject: "app1: MySQL Master failover db1 to db2 succeeded", Body: "line 1\nline 2"}), []string{
			"--orig_master_host=db1", "--new_master_host=db2", "--new_slave_hosts=db3,db4", "--conf=/etc/app1.cnf",
			"--subject=app1: MySQL Master failover db1 to db2 succeeded", "--body=line 1", "line 2"}}, // the body's newline splits the recorded line
		{"report, no new master", ReportArgs(Report{OrigMasterHost: "db1", Conf: "/etc/app1.cnf", Subject: "s", Body: "b"}), []string{
			"--orig_master_host=db1", "--conf=/etc/app1.cnf", "--subject=s", "--body=b"}},
		{"secondary check", SecondaryCheckArgs(orig, "SELECT"), []string{
			"--user=root", "--master_host=db1.example", "--master_ip=10.0.0.11", "--master_port=3306",
			"--master_user=mha", "--master_password=origpw", "--ping_type=SELECT"}},
	}
	script, rec := recorder(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Through a real shell: what the script receives is the list.
			if _, err := runner(rec, 0, nil).Run(context.Background(), script, c.args); err != nil {
				t.Fatal(err)
			}
			if got := readArgv(t, rec); !reflect.DeepEqual(got, c.want) {
				t.Errorf("argv\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestScriptWithEmbeddedArguments(t *testing.T) {
	script, rec := recorder(t)
	res, err := runner(rec, 0, nil).Run(context.Background(), script+` --vip=10.0.0.100 'two words'`, []string{"--command=status", "it's; rm -rf / $(x) `y`"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--vip=10.0.0.100", "two words", "--command=status", "it's; rm -rf / $(x) `y`"}
	if got := readArgv(t, rec); !reflect.DeepEqual(got, want) {
		t.Errorf("argv\n got %q\nwant %q", got, want)
	}
	if res.ExitCode != 0 || res.Output != "ran with 4 arguments" || res.Elapsed <= 0 {
		t.Errorf("result %+v", res)
	}
}

func TestExitCodes(t *testing.T) {
	script, rec := recorder(t)
	ctx := context.Background()
	for _, code := range []int{0, 10, 1, 2, 3, 20} {
		r := runner(rec, code, nil)
		res, err := r.Run(ctx, script, nil)
		if res.ExitCode != code {
			t.Errorf("exit %d: Result.ExitCode %d", code, res.ExitCode)
		}
		if c, ok := ExitCode(err); (code == 0) != (err == nil) || (code != 0 && (!ok || c != code)) {
			t.Errorf("exit %d: err %v", code, err)
		}
		if IsProceed(err) != (code == 10) {
			t.Errorf("exit %d: IsProceed %v", code, IsProceed(err))
		}

		out, err := r.Shutdown(ctx, script, CommandStop, orig)
		switch code {
		case 0:
			if out != PoweredOff || err != nil {
				t.Errorf("shutdown exit 0: %v %v", out, err)
			}
		case 10:
			if out != MySQLKilled || err != nil {
				t.Errorf("shutdown exit 10: %v %v", out, err)
			}
		default:
			if err == nil {
				t.Errorf("shutdown exit %d: no error", code)
			}
		}

		v, err := r.SecondaryCheck(ctx, script, orig, "SELECT")
		want := map[int]SecondaryVerdict{0: PrimaryUnreachable, 2: NetworkProblem, 3: PrimaryReachable}[code]
		if v != want || (want == 0) != (err != nil) {
			t.Errorf("secondary check exit %d: %v %v", code, v, err)
		}
	}
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie waiting for its reaper is dead for our purpose.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitDead(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !alive(pid)
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "hang.sh")
	// The child redirects its output so the pipes are not what ends Run.
	body := "#!/bin/sh\nsleep 300 >/dev/null 2>&1 &\necho $! > " + pidFile + "\necho started\nsleep 300\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r := Runner{Timeout: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	start := time.Now()
	res, err := r.Run(context.Background(), script, nil)
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if took > 3*time.Second {
		t.Errorf("Run took %s after a 500ms timeout", took)
	}
	if res.ExitCode != -1 || res.Output != "started" {
		t.Errorf("result %+v", res)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || !waitDead(pid, 2*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("child %d of the timed-out script survived", pid)
	}
	if !strings.Contains(logs.String(), "timed out") {
		t.Errorf("log does not say timed out: %s", logs.String())
	}
}

func TestContextCancelKillsScript(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := Runner{}.Run(ctx, "sleep 300", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("cancel took %s", time.Since(start))
	}
}

func TestBackgroundChildDoesNotHoldRun(t *testing.T) {
	// A script that leaves arping-like children with its stdout.
	start := time.Now()
	res, err := Runner{}.Run(context.Background(), "sh -c 'sleep 5 & echo done'", nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run waited %s for a background child", took)
	}
}

func TestPasswordNeverShown(t *testing.T) {
	const pw = `S3cr3t pa$$'word`
	dir := t.TempDir()
	rec := filepath.Join(dir, "argv")
	// A careless script that prints every argument and fails.
	script := filepath.Join(dir, "noisy.sh")
	body := "#!/bin/sh\n: > \"$REC\"\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$REC\"; echo \"arg: $a\"; done\necho \"$*\" >&2\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	o, n := orig, nw
	o.Password, n.Password = config.NewSecret(pw), config.NewSecret(pw)
	var logs bytes.Buffer
	r := runner(rec, 1, &logs)
	check := func(name string, args []string, scriptLine string) {
		t.Helper()
		res, err := r.Run(context.Background(), scriptLine, args)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		got := readArgv(t, rec)
		if !strings.Contains(strings.Join(got, "\n"), pw) && len(args) > 0 {
			t.Errorf("%s: the script did not receive the password verbatim: %q", name, got)
		}
		for what, s := range map[string]string{"log": logs.String(), "error": err.Error(), "output": res.Output, "command": res.Command} {
			if strings.Contains(s, pw) || strings.Contains(s, "S3cr3t") {
				t.Errorf("%s: password in %s: %s", name, what, s)
			}
		}
		if !strings.Contains(res.Command, "[redacted]") {
			t.Errorf("%s: command not redacted: %s", name, res.Command)
		}
	}
	check("failover start", IPFailoverArgs(CommandStart, o, n), script)
	check("online", OnlineChangeArgs(CommandStop, o, n, false), script)
	check("secondary", SecondaryCheckArgs(o, "SELECT"), script)
	check("password in the script setting", nil, script+" --orig_master_password=S3cr3t")
	if !strings.Contains(logs.String(), "--new_master_password=[redacted]") {
		t.Errorf("log lacks the redacted flag:\n%s", logs.String())
	}
}

func TestOutputIsBounded(t *testing.T) {
	res, err := Runner{MaxOutput: 1000}.Run(context.Background(), "yes cloudmha | head -c 100000; echo; echo THE-END", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) > 1000 || !res.Truncated || !strings.HasSuffix(res.Output, "THE-END") {
		t.Errorf("len %d truncated %v tail %q", len(res.Output), res.Truncated, res.Output[max(0, len(res.Output)-20):])
	}
}

func TestWrap(t *testing.T) {
	script, rec := recorder(t)
	r := runner(rec, 0, nil)
	r.Wrap = []string{"env", "WRAPPED=1"}
	res, err := r.Run(context.Background(), script+`; echo "wrapped=$WRAPPED"`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Output, "wrapped=1") {
		t.Errorf("output %q", res.Output)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                "''",
		"--host=db1":      "--host=db1",
		"a b":             "'a b'",
		"it's":            `'it'\''s'`,
		"--body=x\ny":     "'--body=x\ny'",
		"10.0.0.1:3306,x": "10.0.0.1:3306,x",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
