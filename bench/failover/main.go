// Command failover benchmarks cloudmha on the real test bed: how long clients
// cannot write when the primary is killed, frozen or cut off, how long a
// planned switchover blocks writes, how many acknowledged writes are lost, and
// (with --scale) what one manager process costs in CPU and memory per watched
// cluster.
//
// It runs the real `cloudmha manager` binary inside the bed's manager
// namespace, exactly as the end-to-end tests do, with a workload writing
// through the VIP from the client namespace (through the EIP from the
// bed's internet namespace for --mover aliyun-eip and aws-eip). It measures and prints; it never
// asserts times (the targets are printed next to the figures). It is not part
// of `make test`: run it with `make bench` or
//
//	sudo go run ./bench/failover --runs 5
//	sudo go run ./bench/failover --kinds kill --runs 2 --keep-logs /tmp/bench-logs
//	sudo go run ./bench/failover --kinds none --scale 1,10,100
//
// It needs root (network namespaces) and the test bed's dependencies
// (scripts/install-deps.sh). Every bed is torn down, also on Ctrl-C.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// prefix keeps the benchmark's namespaces apart from the e2e tests' (cmhae)
// and a developer's sandbox (cmha).
const prefix = "cmhab"

// Timeouts of one run. Generous: a run that exceeds one is reported as failed,
// with the manager's log, and the benchmark goes on with the next run.
const (
	upTimeout       = 10 * time.Minute // includes waiting for another bed to go down
	pingOKTimeout   = 30 * time.Second
	failoverTimeout = 60 * time.Second
	resumeTimeout   = 30 * time.Second
	switchTimeout   = 60 * time.Second
	stopTimeout     = 15 * time.Second
	downTimeout     = time.Minute
	resumeWrites    = 50 // acknowledged writes that show writes flow again
	workloadRate    = 100
	preFault        = 2 * time.Second
)

var allKinds = []string{"kill", "freeze", "linkdown", "switchover"}

// target is what docs/dev/failover-engine.md asks for, and MHA 0.58's
// figure for the same fault on comparable hardware.
type target struct {
	Metric    string  `json:"metric"`     // unavailability | write_block
	MedianMax float64 `json:"median_max"` // seconds
	MaxMax    float64 `json:"max_max,omitempty"`
	MHA       float64 `json:"mha_0_58"` // seconds
}

var targets = map[string]target{
	"kill":       {Metric: "unavailability", MedianMax: 2, MaxMax: 4, MHA: 10},
	"linkdown":   {Metric: "unavailability", MedianMax: 6, MHA: 14.6},
	"freeze":     {Metric: "unavailability", MedianMax: 6, MHA: 13.4},
	"switchover": {Metric: "write_block", MedianMax: 0.3, MHA: 0.92},
}

type options struct {
	runs          int
	mover         string
	kinds         []string
	scale         []int
	scaleDuration time.Duration
	binary        string
	json          bool
	keepLogs      string
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		o             options
		kinds, scale  string
		scaleDuration time.Duration
	)
	flag.IntVar(&o.runs, "runs", 5, "runs per fault kind")
	flag.StringVar(&o.mover, "mover", "vip", "address mover: "+strings.Join(allMovers, ", ")+" (cloud movers run against the local emulator with its default latencies)")
	flag.StringVar(&kinds, "kinds", strings.Join(allKinds, ","), "fault kinds, comma-separated: kill,freeze,linkdown,switchover (\"none\" for only --scale)")
	flag.StringVar(&scale, "scale", "", "cluster counts for the scale measurement, e.g. 1,10,100 (default: none)")
	flag.DurationVar(&scaleDuration, "scale-duration", 30*time.Second, "how long the manager is measured per cluster count")
	flag.StringVar(&o.binary, "binary", "", "cloudmha binary to benchmark (default: build ./cmd/cloudmha)")
	flag.BoolVar(&o.json, "json", false, "print machine-readable JSON on stdout (progress still goes to stderr)")
	flag.StringVar(&o.keepLogs, "keep-logs", "", "keep every run's manager log (and the servers' error logs) under this directory")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags]\n\nBenchmarks cloudmha's failover and switchover on the real test bed (needs root).\n\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments: %v\n", flag.Args())
		return 2
	}
	o.scaleDuration = scaleDuration
	if o.runs < 1 {
		fmt.Fprintln(os.Stderr, "--runs must be at least 1")
		return 2
	}
	if kinds != "none" && kinds != "" {
		for _, k := range strings.Split(kinds, ",") {
			k = strings.TrimSpace(k)
			if !slices.Contains(allKinds, k) {
				fmt.Fprintf(os.Stderr, "--kinds: unknown kind %q (want %s)\n", k, strings.Join(allKinds, ","))
				return 2
			}
			o.kinds = append(o.kinds, k)
		}
	}
	if scale != "" && scale != "none" {
		for _, s := range strings.Split(scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "--scale: %q is not a positive cluster count\n", s)
				return 2
			}
			o.scale = append(o.scale, n)
		}
	}
	if len(o.kinds) == 0 && len(o.scale) == 0 {
		fmt.Fprintln(os.Stderr, "nothing to do: --kinds none and no --scale")
		return 2
	}

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/failover must run as root: the test bed creates network namespaces, "+
			"starts mariadbd/sshd and injects faults. Run it with sudo (sudo make bench, or sudo go run ./bench/failover).")
		return 2
	}
	for _, tool := range []string{"ip", "mariadbd"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "%s not found: install the test bed's dependencies (scripts/install-deps.sh)\n", tool)
			return 2
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	tmp, err := os.MkdirTemp("", "cloudmha-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	bin, err := binary(ctx, o.binary, tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if o.keepLogs != "" {
		if o.keepLogs, err = filepath.Abs(o.keepLogs); err == nil {
			err = os.MkdirAll(o.keepLogs, 0o755)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "--keep-logs: %v\n", err)
			return 2
		}
	}
	progress("benchmarking %s", bin)

	out := report{Binary: bin, Started: time.Now(), Targets: targets}
	failed := false
	for _, kind := range o.kinds {
		ks := kindSummary{Kind: kind}
		for i := 1; i <= o.runs && ctx.Err() == nil; i++ {
			r := runOnce(ctx, bin, tmp, o.keepLogs, kind, o.mover, i)
			if ctx.Err() != nil && !r.OK {
				break // interrupted: not a result
			}
			ks.Runs = append(ks.Runs, r)
			if !r.OK {
				failed = true
			}
		}
		ks.summarize()
		out.Kinds = append(out.Kinds, ks)
	}
	if len(o.scale) > 0 && ctx.Err() == nil {
		sr, err := runScale(ctx, bin, tmp, o.keepLogs, o.scale, o.scaleDuration)
		out.Scale = sr
		if err != nil {
			progress("scale: %v", err)
			out.ScaleError = err.Error()
			failed = true
		}
	}
	out.Finished = time.Now()
	if ctx.Err() != nil {
		out.Interrupted = true
		progress("interrupted: results so far follow")
	}
	if left, err := testbed.Leftovers(prefix); err != nil || len(left) > 0 {
		progress("WARNING: the test bed left behind %v (%v)", left, err)
		out.Leftovers = left
	}

	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out.jsonView())
	} else {
		out.print(os.Stdout)
	}
	switch {
	case out.Interrupted:
		return 130
	case failed:
		return 1
	}
	return 0
}

