package topology

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// Severity grades a Finding.
type Severity int

// Severities, from harmless to fatal.
const (
	OK Severity = iota
	Warn
	Fail
)

func (s Severity) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	default:
		return "FAIL"
	}
}

// MarshalText makes severities readable in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(strings.ToLower(s.String())), nil }

// Finding is the result of one check on one server or on the cluster.
type Finding struct {
	Severity Severity `json:"severity"`
	Check    string   `json:"check"`            // stable identifier, e.g. "replica.sql_thread"
	Server   string   `json:"server,omitempty"` // section name; empty for cluster-wide findings
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"` // what to do about it
}

// NodeReport summarises one server for humans and scripts.
type NodeReport struct {
	Name      string  `json:"name"`
	Addr      string  `json:"addr"`
	Role      string  `json:"role"` // primary | replica | unknown | unreachable
	Source    string  `json:"source,omitempty"`
	Version   string  `json:"version,omitempty"`
	ReadOnly  bool    `json:"read_only"`
	GTID      string  `json:"gtid,omitempty"`
	IOThread  string  `json:"io_thread,omitempty"`
	SQLThread string  `json:"sql_thread,omitempty"`
	LagSec    *int64  `json:"lag_seconds,omitempty"`
	SemiSync  string  `json:"semi_sync,omitempty"`
	ReadMs    float64 `json:"read_ms"`
	Error     string  `json:"error,omitempty"`
}

// Report is the outcome of check-repl.
type Report struct {
	Cluster   string        `json:"cluster"`
	Primary   string        `json:"primary,omitempty"`
	Healthy   bool          `json:"healthy"`
	Nodes     []NodeReport  `json:"servers"`
	Findings  []Finding     `json:"findings"`
	ElapsedMs float64       `json:"elapsed_ms"`
	Elapsed   time.Duration `json:"-"`
}

// Failures returns the findings that make the cluster unhealthy.
func (r *Report) Failures() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == Fail {
			out = append(out, f)
		}
	}
	return out
}

// CheckOptions tunes Check.
type CheckOptions struct {
	// MaxLag is the replication delay above which a replica fails the check
	// when check_repl_delay is on (a warning otherwise). 0 means 10 s.
	MaxLag time.Duration
	// SlowDetection is the slave_net_timeout / heartbeat period above which a
	// warning says replicas are slow to notice a silent primary. 0 means 30 s.
	SlowDetection time.Duration
}

// Check judges a snapshot against the configuration. It is pure: everything it
// needs is in its arguments.
func Check(snap *Snapshot, cfg *config.Config, o CheckOptions) *Report {
	if o.MaxLag <= 0 {
		o.MaxLag = 10 * time.Second
	}
	if o.SlowDetection <= 0 {
		o.SlowDetection = 30 * time.Second
	}
	c := &checker{snap: snap, cfg: cfg, o: o, rep: &Report{Cluster: snap.Cluster, Elapsed: snap.Elapsed}}
	c.reachability()
	primary := c.primary()
	if primary != nil {
		c.rep.Primary = primary.Server.Name
		c.replicas(primary)
		c.errant(primary)
		c.semiSync(primary)
		c.replGrants(primary)
	}
	c.writable(primary)
	c.candidates()
	c.flavors()
	c.filters()
	c.monitorGrants()
	c.detection()
	c.nodes(primary)
	c.passed(primary)

	c.rep.Healthy = len(c.rep.Failures()) == 0
	c.rep.ElapsedMs = float64(snap.Elapsed.Microseconds()) / 1000
	sort.SliceStable(c.rep.Findings, func(i, j int) bool {
		return c.rep.Findings[i].Severity > c.rep.Findings[j].Severity
	})
	return c.rep
}

type checker struct {
	snap *Snapshot
	cfg  *config.Config
	o    CheckOptions
	rep  *Report
}

func (c *checker) add(sev Severity, check, server, hint, format string, args ...any) {
	c.rep.Findings = append(c.rep.Findings, Finding{
		Severity: sev, Check: check, Server: server, Hint: hint, Message: fmt.Sprintf(format, args...),
	})
}

func (c *checker) reachability() {
	for _, n := range c.snap.Nodes {
		if n.Reachable() {
			continue
		}
		sev := Fail
		hint := "check that mysqld runs, the address is right and the monitoring user can log in from this host"
		if n.Server.IgnoreFail {
			sev = Warn
			hint = "ignore_fail=1 on this server: tolerated"
		}
		c.add(sev, "server.reachable", n.Server.Name, hint, "%s: cannot read %s: %v", n.Server.Name, n.Server.Addr(), n.Err)
	}
}

