// Package detect decides whether a cluster's primary has failed.
//
// It has two layers. Analyze is pure: it turns the previous Verdict and one
// Observation (the manager's probe of the primary, every replica's view of
// the primary, and optionally the exit code of MHA's secondary_check_script)
// into the next Verdict. Monitor does the I/O: it keeps connections to the
// primary and the replicas open, probes every ping_interval, notices a
// broken connection at once, and feeds Analyze.
//
// The rule that matters: the manager's word alone never makes a primary
// dead. DeadPrimary needs every reachable replica to have lost the primary
// too (or secondary_check_script to say it is unreachable from every route);
// a primary that only the manager lost is UnreachablePrimary: alert, never
// fail over.
package detect

import (
	"fmt"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

// Kind is the class of a Verdict.
type Kind int

// Verdict kinds, from good to bad.
const (
	// Healthy: the manager's probe succeeded (or failed with an error that
	// proves the server is alive, such as too many connections).
	Healthy Kind = iota
	// Suspect: the manager's probe fails and the replicas have not (yet)
	// decided either way.
	Suspect
	// UnreachablePrimary: the manager lost the primary but cannot confirm
	// it is dead: a replica still hears from it, or no replica can be
	// consulted. Alert; never fail over.
	UnreachablePrimary
	// DeadPrimary: the manager and every reachable replica lost the
	// primary (or secondary_check_script exit code 0). Fail over.
	DeadPrimary
)

// String returns the kind's name ("DeadPrimary").
func (k Kind) String() string {
	switch k {
	case Healthy:
		return "Healthy"
	case Suspect:
		return "Suspect"
	case UnreachablePrimary:
		return "UnreachablePrimary"
	case DeadPrimary:
		return "DeadPrimary"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Word is the kind in snake case ("dead_primary"), as metrics labels, the
// API and the alert rules spell it.
func (k Kind) Word() string {
	switch k {
	case Healthy:
		return "healthy"
	case Suspect:
		return "suspect"
	case UnreachablePrimary:
		return "unreachable_primary"
	case DeadPrimary:
		return "dead_primary"
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler (JSON, slog) with String.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ProbeResult is one probe of the primary by the manager.
type ProbeResult struct {
	At  time.Time // when the probe started
	OK  bool
	Err string // why it failed; "" when OK
	// AliveError: the probe failed with an error MHA counts as "alive"
	// (mysql.IsAliveError: 1040 too many connections, 1045 access denied …).
	AliveError bool
	// Timeout: no answer within the probe timeout (frozen host, silent
	// link), as opposed to a refused or reset connection.
	Timeout bool
	Latency time.Duration
}

// ReplicaView is what one replica says about the primary.
type ReplicaView struct {
	Server string // config section name
	// At is when the view was read (manager clock); zero means the
	// Observation's At.
	At        time.Time
	Reachable bool
	Err       string // why it could not be read
	// Replicating: the replica is configured with the primary as its source.
	// Views of replicas that replicate from elsewhere are not evidence.
	Replicating bool
	IORunning   string // mysql.IOYes | IONo | IOConnecting
	LastIOErrno int
	LastIOError string
	// LastEventAge is how long ago, at most, the replica last received an
	// event or heartbeat from the primary, measured on the replica's clock;
	// -1 when unknown. It is an upper bound: heartbeats are kept in whole
	// seconds, and a moved read position is dated to the read before.
	LastEventAge time.Duration
	// ReadPosMoved: Read_Master_Log_Pos or the retrieved GTID set advanced
	// since the previous view of this replica.
	ReadPosMoved bool
	// HeartbeatPeriod is the replica's heartbeat period: > 0 the period,
	// 0 unknown (Policy.LostAfter applies), < 0 heartbeats disabled — then
	// an idle primary sends nothing and silence proves nothing, so only the
	// IO thread's state counts.
	HeartbeatPeriod time.Duration
}

// Observation is everything known at one moment.
type Observation struct {
	At      time.Time
	Primary ProbeResult
	// Replicas holds one view per configured replica; nil means the
	// replicas have not been consulted (yet), which is different from an
	// empty, non-nil slice (consulted, none configured).
	Replicas []ReplicaView
	// SecondaryCheck is the exit code of secondary_check_script when it
	// was run during this failure (MHA: 0 unreachable from every route,
	// 2 a monitoring route is down, 3 reachable from another route).
	SecondaryCheck *int
}

// Verdict is the judgement of the primary's health.
type Verdict struct {
	Kind   Kind
	Reason string
	// Since is when the current state began: the start of the first failing
	// probe for the failure kinds, the first good probe for Healthy.
	Since    time.Time
	Evidence []string
	// Observation is the observation that produced the verdict (useful to
	// the failover planner and for reports).
	Observation Observation
}

// Policy tunes Analyze.
type Policy struct {
	// LostAfter is the age of a replica's newest event/heartbeat from the
	// primary beyond which, with the IO thread still "Yes" and its read
	// position not moving, the replica has lost the primary. 0 means 3 s.
	// The effective limit per replica is at least 3 × its heartbeat period:
	// an idle primary legitimately sends nothing for one period.
	LostAfter time.Duration
	// MinReplicasAgreeing is how many replicas must have lost the primary
	// for DeadPrimary. 0 (the default) means every reachable replica that
	// replicates from the primary, and at least one; with N > 0, N lost
	// replicas suffice while other replicas are undecided (none may still
	// see the primary, whatever N is).
	MinReplicasAgreeing int
}

// DefaultLostAfter is Policy.LostAfter's default.
const DefaultLostAfter = 3 * time.Second

// lostAfter returns the silence limit for a replica with heartbeat period hb.
func (p Policy) lostAfter(hb time.Duration) time.Duration {
	l := p.LostAfter
	if l <= 0 {
		l = DefaultLostAfter
	}
	if hb > 0 && 3*hb > l {
		l = 3 * hb
	}
	return l
}

// replicaState is one replica's testimony.
type replicaState int

const (
	notEvidence replicaState = iota // unreachable, not replicating from the primary, stopped, stale
	lost                            // has lost the primary
	sees                            // heard from the primary after the failure began
	undecided                       // replicating, but nothing conclusive yet
)

// analysis is Analyze's working detail; the Monitor uses it to decide
// whether to run the secondary check.
type analysis struct {
	verdict                  Verdict
	reachable, replicating   int
	lostN, seesN, undecidedN int
}

// Analyze returns the verdict for obs given the previous verdict. It is pure
// and deterministic.
//
// The rules, in order:
//   - Probe OK → Healthy. Probe failed with an alive error → Healthy.
//   - Replicas not consulted yet → Suspect.
//   - A replica that heard from the primary after the failure began (an
//     event or heartbeat newer than Verdict.Since, within its silence limit)
//     sees it → UnreachablePrimary. Evidence older than the failure proves
//     nothing either way: the replica may not have noticed yet.
//   - A replica has lost the primary when its IO thread is Connecting or
//     stopped with an error, or when the thread is Yes but nothing arrived
//     for longer than the silence limit and the read position did not move.
//     When enough replicas have lost it (Policy.MinReplicasAgreeing) and none
//     sees it → DeadPrimary, unless secondary_check_script returned 3
//     ("reachable from another route").
//   - Otherwise the replicas cannot decide: secondary_check_script exit 0 →
//     DeadPrimary, 2 or 3 → UnreachablePrimary; without it, some replica
//     still undecided → Suspect, none usable → UnreachablePrimary (the
//     manager alone never declares a primary dead).
func Analyze(prev Verdict, obs Observation, p Policy) Verdict {
	return analyze(prev, obs, p).verdict
}

func analyze(prev Verdict, obs Observation, p Policy) analysis {
	at := obs.At
	if at.IsZero() {
		at = obs.Primary.At
	}
	pr := obs.Primary
	probeAt := pr.At
	if probeAt.IsZero() {
		probeAt = at
	}
	var a analysis
	v := &a.verdict
	v.Observation = obs

	if pr.OK || pr.AliveError {
		v.Kind = Healthy
		v.Since = probeAt
		if prev.Kind == Healthy && !prev.Since.IsZero() {
			v.Since = prev.Since
		}
		if pr.OK {
			v.Reason = "primary answers"
		} else {
			v.Reason = "primary refused the probe with an error that proves it is alive: " + pr.Err
			v.Evidence = []string{"probe: " + pr.Err}
		}
		return a
	}

	since := probeAt
	if prev.Kind != Healthy && !prev.Since.IsZero() && prev.Since.Before(since) {
		since = prev.Since
	}
	v.Since = since
	probeLine := "probe: " + describeProbe(pr)
	v.Evidence = append(v.Evidence, probeLine)

	if obs.Replicas == nil || allStale(obs.Replicas, at, since) {
		v.Kind = Suspect
		v.Reason = "the manager cannot reach the primary; replicas not consulted yet"
		a.secondaryAware(obs.SecondaryCheck)
		return a
	}

	for _, r := range obs.Replicas {
		st, line := classify(r, at, since, p)
		v.Evidence = append(v.Evidence, line)
		if r.Reachable {
			a.reachable++
		}
		switch st {
		case lost:
			a.replicating++
			a.lostN++
		case sees:
			a.replicating++
			a.seesN++
		case undecided:
			a.replicating++
			a.undecidedN++
		}
	}
	if obs.SecondaryCheck != nil {
		v.Evidence = append(v.Evidence, fmt.Sprintf("secondary_check_script: exit %d (%s)",
			*obs.SecondaryCheck, secondaryMeaning(*obs.SecondaryCheck)))
	}

	switch {
	case a.seesN > 0:
		v.Kind = UnreachablePrimary
		v.Reason = fmt.Sprintf("the manager cannot reach the primary but %d replica(s) still hear from it: "+
			"manager-side network problem, no failover", a.seesN)
		return a
	case a.lostN > 0 && a.enoughLost(p):
		if sc := obs.SecondaryCheck; sc != nil && *sc == 3 {
			v.Kind = UnreachablePrimary
			v.Reason = fmt.Sprintf("%d replica(s) lost the primary but secondary_check_script reached it "+
				"from another route (exit 3): no failover", a.lostN)
			return a
		}
		v.Kind = DeadPrimary
		v.Reason = fmt.Sprintf("the manager and %d of %d replica(s) replicating from it lost the primary",
			a.lostN, a.replicating)
		return a
	}

	// The replicas cannot decide.
	if sc := obs.SecondaryCheck; sc != nil {
		switch *sc {
		case 0:
			v.Kind = DeadPrimary
			v.Reason = "secondary_check_script: the primary is unreachable from every route (exit 0)"
			return a
		case 2, 3:
			v.Kind = UnreachablePrimary
			v.Reason = fmt.Sprintf("secondary_check_script says no failover (exit %d: %s)",
				*sc, secondaryMeaning(*sc))
			return a
		}
	}
	if a.undecidedN > 0 {
		v.Kind = Suspect
		v.Reason = fmt.Sprintf("the manager cannot reach the primary; %d replica(s) lost it, "+
			"%d not decided yet", a.lostN, a.undecidedN)
		return a
	}
	v.Kind = UnreachablePrimary
	if a.lostN > 0 {
		v.Reason = fmt.Sprintf("the manager cannot reach the primary; only %d replica(s) lost it, "+
			"%d required: cannot confirm, no failover", a.lostN, p.MinReplicasAgreeing)
	} else if a.reachable == 0 {
		v.Reason = "the manager cannot reach the primary nor any replica: cannot confirm, no failover"
	} else {
		v.Reason = "the manager cannot reach the primary and no reachable replica replicates from it: " +
			"cannot confirm, no failover"
	}
	return a
}

// secondaryAware is the Suspect-before-replicas case: secondary check exit 0
// alone is still sufficient (MHA semantics).
func (a *analysis) secondaryAware(sc *int) {
	if sc == nil {
		return
	}
	v := &a.verdict
	v.Evidence = append(v.Evidence, fmt.Sprintf("secondary_check_script: exit %d (%s)", *sc, secondaryMeaning(*sc)))
	switch *sc {
	case 0:
		v.Kind = DeadPrimary
		v.Reason = "secondary_check_script: the primary is unreachable from every route (exit 0)"
	case 2, 3:
		v.Kind = UnreachablePrimary
		v.Reason = fmt.Sprintf("secondary_check_script says no failover (exit %d: %s)", *sc, secondaryMeaning(*sc))
	}
}

// allStale reports whether every view was read before the failure began
// (and so says nothing about it); false for an empty list.
func allStale(vs []ReplicaView, obsAt, since time.Time) bool {
	for _, r := range vs {
		at := r.At
		if at.IsZero() {
			at = obsAt
		}
		if !at.Before(since) {
			return false
		}
	}
	return len(vs) > 0
}

// enoughLost applies Policy.MinReplicasAgreeing (no replica sees the primary
// when this is called).
func (a *analysis) enoughLost(p Policy) bool {
	if p.MinReplicasAgreeing > 0 {
		return a.lostN >= p.MinReplicasAgreeing
	}
	return a.undecidedN == 0
}

// classify judges one replica view and describes it for the evidence.
func classify(r ReplicaView, obsAt, since time.Time, p Policy) (replicaState, string) {
	name := r.Server
	if !r.Reachable {
		return notEvidence, fmt.Sprintf("%s: unreachable (%s)", name, r.Err)
	}
	at := r.At
	if at.IsZero() {
		at = obsAt
	}
	if at.Before(since) {
		return notEvidence, fmt.Sprintf("%s: view older than the failure, not counted", name)
	}
	if !r.Replicating {
		return notEvidence, fmt.Sprintf("%s: does not replicate from the primary, not counted", name)
	}
	ioErr := ""
	if r.LastIOErrno != 0 || r.LastIOError != "" {
		ioErr = fmt.Sprintf(", last IO error %d: %s", r.LastIOErrno, r.LastIOError)
	}
	age := "unknown"
	if r.LastEventAge >= 0 {
		age = r.LastEventAge.Round(time.Millisecond).String()
	}
	switch r.IORunning {
	case mysql.IOConnecting:
		return lost, fmt.Sprintf("%s: IO thread Connecting%s", name, ioErr)
	case mysql.IOYes:
	default:
		if r.LastIOErrno == 0 && r.LastIOError == "" {
			return notEvidence, fmt.Sprintf("%s: IO thread %s without error (stopped by an operator), not counted",
				name, r.IORunning)
		}
		return lost, fmt.Sprintf("%s: IO thread %s%s", name, r.IORunning, ioErr)
	}
	limit := p.lostAfter(r.HeartbeatPeriod)
	desc := fmt.Sprintf("%s: IO thread Yes, last event/heartbeat %s ago (limit %s), read position %s",
		name, age, limit, map[bool]string{true: "moving", false: "still"}[r.ReadPosMoved])
	if r.LastEventAge >= 0 && r.LastEventAge <= limit && !at.Add(-r.LastEventAge).Before(since) {
		return sees, desc + ": still hears from the primary"
	}
	if r.HeartbeatPeriod < 0 && !r.ReadPosMoved {
		return undecided, desc + ": heartbeats disabled, silence proves nothing"
	}
	if r.LastEventAge > limit && !r.ReadPosMoved {
		return lost, desc + ": lost the primary"
	}
	return undecided, desc
}

func describeProbe(pr ProbeResult) string {
	var b strings.Builder
	b.WriteString("manager probe failed")
	if pr.Timeout {
		b.WriteString(" (timeout)")
	}
	if pr.Err != "" {
		b.WriteString(": ")
		b.WriteString(pr.Err)
	}
	return b.String()
}

func secondaryMeaning(code int) string {
	switch code {
	case 0:
		return "unreachable from every route"
	case 2:
		return "a monitoring route is down"
	case 3:
		return "reachable from another route"
	}
	return "unknown exit code"
}