// progress writes a timestamped line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// binary returns the cloudmha to benchmark: --binary, or one built from this
// module into tmp.
func binary(ctx context.Context, given, tmp string) (string, error) {
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return "", err
		}
		if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("--binary %s is not an executable file (%v)", abs, err)
		}
		return abs, nil
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return "", fmt.Errorf("cannot find the cloudmha module (go env GOMOD: %v); run from the repository or give --binary", err)
	}
	bin := filepath.Join(tmp, "cloudmha")
	progress("building cloudmha")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/cloudmha")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/cloudmha: %v\n%s", err, out)
	}
	return bin, nil
}

// ---- one failover / switchover run ----

// runResult is one run of one fault kind.
type runResult struct {
	Kind string
	Run  int
	OK   bool
	Err  string

	NewPrimary string
	// Unavailability is the workload's MaxAckGap: the longest time without
	// an acknowledged write, as clients saw it.
	Unavailability time.Duration
	// Detection is the manager's "primary is dead" minus the fault.
	Detection time.Duration
	// Failover is "failover complete" minus "primary is dead";
	// FailoverElapsed is the manager's own `elapsed` of the failover.
	Failover        time.Duration
	FailoverElapsed time.Duration
	// WriteBlock is the switchover report's write_block; Switch is how long
	// the switch command ran.
	WriteBlock time.Duration
	Switch     time.Duration
	// SSH is one `ssh root@db1 true` from the manager namespace before the
	// run: what each SSH command of the VIP mover and the salvage costs.
	SSH time.Duration
	// FaultToResume is from the fault until writes flowed again.
	FaultToResume time.Duration
	// Mover is the address mover; AddressSteps the manager's time in its
	// release-address and acquire-address steps, of which APITime was spent
	// inside the cloud emulator's APICalls requests (cloud movers only).
	Mover        string
	AddressSteps time.Duration
	APITime      time.Duration
	APICalls     int
	Lost         int
	LostFirst    []int64
	Acked        int
	Uncertain    int
	WriteErrors  int

	// ManagerLog is where the manager's log was kept (--keep-logs).
	ManagerLog string
	// Notes are anomalies worth a look: error lines of the manager, a
	// manager that logged a dead primary during a switchover, …
	Notes []string
	// Excerpt is the end of the manager's log when the run failed.
	Excerpt string
}

