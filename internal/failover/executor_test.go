package failover

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/store"
)

// failoverCluster: server1 died knowing 0-1-100; server2 has 0-1-98,
// server3 0-1-100 (most advanced); server2 is candidate_master.
func failoverCluster() *testCluster {
	tc := newCluster(3)
	tc.kill("server1")
	tc.st("server2").GTIDExecuted = gs("0-1-98")
	tc.server("server2", func(s *config.Server) { s.CandidateMaster = true })
	tc.cfg.Address.Mover = "vip"
	tc.cfg.ShutdownScript = "/bin/true"
	for _, n := range tc.snap.Nodes[1:] {
		n.Status().SemiSync.ReplicaEnabled = true
	}
	return tc
}

func planFor(t *testing.T, tc *testCluster, o Options) *Plan {
	t.Helper()
	if o.ID == "" {
		o.ID = "run1"
	}
	o.Now = func() time.Time { return time.Unix(1700000000, 0) }
	p, err := PlanFailover(tc.snap, tc.cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func kinds(p *Plan) string {
	var k []string
	for _, s := range p.Steps {
		k = append(k, string(s.Kind)+":"+s.Server)
	}
	return strings.Join(k, " ")
}

func TestPlanFailoverOrderAndText(t *testing.T) {
	tc := failoverCluster()
	p := planFor(t, tc, Options{DeadGTIDs: gs("0-1-100"), DeadSSHReachable: Unknown})
	want := "release-address:server1 shutdown-old:server1 stop-io:server2 stop-io:server3 choose:server2 " +
		"catch-up:server2 salvage:server2 promote:server2 repoint:server3 open-writes:server2 acquire-address:server2 report:server2"
	if got := kinds(p); got != want {
		t.Fatalf("steps:\n got %s\nwant %s", got, want)
	}
	if p.CatchUpSource != "server3" || p.Target != "0-1-100" || !p.SemiSync {
		t.Fatalf("catch-up %s target %s semi %v", p.CatchUpSource, p.Target, p.SemiSync)
	}
	text := p.String()
	for _, w := range []string{"Failover plan run1 for cluster app1", "old primary: server1", "new primary: server2",
		"server2 replicates from server3, the most advanced survivor, until it holds 0-1-100",
		"server1 does not answer SQL", "candidate_master", "set read_only=OFF on server2"} {
		if !strings.Contains(text, w) {
			t.Errorf("plan text lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "pw") && strings.Contains(text, "rpw") {
		t.Errorf("plan text shows a password:\n%s", text)
	}
	t.Logf("\n%s", text)

	// Salvage is left out when SSH is known down or skipped; the fence
	// step is planned when the old primary still answers.
	tc2 := failoverCluster()
	tc2.snap.Nodes[0] = newCluster(1).snap.Nodes[0]
	p2 := planFor(t, tc2, Options{Dead: "server1", DeadSSHReachable: No})
	if strings.Contains(kinds(p2), "salvage") || !strings.Contains(kinds(p2), "fence-old:server1") {
		t.Fatalf("steps: %s", kinds(p2))
	}
	// The plan survives the journal (no secrets inside).
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), `"pw"`) {
		t.Fatalf("plan JSON holds a password: %s", b)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil || kinds(&back) != kinds(p) {
		t.Fatalf("round trip: %v %s", err, kinds(&back))
	}
}

func TestPlanFailoverNeedsDeadPrimary(t *testing.T) {
	tc := newCluster(3)
	tc.kill("server1")
	for _, n := range tc.snap.Nodes[1:] {
		n.Status().Replica = nil
	}
	if _, err := PlanFailover(tc.snap, tc.cfg, Options{}); !errors.Is(err, ErrNoDeadPrimary) {
		t.Fatalf("err %v", err)
	}
}

type rig struct {
	ops   *fakeOps
	hooks *fakeHooks
	j     *store.Journal
	e     *Executor
	dir   string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	j, err := store.OpenJournal(store.JournalPath(dir, "app1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	ops := newFakeOps()
	ops.gtids["server2"] = gs("0-1-98")
	ops.gtids["server3"] = gs("0-1-100")
	h := &fakeHooks{ops: ops}
	e := &Executor{Ops: ops, Mover: fakeMover{ops}, Hooks: h, Salvager: fakeSalvager{ops: ops, add: gs("0-1-101")},
		Journal: j, StepTimeout: 5 * time.Second,
		HistoryPath: store.HistoryPath(dir, "app1"), CompletePath: store.FailoverCompletePath(dir, "app1")}
	return &rig{ops: ops, hooks: h, j: j, e: e, dir: dir}
}

func TestExecutorFailoverOrder(t *testing.T) {
	tc := failoverCluster()
	p := planFor(t, tc, Options{DeadGTIDs: gs("0-1-102"), DeadSSHReachable: Yes})
	r := newRig(t)
	rep, err := r.e.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	calls := r.ops.log()
	t.Logf("calls:\n%s", strings.Join(calls, "\n"))
	// Fencing completes before anything becomes writable or replicates
	// from a new source.
	release, shutdown := mustIndex(t, calls, "Release server1"), mustIndex(t, calls, "Shutdown server1 true")
	writable := mustIndex(t, calls, "SetReadOnly server2 false")
	for _, c := range []string{"ChangeSource", "ResetReplicaAll", "SetReadOnly server2 false", "Acquire"} {
		if i := mustIndex(t, calls, c); i < release || i < shutdown {
			t.Errorf("%s (call %d) before the fence (release %d, shutdown %d)", c, i, release, shutdown)
		}
	}
	order := []string{"StopReplicaIO server2", "WaitRelayApplied server2", "ChangeSource server2 server3",
		"WaitGTID server2 0-1-100", "Salvage server1 server2 0-1-100", "ResetReplicaAll server2",
		"SetSemiSync server2 true false", "ChangeSource server3 server2", "SetSemiSync server3 false true",
		"WaitReplicating server3", "SetReadOnly server2 false", "Acquire server2", "Report server2"}
	last := -1
	for _, c := range order {
		i := mustIndex(t, calls, c)
		if i < last {
			t.Errorf("%s out of order", c)
		}
		last = i
	}
	if writable > mustIndex(t, calls, "Acquire server2") {
		t.Errorf("address acquired before the new primary is writable")
	}
	// 0-1-102 was known on server1; catch-up and salvage recovered up to 101.
	if rep.Lost.String() != "0-1-102" || rep.Salvaged != 1 || rep.NewPrimary != "server2" ||
		strings.Join(rep.Repointed, ",") != "server3" || len(rep.Failed) != 0 {
		t.Fatalf("report: lost %s salvaged %d new %s repointed %v failed %v", rep.Lost, rep.Salvaged, rep.NewPrimary, rep.Repointed, rep.Failed)
	}
	if r.hooks.report == nil || r.hooks.report.LostText != "0-1-102" {
		t.Fatalf("report_script did not get the loss")
	}
	text := rep.Text()
	for _, w := range []string{"Failover of server1 to server2 completed successfully", "LOST: transactions of server1 that server2 does not have: 0-1-102", "recovered from server1's binary logs: 1"} {
		if !strings.Contains(text, w) {
			t.Errorf("report text lacks %q:\n%s", w, text)
		}
	}
	t.Logf("\n%s", text)
	if _, ok := r.j.Unfinished(); ok {
		t.Fatalf("journal says unfinished after success")
	}
	if h, err := store.ReadHistory(r.e.HistoryPath); err != nil || len(h) != 1 {
		t.Fatalf("history %d %v", len(h), err)
	}
	if _, ok := store.LastFailover(r.e.CompletePath); !ok {
		t.Fatalf("failover.complete not written")
	}
}

func TestExecutorNoLossWhenCaughtUp(t *testing.T) {
	tc := failoverCluster()
	p := planFor(t, tc, Options{DeadGTIDs: gs("0-1-100"), SkipSalvage: true})
	r := newRig(t)
	r.e.Mover, r.e.Hooks, r.e.Salvager = nil, nil, nil
	rep, err := r.e.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Lost.IsEmpty() || !strings.Contains(rep.Text(), "No transaction of server1's last known GTID set is missing") {
		t.Fatalf("lost %s\n%s", rep.Lost, rep.Text())
	}
	for _, s := range rep.Steps {
		if s.Kind == StepReleaseAddress && s.Note != "skipped: no address mover" {
			t.Fatalf("release with nil mover: %+v", s)
		}
	}
}

func TestExecutorStepFailureStops(t *testing.T) {
	tc := failoverCluster()
	p := planFor(t, tc, Options{DeadGTIDs: gs("0-1-100")})
	r := newRig(t)
	r.ops.fail["Release server1"] = errors.New("cloud API says no")
	rep, err := r.e.Run(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "step 1 (release-address on server1)") || !strings.Contains(err.Error(), "cloud API says no") {
		t.Fatalf("err %v", err)
	}
	if i := index(r.ops.log(), "SetReadOnly"); i >= 0 {
		t.Fatalf("something was made writable after a failed fence: %v", r.ops.log())
	}
	if rep.Err == "" || !strings.Contains(rep.Text(), "FAILED") {
		t.Fatalf("report: %s", rep.Text())
	}
	run, ok := r.j.Unfinished()
	if !ok || run.StepState("00-release-address-server1") != store.StepFailed {
		t.Fatalf("journal: %+v %v", run, ok)
	}
	// An optional step failing (a repoint) is reported, the run goes on.
	r2 := newRig(t)
	r2.ops.fail["WaitReplicating server3"] = errors.New("IO thread Connecting")
	rep, err = r2.e.Run(context.Background(), p)
	if err != nil || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0], "server3") || index(r2.ops.log(), "SetReadOnly server2 false") < 0 {
		t.Fatalf("optional failure: %v %v", err, rep.Failed)
	}
}

// TestResumeAfterCrashAtEachStep cuts the journal of a complete run right
// after each step's "started" record (a crash in the middle of that step)
// and resumes: the run must redo that step and everything after it, and
// nothing before it.
func TestResumeAfterCrashAtEachStep(t *testing.T) {
	tc := failoverCluster()
	p := planFor(t, tc, Options{DeadGTIDs: gs("0-1-100"), DeadSSHReachable: Yes})
	full := newRig(t)
	if _, err := full.e.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, full.j.Path())
	for cut, line := range lines {
		var rec store.JournalRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.State != store.StepStarted || rec.Step == store.StepPlan {
			continue
		}
		t.Run(rec.Step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app1.journal")
			// The crash also tore the next line in half.
			data := strings.Join(lines[:cut+1], "\n") + "\n" + `{"id":"run1","st`
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := store.OpenJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			r := newRig(t)
			r.e.Journal = j
			rep, err := Resume(context.Background(), r.e, j)
			if err != nil {
				t.Fatal(err)
			}
			if rep.NewPrimary != "server2" {
				t.Fatalf("new primary %s", rep.NewPrimary)
			}
			// Every step from the crashed one on ran; none before. Steps of
			// the crashed step's parallel group finish in any order, so
			// they may be either.
			crashedGroup := 0
			for _, s := range rep.Steps {
				if s.Name == rec.Step {
					crashedGroup = parallelGroup(s.Kind)
				}
			}
			for _, s := range rep.Steps {
				if crashedGroup != 0 && parallelGroup(s.Kind) == crashedGroup {
					continue
				}
				before := s.Name < rec.Step
				if before != (s.Note == "done before the restart") {
					t.Errorf("step %s: note %q (crash at %s)", s.Name, s.Note, rec.Step)
				}
			}
			if _, ok := j.Unfinished(); ok {
				t.Fatalf("still unfinished after resume")
			}
			if index(r.ops.log(), "SetReadOnly server2 false") < 0 && rec.Step <= "09-open-writes-server2" {
				t.Fatalf("resume did not open writes: %v", r.ops.log())
			}
		})
	}
	// Nothing to resume in a finished journal.
	if _, err := Resume(context.Background(), full.e, full.j); !errors.Is(err, ErrNothingToResume) {
		t.Fatalf("finished journal: %v", err)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func TestResumeUnreadablePlan(t *testing.T) {
	dir := t.TempDir()
	j, err := store.OpenJournal(filepath.Join(dir, "j"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	_ = j.Append(store.JournalRecord{ID: "x", Kind: "failover", Step: store.StepPlan, State: store.StepStarted, Plan: json.RawMessage(`{"steps":"nope"}`)})
	_ = j.Append(store.JournalRecord{ID: "x", Kind: "failover", Step: "00-promote-server2", State: store.StepStarted})
	rep, err := Resume(context.Background(), &Executor{Ops: newFakeOps()}, j)
	if err == nil || rep == nil || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0], "00-promote-server2") {
		t.Fatalf("%v %+v", err, rep)
	}
}

func switchCluster() *testCluster {
	tc := newCluster(3)
	tc.cfg.Address.Mover = "vip"
	tc.st("server1").SemiSync.SourceEnabled = true
	return tc
}

func TestSwitchoverSequence(t *testing.T) {
	tc := switchCluster()
	sp, err := PlanSwitchover(tc.snap, tc.cfg, SwitchOptions{NewPrimary: "server2", OrigIsNewReplica: true, ID: "sw1"})
	if err != nil {
		t.Fatal(err)
	}
	want := "precheck:server1 release-address:server1 block-writes:server1 sync:server2 promote:server2 " +
		"repoint:server3 repoint:server1 open-writes:server2 acquire-address:server2 report:server2"
	if got := kinds(&sp.Plan); got != want {
		t.Fatalf("steps:\n got %s\nwant %s", got, want)
	}
	t.Logf("\n%s", sp.String())
	r := newRig(t)
	r.ops.gtids["server1"] = gs("0-1-150")
	r.ops.gtids["server2"] = gs("0-1-149")
	rep, err := r.e.Switchover(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	calls := r.ops.log()
	t.Logf("calls:\n%s", strings.Join(calls, "\n"))
	order := []string{"WritesRunning server1", "Release server1", "SetReadOnly server1 true", "Kill server1",
		"GTIDExecuted server1", "WaitGTID server2 0-1-150", "StopReplica server2", "ResetReplicaAll server2",
		"SetSemiSync server2 true false", "SetReadOnly server2 false", "Acquire server2"}
	last := -1
	for _, c := range order {
		i := mustIndex(t, calls, c)
		if i < last {
			t.Errorf("%s out of order", c)
		}
		last = i
	}
	w := mustIndex(t, calls, "SetReadOnly server2 false")
	for _, c := range []string{"ChangeSource server1 server2", "ChangeSource server3 server2", "WaitReplicating server1", "WaitReplicating server3"} {
		if mustIndex(t, calls, c) > w {
			t.Errorf("%s after the new primary became writable", c)
		}
	}
	if rep.WriteBlock <= 0 || !rep.Lost.IsEmpty() || len(rep.Repointed) != 2 {
		t.Fatalf("report: block %s lost %s repointed %v", rep.WriteBlock, rep.Lost, rep.Repointed)
	}
	if !strings.Contains(rep.Text(), "Writes were blocked for") {
		t.Fatalf("text:\n%s", rep.Text())
	}
	// A long write refuses the switchover before anything changes.
	r2 := newRig(t)
	r2.ops.fail["WritesRunning server1"] = ErrPrecheck
	if _, err := r2.e.Switchover(context.Background(), sp); !errors.Is(err, ErrPrecheck) || index(r2.ops.log(), "SetReadOnly") >= 0 {
		t.Fatalf("precheck: %v %v", err, r2.ops.log())
	}
}

func TestSwitchoverPrechecks(t *testing.T) {
	tc := switchCluster()
	lag := int64(30)
	tc.st("server3").Replica.SecondsBehind = &lag
	if _, err := PlanSwitchover(tc.snap, tc.cfg, SwitchOptions{}); !errors.Is(err, ErrPrecheck) || !strings.Contains(err.Error(), "server3 lags 30s") {
		t.Fatalf("lag: %v", err)
	}
	tc = switchCluster()
	tc.st("server3").Replica.SQLRunning = false
	if _, err := PlanSwitchover(tc.snap, tc.cfg, SwitchOptions{}); !errors.Is(err, ErrPrecheck) || !strings.Contains(err.Error(), "server3") {
		t.Fatalf("sql thread: %v", err)
	}
	tc = switchCluster()
	tc.server("server2", func(s *config.Server) { s.NoMaster = true })
	if _, err := PlanSwitchover(tc.snap, tc.cfg, SwitchOptions{NewPrimary: "server2"}); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("ineligible: %v", err)
	}
	sp, err := PlanSwitchover(tc.snap, tc.cfg, SwitchOptions{})
	if err != nil || sp.NewPrimary != "server3" || sp.Switch.Grace != DefaultGrace || sp.Switch.RunningUpdatesLimit != time.Second {
		t.Fatalf("auto choice: %v %+v", err, sp)
	}
}

// TestSwitchoverKillsToUnblockReadOnly: read_only waiting on a long
// transaction is unblocked by killing client connections after the grace.
func TestSwitchoverKillsToUnblockReadOnly(t *testing.T) {
	tc := switchCluster()
	sp, err := PlanSwitchover(tc.snap, tc.cfg, SwitchOptions{NewPrimary: "server2", Grace: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	killed := make(chan struct{})
	r.ops.onCall = func(c string) {
		switch c {
		case "SetReadOnly server1 true":
			select {
			case <-killed:
			case <-time.After(2 * time.Second):
			}
		case "Kill server1":
			select {
			case <-killed:
			default:
				close(killed)
			}
		}
	}
	t0 := time.Now()
	if _, err := r.e.Switchover(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > time.Second {
		t.Fatalf("read_only was not unblocked by the kill: %s", el)
	}
}
