package failover

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// StepKind names what a step does.
type StepKind string

// Step kinds, in the order a failover runs them.
const (
	StepReleaseAddress StepKind = "release-address" // fence: the address leaves the old primary
	StepFenceOld       StepKind = "fence-old"       // fence: read_only on + kill client connections
	StepShutdownOld    StepKind = "shutdown-old"    // fence: shutdown_script
	StepStopIO         StepKind = "stop-io"         // survivors stop pulling from the old primary, SQL threads drain
	StepChoose         StepKind = "choose"          // the chosen candidate answers
	StepCatchUp        StepKind = "catch-up"        // candidate replicates from the most advanced survivor
	StepSalvage        StepKind = "salvage"         // dead primary's binlog over SSH
	StepPromote        StepKind = "promote"         // stop + RESET SLAVE ALL, semi-sync source on
	StepRepoint        StepKind = "repoint"         // one survivor replicates from the new primary
	StepOpenWrites     StepKind = "open-writes"     // read_only off on the new primary
	StepAcquireAddress StepKind = "acquire-address" // the address comes up on the new primary
	StepReport         StepKind = "report"          // report_script, history

	// Switchover only.
	StepPrecheck   StepKind = "precheck"     // no long-running writes on the old primary
	StepBlockWrite StepKind = "block-writes" // read_only on the old primary, clients killed after the grace
	StepSync       StepKind = "sync"         // new primary and replicas apply all of the old primary's GTIDs
)

// Step is one action of a plan. Steps refer to servers by section name.
type Step struct {
	Kind   StepKind `json:"kind"`
	Server string   `json:"server,omitempty"` // the server acted on
	Source string   `json:"source,omitempty"` // catch-up and repoint: replicate from
	// Optional steps may fail without stopping the run: the failure is
	// reported and the run goes on.
	Optional bool   `json:"optional,omitempty"`
	Why      string `json:"why"` // plain words for the dry-run and the report
}

// Key identifies the step within its plan (for the journal).
func (s Step) Key(i int) string {
	k := fmt.Sprintf("%02d-%s", i, s.Kind)
	if s.Server != "" {
		k += "-" + s.Server
	}
	return k
}

// Tristate is yes, no or unknown.
type Tristate int

// Tristate values; the zero value is Unknown.
const (
	Unknown Tristate = iota
	Yes
	No
)

func (t Tristate) String() string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

// Options tunes PlanFailover.
type Options struct {
	// Dead is the section name of the failed primary; empty means the
	// single primary of the snapshot, or else the single server the
	// reachable replicas replicate from.
	Dead string
	// NewPrimary is an explicit choice (MHA --new_master_host).
	NewPrimary string
	// Force accepts a candidate with errant GTIDs or a requested one that
	// a rule refuses.
	Force bool
	// SkipSalvage leaves the dead primary's binlog alone
	// (--skip_save_master_binlog).
	SkipSalvage bool
	// DeadSSHReachable says whether the dead primary's host answers SSH.
	DeadSSHReachable Tristate
	// DeadGTIDs is the old primary's last known GTID set, from an earlier
	// snapshot (the dead server cannot be read now). It names what may be
	// lost.
	DeadGTIDs mysql.GTIDSet
	// DeadOrigin: see ChooseOptions.
	DeadOrigin string
	// PreferZone: see ChooseOptions.
	PreferZone string
	// MaxRelayBehind: see ChooseOptions.
	MaxRelayBehind uint64
	// MaxCatchUp bounds the catch-up step (default: the executor's step
	// timeout).
	MaxCatchUp time.Duration
	// ID names the run; empty means a random one.
	ID string
	// Now stamps the plan; nil means time.Now.
	Now func() time.Time
}