func (r *runResult) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// runOnce brings up a fresh bed, starts the manager and a workload, injects
// the fault, waits for the failover (or switchover) and for writes to flow
// again, measures, and tears everything down.
func runOnce(ctx context.Context, bin, tmp, keepLogs, kind, mover string, n int) (r runResult) {
	r = runResult{Kind: kind, Run: n, Mover: mover}
	progress("%s run %d: bringing up the test bed", kind, n)
	dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", kind, n))
	logDir := dir
	if keepLogs != "" {
		logDir = filepath.Join(keepLogs, fmt.Sprintf("%s-%d", kind, n))
	}
	for _, d := range []string{dir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			r.Err = err.Error()
			return r
		}
	}

	b, err := up(ctx)
	if err != nil {
		r.Err = fmt.Sprintf("test bed: %v", err)
		progress("%s run %d: %s", kind, n, r.Err)
		return r
	}
	var (
		m *managerProc
		w *testbed.Workload
	)
	defer func() {
		if w != nil {
			w.Stop()
		}
		if m != nil {
			if err := m.stop(); err != nil {
				r.note("%v", err)
			}
		}
		teardown(b, keepLogs, logDir, &r)
		if keepLogs != "" && m != nil {
			r.ManagerLog = m.path
			progress("%s run %d: manager log kept at %s", kind, n, m.path)
		}
	}()

	setup, err := cloudSetup(ctx, b, mover, dir)
	if err != nil {
		r.Err = fmt.Sprintf("set up mover %s: %v", mover, err)
		return r
	}
	defer setup.cleanup()
	conf, timer, env := setup.conf, setup.timer, setup.env
	r.SSH, err = sshRoundTrip(ctx, b)
	if err != nil || r.SSH > 3*time.Second {
		r.note("one SSH command on db1 took %s (%v): SSH on the hosts is slow to start a command; check what root's shell runs at startup (~/.bashrc), e.g. a stale lock", fmtDur(r.SSH), err)
	}
	m, err = startManager(b, bin, filepath.Join(logDir, "manager.log"), env, "--conf="+conf)
	if err != nil {
		r.Err = err.Error()
		m = nil
		return r
	}
	if _, err := m.waitFor(ctx, pingOKTimeout, func(l logLine) bool { return l.Msg == "status" && l.str("state") == "0:PING_OK" }); err != nil {
		r.Err = fmt.Sprintf("manager never reached PING_OK: %v", err)
		r.Excerpt = m.tail(40)
		return r
	}
	wo := setup.workload
	wo.Rate, wo.Duration = workloadRate, 3*time.Minute
	w, err = b.StartWorkload(ctx, wo)
	if err != nil {
		r.Err = fmt.Sprintf("workload: %v", err)
		return r
	}
	if !sleep(ctx, preFault) {
		r.Err = "interrupted"
		return r
	}
	if p := w.Progress(); len(p.Acked) == 0 {
		r.Err = fmt.Sprintf("no write acknowledged through %s before the fault (last error %q)", setup.via, p.LastErrorText)
		return r
	}
	if timer != nil {
		timer.reset()
	}

	db1 := b.Host("db1")
	var restore func() error
	var faultAt time.Time
	progress("%s run %d: injecting the fault on db1", kind, n)
	switch kind {
	case "kill":
		faultAt = time.Now()
		err = b.Kill(db1)
	case "freeze":
		faultAt = time.Now()
		err = b.Freeze(db1)
		restore = func() error { return b.Thaw(db1) }
	case "linkdown":
		faultAt = time.Now()
		err = b.LinkDown(db1)
		restore = func() error { return b.LinkUp(db1) }
	case "switchover":
		faultAt = time.Now()
		err = switchover(ctx, b, bin, conf, logDir, env, &r)
	}
	defer func() {
		if restore != nil {
			if err := restore(); err != nil {
				r.note("restore db1 after %s: %v", kind, err)
			}
		}
	}()
	if err != nil {
		r.Err = fmt.Sprintf("%s: %v", kind, err)
		r.Excerpt = m.tail(40)
		return r
	}

	if kind != "switchover" {
		done, err := m.waitFor(ctx, failoverTimeout, func(l logLine) bool {
			return !l.Time.Before(faultAt.Truncate(time.Millisecond)) && (l.Msg == "failover complete" || l.Msg == "failover failed")
		})
		if err != nil {
			r.Err = fmt.Sprintf("no failover within %s: %v", failoverTimeout, err)
			r.Excerpt = m.tail(40)
			return r
		}
		if done.Msg == "failover failed" {
			r.Err = fmt.Sprintf("failover failed: %s", done.str("err"))
			r.Excerpt = m.tail(40)
			return r
		}
		r.NewPrimary = done.str("new_primary")
		r.FailoverElapsed = done.dur("elapsed")
		if dead, ok := m.first(func(l logLine) bool {
			return l.Msg == "primary is dead" && !l.Time.Before(faultAt.Truncate(time.Millisecond))
		}); ok {
			r.Detection = dead.Time.Sub(faultAt)
			r.Failover = done.Time.Sub(dead.Time)
		} else {
			r.note("no \"primary is dead\" line before \"failover complete\"")
			r.Failover = r.FailoverElapsed
		}
	}

	// Writes must flow again through the address.
	before := len(w.Progress().Acked)
	deadline := time.Now().Add(resumeTimeout)
	for {
		p := w.Progress()
		if len(p.Acked) >= before+resumeWrites {
			break
		}
		if time.Now().After(deadline) {
			r.Err = fmt.Sprintf("writes through %s did not resume within %s: %d acked, last error %q", setup.via, resumeTimeout, len(p.Acked), p.LastErrorText)
			r.Excerpt = m.tail(40)
			return r
		}
		if !sleep(ctx, 50*time.Millisecond) {
			r.Err = "interrupted"
			return r
		}
	}
	r.FaultToResume = time.Since(faultAt)
	if kind == "switchover" {
		r.AddressSteps = addressSteps(logLines(filepath.Join(logDir, "switch.log")), faultAt)
	} else {
		r.AddressSteps = addressSteps(m.lines(), faultAt)
	}
	if timer != nil {
		r.APICalls, r.APITime = timer.read()
	}
	res := w.Stop()
	w = nil
	if restore != nil {
		if err := restore(); err != nil {
			r.note("restore db1 after %s: %v", kind, err)
		}
		restore = nil
	}
	r.Unavailability = res.MaxAckGap
	r.Acked, r.Uncertain, r.WriteErrors = len(res.Acked), len(res.Uncertain), res.Errors

	np := b.Host(strings.Replace(r.NewPrimary, "server", "db", 1))
	if np == nil {
		r.Err = fmt.Sprintf("new primary %q is no test bed host", r.NewPrimary)
		return r
	}
	mctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	missing, err := b.MissingWrites(mctx, np, res.Acked)
	cancel()
	if err != nil {
		r.Err = fmt.Sprintf("count lost writes on %s: %v", np.Name, err)
		return r
	}
	r.Lost = len(missing)
	r.LostFirst = missing[:min(5, len(missing))]

	// Anomalies in the manager's log.
	seen := map[string]bool{}
	for _, l := range m.lines() {
		if l.Level != "ERROR" {
			continue
		}
		if kind != "switchover" && (l.Msg == "primary is dead" || (l.Msg == "primary verdict" && l.str("verdict") == "DeadPrimary")) {
			continue // the expected verdict of this fault
		}
		key := l.Msg + " " + l.str("err")
		if !seen[key] {
			seen[key] = true
			r.note("manager logged ERROR %q %s", l.Msg, l.str("err"))
		}
	}
	if kind == "switchover" {
		if l, ok := m.first(func(l logLine) bool { return l.Msg == "failover complete" || l.Msg == "failover failed" }); ok {
			r.note("the manager ran a failover during the switchover: %s", l.Raw)
		}
	}
	r.OK = true
	progress("%s run %d (%s): unavailable %s, detection %s, failover %s, write block %s, address steps %s (cloud API %s in %d calls), lost %d, new primary %s",
		kind, n, mover, fmtDur(r.Unavailability), fmtDur(r.Detection), fmtDur(r.Failover), fmtDur(r.WriteBlock), fmtDur(r.AddressSteps), fmtDur(r.APITime), r.APICalls, r.Lost, r.NewPrimary)
	return r
}

