// Package e2e runs cloudmha's binary against the real test bed: MariaDB
// servers and sshd in network namespaces, the binary itself inside the
// manager namespace, exactly as an operator would run it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// binary is the cloudmha built for this test run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cloudmha-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cloudmha")
	out, err := exec.Command("go", "build", "-o", binary, "../../cmd/cloudmha").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build cloudmha: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// prefix keeps the tests' namespaces apart from a developer's sandbox.
const prefix = "cmhae"

// upBed brings up a test bed for t and tears it down after, asserting that
// nothing is left behind.
func upBed(t *testing.T, o testbed.Options) *testbed.Bed {
	t.Helper()
	if os.Getenv("CLOUDMHA_SKIP_TESTBED") != "" {
		t.Skip("CLOUDMHA_SKIP_TESTBED is set")
	}
	if os.Geteuid() != 0 {
		t.Skip("the test bed needs root (network namespaces); run as root or use `make unit`")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd not installed: run scripts/install-deps.sh")
	}
	o.Prefix = prefix
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := testbed.Up(ctx, o)
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Logf("test bed of %d hosts up in %s", len(b.Hosts), b.BringUp.Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Down(ctx); err != nil {
			t.Errorf("test bed down: %v", err)
		}
		if left, err := testbed.Leftovers(prefix); err != nil || len(left) > 0 {
			t.Errorf("test bed left behind %v (%v)", left, err)
		}
	})
	return b
}

// result of one run of the binary.
type result struct {
	code    int
	stdout  string
	stderr  string
	elapsed time.Duration
}

// cloudmha runs the binary inside the manager namespace. argv0 lets a test
// call it by an MHA name (through a symlink).
func cloudmha(t *testing.T, b *testbed.Bed, argv0 string, args ...string) result {
	t.Helper()
	bin := binary
	if argv0 != "" {
		bin = filepath.Join(t.TempDir(), argv0)
		if err := os.Symlink(binary, bin); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.ManagerNS, bin}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cloudmha %v: %v", args, err)
	}
	return r
}

// report mirrors the JSON of check-repl --json (only what tests look at).
type report struct {
	Healthy  bool   `json:"healthy"`
	Primary  string `json:"primary"`
	Findings []struct {
		Severity string `json:"severity"`
		Check    string `json:"check"`
		Server   string `json:"server"`
		Message  string `json:"message"`
		Hint     string `json:"hint"`
	} `json:"findings"`
	Servers []struct {
		Name string `json:"name"`
		Role string `json:"role"`
	} `json:"servers"`
}

func checkRepl(t *testing.T, b *testbed.Bed, conf string, extra ...string) (result, report) {
	t.Helper()
	r := cloudmha(t, b, "", append([]string{"check-repl", "--conf=" + conf, "--global_conf=none", "--json"}, extra...)...)
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check-repl --json printed no JSON (exit %d): %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	return r, rep
}

func (r report) failures() []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == "fail" {
			out = append(out, fmt.Sprintf("%s@%s: %s", f.Check, f.Server, f.Message))
		}
	}
	return out
}

// hasFailure reports whether a failure of check on server has every word.
func (r report) hasFailure(check, server string, words ...string) bool {
	for _, f := range r.Findings {
		if f.Severity != "fail" || f.Check != check || (server != "" && f.Server != server) {
			continue
		}
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(f.Message, w)
		}
		if ok {
			return true
		}
	}
	return false
}