func names(ns []*Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Server.Name)
	}
	return strings.Join(out, ", ")
}

func (c *checker) primary() *Node {
	ps := c.snap.Primaries()
	switch len(ps) {
	case 1:
		p := ps[0]
		c.add(OK, "primary.count", p.Server.Name, "", "primary is %s (%s)", p.Server.Name, p.Server.Addr())
		return p
	case 0:
		if len(c.reachable()) > 0 {
			c.add(Fail, "primary.count", "", "exactly one server must not replicate from another; break the cycle with STOP SLAVE; RESET SLAVE ALL on the primary",
				"no primary: every reachable server replicates from another one")
		}
		return nil
	default:
		c.add(Fail, "primary.count", "", "every server but the primary must replicate from it; configure replication on the others",
			"%d servers do not replicate from anyone: %s", len(ps), names(ps))
		return nil
	}
}

func (c *checker) reachable() []*Node {
	var out []*Node
	for _, n := range c.snap.Nodes {
		if n.Reachable() {
			out = append(out, n)
		}
	}
	return out
}

func (c *checker) writable(primary *Node) {
	w := c.snap.Writable()
	if len(w) > 1 {
		c.add(Fail, "primary.writable", "", "set read_only=ON (and super_read_only where it exists) on every server but the primary",
			"%d writable servers (read_only=OFF): %s — clients could write to two primaries", len(w), names(w))
		return
	}
	if primary != nil && primary.Status().ReadOnly {
		c.add(Warn, "primary.writable", primary.Server.Name, "SET GLOBAL read_only=OFF on the primary if it should take writes",
			"primary %s has read_only=ON", primary.Server.Name)
	}
	if len(w) == 1 && primary != nil && w[0] != primary {
		c.add(Fail, "primary.writable", w[0].Server.Name, "SET GLOBAL read_only=ON on this replica",
			"replica %s is writable while %s is the primary", w[0].Server.Name, primary.Server.Name)
	}
}

// replicas checks that each replica replicates from the primary (or, with
// multi_tier_slave, from a replica that does) with both threads running.
func (c *checker) replicas(primary *Node) {
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil || n == primary {
			continue
		}
		rs := st.Replica
		src := c.snap.SourceOf(n)
		switch {
		case src == primary:
		case src != nil && c.cfg.MultiTierSlave && c.reachesPrimary(src, primary):
		case src != nil:
			c.add(Fail, "replica.source", n.Server.Name, "point it at the primary with CHANGE MASTER (or set multi_tier_slave=1 for cascading replicas)",
				"%s replicates from %s, not from the primary %s", n.Server.Name, src.Server.Name, primary.Server.Name)
		default:
			c.add(Fail, "replica.source", n.Server.Name, "point it at the primary with CHANGE MASTER TO MASTER_HOST=…",
				"%s replicates from %s, which is not a configured server (primary is %s at %s)",
				n.Server.Name, joinHostPort(rs.SourceHost, rs.SourcePort), primary.Server.Name, primary.Server.Addr())
		}
		if rs.IORunning != "Yes" {
			msg := fmt.Sprintf("%s: IO thread is %s", n.Server.Name, orDash(rs.IORunning))
			if rs.LastIOError != "" {
				msg += fmt.Sprintf(" (error %d: %s)", rs.LastIOErrno, rs.LastIOError)
			}
			c.add(Fail, "replica.io_thread", n.Server.Name, "fix the cause, then START SLAVE IO_THREAD", "%s", msg)
		}
		if !rs.SQLRunning {
			msg := fmt.Sprintf("%s: SQL thread is not running", n.Server.Name)
			if rs.LastSQLError != "" {
				msg += fmt.Sprintf(" (error %d: %s)", rs.LastSQLErrno, rs.LastSQLError)
			}
			c.add(Fail, "replica.sql_thread", n.Server.Name, "fix the cause, then START SLAVE SQL_THREAD", "%s", msg)
		}
		if !rs.AutoPosition {
			hint := "CHANGE MASTER TO MASTER_AUTO_POSITION=1"
			if st.Flavor.Kind == mysql.MariaDB {
				hint = "STOP SLAVE; CHANGE MASTER TO MASTER_USE_GTID=slave_pos; START SLAVE"
			}
			c.add(Fail, "replica.gtid", n.Server.Name, hint,
				"%s replicates by binlog file and position; lossless failover needs GTID auto-positioning", n.Server.Name)
		}
		c.lag(n, rs)
	}
}