// switchover runs `cloudmha switch` to server2 inside the manager namespace
// and records its report; it returns when the command has exited.
func switchover(ctx context.Context, b *testbed.Bed, bin, conf, logDir string, env []string, r *runResult) error {
	sctx, cancel := context.WithTimeout(ctx, switchTimeout)
	defer cancel()
	cmd := exec.CommandContext(sctx, "ip", "netns", "exec", b.ManagerNS, bin, "switch",
		"--conf="+conf, "--global_conf=none", "--new_master_host=server2", "--orig_master_is_new_slave",
		"--interactive=0", "--json", "--log-level=info", "--log-format=json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err := cmd.Run()
	r.Switch = time.Since(start)
	_ = os.WriteFile(filepath.Join(logDir, "switch.json"), stdout.Bytes(), 0o644)
	_ = os.WriteFile(filepath.Join(logDir, "switch.log"), stderr.Bytes(), 0o644)
	var rep struct {
		NewPrimary string        `json:"new_primary"`
		WriteBlock time.Duration `json:"write_block"`
		Error      string        `json:"error"`
	}
	// --json should print only the report; the plan text may precede it
	// (--interactive=0 still prints the plan): decode from the first line
	// that opens a JSON object.
	js := stdout.Bytes()
	if !bytes.HasPrefix(js, []byte("{")) {
		if i := bytes.Index(js, []byte("\n{")); i >= 0 {
			r.note("`cloudmha switch --json` printed %d bytes of text before the JSON report (first line %q)", i+1, strings.SplitN(string(js), "\n", 2)[0])
			js = js[i+1:]
		}
	}
	jerr := json.NewDecoder(bytes.NewReader(js)).Decode(&rep)
	if err != nil || jerr != nil || rep.Error != "" {
		r.Excerpt = tailString(stdout.String()+stderr.String(), 40)
		switch {
		case err != nil:
			return fmt.Errorf("cloudmha switch: %v (report error %q)", err, rep.Error)
		case rep.Error != "":
			return fmt.Errorf("cloudmha switch reported: %s", rep.Error)
		default:
			return fmt.Errorf("cloudmha switch printed no JSON report: %v", jerr)
		}
	}
	r.NewPrimary, r.WriteBlock = rep.NewPrimary, rep.WriteBlock
	if r.WriteBlock == 0 {
		r.note("the switch report has no write_block")
	}
	return nil
}

// teardown stops the bed and checks nothing is left; with keepLogs it
// copies the servers' error logs next to the manager's.
func teardown(b *testbed.Bed, keepLogs, logDir string, r *runResult) {
	settle(b)
	ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
	defer cancel()
	if err := b.Down(ctx); err != nil {
		r.note("test bed down: %v", err)
		progress("test bed down: %v", err)
	}
	if left, err := testbed.Leftovers(prefix); err != nil || len(left) > 0 {
		r.note("test bed left behind %v (%v)", left, err)
		progress("WARNING: test bed left behind %v (%v)", left, err)
	}
	if keepLogs != "" {
		for _, h := range b.Hosts {
			if data, err := os.ReadFile(filepath.Join(h.Dir, "error.log")); err == nil {
				_ = os.WriteFile(filepath.Join(logDir, h.Name+"-error.log"), data, 0o644)
			}
		}
	}
}

// up brings up a fresh bed of 3 semi-sync hosts. The bed is one per
// machine: when another bed (an e2e test, a sandbox) holds the lock, Up waits
// for it, and that wait is said so that it is not mistaken for a slow
// bring-up.
func up(ctx context.Context) (*testbed.Bed, error) {
	if f, err := os.OpenFile(testbed.LockPath, os.O_RDWR|syscall.O_CLOEXEC, 0); err == nil {
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			holder, _ := os.ReadFile(testbed.LockPath)
			progress("waiting for another test bed to go down (%s: %s)", testbed.LockPath, strings.TrimSpace(string(holder)))
		} else {
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}
		f.Close()
	}
	upCtx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	b, err := testbed.Up(upCtx, testbed.Options{Hosts: 3, SemiSync: true, Prefix: prefix, Logger: benchLogger()})
	if err != nil {
		return nil, err
	}
	progress("test bed up in %s", fmtDur(b.BringUp))
	return b, nil
}