// Plan is an ordered list of steps, printable for --dry-run and serialized
// into the journal.
type Plan struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"` // failover | switchover
	Cluster string    `json:"cluster"`
	Created time.Time `json:"created"`

	OldPrimary string `json:"old_primary"`
	NewPrimary string `json:"new_primary"`
	// Survivors are the reachable servers other than the old primary and
	// the candidate: they are repointed to the new primary.
	Survivors []string `json:"survivors"`
	// CatchUpSource is the most advanced survivor (== NewPrimary when the
	// candidate is the most advanced).
	CatchUpSource string `json:"catch_up_source"`
	// Target is the GTID set the candidate must hold after catch-up (as
	// known when planning; the executor re-reads it).
	Target string `json:"target,omitempty"`
	// GTIDKind is the kind of every GTID set of the plan.
	GTIDKind mysql.Kind `json:"gtid_kind,omitempty"`
	// DeadGTIDs is the old primary's last known set (for Report.Lost).
	DeadGTIDs string `json:"dead_gtids,omitempty"`

	DeadSSHReachable Tristate `json:"dead_ssh_reachable"`
	// SemiSync is true when the cluster uses semi-synchronous replication:
	// the executor then sets source/replica sides on promotion and repoint.
	SemiSync   bool          `json:"semi_sync"`
	MaxCatchUp time.Duration `json:"max_catch_up,omitempty"`

	Steps      []Step      `json:"steps"`
	Rejections []Rejection `json:"rejections,omitempty"`
	Notes      []string    `json:"notes,omitempty"`

	// Servers are the configuration entries of every server the plan
	// names, secrets redacted when serialized; the executor gets
	// credentials from its Ops, not from here.
	Servers []Endpoint `json:"servers"`

	// Switch holds the switchover settings (switchover plans only).
	Switch *SwitchOptions `json:"switch,omitempty"`
}

// Endpoint is the part of a config.Server that a plan keeps: no secrets.
type Endpoint struct {
	Name       string `json:"name"`
	Hostname   string `json:"hostname"`
	IP         string `json:"ip,omitempty"`
	Port       int    `json:"port"`
	SSHHost    string `json:"ssh_host,omitempty"`
	SSHIP      string `json:"ssh_ip,omitempty"`
	SSHPort    int    `json:"ssh_port,omitempty"`
	SSHUser    string `json:"ssh_user,omitempty"`
	User       string `json:"user,omitempty"`
	ReplUser   string `json:"repl_user,omitempty"`
	PIDFile    string `json:"pid_file,omitempty"`
	Zone       string `json:"zone,omitempty"`
	IgnoreFail bool   `json:"ignore_fail,omitempty"`
}

func endpointOf(s config.Server) Endpoint {
	return Endpoint{Name: s.Name, Hostname: s.Hostname, IP: s.IP, Port: s.Port, SSHHost: s.SSHHost,
		SSHIP: s.SSHIP, SSHPort: s.SSHPort, SSHUser: s.SSHUser, User: s.User, ReplUser: s.ReplUser,
		PIDFile: s.MasterPIDFile, Zone: s.Zone, IgnoreFail: s.IgnoreFail}
}

// Server returns the endpoint as a config.Server without secrets.
func (e Endpoint) Server() config.Server {
	return config.Server{Name: e.Name, Hostname: e.Hostname, IP: e.IP, Port: e.Port, SSHHost: e.SSHHost,
		SSHIP: e.SSHIP, SSHPort: e.SSHPort, SSHUser: e.SSHUser, User: e.User, ReplUser: e.ReplUser,
		MasterPIDFile: e.PIDFile, Zone: e.Zone, IgnoreFail: e.IgnoreFail}
}

// Server returns the plan's endpoint called name.
func (p *Plan) Server(name string) (config.Server, bool) {
	for _, e := range p.Servers {
		if e.Name == name {
			return e.Server(), true
		}
	}
	return config.Server{}, false
}

// newID returns a run identifier: time plus a random suffix.
// NewRunID returns a fresh run ID: the time and a random suffix. The
// manager names a failover with it as soon as the primary is declared dead,
// so the detection, the notifications and every log line of the run share
// it.
func NewRunID(now time.Time) string { return newID(now) }