func (c *checker) reachesPrimary(n, primary *Node) bool {
	seen := map[*Node]bool{}
	for n != nil && !seen[n] {
		if n == primary {
			return true
		}
		seen[n] = true
		n = c.snap.SourceOf(n)
	}
	return false
}

func (c *checker) lag(n *Node, rs *mysql.ReplicaStatus) {
	if rs.IORunning != "Yes" || !rs.SQLRunning {
		return // already failed; Seconds_Behind_Master means nothing then
	}
	if rs.SecondsBehind == nil {
		c.add(Warn, "replica.lag", n.Server.Name, "", "%s: replication delay unknown (Seconds_Behind_Master is NULL)", n.Server.Name)
		return
	}
	lag := time.Duration(*rs.SecondsBehind) * time.Second
	if lag <= c.o.MaxLag {
		return
	}
	sev, hint := Warn, "check_repl_delay=0: tolerated"
	if c.cfg.CheckReplDelay {
		sev, hint = Fail, "a lagging replica delays failover; find why it lags (long transactions, slow disk) or raise --max-lag"
	}
	c.add(sev, "replica.lag", n.Server.Name, hint, "%s lags %s behind its source (limit %s)", n.Server.Name, lag, c.o.MaxLag)
}

// errant names transactions that a replica has and the primary does not.
func (c *checker) errant(primary *Node) {
	ps := primary.Status()
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil || n == primary || st.Flavor.Kind != ps.Flavor.Kind {
			continue
		}
		e, err := mysql.Errant(st.GTIDExecuted, ps.GTIDExecuted)
		if err != nil {
			c.add(Warn, "replica.errant_gtid", n.Server.Name, "", "cannot compare GTID sets of %s and %s: %v", n.Server.Name, primary.Server.Name, err)
			continue
		}
		if e.IsEmpty() {
			continue
		}
		c.add(Fail, "replica.errant_gtid", n.Server.Name,
			"these transactions were written on the replica itself; remove them (or inject empty transactions on the primary) before this replica can be promoted",
			"%s has errant GTIDs the primary lacks: %s", n.Server.Name, e.String())
	}
}

func (c *checker) candidates() {
	promotable := 0
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil || st.Replica == nil {
			continue
		}
		switch {
		case n.Server.NoMaster:
		case !st.LogBin:
			sev := Warn
			if n.Server.CandidateMaster {
				sev = Fail
			}
			c.add(sev, "candidate.log_bin", n.Server.Name, "enable log_bin (and log_slave_updates) on every server that may become primary",
				"%s has log_bin=OFF and cannot become primary", n.Server.Name)
		default:
			promotable++
			if !st.LogReplicaUpdates {
				c.add(Warn, "candidate.log_slave_updates", n.Server.Name, "enable log_slave_updates so that other replicas can catch up from it after a failover",
					"%s has log_slave_updates=OFF", n.Server.Name)
			}
		}
	}
	if promotable == 0 && len(c.snap.Nodes) > 1 && len(c.reachable()) > 1 {
		c.add(Fail, "candidate.none", "", "enable log_bin on a replica or clear no_master on one",
			"no replica can become primary (all have no_master=1 or log_bin=OFF)")
	}
}

