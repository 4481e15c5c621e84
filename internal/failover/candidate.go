// Package failover decides and carries out a change of primary: the choice of
// the new primary (MHA's rules plus priority, zone and errant-GTID checks),
// a printable Plan of ordered steps, and the Executor that runs a plan step by
// step with timeouts and a journal, resumes it after a crash, and performs
// planned switchovers with a short write block.
//
// Planning is pure (a topology.Snapshot and the configuration in, a Plan out);
// the Executor reaches servers only through the small Ops, address.Mover,
// Hooks and Salvager interfaces, so its logic is tested with fakes. SQLOps
// implements Ops over internal/mysql.
package failover

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// DefaultMaxRelayBehind is MHA's limit for check_repl_delay: a replica whose
// SQL thread is more than this many bytes behind the most advanced replica's
// IO thread is a bad candidate (it would take long to catch up).
const DefaultMaxRelayBehind = 100_000_000

// ErrNoCandidate is wrapped by ChooseCandidate when no server may become the
// new primary.
var ErrNoCandidate = errors.New("no server can become the new primary")

// ChooseOptions tunes ChooseCandidate.
type ChooseOptions struct {
	// NewPrimary is MHA's --new_master_host: a section name, hostname or IP
	// of the server that must become the primary.
	NewPrimary string
	// PreferZone puts servers of this zone first among equal candidates.
	PreferZone string
	// Force allows a candidate with errant GTIDs (and an explicit
	// NewPrimary that a rule would refuse).
	Force bool
	// MaxRelayBehind overrides DefaultMaxRelayBehind (bytes).
	MaxRelayBehind uint64
	// DeadGTIDs is the old primary's last known GTID set (MariaDB:
	// gtid_binlog_state), used when the snapshot cannot read it.
	DeadGTIDs mysql.GTIDSet
	// DeadOrigin is the old primary's server_id (MariaDB) or server_uuid
	// (MySQL); its transactions are never errant. Empty means: from the
	// snapshot, or from the replicas' Master_Server_Id / Source_UUID.
	DeadOrigin string
}

// Rejection says why a server cannot become the new primary.
type Rejection struct {
	Server string `json:"server"`
	Reason string `json:"reason"`
}

func (r Rejection) String() string { return r.Server + ": " + r.Reason }

// candidate is a survivor under consideration.
type candidate struct {
	node    *topology.Node
	order   int // position in the configuration
	latest  bool
	errant  mysql.GTIDSet
	reasons []string
}

