// Package headless runs headless Chromium for tests of the status page: it
// loads a URL, lets the page's scripts run for a virtual-time budget, and
// dumps the resulting DOM or takes a screenshot. The test bed runs the same
// commands inside a network namespace (test/testbed.Chromium).
package headless

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of a Browser.
const (
	DefaultBudget  = 5 * time.Second
	DefaultTimeout = 90 * time.Second
)

// ErrNotFound: no Chromium on this machine (tests skip on it).
var ErrNotFound = errors.New("headless: chromium not found (install the Debian package chromium, see scripts/install-deps.sh)")

// Find returns the path of a Chromium binary: $CHROMIUM when set, else the
// first of chromium, chromium-browser, google-chrome in PATH or /usr/bin.
func Find() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("headless: $CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		if p := filepath.Join("/usr/bin", name); isExec(p) {
			return p, nil
		}
	}
	return "", ErrNotFound
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Browser runs one headless Chromium per call; calls may run concurrently.
type Browser struct {
	// Path is the Chromium binary.
	Path string
	// Dir is a scratch directory: Chromium's HOME, caches and one fresh
	// profile per run live under it.
	Dir string
	// Prefix is a command the browser runs under, e.g. {"ip", "netns",
	// "exec", "ns1"}; nil runs it directly.
	Prefix []string
	// Budget is the virtual time the page gets before the DOM is dumped or
	// the screenshot taken (--virtual-time-budget); default 5 s.
	Budget time.Duration
	// Timeout bounds one run in wall-clock time; default 90 s.
	Timeout time.Duration
}

// New finds Chromium and returns a Browser with scratch directory dir.
func New(dir string) (*Browser, error) {
	p, err := Find()
	if err != nil {
		return nil, err
	}
	return &Browser{Path: p, Dir: dir}, nil
}

// Args are the command-line arguments of one run (without the binary):
// headless, no sandbox (tests run as root), no GPU, no background traffic.
func Args(profileDir string, budget time.Duration, extra ...string) []string {
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
		"--metrics-recording-only", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir=" + profileDir,
		"--virtual-time-budget=" + strconv.FormatInt(budget.Milliseconds(), 10),
	}
	return append(args, extra...)
}

// DumpDOM loads rawURL and returns the DOM (document.documentElement's
// outerHTML) after the budget.
func (b *Browser) DumpDOM(ctx context.Context, rawURL string) (string, error) {
	out, err := b.run(ctx, rawURL, "--dump-dom")
	if err != nil {
		return "", err
	}
	if !strings.Contains(out, "<html") {
		return "", fmt.Errorf("headless: %s: no DOM in the output", Redact(rawURL))
	}
	return out, nil
}

// Screenshot loads rawURL in a width×height window and writes a PNG of it
// to path after the budget.
func (b *Browser) Screenshot(ctx context.Context, rawURL, path string, width, height int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("headless: screenshot path %s: %w", path, err)
	}
	_ = os.Remove(abs)
	if _, err := b.run(ctx, rawURL, "--screenshot="+abs, fmt.Sprintf("--window-size=%d,%d", width, height)); err != nil {
		return err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("headless: screenshot of %s: %w", Redact(rawURL), err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("headless: screenshot of %s: empty file %s", Redact(rawURL), abs)
	}
	return nil
}

// run starts Chromium once and returns its standard output. The browser and
// every process it started are killed when ctx ends or the timeout passes.
func (b *Browser) run(ctx context.Context, rawURL string, extra ...string) (string, error) {
	if b.Path == "" || b.Dir == "" {
		return "", errors.New("headless: Browser needs Path and Dir")
	}
	budget, timeout := b.Budget, b.Timeout
	if budget <= 0 {
		budget = DefaultBudget
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	home := filepath.Join(b.Dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("headless: %w", err)
	}
	profile, err := os.MkdirTemp(b.Dir, "profile-")
	if err != nil {
		return "", fmt.Errorf("headless: %w", err)
	}
	defer os.RemoveAll(profile)

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := append(append([]string(nil), b.Prefix...), b.Path)
	argv = append(argv, Args(profile, budget, append(append([]string(nil), extra...), rawURL)...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	// Renderer or utility processes left behind go with the group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err != nil {
		return "", fmt.Errorf("headless: chromium on %s (after %s): %w: %s", Redact(rawURL),
			time.Since(start).Round(time.Millisecond), err, tail(redactAll(stderr.String(), rawURL), 1500))
	}
	return stdout.String(), nil
}

// Redact drops a URL's fragment (where the status page takes its token)
// and its query, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = "REDACTED", ""
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.User = nil
	return u.String()
}

// redactAll removes the URL's fragment wherever text repeats it.
func redactAll(text, rawURL string) string {
	if i := strings.IndexByte(rawURL, '#'); i >= 0 && i+1 < len(rawURL) {
		text = strings.ReplaceAll(text, rawURL[i+1:], "REDACTED")
	}
	return text
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