func (c *checker) flavors() {
	var first *Node
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil {
			continue
		}
		if first == nil {
			first = n
			continue
		}
		f0, f := first.Status().Flavor, st.Flavor
		if f.Kind != f0.Kind {
			c.add(Fail, "cluster.flavor", n.Server.Name, "replicate only between servers of one kind (all MySQL or all MariaDB)", "%s runs %s while %s runs %s: mixed MySQL/MariaDB clusters are not supported",
				n.Server.Name, f, first.Server.Name, f0)
		} else if f.Version.Major != f0.Version.Major || f.Version.Minor != f0.Version.Minor {
			c.add(Warn, "cluster.version", n.Server.Name, "a server with an older major version than the others is not chosen as new primary",
				"%s runs %s, %s runs %s", n.Server.Name, f, first.Server.Name, f0)
		}
		if f.Kind == mysql.MySQL && !strings.EqualFold(st.GTIDMode, "ON") {
			c.add(Fail, "cluster.gtid_mode", n.Server.Name, "enable gtid_mode=ON and enforce_gtid_consistency=ON on every server",
				"%s has gtid_mode=%s", n.Server.Name, orDash(st.GTIDMode))
		}
		if f.Kind == mysql.MariaDB && st.GTIDStrictMode != first.Status().GTIDStrictMode {
			c.add(Warn, "cluster.gtid_strict_mode", n.Server.Name, "set gtid_strict_mode=ON everywhere",
				"gtid_strict_mode differs: %s=%v, %s=%v", n.Server.Name, st.GTIDStrictMode, first.Server.Name, first.Status().GTIDStrictMode)
		}
	}
	if first != nil && first.Status().Flavor.Kind == mysql.MySQL && !strings.EqualFold(first.Status().GTIDMode, "ON") {
		c.add(Fail, "cluster.gtid_mode", first.Server.Name, "enable gtid_mode=ON and enforce_gtid_consistency=ON on every server",
			"%s has gtid_mode=%s", first.Server.Name, orDash(first.Status().GTIDMode))
	}
}

// filters compares binlog filters of every server and replication filters of
// every replica, as MHA's check_repl_filter does.
func (c *checker) filters() {
	if !c.cfg.CheckReplFilter {
		return
	}
	var ref, refRepl *Node
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil {
			continue
		}
		if ref == nil {
			ref = n
		} else if !st.BinlogFilters.Equal(ref.Status().BinlogFilters) {
			c.add(Fail, "cluster.binlog_filter", n.Server.Name, "use the same binlog-do-db/binlog-ignore-db everywhere (or check_repl_filter=0)",
				"binlog filters differ: %s has %s, %s has %s", n.Server.Name, st.BinlogFilters, ref.Server.Name, ref.Status().BinlogFilters)
		}
		if st.Replica == nil {
			continue
		}
		if refRepl == nil {
			refRepl = n
		} else if !st.Replica.Filters.Equal(refRepl.Status().Replica.Filters) {
			c.add(Fail, "cluster.replication_filter", n.Server.Name, "use the same replicate-* filters on every replica (or check_repl_filter=0)",
				"replication filters differ: %s has %s, %s has %s", n.Server.Name, st.Replica.Filters, refRepl.Server.Name, refRepl.Status().Replica.Filters)
		}
	}
}

func (c *checker) semiSync(primary *Node) {
	ps := primary.Status()
	if !ps.SemiSync.Available {
		c.add(Warn, "semisync.available", primary.Server.Name, "", "semi-synchronous replication is not available on %s: acknowledged writes may be lost in a failover", primary.Server.Name)
		return
	}
	if !ps.SemiSync.SourceEnabled {
		c.add(Warn, "semisync.primary", primary.Server.Name, "SET GLOBAL rpl_semi_sync_master_enabled=ON on the primary and rpl_semi_sync_slave_enabled=ON on replicas",
			"semi-sync is off on the primary %s: writes it acknowledged may be lost in a failover", primary.Server.Name)
	} else {
		if !ps.SemiSync.SourceOn {
			c.add(Warn, "semisync.primary", primary.Server.Name, "check that replicas have rpl_semi_sync_slave_enabled=ON and their IO threads restarted",
				"semi-sync is enabled on %s but has fallen back to asynchronous replication", primary.Server.Name)
		}
		if ps.SemiSync.SourceClients == 0 {
			c.add(Warn, "semisync.clients", primary.Server.Name, "", "no semi-sync replica is connected to %s", primary.Server.Name)
		}
		if ps.SemiSync.WaitPoint != "" && !strings.EqualFold(ps.SemiSync.WaitPoint, "AFTER_SYNC") {
			c.add(Warn, "semisync.wait_point", primary.Server.Name, "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
				"rpl_semi_sync_master_wait_point=%s: clients may see writes that are lost in a failover (phantom reads)", ps.SemiSync.WaitPoint)
		}
	}
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil || n == primary || st.Replica == nil {
			continue
		}
		if st.SemiSync.SourceEnabled {
			c.add(Warn, "semisync.replica_source_side", n.Server.Name, "SET GLOBAL rpl_semi_sync_master_enabled=OFF on replicas",
				"%s has the semi-sync source side enabled while it is a replica", n.Server.Name)
		}
		if ps.SemiSync.SourceEnabled && st.SemiSync.Available && !st.SemiSync.ReplicaEnabled && !n.Server.NoMaster {
			c.add(Warn, "semisync.replica", n.Server.Name, "SET GLOBAL rpl_semi_sync_slave_enabled=ON, then restart its IO thread",
				"%s does not acknowledge semi-sync writes", n.Server.Name)
		}
	}
}