// ChooseCandidate picks the new primary among the servers of snap other than
// dead (the section name of the old primary), following MHA's rules:
//
//  1. an explicit o.NewPrimary, if it is eligible;
//  2. with latest_priority: a candidate_master server among the latest
//     replicas, then any candidate_master, then any latest replica, then any
//     replica; without it: candidate_master servers, then any replica;
//
// where "bad" servers are never chosen: no_master, log_bin off, an older
// major version than the newest survivor, an SQL thread more than
// o.MaxRelayBehind bytes behind the latest replica's IO thread (with
// check_repl_delay), and — cloudmha's rule — a server holding errant GTIDs
// (transactions neither the other survivors nor the old primary have) unless
// o.Force. Within a tier, higher Priority comes first, then o.PreferZone, then
// configuration order. "Latest" means holding every (non-errant) transaction
// any survivor holds.
//
// Every server not chosen because of a rule is returned as a Rejection.
func ChooseCandidate(snap *topology.Snapshot, cfg *config.Config, dead string, o ChooseOptions) (*topology.Node, []Rejection, error) {
	if o.MaxRelayBehind == 0 {
		o.MaxRelayBehind = DefaultMaxRelayBehind
	}
	var rejected []Rejection
	var deadNode *topology.Node
	var cands []*candidate
	for i, n := range snap.Nodes {
		if n.Server.Name == dead {
			deadNode = n
			continue
		}
		if !n.Reachable() {
			rejected = append(rejected, Rejection{n.Server.Name, "unreachable: " + errString(n.Err)})
			continue
		}
		cands = append(cands, &candidate{node: n, order: i})
	}
	if len(cands) == 0 {
		return nil, rejected, fmt.Errorf("choose new primary: %w: no other server answers", ErrNoCandidate)
	}

	deadSet, origin := deadInfo(deadNode, cands, o)
	if err := markErrant(cands, deadSet, origin); err != nil {
		return nil, rejected, fmt.Errorf("choose new primary: %w", err)
	}
	if err := markLatest(cands); err != nil {
		return nil, rejected, fmt.Errorf("choose new primary: %w", err)
	}
	markBad(cands, cfg, o)

	if o.NewPrimary != "" {
		c := findCandidate(cands, o.NewPrimary)
		if c == nil {
			for _, r := range rejected {
				if matchesServer(snap, r.Server, o.NewPrimary) {
					return nil, rejected, fmt.Errorf("choose new primary: %w: requested %s is %s", ErrNoCandidate, o.NewPrimary, r.Reason)
				}
			}
			return nil, rejected, fmt.Errorf("choose new primary: %w: requested %q is not a configured server other than the old primary", ErrNoCandidate, o.NewPrimary)
		}
		if len(c.reasons) > 0 && !o.Force {
			return nil, append(rejected, Rejection{c.node.Server.Name, strings.Join(c.reasons, "; ")}),
				fmt.Errorf("choose new primary: %w: requested %s is bad as a new primary: %s (use force to override)",
					ErrNoCandidate, c.node.Server.Name, strings.Join(c.reasons, "; "))
		}
		for _, other := range cands {
			if other != c && len(other.reasons) > 0 {
				rejected = append(rejected, Rejection{other.node.Server.Name, strings.Join(other.reasons, "; ")})
			}
		}
		return c.node, rejected, nil
	}

	var good []*candidate
	for _, c := range cands {
		if len(c.reasons) > 0 {
			rejected = append(rejected, Rejection{c.node.Server.Name, strings.Join(c.reasons, "; ")})
			continue
		}
		good = append(good, c)
	}
	if len(good) == 0 {
		var why []string
		for _, r := range rejected {
			why = append(why, r.String())
		}
		return nil, rejected, fmt.Errorf("choose new primary: %w: %s", ErrNoCandidate, strings.Join(why, "; "))
	}
	tier := func(c *candidate) int {
		cm := c.node.Server.CandidateMaster
		if cfg.LatestPriority {
			switch {
			case cm && c.latest:
				return 0
			case cm:
				return 1
			case c.latest:
				return 2
			default:
				return 3
			}
		}
		if cm {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(good, func(a, b *candidate) int {
		if c := cmp.Compare(tier(a), tier(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.node.Server.Priority, a.node.Server.Priority); c != 0 {
			return c
		}
		if o.PreferZone != "" {
			za, zb := a.node.Server.Zone == o.PreferZone, b.node.Server.Zone == o.PreferZone
			if za != zb {
				if za {
					return -1
				}
				return 1
			}
		}
		return cmp.Compare(a.order, b.order)
	})
	return good[0].node, rejected, nil
}

func errString(err error) string {
	if err == nil {
		return "no status"
	}
	return err.Error()
}

// deadInfo returns the old primary's last known GTID set and origin id.
func deadInfo(deadNode *topology.Node, cands []*candidate, o ChooseOptions) (mysql.GTIDSet, string) {
	set, origin := o.DeadGTIDs, o.DeadOrigin
	if deadNode != nil {
		if st := deadNode.Status(); st != nil {
			if u, err := set.Union(st.GTIDExecuted); err == nil {
				set = u
			}
			if origin == "" {
				origin = originOf(st)
			}
		}
	}
	if origin == "" && deadNode != nil {
		// The replicas remember whom they replicated from.
		for _, c := range cands {
			st := c.node.Status()
			if st.Replica == nil || !hostMatches(deadNode.Server, st.Replica.SourceHost, st.Replica.SourcePort) {
				continue
			}
			if st.Flavor.IsMariaDB() && st.Replica.SourceServerID != 0 {
				origin = strconv.FormatUint(uint64(st.Replica.SourceServerID), 10)
			} else if st.Replica.SourceUUID != "" {
				origin = st.Replica.SourceUUID
			}
			if origin != "" {
				break
			}
		}
	}
	return set, origin
}

// originOf is the id a server's own transactions carry.
func originOf(st *mysql.Status) string {
	if st.Flavor.IsMariaDB() {
		return strconv.FormatUint(uint64(st.ServerID), 10)
	}
	return st.ServerUUID
}

func hostMatches(s config.Server, host string, port int) bool {
	return port == s.Port && (host == s.IP || host == s.Hostname || host == s.Host())
}

// markErrant sets each candidate's errant GTIDs: what it holds that neither
// another survivor nor the old primary holds, leaving out the old primary's
// own transactions (replicas may hold newer ones than its last known set).
func markErrant(cands []*candidate, deadSet mysql.GTIDSet, origin string) error {
	for _, c := range cands {
		others := deadSet
		for _, d := range cands {
			if d == c {
				continue
			}
			u, err := others.Union(d.node.Status().GTIDExecuted)
			if err != nil {
				return fmt.Errorf("compare GTIDs of %s and %s: %w", c.node.Server.Name, d.node.Server.Name, err)
			}
			others = u
		}
		if others.IsEmpty() {
			// Nothing to compare with: a lone survivor and no known
			// state of the old primary. It cannot be judged errant.
			continue
		}
		e, err := mysql.Errant(c.node.Status().GTIDExecuted.WithoutOrigin(origin), others)
		if err != nil {
			return fmt.Errorf("errant GTIDs of %s: %w", c.node.Server.Name, err)
		}
		c.errant = e
	}
	return nil
}

// markLatest marks the candidates whose non-errant transactions include every
// other candidate's non-errant transactions. When the sets diverge and none
// holds them all, the maximal ones (contained in no other) are latest.
func markLatest(cands []*candidate) error {
	clean := make([]mysql.GTIDSet, len(cands))
	var all mysql.GTIDSet
	for i, c := range cands {
		s, err := c.node.Status().GTIDExecuted.Subtract(c.errant)
		if err != nil {
			return fmt.Errorf("GTIDs of %s: %w", c.node.Server.Name, err)
		}
		clean[i] = s
		if all, err = all.Union(s); err != nil {
			return fmt.Errorf("GTIDs of %s: %w", c.node.Server.Name, err)
		}
	}
	found := false
	for i, c := range cands {
		if clean[i].Contains(all) {
			c.latest, found = true, true
		}
	}
	if found {
		return nil
	}
	for i, c := range cands {
		c.latest = true
		for j := range cands {
			if i != j && clean[j].Contains(clean[i]) && !clean[i].Contains(clean[j]) {
				c.latest = false
				break
			}
		}
	}
	return nil
}

// markBad records MHA's "bad candidate" reasons and cloudmha's errant rule.
func markBad(cands []*candidate, cfg *config.Config, o ChooseOptions) {
	var newest mysql.Version
	var latestRead mysql.BinlogCoordinates
	for _, c := range cands {
		st := c.node.Status()
		if v := st.Flavor.Version; v.Major > newest.Major || (v.Major == newest.Major && v.Minor > newest.Minor) {
			newest = mysql.Version{Major: v.Major, Minor: v.Minor}
		}
		if st.Replica != nil && st.Replica.ReadPosition().Compare(latestRead) > 0 {
			latestRead = st.Replica.ReadPosition()
		}
	}
	for _, c := range cands {
		s, st := c.node.Server, c.node.Status()
		if s.NoMaster {
			c.reasons = append(c.reasons, "no_master is set")
		}
		if !st.LogBin {
			c.reasons = append(c.reasons, "log_bin is off")
		}
		if v := st.Flavor.Version; v.Major < newest.Major || (v.Major == newest.Major && v.Minor < newest.Minor) {
			c.reasons = append(c.reasons, fmt.Sprintf("version %d.%d is older than %d.%d of another server", v.Major, v.Minor, newest.Major, newest.Minor))
		}
		if cfg.CheckReplDelay && st.Replica != nil && !latestRead.IsZero() {
			exec := st.Replica.ExecPosition()
			switch {
			case exec.File != latestRead.File:
				c.reasons = append(c.reasons, fmt.Sprintf("SQL thread far behind: applied up to %s, the latest replica read %s (check_repl_delay)", exec, latestRead))
			case latestRead.Pos > exec.Pos && latestRead.Pos-exec.Pos > o.MaxRelayBehind:
				c.reasons = append(c.reasons, fmt.Sprintf("SQL thread %d bytes behind the latest replica (check_repl_delay)", latestRead.Pos-exec.Pos))
			}
		}
		if !c.errant.IsEmpty() && !o.Force {
			c.reasons = append(c.reasons, fmt.Sprintf("errant GTIDs %s (transactions no other server has; promoting it would spread them — force overrides)", c.errant))
		}
	}
}

func findCandidate(cands []*candidate, want string) *candidate {
	for _, c := range cands {
		s := c.node.Server
		if s.Name == want || s.Hostname == want || (s.IP != "" && s.IP == want) || s.Addr() == want {
			return c
		}
	}
	return nil
}

func matchesServer(snap *topology.Snapshot, name, want string) bool {
	for _, n := range snap.Nodes {
		s := n.Server
		if s.Name == name && (s.Name == want || s.Hostname == want || (s.IP != "" && s.IP == want) || s.Addr() == want) {
			return true
		}
	}
	return false
}