func newID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// ErrNoDeadPrimary is wrapped when PlanFailover cannot tell which server
// failed.
var ErrNoDeadPrimary = errors.New("cannot tell which server is the failed primary")

// PlanFailover plans the replacement of a failed primary. It is pure: the
// snapshot (taken after the failure) and the configuration are all it reads.
func PlanFailover(snap *topology.Snapshot, cfg *config.Config, o Options) (*Plan, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	dead, err := findDead(snap, o.Dead)
	if err != nil {
		return nil, fmt.Errorf("plan failover of %s: %w", cfg.Name, err)
	}
	cand, rej, err := ChooseCandidate(snap, cfg, dead.Server.Name, ChooseOptions{
		NewPrimary: o.NewPrimary, PreferZone: o.PreferZone, Force: o.Force,
		MaxRelayBehind: o.MaxRelayBehind, DeadGTIDs: o.DeadGTIDs, DeadOrigin: o.DeadOrigin,
	})
	if err != nil {
		return nil, fmt.Errorf("plan failover of %s: %w", cfg.Name, err)
	}
	p := &Plan{
		ID: o.ID, Kind: "failover", Cluster: cfg.Name, Created: now(),
		OldPrimary: dead.Server.Name, NewPrimary: cand.Server.Name,
		DeadSSHReachable: o.DeadSSHReachable, MaxCatchUp: o.MaxCatchUp, Rejections: rej,
	}
	if p.ID == "" {
		p.ID = newID(p.Created)
	}
	p.Servers = append(p.Servers, endpointOf(dead.Server))

	deadSet := o.DeadGTIDs
	if st := dead.Status(); st != nil {
		if u, err := deadSet.Union(st.GTIDExecuted); err == nil {
			deadSet = u
		}
	}
	p.DeadGTIDs = deadSet.String()
	p.GTIDKind = deadSet.Kind()

	// Survivors: reachable servers other than the old primary and the
	// candidate; the most advanced one is the catch-up source.
	var target mysql.GTIDSet
	source := cand
	for _, n := range snap.Nodes {
		if n == dead || !n.Reachable() {
			continue
		}
		st := n.Status()
		if st.SemiSync.SourceEnabled || st.SemiSync.ReplicaEnabled {
			p.SemiSync = true
		}
		if p.GTIDKind == "" {
			p.GTIDKind = st.GTIDExecuted.Kind()
		}
		if u, err := target.Union(st.GTIDExecuted); err == nil {
			target = u
		}
		if n != cand {
			p.Survivors = append(p.Survivors, n.Server.Name)
			p.Servers = append(p.Servers, endpointOf(n.Server))
			if !source.Status().GTIDExecuted.Contains(st.GTIDExecuted) && st.GTIDExecuted.Contains(source.Status().GTIDExecuted) {
				source = n
			}
		} else {
			p.Servers = append(p.Servers, endpointOf(n.Server))
		}
	}
	if st := dead.Status(); st != nil && (st.SemiSync.SourceEnabled || st.SemiSync.ReplicaEnabled) {
		p.SemiSync = true
	}
	p.CatchUpSource = source.Server.Name
	p.Target = source.Status().GTIDExecuted.String()
	if !source.Status().GTIDExecuted.Contains(target) {
		p.Notes = append(p.Notes, fmt.Sprintf("no survivor holds every transaction of the others (union %s); catch-up uses %s, the most advanced", target, source.Server.Name))
	}
	for _, n := range snap.Nodes {
		if n != dead && !n.Reachable() {
			p.Notes = append(p.Notes, fmt.Sprintf("%s does not answer and is left out: repoint it by hand when it is back", n.Server.Name))
		}
	}

	old, candName := dead.Server.Name, cand.Server.Name
	if cfg.Address.Mover != "" || cfg.MasterIPFailoverScript != "" {
		p.Steps = append(p.Steps, Step{Kind: StepReleaseAddress, Server: old,
			Why: fmt.Sprintf("take the client address away from %s, so no client can reach it", describe(dead.Server))})
	}
	if dead.Reachable() {
		p.Steps = append(p.Steps, Step{Kind: StepFenceOld, Server: old, Optional: true,
			Why: fmt.Sprintf("%s still answers: set read_only and kill its client connections", old)})
	} else {
		var fences []string
		if cfg.Address.Mover != "" || cfg.MasterIPFailoverScript != "" {
			fences = append(fences, "the address release")
		}
		if cfg.ShutdownScript != "" {
			fences = append(fences, "shutdown_script")
		}
		fence := "nothing else fences it (no address mover, no shutdown_script): make sure it stays down"
		if len(fences) > 0 {
			fence = strings.Join(fences, " and ") + " fence it"
		}
		p.Notes = append(p.Notes, fmt.Sprintf("%s does not answer SQL: it cannot be set read_only; %s", old, fence))
	}
	if cfg.ShutdownScript != "" {
		p.Steps = append(p.Steps, Step{Kind: StepShutdownOld, Server: old,
			Why: fmt.Sprintf("run shutdown_script to power off or stop %s (SSH reachable: %s)", old, o.DeadSSHReachable)})
	}
	for _, s := range append([]string{candName}, p.Survivors...) {
		// A survivor that cannot drain (its SQL thread broke, e.g. on an
		// errant transaction) must not stop the failover; only the
		// candidate's must succeed.
		p.Steps = append(p.Steps, Step{Kind: StepStopIO, Server: s, Source: old, Optional: s != candName,
			Why: fmt.Sprintf("stop %s's IO thread (no more events from %s) and let its SQL thread apply what it received", s, old)})
	}
	p.Steps = append(p.Steps, Step{Kind: StepChoose, Server: candName, Why: chooseWhy(cand, rej)})
	if source != cand {
		p.Steps = append(p.Steps, Step{Kind: StepCatchUp, Server: candName, Source: source.Server.Name,
			Why: fmt.Sprintf("%s replicates from %s, the most advanced survivor, until it holds %s", candName, source.Server.Name, p.Target)})
	} else {
		p.Steps = append(p.Steps, Step{Kind: StepCatchUp, Server: candName,
			Why: fmt.Sprintf("%s is already the most advanced survivor; verify it holds what the others hold", candName)})
	}
	if !o.SkipSalvage && o.DeadSSHReachable != No {
		p.Steps = append(p.Steps, Step{Kind: StepSalvage, Server: candName, Source: old, Optional: true,
			Why: fmt.Sprintf("if %s's host answers SSH, copy the transactions no survivor received from its binary logs and apply them on %s", old, candName)})
	}
	p.Steps = append(p.Steps, Step{Kind: StepPromote, Server: candName,
		Why: fmt.Sprintf("stop replication on %s and forget its source (RESET SLAVE ALL)%s", candName, semiWhy(p.SemiSync, "; turn the semi-sync source side on"))})
	for _, s := range p.Survivors {
		p.Steps = append(p.Steps, Step{Kind: StepRepoint, Server: s, Source: candName, Optional: true,
			Why: fmt.Sprintf("point %s at %s with GTID auto-positioning and wait until both threads run%s", s, candName, semiWhy(p.SemiSync, " (semi-sync replica side on)"))})
	}
	p.Steps = append(p.Steps, Step{Kind: StepOpenWrites, Server: candName,
		Why: fmt.Sprintf("set read_only=OFF on %s: it accepts writes", candName)})
	if cfg.Address.Mover != "" || cfg.MasterIPFailoverScript != "" {
		p.Steps = append(p.Steps, Step{Kind: StepAcquireAddress, Server: candName,
			Why: fmt.Sprintf("bring the client address up on %s", describe(cand.Server))})
	}
	p.Steps = append(p.Steps, Step{Kind: StepReport, Server: candName, Optional: true,
		Why: "write the report, run report_script and record the failover"})
	return p, nil
}