// settle waits (a few seconds at most) until the commands the manager ran
// over SSH on the hosts have ended. Down kills whatever still runs there with
// SIGKILL, and a login shell killed halfway through its startup files can
// leave a stale lock behind that stalls every later SSH command (root's
// ~/.bashrc running `pyenv init` did exactly that on the development
// machine).
func settle(b *testbed.Bed) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		for _, h := range b.Hosts {
			out, err := exec.Command("ip", "netns", "pids", h.NS).Output()
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(out)) {
				comm, _ := os.ReadFile("/proc/" + f + "/comm")
				if c := strings.TrimSpace(string(comm)); c != "" && c != "mariadbd" && c != "sshd" {
					busy = true
				}
			}
		}
		if !busy {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sshRoundTrip times `ssh root@db1 true` from the manager namespace with the
// bed's key: the cost of one SSH command on the hosts, which the VIP mover
// and the binlog salvage pay. Zero when no ssh client is installed.
func sshRoundTrip(ctx context.Context, b *testbed.Bed) (time.Duration, error) {
	if _, err := exec.LookPath("ssh"); err != nil {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", b.ManagerNS, "ssh", "-i", b.SSHKey,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "root@"+b.Host("db1").IP, "true").CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("ssh root@db1 true: %v %s", err, strings.TrimSpace(string(out)))
	}
	return d, nil
}

func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// ---- the manager process and its JSON log ----

// managerProc is a `cloudmha manager` running inside the manager namespace.
// `ip netns exec` execs the binary, so cmd.Process.Pid is the manager's PID.
type managerProc struct {
	cmd  *exec.Cmd
	path string
	done chan struct{}
	err  error
}

func startManager(b *testbed.Bed, bin, logPath string, env []string, args ...string) (*managerProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	argv := append([]string{"netns", "exec", b.ManagerNS, bin, "manager", "--global_conf=none", "--log-level=info", "--log-format=json"}, args...)
	cmd := exec.Command("ip", argv...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start manager: %w", err)
	}
	m := &managerProc{cmd: cmd, path: logPath, done: make(chan struct{})}
	go func() { m.err = cmd.Wait(); _ = f.Close(); close(m.done) }()
	return m, nil
}

func (m *managerProc) pid() int { return m.cmd.Process.Pid }

func (m *managerProc) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits; SIGKILL after stopTimeout.
func (m *managerProc) stop() error {
	if m.exited() {
		return nil
	}
	_ = syscall.Kill(-m.pid(), syscall.SIGTERM)
	select {
	case <-m.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-m.pid(), syscall.SIGKILL)
	<-m.done
	return fmt.Errorf("the manager did not stop within %s of SIGTERM; killed", stopTimeout)
}

// logLine is one JSON line of the manager's log.
type logLine struct {
	Time  time.Time
	Level string
	Msg   string
	Attrs map[string]any
	Raw   string
}

func (l logLine) str(key string) string {
	switch v := l.Attrs[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// dur reads a time.Duration attribute (slog's JSON handler writes it in ns).
func (l logLine) dur(key string) time.Duration {
	if v, ok := l.Attrs[key].(float64); ok {
		return time.Duration(v)
	}
	return 0
}

// lines parses what the manager logged so far; lines that are not JSON
// (a panic, cobra's error output) are kept with only Raw set.
func (m *managerProc) lines() []logLine { return logLines(m.path) }

// logLines parses a JSON log file (cloudmha --log-format=json).
func logLines(path string) []logLine {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		raw := sc.Text()
		l := logLine{Raw: raw}
		var attrs map[string]any
		if json.Unmarshal([]byte(raw), &attrs) == nil {
			l.Attrs = attrs
			l.Msg, _ = attrs["msg"].(string)
			l.Level, _ = attrs["level"].(string)
			if ts, ok := attrs["time"].(string); ok {
				l.Time, _ = time.Parse(time.RFC3339Nano, ts)
			}
		}
		out = append(out, l)
	}
	return out
}

func (m *managerProc) first(pred func(logLine) bool) (logLine, bool) {
	for _, l := range m.lines() {
		if pred(l) {
			return l, true
		}
	}
	return logLine{}, false
}

// waitFor waits until a line matches pred.
func (m *managerProc) waitFor(ctx context.Context, timeout time.Duration, pred func(logLine) bool) (logLine, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l, ok := m.first(pred); ok {
			return l, nil
		}
		if m.exited() {
			return logLine{}, fmt.Errorf("the manager exited (%v)", m.err)
		}
		if time.Now().After(deadline) {
			return logLine{}, fmt.Errorf("timed out after %s", timeout)
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return logLine{}, ctx.Err()
		}
	}
}

func (m *managerProc) tail(n int) string {
	data, _ := os.ReadFile(m.path)
	return tailString(string(data), n)
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- scale: one manager, many clusters ----

type scaleResult struct {
	Clusters int
	// Ready is how long until every cluster logged PING_OK.
	Ready    time.Duration
	Measured time.Duration
	// CPU is the manager's utime+stime over the measured time, in percent
	// of one core.
	CPU float64
	// RSS in KiB: at the end and the highest sample.
	RSS, RSSMax int64
	Threads     int
	FDs         int
	// ServerCPU is the three mariadbd's CPU over the same time, summed, in
	// percent of one core; PrimaryConns is Threads_connected on db1 at the
	// end.
	ServerCPU    float64
	PrimaryConns int
	ManagerLog   string
	Notes        []string
}

func runScale(ctx context.Context, bin, tmp, keepLogs string, counts []int, d time.Duration) ([]scaleResult, error) {
	progress("scale: bringing up the test bed")
	b, err := up(ctx)
	if err != nil {
		return nil, fmt.Errorf("test bed: %w", err)
	}
	var out []scaleResult
	var dummy runResult
	logDir := filepath.Join(keepLogs, "scale")
	if keepLogs != "" {
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		teardown(b, keepLogs, logDir, &dummy)
		if len(out) > 0 {
			out[len(out)-1].Notes = append(out[len(out)-1].Notes, dummy.Notes...)
		}
	}()
	for _, n := range counts {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if n >= 100 {
			progress("scale: note that %d clusters on one set of 3 servers also load those servers: every cluster keeps its own connections to each of them", n)
		}
		r, err := scaleOnce(ctx, b, bin, tmp, keepLogs, n, d)
		out = append(out, r)
		if err != nil {
			return out, fmt.Errorf("%d clusters: %w", n, err)
		}
	}
	return out, nil
}

func scaleOnce(ctx context.Context, b *testbed.Bed, bin, tmp, keepLogs string, n int, d time.Duration) (r scaleResult, err error) {
	r = scaleResult{Clusters: n}
	dir := filepath.Join(tmp, fmt.Sprintf("scale-%d", n))
	confDir := filepath.Join(dir, "conf")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return r, err
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("app%d", i)
		work := filepath.Join(dir, "work", name)
		if err := os.MkdirAll(work, 0o755); err != nil {
			return r, err
		}
		if err := b.WriteMHAConfig(filepath.Join(confDir, name+".cnf"), map[string]string{
			"manager_workdir": work, "ping_interval": "1",
			"vip": b.VIP, "vip_interface": "eth0", "vip_prefix": "24",
		}); err != nil {
			return r, err
		}
	}
	logPath := filepath.Join(dir, "manager.log")
	if keepLogs != "" {
		logPath = filepath.Join(keepLogs, "scale", fmt.Sprintf("manager-%d.log", n))
		r.ManagerLog = logPath
	}
	progress("scale: %d clusters: starting one manager", n)
	start := time.Now()
	m, err := startManager(b, bin, logPath, nil, "--conf-dir="+confDir)
	if err != nil {
		return r, err
	}
	defer func() {
		if serr := m.stop(); serr != nil {
			r.Notes = append(r.Notes, serr.Error())
		}
		if keepLogs != "" {
			progress("scale: %d clusters: manager log kept at %s", n, logPath)
		}
	}()
	ready := map[string]bool{}
	_, err = m.waitFor(ctx, pingOKTimeout+time.Duration(n)*200*time.Millisecond, func(l logLine) bool {
		if l.Msg == "status" && l.str("state") == "0:PING_OK" {
			ready[l.str("cluster")] = true
		}
		return len(ready) >= n
	})
	if err != nil {
		return r, fmt.Errorf("only %d of %d clusters reached PING_OK: %v\n%s", len(ready), n, err, m.tail(20))
	}
	r.Ready = time.Since(start)
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.pid())); strings.TrimSpace(string(comm)) != filepath.Base(bin)[:min(15, len(filepath.Base(bin)))] {
		r.Notes = append(r.Notes, fmt.Sprintf("PID %d runs %q, not %s", m.pid(), strings.TrimSpace(string(comm)), filepath.Base(bin)))
	}

	var servers []int
	for _, h := range b.Hosts {
		if pid := b.MariadbPID(h); pid > 0 {
			servers = append(servers, pid)
		}
	}
	t0 := time.Now()
	c0, err := cpuTicks(m.pid())
	if err != nil {
		return r, err
	}
	s0 := sumTicks(servers)
	for time.Since(t0) < d {
		if !sleep(ctx, time.Second) {
			return r, ctx.Err()
		}
		if m.exited() {
			return r, fmt.Errorf("the manager exited while measured (%v)\n%s", m.err, m.tail(20))
		}
		if st, err := procStatus(m.pid()); err == nil {
			r.RSS, r.Threads = st.rss, st.threads
			r.RSSMax = max(r.RSSMax, st.rss)
		}
	}
	c1, err := cpuTicks(m.pid())
	if err != nil {
		return r, err
	}
	s1 := sumTicks(servers)
	r.Measured = time.Since(t0)
	r.CPU = ticksPercent(c1-c0, r.Measured)
	r.ServerCPU = ticksPercent(s1-s0, r.Measured)
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", m.pid())); err == nil {
		r.FDs = len(ents)
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if v, err := b.SQL(qctx, b.Host("db1"), "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='THREADS_CONNECTED'"); err == nil {
		r.PrimaryConns, _ = strconv.Atoi(strings.TrimSpace(v))
	}
	cancel()
	seen := map[string]bool{}
	for _, l := range m.lines() {
		if l.Level == "ERROR" || l.Level == "WARN" {
			key := l.Level + " " + l.Msg + " " + l.str("err")
			if !seen[key] {
				seen[key] = true
				r.Notes = append(r.Notes, fmt.Sprintf("manager logged %s %q %s", l.Level, l.Msg, l.str("err")))
			}
		}
	}
	progress("scale: %d clusters: CPU %.2f%%, RSS %d KiB (max %d), ready in %s", n, r.CPU, r.RSS, r.RSSMax, fmtDur(r.Ready))
	return r, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func ticksPercent(ticks int64, over time.Duration) float64 {
	if over <= 0 {
		return 0
	}
	return float64(ticks) / clockTicks / over.Seconds() * 100
}