// replGrants verifies that the replication account exists on the primary and
// on every candidate, with REPLICATION SLAVE, for the address of every
// replica that will connect to it.
func (c *checker) replGrants(primary *Node) {
	var replicas []*Node
	for _, n := range c.snap.Nodes {
		if n != primary && n.Reachable() {
			replicas = append(replicas, n)
		}
	}
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil || n.Server.NoMaster || n.State.ReplGrants == nil && n.State.ReplGrantsErr == nil {
			continue
		}
		sev := Warn
		if n == primary {
			sev = Fail
		}
		if n.State.ReplGrantsErr != nil {
			c.add(Warn, "grants.replication", n.Server.Name, "grant SELECT ON mysql.* to the monitoring user so this can be checked",
				"cannot read the replication account on %s: %v", n.Server.Name, n.State.ReplGrantsErr)
			continue
		}
		for _, r := range replicas {
			if r == n {
				continue
			}
			if acct, ok := replAccountFor(n.State.ReplGrants, r.Server); !ok {
				user := replUserOf(n.State.ReplGrants)
				c.add(sev, "grants.replication", n.Server.Name,
					fmt.Sprintf("GRANT REPLICATION SLAVE ON *.* TO '%s'@'<replica address>' on %s", user, n.Server.Name),
					"%s: no account '%s'@… with REPLICATION SLAVE matches replica %s (%s)%s", n.Server.Name, user, r.Server.Name, r.Server.Host(), acct)
			}
		}
	}
}

func replUserOf(g map[string][]string) string {
	for k := range g {
		if i := strings.Index(k, "'@'"); i > 1 {
			return k[1:i]
		}
	}
	return "repl"
}

// replAccountFor finds an account of the replication user whose host pattern
// matches the replica and that holds REPLICATION SLAVE. When none does, the
// second value is false and the string says which accounts were considered.
func replAccountFor(grants map[string][]string, replica config.Server) (string, bool) {
	var seen []string
	for acct, g := range grants {
		host := acct[strings.Index(acct, "'@'")+3 : len(acct)-1]
		if g == nil {
			continue
		}
		seen = append(seen, acct)
		if !HostMatches(host, replica.Host()) && !HostMatches(host, replica.Hostname) {
			continue
		}
		if mysql.HasGlobalPrivilege(g, "REPLICATION SLAVE") {
			return acct, true
		}
	}
	sort.Strings(seen)
	if len(seen) == 0 {
		return "; the account does not exist", false
	}
	return "; accounts: " + strings.Join(seen, ", "), false
}

