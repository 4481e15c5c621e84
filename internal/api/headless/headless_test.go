package headless

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080/#token=s3cret":        "http://127.0.0.1:8080/#REDACTED",
		"https://user:pw@h/x?token=s3cret#token=abc": "https://h/x?REDACTED#REDACTED",
		"http://h/": "http://h/",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactAll("loading http://h/#token=s3cret", "http://h/#token=s3cret"); strings.Contains(got, "s3cret") {
		t.Errorf("redactAll: %q", got)
	}
}

func TestArgs(t *testing.T) {
	args := strings.Join(Args("/tmp/p", 5*time.Second, "--dump-dom", "http://x/"), " ")
	for _, want := range []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=/tmp/p",
		"--virtual-time-budget=5000", "--dump-dom http://x/"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
}

// A page that does not exist fails with an error that keeps the token out.
func TestDumpDOMError(t *testing.T) {
	b, err := New(t.TempDir())
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	b.Prefix = []string{"/bin/false"}
	_, err = b.DumpDOM(context.Background(), "http://127.0.0.1:1/#token=s3cret-xyz")
	if err == nil || strings.Contains(err.Error(), "s3cret-xyz") {
		t.Errorf("DumpDOM error: %v", err)
	}
	entries, _ := os.ReadDir(b.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "profile-") {
			t.Errorf("profile left behind: %s", filepath.Join(b.Dir, e.Name()))
		}
	}
}