// cpuTicks is utime+stime of pid from /proc/<pid>/stat.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: split after its ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ut + st, nil
}

func sumTicks(pids []int) int64 {
	var sum int64
	for _, p := range pids {
		if t, err := cpuTicks(p); err == nil {
			sum += t
		}
	}
	return sum
}

type status struct {
	rss     int64 // KiB
	threads int
}

func procStatus(pid int) (status, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return status{}, err
	}
	var st status
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			st.rss, _ = strconv.ParseInt(f[0], 10, 64)
		case "Threads":
			st.threads, _ = strconv.Atoi(f[0])
		}
	}
	return st, nil
}

// ---- summaries and output ----

type stats struct {
	N                int
	Median, Min, Max time.Duration
}

func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{N: len(s), Median: med, Min: s[0], Max: s[len(s)-1]}
}

type kindSummary struct {
	Kind string
	Runs []runResult

	OK                                                              int
	Unavailability, Detection, Failover, WriteBlock, SwitchDur, SSH stats
	AddressSteps, APITime                                           stats
	Lost                                                            int
}

func (k *kindSummary) summarize() {
	var un, det, fo, wb, sw, ssh, as, api []time.Duration
	for _, r := range k.Runs {
		if r.SSH > 0 {
			ssh = append(ssh, r.SSH)
		}
		if !r.OK {
			continue
		}
		k.OK++
		k.Lost += r.Lost
		un = append(un, r.Unavailability)
		as = append(as, r.AddressSteps)
		if r.APICalls > 0 {
			api = append(api, r.APITime)
		}
		if k.Kind == "switchover" {
			wb = append(wb, r.WriteBlock)
			sw = append(sw, r.Switch)
		} else {
			det = append(det, r.Detection)
			fo = append(fo, r.Failover)
		}
	}
	k.Unavailability, k.Detection, k.Failover = summarize(un), summarize(det), summarize(fo)
	k.WriteBlock, k.SwitchDur, k.SSH = summarize(wb), summarize(sw), summarize(ssh)
	k.AddressSteps, k.APITime = summarize(as), summarize(api)
}