// monitorGrants checks that the monitoring user can do what failover needs.
func (c *checker) monitorGrants() {
	for _, n := range c.snap.Nodes {
		if !n.Reachable() || n.State.Grants == nil {
			continue
		}
		g := n.State.Grants
		if mysql.HasGlobalPrivilege(g, "SUPER") {
			continue
		}
		var need []string
		if n.Status().Flavor.Kind == mysql.MariaDB {
			need = []string{"REPLICATION SLAVE ADMIN", "READ_ONLY ADMIN", "CONNECTION ADMIN", "BINLOG MONITOR", "SLAVE MONITOR"}
		} else {
			need = []string{"REPLICATION CLIENT", "REPLICATION_SLAVE_ADMIN", "SYSTEM_VARIABLES_ADMIN", "CONNECTION_ADMIN"}
		}
		var missing []string
		for _, p := range need {
			if !mysql.HasGlobalPrivilege(g, p) {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			c.add(Warn, "grants.monitor", n.Server.Name, "GRANT "+strings.Join(missing, ", ")+" ON *.* TO the monitoring user",
				"monitoring user %q on %s lacks %s: failover would stop half-way", n.Server.User, n.Server.Name, strings.Join(missing, ", "))
		}
	}
}

// detection warns about settings that make replicas slow to notice a silent
// primary (their IO threads only give up after slave_net_timeout).
func (c *checker) detection() {
	for _, n := range c.snap.Nodes {
		st := n.Status()
		if st == nil || st.Replica == nil {
			continue
		}
		if st.SlaveNetTimeout > c.o.SlowDetection {
			c.add(Warn, "replica.detection.slave_net_timeout", n.Server.Name, "SET GLOBAL slave_net_timeout=10 (and a heartbeat period of 2–5 s)",
				"%s: slave_net_timeout=%s, its IO thread notices a silent primary only that late", n.Server.Name, st.SlaveNetTimeout)
		}
		if hb := st.Replica.HeartbeatPeriod; hb > c.o.SlowDetection/3 {
			c.add(Warn, "replica.detection.heartbeat", n.Server.Name, "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD=2",
				"%s: heartbeat period %s", n.Server.Name, hb)
		}
	}
}

func (c *checker) nodes(primary *Node) {
	for _, n := range c.snap.Nodes {
		nr := NodeReport{Name: n.Server.Name, Addr: n.Server.Addr(), ReadMs: float64(n.Elapsed.Microseconds()) / 1000}
		st := n.Status()
		if st == nil {
			nr.Role = "unreachable"
			if n.Err != nil {
				nr.Error = n.Err.Error()
			}
			c.rep.Nodes = append(c.rep.Nodes, nr)
			continue
		}
		nr.Version = st.Flavor.String()
		nr.ReadOnly = st.ReadOnly
		nr.GTID = st.GTIDExecuted.String()
		switch {
		case n == primary:
			nr.Role = "primary"
			if st.SemiSync.SourceEnabled {
				nr.SemiSync = fmt.Sprintf("source on=%v clients=%d", st.SemiSync.SourceOn, st.SemiSync.SourceClients)
			}
		case st.Replica != nil:
			nr.Role = "replica"
			if src := c.snap.SourceOf(n); src != nil {
				nr.Source = src.Server.Name
			} else {
				nr.Source = joinHostPort(st.Replica.SourceHost, st.Replica.SourcePort)
			}
			nr.IOThread = st.Replica.IORunning
			nr.SQLThread = map[bool]string{true: "Yes", false: "No"}[st.Replica.SQLRunning]
			nr.LagSec = st.Replica.SecondsBehind
			if st.SemiSync.ReplicaEnabled {
				nr.SemiSync = fmt.Sprintf("replica on=%v", st.SemiSync.ReplicaOn)
			}
		default:
			nr.Role = "unknown"
		}
		c.rep.Nodes = append(c.rep.Nodes, nr)
	}
}

// passed adds one OK line per area in which nothing was found, so that a
// report says what was verified and not only what was wrong.
func (c *checker) passed(primary *Node) {
	if primary == nil {
		return
	}
	ps := primary.Status()
	nReplicas := len(c.snap.Nodes) - 1
	semi := "semi-sync is on at " + primary.Server.Name
	if ps.SemiSync.SourceEnabled {
		semi += fmt.Sprintf(" with %d replica(s) acknowledging, wait point %s", ps.SemiSync.SourceClients, orDash(ps.SemiSync.WaitPoint))
	}
	areas := []struct{ prefix, msg string }{
		{"server.reachable", fmt.Sprintf("all %d servers answered", len(c.snap.Nodes))},
		{"primary.writable", "only the primary is writable"},
		{"replica.source", fmt.Sprintf("all %d replicas replicate from %s", nReplicas, primary.Server.Name)},
		{"replica.io_thread", "every replica's IO thread is running"},
		{"replica.sql_thread", "every replica's SQL thread is running"},
		{"replica.gtid", "every replica uses GTID auto-positioning"},
		{"replica.errant_gtid", "no replica has errant GTIDs"},
		{"replica.lag", fmt.Sprintf("every replica is within %s of its source", c.o.MaxLag)},
		{"candidate.", "every candidate has binary logs with replica updates"},
		{"cluster.", "one server kind, consistent GTID mode and replication filters"},
		{"semisync.", semi},
		{"grants.", "the replication account and the monitoring user have the privileges failover needs"},
		{"replica.detection.", "replicas notice a silent primary quickly (slave_net_timeout, heartbeat)"},
	}
	for _, a := range areas {
		found := false
		for _, f := range c.rep.Findings {
			if f.Severity != OK && strings.HasPrefix(f.Check, a.prefix) {
				found = true
				break
			}
		}
		if !found {
			c.add(OK, strings.TrimSuffix(a.prefix, "."), "", "", "%s", a.msg)
		}
	}
}

func joinHostPort(h string, p int) string { return fmt.Sprintf("%s:%d", h, p) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
