// Package netprobe measures the network between a replica's host and its
// primary: a short shell script, run on the replica's host (over SSH, by
// the caller), times a few TCP connects to the primary's MySQL port. The
// package builds the script and parses its output; it never opens an SSH
// connection itself, so it runs anywhere a shell does.
package netprobe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults for Probe's n and timeout when they are not positive.
const (
	DefaultAttempts = 3
	DefaultTimeout  = time.Second
)

// MaxAttempts bounds n: the script runs its connects one after another.
const MaxAttempts = 20

// Result is what one probe measured: the round trip of each connect that
// succeeded and the number that did not (refused, timed out or failed).
type Result struct {
	RTTs []time.Duration
	Lost int
}

// Attempts is the number of connects tried.
func (r Result) Attempts() int { return len(r.RTTs) + r.Lost }

// Median is the median round trip (the mean of the middle two for an even
// count); 0 when no connect succeeded.
func (r Result) Median() time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	s := slices.Clone(r.RTTs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ErrUnsupported is wrapped by Probe when the host lacks what the script
// needs (bash, timeout).
var ErrUnsupported = errors.New("host cannot run the network probe")

// Probe runs the probe script through run (for example an SSH session on
// the replica's host) and parses its output: n TCP connects (DefaultAttempts
// when n <= 0) to host:port, each given timeout (DefaultTimeout when <= 0).
// Pass the primary's IP address: a name would add its lookup to the
// measurement. When run fails after printing some attempts, Probe returns
// them together with the error.
func Probe(ctx context.Context, run func(ctx context.Context, script string) (string, error), host string, port, n int, timeout time.Duration) (Result, error) {
	script, err := Script(host, port, n, timeout)
	if err != nil {
		return Result{}, err
	}
	out, runErr := run(ctx, script)
	res, perr := ParseOutput(out)
	switch {
	case runErr != nil:
		return res, fmt.Errorf("network probe to %s: %w", joinHostPort(host, port), runErr)
	case perr != nil:
		return res, fmt.Errorf("network probe to %s: %w", joinHostPort(host, port), perr)
	}
	return res, nil
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// Script returns the POSIX shell snippet Probe runs. Each attempt is a
// bash child under timeout(1) that opens /dev/tcp/host/port and prints
// "ok START END" (EPOCHREALTIME, or date +%s.%N on bash < 5); an attempt
// that fails or times out prints "lost STATUS" (124 for a timeout). A host
// without bash or timeout prints "netprobe-error REASON".
func Script(host string, port, n int, timeout time.Duration) (string, error) {
	if err := validHost(host); err != nil {
		return "", err
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("network probe: port %d out of range 1-65535", port)
	}
	if n <= 0 {
		n = DefaultAttempts
	}
	if n > MaxAttempts {
		return "", fmt.Errorf("network probe: %d attempts, at most %d", n, MaxAttempts)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	secs := strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
	// The child's script is single-quoted: it contains no single quote,
	// and host and port reach it as $0 and $1.
	const child = `t0=${EPOCHREALTIME:-$(date +%s.%N)}; exec 3<>"/dev/tcp/$0/$1" || exit 1; ` +
		`t1=${EPOCHREALTIME:-$(date +%s.%N)}; exec 3>&-; echo "ok $t0 $t1"`
	var b strings.Builder
	b.WriteString("command -v bash >/dev/null 2>&1 || { echo 'netprobe-error bash not found'; exit 0; }\n")
	b.WriteString("command -v timeout >/dev/null 2>&1 || { echo 'netprobe-error timeout not found'; exit 0; }\n")
	b.WriteString("i=0\n")
	fmt.Fprintf(&b, "while [ \"$i\" -lt %d ]; do\n", n)
	b.WriteString("  i=$((i+1))\n")
	fmt.Fprintf(&b, "  timeout %s bash -c '%s' '%s' '%d' 2>/dev/null || echo \"lost $?\"\n", secs, child, host, port)
	b.WriteString("done\n")
	return b.String(), nil
}

// validHost accepts host names and IPv4/IPv6 literals; anything else could
// break out of the script's quoting.
func validHost(h string) error {
	if h == "" || len(h) > 255 {
		return fmt.Errorf("network probe: invalid host %q", h)
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == '_', r == ':':
		default:
			return fmt.Errorf("network probe: invalid character %q in host %q", r, h)
		}
	}
	return nil
}

// ParseOutput reads the script's output: "ok START END" lines become round
// trips, "lost …" lines losses; other lines (a login banner) are ignored.
// A "netprobe-error" line is an error wrapping ErrUnsupported; an output
// without any attempt, or an "ok" line that does not parse, is an error.
func ParseOutput(out string) (Result, error) {
	var res Result
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "netprobe-error":
			return res, fmt.Errorf("%w: %s", ErrUnsupported, strings.Join(f[1:], " "))
		case "lost":
			res.Lost++
		case "ok":
			if len(f) != 3 {
				return res, fmt.Errorf("parse probe output %q: want ok START END", strings.TrimSpace(line))
			}
			d, err := elapsed(f[1], f[2])
			if err != nil {
				return res, fmt.Errorf("parse probe output %q: %w", strings.TrimSpace(line), err)
			}
			res.RTTs = append(res.RTTs, d)
		}
	}
	if res.Attempts() == 0 {
		return res, errors.New("probe printed no attempt")
	}
	return res, nil
}

// elapsed is end − start for two "seconds.fraction" timestamps (a comma
// where the locale wants one), exact to the nanosecond.
func elapsed(start, end string) (time.Duration, error) {
	s, err := parseStamp(start)
	if err != nil {
		return 0, err
	}
	e, err := parseStamp(end)
	if err != nil {
		return 0, err
	}
	if e < s {
		return 0, fmt.Errorf("end %s before start %s", end, start)
	}
	return time.Duration(e - s), nil
}

// parseStamp reads "1700000000.123456" as nanoseconds since the epoch.
func parseStamp(v string) (int64, error) {
	whole, frac, _ := strings.Cut(strings.Replace(v, ",", ".", 1), ".")
	if !digits(whole) || len(whole) > 11 || (frac != "" && !digits(frac)) {
		return 0, fmt.Errorf("timestamp %q: want seconds.fraction", v)
	}
	secs, _ := strconv.ParseInt(whole, 10, 64)
	frac = (frac + "000000000")[:9]
	ns, _ := strconv.ParseInt(frac, 10, 64)
	return secs*int64(time.Second) + ns, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