type report struct {
	Binary      string
	Started     time.Time
	Finished    time.Time
	Targets     map[string]target
	Kinds       []kindSummary
	Scale       []scaleResult
	ScaleError  string
	Interrupted bool
	Leftovers   []string
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// verdict says, informatively, whether a median/max is within its target.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (rep report) print(w io.Writer) {
	fmt.Fprintf(w, "cloudmha failover benchmark — %s, %s\n", rep.Binary, rep.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "test bed: 3 MariaDB hosts, semi-sync, ping_interval=1, workload %d writes/s through the mover's address (an EIP: from the internet namespace); figures are measurements, not assertions\n", workloadRate)
	for _, k := range rep.Kinds {
		t := targets[k.Kind]
		mover := "vip"
		if len(k.Runs) > 0 {
			mover = k.Runs[0].Mover
		}
		fmt.Fprintf(w, "\n== %s with mover %s: %d runs, %d completed\n", k.Kind, mover, len(k.Runs), k.OK)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tmedian\tmin\tmax\ttarget\t\tMHA 0.58")
		row := func(name string, s stats, tgt, v, mha string) {
			if s.N == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t\t%s\n", name, tgt, mha)
				return
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, fmtDur(s.Median), fmtDur(s.Min), fmtDur(s.Max), tgt, v, mha)
		}
		switch k.Kind {
		case "switchover":
			s := k.WriteBlock
			row("write block (report)", s, fmt.Sprintf("median ≤ %gs", t.MedianMax), verdictIf(s, s.Median.Seconds() <= t.MedianMax), fmt.Sprintf("%gs", t.MHA))
			row("write unavailability (MaxAckGap)", k.Unavailability, "", "", "")
			row("switch command", k.SwitchDur, "", "", "")
		default:
			s := k.Unavailability
			tgt := fmt.Sprintf("median ≤ %gs", t.MedianMax)
			ok := s.Median.Seconds() <= t.MedianMax
			if t.MaxMax > 0 {
				tgt += fmt.Sprintf(", max ≤ %gs", t.MaxMax)
				ok = ok && s.Max.Seconds() <= t.MaxMax
			}
			row("write unavailability (MaxAckGap)", s, tgt, verdictIf(s, ok), fmt.Sprintf("%gs", t.MHA))
			row("detection (fault → primary is dead)", k.Detection, "", "", "")
			row("failover (dead → failover complete)", k.Failover, "", "", "")
		}
		row("address steps (release + acquire)", k.AddressSteps, "", "", "")
		if k.APITime.N > 0 {
			row("  of which inside cloud API requests", k.APITime, "", "", "")
		}
		row("one SSH command (ssh db1 true)", k.SSH, "", "", "")
		lostV := ""
		if k.OK > 0 {
			lostV = verdict(k.Lost == 0)
		}
		fmt.Fprintf(tw, "lost acknowledged writes (total)\t%d\t\t\t0\t%s\t\n", k.Lost, lostV)
		tw.Flush()
		for _, r := range k.Runs {
			state := "ok"
			if !r.OK {
				state = "FAILED: " + r.Err
			}
			fmt.Fprintf(w, "  run %d: %s", r.Run, state)
			if r.OK {
				fmt.Fprintf(w, " — unavailable %s, detection %s, failover %s (manager elapsed %s)", fmtDur(r.Unavailability), fmtDur(r.Detection), fmtDur(r.Failover), fmtDur(r.FailoverElapsed))
				if k.Kind == "switchover" {
					fmt.Fprintf(w, ", write block %s, switch %s", fmtDur(r.WriteBlock), fmtDur(r.Switch))
				}
				fmt.Fprintf(w, ", new primary %s, %d acked / %d uncertain, lost %d", r.NewPrimary, r.Acked, r.Uncertain, r.Lost)
				if r.Lost > 0 {
					fmt.Fprintf(w, " (first %v)", r.LostFirst)
				}
			}
			fmt.Fprintln(w)
			if r.ManagerLog != "" {
				fmt.Fprintf(w, "    manager log: %s\n", r.ManagerLog)
			}
			for _, n := range r.Notes {
				fmt.Fprintf(w, "    note: %s\n", n)
			}
			if r.Excerpt != "" {
				fmt.Fprintf(w, "    log excerpt:\n")
				for _, l := range strings.Split(r.Excerpt, "\n") {
					fmt.Fprintf(w, "      %s\n", l)
				}
			}
		}
	}
	if len(rep.Scale) > 0 || rep.ScaleError != "" {
		fmt.Fprintf(w, "\n== scale: one manager process watching N clusters (all on the same 3 servers)\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "clusters\tmanager CPU %\tRSS MiB\tRSS max MiB\tthreads\tfds\tall PING_OK after\tmariadbd CPU % (3 summed)\tdb1 connections\tmeasured\t")
		for _, s := range rep.Scale {
			fmt.Fprintf(tw, "%d\t%.2f\t%.1f\t%.1f\t%d\t%d\t%s\t%.2f\t%d\t%s\t\n", s.Clusters, s.CPU, float64(s.RSS)/1024, float64(s.RSSMax)/1024,
				s.Threads, s.FDs, fmtDur(s.Ready), s.ServerCPU, s.PrimaryConns, fmtDur(s.Measured))
		}
		tw.Flush()
		for _, s := range rep.Scale {
			if s.ManagerLog != "" {
				fmt.Fprintf(w, "  %d clusters: manager log: %s\n", s.Clusters, s.ManagerLog)
			}
			for _, n := range s.Notes {
				fmt.Fprintf(w, "  %d clusters: note: %s\n", s.Clusters, n)
			}
		}
		fmt.Fprintln(w, "  Note: these clusters all point at the same 3 servers, so the servers' load grows with N too: every cluster keeps its own connections to each server (see db1 connections; mariadbd runs with max_connections=300).")
		if rep.ScaleError != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", rep.ScaleError)
		}
	}
	if rep.Interrupted {
		fmt.Fprintln(w, "\nINTERRUPTED: the results above are partial.")
	}
	if len(rep.Leftovers) > 0 {
		fmt.Fprintf(w, "\nWARNING: left behind: %v\n", rep.Leftovers)
	}
}

func verdictIf(s stats, ok bool) string {
	if s.N == 0 {
		return ""
	}
	return verdict(ok)
}

// ---- JSON output: durations in seconds ----

