// Package hooks runs the external scripts of MHA for MySQL with MHA 0.58's
// arguments and exit codes: master_ip_failover_script,
// master_ip_online_change_script, shutdown_script, report_script and
// secondary_check_script.
//
// A script setting may carry its own arguments
// (master_ip_failover_script=/usr/local/bin/master_ip_failover --vip=10.0.0.100),
// so, like MHA, a hook runs through /bin/sh -c; every argument cloudmha adds
// is shell-quoted, so a value is never interpreted by the shell. Passwords
// travel on the command line, as MHA passes them: they are replaced by
// [redacted] in every log line, error and captured output.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Runner.
const (
	// DefaultTimeout bounds one script run when Runner.Timeout is zero.
	// MHA has no limit; a hung script would hang the failover forever.
	DefaultTimeout = 60 * time.Second
	// DefaultMaxOutput is how much of the combined output is kept (the
	// tail) when Runner.MaxOutput is zero.
	DefaultMaxOutput = 64 << 10
	// pipeGrace is how long Run waits for the output pipes after the
	// script has exited: a background child (arping &) that inherited
	// them must not hold up the failover.
	pipeGrace = time.Second
)

// ExitProceed is the exit code with which master_ip_failover_script,
// master_ip_online_change_script ("failed, but proceed") and shutdown_script
// ("SSH reachable, mysqld killed") say something other than plain failure.
const ExitProceed = 10

// Redacted replaces secrets in logs, errors and output.
const Redacted = "[redacted]"

// secretFlags are the arguments whose values are secrets.
var secretFlags = []string{"--new_master_password=", "--orig_master_password=", "--master_password="}

// ErrTimeout is wrapped by Run's error when the script ran out of time.
var ErrTimeout = errors.New("script timed out")

// Runner runs hook scripts. The zero value is usable.
type Runner struct {
	// Timeout bounds one run (0 = DefaultTimeout). On timeout, or when the
	// context ends, the script's whole process group is killed.
	Timeout time.Duration
	// Logger receives the redacted command line, the exit code and the
	// output; nil discards.
	Logger *slog.Logger
	// Env is added to the manager's environment (KEY=value).
	Env []string
	// Wrap, when set, prefixes the command: Wrap... /bin/sh -c LINE.
	// Example: {"ip", "netns", "exec", "mgr"} runs hooks in another network
	// namespace (the test bed does that).
	Wrap []string
	// MaxOutput is how many bytes of combined output are kept, the last
	// ones (0 = DefaultMaxOutput).
	MaxOutput int
}

// Result is what one run did.
type Result struct {
	Command   string        // the command line, secrets redacted
	ExitCode  int           // -1 when the script did not exit by itself
	Output    string        // tail of stdout+stderr, secrets redacted
	Truncated bool          // Output lost its beginning
	Elapsed   time.Duration // from start to exit
}

// ExitError is Run's error when the script exited with a non-zero code.
type ExitError struct {
	Command string // redacted
	Code    int
	Output  string // redacted tail
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("script %s exited with code %d", e.Command, e.Code)
	if out := lastLines(e.Output, 5, 512); out != "" {
		msg += ": " + out
	}
	return msg
}

// ExitCode returns the exit code carried by err (an *ExitError anywhere in
// its chain).
func ExitCode(err error) (int, bool) {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code, true
	}
	return 0, false
}

// IsProceed reports whether err is an exit with ExitProceed (10).
func IsProceed(err error) bool {
	c, ok := ExitCode(err)
	return ok && c == ExitProceed
}

