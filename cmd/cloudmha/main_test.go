package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTranslateMHA(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"/usr/bin/masterha_check_repl", "--conf=/etc/app1.cnf"}, []string{"/usr/bin/masterha_check_repl", "check-repl", "--conf=/etc/app1.cnf"}},
		{[]string{"masterha_check_status", "-conf=/etc/app1.cnf", "--global_conf", "/g.cnf"}, []string{"masterha_check_status", "status", "--conf=/etc/app1.cnf", "--global_conf", "/g.cnf"}},
		{[]string{"cloudmha", "masterha_check_ssh", "--conf=a.cnf"}, []string{"cloudmha", "check-ssh", "--conf=a.cnf"}},
		{[]string{"cloudmha", "check-repl", "-h"}, []string{"cloudmha", "check-repl", "-h"}},
		{[]string{"masterha_check_repl", "-h"}, []string{"masterha_check_repl", "check-repl", "-h"}},
		{nil, []string{"cloudmha"}},
	}
	for _, c := range cases {
		if got := translateMHA(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("translateMHA(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConf(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "app1.cnf")
	body = strings.ReplaceAll(body, "WORKDIR", dir)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadConfigNamesFileLineKey(t *testing.T) {
	p := writeConf(t, "[server default]\nuser=mha\npassword=s3cr3t-value\nping_type=PONG\n[server1]\nhostname=198.18.0.11\n")
	code, out, errOut := runCLI(t, "masterha_check_repl", "--conf="+p, "--global_conf=none")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	if !strings.Contains(errOut, "app1.cnf:4") || !strings.Contains(errOut, "ping_type") {
		t.Errorf("error does not name file, line and key: %s", errOut)
	}
	if strings.Contains(out+errOut, "s3cr3t-value") {
		t.Errorf("the password leaked: %s %s", out, errOut)
	}
}

func TestStatusNotRunning(t *testing.T) {
	p := writeConf(t, "[server default]\nmanager_workdir=WORKDIR\n[server1]\nhostname=198.18.0.11\n")
	code, out, errOut := runCLI(t, "masterha_check_status", "--conf="+p, "--global_conf=none")
	if code != 2 || !strings.Contains(out, "app1 is stopped(2:NOT_RUNNING).") {
		t.Fatalf("exit %d out %q err %q; want 2 and MHA's NOT_RUNNING line", code, out, errOut)
	}
}

func TestHelpAndMissingConf(t *testing.T) {
	code, out, _ := runCLI(t, "cloudmha", "--help")
	if code != 0 || !strings.Contains(out, "masterha_check_repl") || !strings.Contains(out, "check-repl") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
	code, _, errOut := runCLI(t, "cloudmha", "check-repl")
	if code == 0 || !strings.Contains(errOut, "conf") {
		t.Fatalf("missing --conf: exit %d, %s", code, errOut)
	}
	code, out, _ = runCLI(t, "cloudmha", "completion", "bash")
	if code != 0 || !strings.Contains(out, "bash completion") {
		t.Fatalf("completion: exit %d", code)
	}
}