type jsonStats struct {
	N      int     `json:"n"`
	Median float64 `json:"median_s"`
	Min    float64 `json:"min_s"`
	Max    float64 `json:"max_s"`
}

func (s stats) json() *jsonStats {
	if s.N == 0 {
		return nil
	}
	return &jsonStats{N: s.N, Median: secs(s.Median), Min: secs(s.Min), Max: secs(s.Max)}
}

func secs(d time.Duration) float64 { return math.Round(d.Seconds()*1e6) / 1e6 }

type jsonRun struct {
	Run             int      `json:"run"`
	OK              bool     `json:"ok"`
	Error           string   `json:"error,omitempty"`
	NewPrimary      string   `json:"new_primary,omitempty"`
	Unavailability  float64  `json:"unavailability_s"`
	Detection       float64  `json:"detection_s,omitempty"`
	Failover        float64  `json:"failover_s,omitempty"`
	FailoverElapsed float64  `json:"failover_elapsed_s,omitempty"`
	WriteBlock      float64  `json:"write_block_s,omitempty"`
	Switch          float64  `json:"switch_command_s,omitempty"`
	FaultToResume   float64  `json:"fault_to_resume_s"`
	SSH             float64  `json:"ssh_round_trip_s,omitempty"`
	Lost            int      `json:"lost_writes"`
	LostFirst       []int64  `json:"lost_first,omitempty"`
	Acked           int      `json:"acked"`
	Uncertain       int      `json:"uncertain"`
	WriteErrors     int      `json:"write_errors"`
	ManagerLog      string   `json:"manager_log,omitempty"`
	Notes           []string `json:"notes,omitempty"`
	Excerpt         string   `json:"log_excerpt,omitempty"`
}

type jsonKind struct {
	Kind           string     `json:"kind"`
	Runs           int        `json:"runs"`
	Completed      int        `json:"completed"`
	Unavailability *jsonStats `json:"unavailability,omitempty"`
	Detection      *jsonStats `json:"detection,omitempty"`
	Failover       *jsonStats `json:"failover,omitempty"`
	WriteBlock     *jsonStats `json:"write_block,omitempty"`
	Switch         *jsonStats `json:"switch_command,omitempty"`
	SSH            *jsonStats `json:"ssh_round_trip,omitempty"`
	Mover          string     `json:"mover"`
	AddressSteps   *jsonStats `json:"address_steps,omitempty"`
	CloudAPI       *jsonStats `json:"cloud_api,omitempty"`
	LostTotal      int        `json:"lost_writes_total"`
	Target         target     `json:"target"`
	Details        []jsonRun  `json:"details"`
}

type jsonScale struct {
	Clusters     int      `json:"clusters"`
	CPUPercent   float64  `json:"cpu_percent"`
	RSSKiB       int64    `json:"rss_kib"`
	RSSMaxKiB    int64    `json:"rss_max_kib"`
	Threads      int      `json:"threads"`
	FDs          int      `json:"fds"`
	Ready        float64  `json:"all_ping_ok_after_s"`
	Measured     float64  `json:"measured_s"`
	ServerCPU    float64  `json:"mariadbd_cpu_percent"`
	PrimaryConns int      `json:"db1_threads_connected"`
	ManagerLog   string   `json:"manager_log,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

type jsonReport struct {
	Binary      string      `json:"binary"`
	Started     time.Time   `json:"started"`
	Finished    time.Time   `json:"finished"`
	Kinds       []jsonKind  `json:"kinds"`
	Scale       []jsonScale `json:"scale,omitempty"`
	ScaleError  string      `json:"scale_error,omitempty"`
	Interrupted bool        `json:"interrupted,omitempty"`
	Leftovers   []string    `json:"leftovers,omitempty"`
}

func (rep report) jsonView() jsonReport {
	out := jsonReport{Binary: rep.Binary, Started: rep.Started, Finished: rep.Finished, ScaleError: rep.ScaleError,
		Interrupted: rep.Interrupted, Leftovers: rep.Leftovers, Kinds: []jsonKind{}}
	for _, k := range rep.Kinds {
		jk := jsonKind{Kind: k.Kind, Runs: len(k.Runs), Completed: k.OK, Unavailability: k.Unavailability.json(),
			Detection: k.Detection.json(), Failover: k.Failover.json(), WriteBlock: k.WriteBlock.json(),
			Switch: k.SwitchDur.json(), SSH: k.SSH.json(), AddressSteps: k.AddressSteps.json(), CloudAPI: k.APITime.json(), LostTotal: k.Lost, Target: targets[k.Kind], Details: []jsonRun{}}
		for _, r := range k.Runs {
			jk.Mover = r.Mover
			jk.Details = append(jk.Details, jsonRun{Run: r.Run, OK: r.OK, Error: r.Err, NewPrimary: r.NewPrimary,
				Unavailability: secs(r.Unavailability), Detection: secs(r.Detection), Failover: secs(r.Failover),
				FailoverElapsed: secs(r.FailoverElapsed), WriteBlock: secs(r.WriteBlock), Switch: secs(r.Switch),
				FaultToResume: secs(r.FaultToResume), SSH: secs(r.SSH), Lost: r.Lost, LostFirst: r.LostFirst, Acked: r.Acked,
				Uncertain: r.Uncertain, WriteErrors: r.WriteErrors, ManagerLog: r.ManagerLog, Notes: r.Notes, Excerpt: r.Excerpt})
		}
		out.Kinds = append(out.Kinds, jk)
	}
	for _, s := range rep.Scale {
		out.Scale = append(out.Scale, jsonScale{Clusters: s.Clusters, CPUPercent: math.Round(s.CPU*100) / 100, RSSKiB: s.RSS,
			RSSMaxKiB: s.RSSMax, Threads: s.Threads, FDs: s.FDs, Ready: secs(s.Ready), Measured: secs(s.Measured),
			ServerCPU: math.Round(s.ServerCPU*100) / 100, PrimaryConns: s.PrimaryConns, ManagerLog: s.ManagerLog, Notes: s.Notes})
	}
	return out
}
