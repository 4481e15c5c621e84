package netprobe

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want Result
	}{
		{"three ok", "ok 1700000000.000100 1700000000.000350\nok 1700000000.5 1700000000.5002\nok 1700000001.999999 1700000002.000001\n",
			Result{RTTs: []time.Duration{250 * time.Microsecond, 200 * time.Microsecond, 2 * time.Microsecond}}},
		{"date +%s.%N and a comma locale", "ok 1700000000.123456789 1700000000.123457000\nok 1700000000,100000 1700000000,100500\n",
			Result{RTTs: []time.Duration{211, 500 * time.Microsecond}}},
		{"losses and a banner", "Welcome to db2\n\nlost 124\nok 5.000000 5.001000\nlost 1\n",
			Result{RTTs: []time.Duration{time.Millisecond}, Lost: 2}},
		{"all lost", "lost 124\nlost 124\nlost 124", Result{Lost: 3}},
	}
	for _, tt := range tests {
		got, err := ParseOutput(tt.out)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got.Lost != tt.want.Lost || len(got.RTTs) != len(tt.want.RTTs) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
			continue
		}
		for i := range got.RTTs {
			if got.RTTs[i] != tt.want.RTTs[i] {
				t.Errorf("%s: RTT[%d] = %s, want %s", tt.name, i, got.RTTs[i], tt.want.RTTs[i])
			}
		}
	}

	if _, err := ParseOutput("netprobe-error bash not found\n"); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "bash not found") {
		t.Errorf("no bash: err = %v", err)
	}
	for _, bad := range []string{"", "hello\n", "ok 1.0\n", "ok 1700000000.%N 1700000000.%N\n", "ok 2.0 1.0\n", "ok -1.0 2.0\n", "ok 1.+5 2.0\n"} {
		if _, err := ParseOutput(bad); err == nil {
			t.Errorf("ParseOutput(%q): no error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, tt := range []struct {
		rtts []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(5), 5 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond},
		{ms(4, 1, 2, 9), 3 * time.Millisecond},
	} {
		r := Result{RTTs: tt.rtts, Lost: 1}
		if got := r.Median(); got != tt.want {
			t.Errorf("Median(%v) = %s, want %s", tt.rtts, got, tt.want)
		}
		if r.Attempts() != len(tt.rtts)+1 {
			t.Errorf("Attempts = %d", r.Attempts())
		}
	}
	r := Result{RTTs: ms(3, 1, 2)}
	_ = r.Median()
	if r.RTTs[0] != 3*time.Millisecond {
		t.Error("Median sorted the caller's slice")
	}
}

func TestScript(t *testing.T) {
	s, err := Script("198.18.0.11", 3306, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`-lt 3 ]`, `timeout 1 bash -c '`, `' '198.18.0.11' '3306'`} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if s, _ := Script("db1", 3306, 5, 250*time.Millisecond+1); !strings.Contains(s, "timeout 0.251 bash") || !strings.Contains(s, "-lt 5 ]") {
		t.Errorf("script:\n%s", s)
	}
	for _, bad := range []struct {
		host    string
		port, n int
	}{
		{"", 3306, 3}, {"db1'; rm -rf /", 3306, 3}, {"db 1", 3306, 3}, {"$(id)", 3306, 3},
		{"db1", 0, 3}, {"db1", 65536, 3}, {"db1", 3306, MaxAttempts + 1},
	} {
		if _, err := Script(bad.host, bad.port, bad.n, time.Second); err == nil {
			t.Errorf("Script(%q, %d, %d): no error", bad.host, bad.port, bad.n)
		}
	}
}

// shell runs the script locally, as an SSH session would on the replica.
func shell(name string, env ...string) func(ctx context.Context, script string) (string, error) {
	return func(ctx context.Context, script string) (string, error) {
		cmd := exec.CommandContext(ctx, name, "-c", script)
		if env != nil {
			cmd.Env = env
		}
		out, err := cmd.Output()
		return string(out), err
	}
}

func needBash(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bash", "timeout", "sh"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
}

func TestProbeLocal(t *testing.T) {
	needBash(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port

	for _, sh := range []string{"sh", "bash"} {
		res, err := Probe(ctx, shell(sh), "127.0.0.1", port, 3, time.Second)
		if err != nil {
			t.Fatalf("%s: %v", sh, err)
		}
		t.Logf("%s: %+v median %s", sh, res, res.Median())
		if len(res.RTTs) != 3 || res.Lost != 0 {
			t.Errorf("%s: open port: %+v, want 3 round trips", sh, res)
		}
		for _, d := range res.RTTs {
			if d <= 0 || d > 500*time.Millisecond {
				t.Errorf("%s: loopback round trip %s", sh, d)
			}
		}
	}

	// A closed port: every connect is refused.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cport := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()
	res, err := Probe(ctx, shell("sh"), "127.0.0.1", cport, 2, time.Second)
	if err != nil || res.Lost != 2 || len(res.RTTs) != 0 {
		t.Errorf("closed port: %+v, %v; want 2 lost", res, err)
	}
}

// TestProbeTimeout connects to a listener whose accept queue is full, so
// the kernel drops the SYN and the connect hangs until timeout(1) ends it.
func TestProbeTimeout(t *testing.T) {
	needBash(t)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	// Fill the accept queue (never accepted).
	for range 3 {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	res, err := Probe(ctx, shell("sh"), "127.0.0.1", port, 2, 300*time.Millisecond)
	t.Logf("full backlog: %+v, %v in %s", res, err, time.Since(start))
	if err != nil || res.Lost != 2 {
		t.Errorf("full backlog: %+v, %v; want 2 lost", res, err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("probe took %s; timeout 300ms × 2", time.Since(start))
	}
}

func TestProbeMissingTools(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh")
	}
	sh, _ := exec.LookPath("sh")
	// A PATH without bash (and timeout): sh finds its builtins only.
	res, err := Probe(context.Background(), shell(sh, "PATH=/nonexistent"), "127.0.0.1", 3306, 3, time.Second)
	if !errors.Is(err, ErrUnsupported) || res.Attempts() != 0 {
		t.Errorf("no bash: %+v, %v; want ErrUnsupported", res, err)
	}
	// A failing runner (SSH down) is an error.
	boom := errors.New("ssh: connection refused")
	_, err = Probe(context.Background(), func(context.Context, string) (string, error) { return "", boom }, "127.0.0.1", 3306, 3, time.Second)
	if !errors.Is(err, boom) {
		t.Errorf("runner error: %v", err)
	}
}