// Run runs script (a path, possibly followed by its own arguments, as in
// MHA's configuration) with args appended, each shell-quoted. A non-zero exit
// returns the Result and an *ExitError; a timeout an error wrapping
// ErrTimeout; a cancelled context one wrapping ctx.Err().
func (r Runner) Run(ctx context.Context, script string, args []string) (Result, error) {
	script = strings.TrimSpace(script)
	if script == "" {
		return Result{ExitCode: -1}, errors.New("hooks: empty script")
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	max := r.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}

	line, shown, secrets := commandLine(script, args)
	res := Result{Command: shown, ExitCode: -1}

	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	argv := append(append([]string{}, r.Wrap...), "/bin/sh", "-c", line)
	cmd := exec.CommandContext(rctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.Stdin = nil
	out := &tailBuffer{max: max}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: the shell, the script and what it spawned.
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = pipeGrace

	log.Info("running script", "command", shown, "timeout", timeout)
	start := time.Now()
	err := cmd.Start()
	if err != nil {
		res.Elapsed = time.Since(start)
		return res, fmt.Errorf("script %s: start: %w", shown, err)
	}
	err = cmd.Wait()
	res.Elapsed = time.Since(start)
	res.Output, res.Truncated = out.String(), out.truncated()
	res.Output = redact(res.Output, secrets)
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	// A background child still holding the pipes after a normal exit is
	// not a failure of the script.
	if errors.Is(err, exec.ErrWaitDelay) && res.ExitCode == 0 {
		log.Debug("script left a background process holding its output", "command", shown)
		err = nil
	}

	attrs := []any{"command", shown, "exit", res.ExitCode, "elapsed", res.Elapsed.Round(time.Millisecond)}
	if res.Output != "" {
		attrs = append(attrs, "output", res.Output)
	}
	switch {
	case rctx.Err() != nil && ctx.Err() == nil:
		log.Error("script timed out: process group killed", attrs...)
		return res, fmt.Errorf("script %s: %w after %s", shown, ErrTimeout, timeout)
	case ctx.Err() != nil:
		log.Warn("script cancelled: process group killed", attrs...)
		return res, fmt.Errorf("script %s: %w", shown, ctx.Err())
	case err == nil:
		log.Info("script finished", attrs...)
		return res, nil
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) && res.ExitCode >= 0 {
		log.Warn("script failed", attrs...)
		return res, &ExitError{Command: shown, Code: res.ExitCode, Output: res.Output}
	}
	log.Error("script failed", append(attrs, "err", redact(err.Error(), secrets))...)
	return res, fmt.Errorf("script %s: %s", shown, redact(err.Error(), secrets))
}

// commandLine builds the shell line, its redacted form and the secret
// values found in args.
func commandLine(script string, args []string) (line, shown string, secrets []string) {
	var l, s strings.Builder
	l.WriteString(script)
	shownScript, embedded := redactFlags(script)
	s.WriteString(shownScript)
	secrets = append(secrets, embedded...)
	for _, a := range args {
		l.WriteByte(' ')
		l.WriteString(ShellQuote(a))
		s.WriteByte(' ')
		if flag, val, ok := secretArg(a); ok {
			if val != "" {
				secrets = append(secrets, val)
			}
			s.WriteString(flag + Redacted)
			continue
		}
		s.WriteString(ShellQuote(a))
	}
	return l.String(), s.String(), secrets
}

func secretArg(a string) (flag, val string, ok bool) {
	for _, f := range secretFlags {
		if strings.HasPrefix(a, f) {
			return f, a[len(f):], true
		}
	}
	return "", "", false
}

// redactFlags hides secret flag values a user wrote into the script
// setting itself (up to the next blank) and returns them.
func redactFlags(s string) (string, []string) {
	var found []string
	for _, f := range secretFlags {
		for i := 0; ; {
			j := strings.Index(s[i:], f)
			if j < 0 {
				break
			}
			start := i + j + len(f)
			end := start
			for end < len(s) && s[end] != ' ' && s[end] != '\t' {
				end++
			}
			if end > start {
				found = append(found, strings.Trim(s[start:end], `'"`))
			}
			s = s[:start] + Redacted + s[end:]
			i = start + len(Redacted)
		}
	}
	return s, found
}

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, Redacted)
		if q := ShellQuote(v); q != v {
			s = strings.ReplaceAll(s, q, Redacted)
		}
	}
	return s
}

// ShellQuote quotes s for /bin/sh: words made only of safe characters stay
// as they are (so logs read like MHA's), anything else is single-quoted.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=./:,@%+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	buf   []byte
	max   int
	total int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += len(p)
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return string(bytes.TrimRight(b, "\n"))
}

func (t *tailBuffer) truncated() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total > t.max
}

// lastLines returns the last n lines of s joined with " | ", at most max
// bytes.
func lastLines(s string, n, max int) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, " | ")
	if len(out) > max {
		out = "…" + out[len(out)-max:]
	}
	return out
}