func semiWhy(on bool, s string) string {
	if on {
		return s
	}
	return ""
}

func describe(s config.Server) string {
	if s.Host() != s.Name {
		return fmt.Sprintf("%s (%s)", s.Name, s.Addr())
	}
	return s.Name
}

func chooseWhy(cand *topology.Node, rej []Rejection) string {
	s := cand.Server
	var why []string
	if s.CandidateMaster {
		why = append(why, "candidate_master")
	}
	if s.Priority != 0 {
		why = append(why, fmt.Sprintf("priority %d", s.Priority))
	}
	if s.Zone != "" {
		why = append(why, "zone "+s.Zone)
	}
	out := fmt.Sprintf("new primary: %s", describe(s))
	if len(why) > 0 {
		out += " [" + strings.Join(why, ", ") + "]"
	}
	if len(rej) > 0 {
		parts := make([]string, len(rej))
		for i, r := range rej {
			parts[i] = r.String()
		}
		out += "; not chosen: " + strings.Join(parts, "; ")
	}
	return out
}

// findDead returns the failed primary's node.
func findDead(snap *topology.Snapshot, name string) (*topology.Node, error) {
	if name != "" {
		for _, n := range snap.Nodes {
			if n.Server.Name == name || n.Server.Hostname == name || (n.Server.IP != "" && n.Server.IP == name) || n.Server.Addr() == name {
				return n, nil
			}
		}
		return nil, fmt.Errorf("%w: %q is not a configured server", ErrNoDeadPrimary, name)
	}
	// The server the reachable replicas point at.
	var found *topology.Node
	for _, n := range snap.Nodes {
		st := n.Status()
		if st == nil || st.Replica == nil {
			continue
		}
		for _, m := range snap.Nodes {
			if m != n && hostMatches(m.Server, st.Replica.SourceHost, st.Replica.SourcePort) {
				if found != nil && found != m {
					return nil, fmt.Errorf("%w: replicas point at both %s and %s; name it", ErrNoDeadPrimary, found.Server.Name, m.Server.Name)
				}
				found = m
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no replica names its source; name it", ErrNoDeadPrimary)
	}
	return found, nil
}

// String prints the plan for people (--dry-run).
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s plan %s for cluster %s\n", titleKind(p.Kind), p.ID, p.Cluster)
	fmt.Fprintf(&b, "  old primary: %s\n  new primary: %s\n", p.OldPrimary, p.NewPrimary)
	if len(p.Survivors) > 0 {
		fmt.Fprintf(&b, "  replicas to repoint: %s\n", strings.Join(p.Survivors, ", "))
	}
	if p.DeadGTIDs != "" {
		fmt.Fprintf(&b, "  last known GTIDs of %s: %s\n", p.OldPrimary, p.DeadGTIDs)
	}
	if p.Target != "" {
		fmt.Fprintf(&b, "  GTIDs the new primary must hold: %s\n", p.Target)
	}
	fmt.Fprintf(&b, "Steps:\n")
	for i, s := range p.Steps {
		opt := ""
		if s.Optional {
			opt = " (a failure is reported, the run goes on)"
		}
		fmt.Fprintf(&b, "  %2d. %-16s %s%s\n", i+1, s.Kind, s.Why, opt)
	}
	if len(p.Rejections) > 0 {
		fmt.Fprintf(&b, "Not eligible as new primary:\n")
		for _, r := range p.Rejections {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	if len(p.Notes) > 0 {
		fmt.Fprintf(&b, "Notes:\n")
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	return b.String()
}

func titleKind(k string) string {
	if k == "" {
		return "Failover"
	}
	return strings.ToUpper(k[:1]) + k[1:]
}
