// Package topology takes a consistent picture of a cluster (a Snapshot) and
// judges it: which server is the primary, who replicates from whom, and what
// is wrong with replication (check-repl). It reads servers through the small
// Reader interface, so the checks themselves are pure functions that unit
// tests drive with hand-made snapshots.
package topology

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// Reader reads the state of one server. The production implementation is
// MySQLReader; tests substitute fakes.
type Reader interface {
	Read(ctx context.Context, s config.Server) (*NodeState, error)
}

// NodeState is what a Reader learned about one server.
type NodeState struct {
	Status *mysql.Status
	// Grants of the monitoring user itself (SHOW GRANTS); nil when not read.
	Grants []string
	// ReplGrants maps "'user'@'host'" of the replication user to its grants
	// on this server; a key with a nil value means the account is missing.
	ReplGrants map[string][]string
	// ReplGrantsErr is set when the replication account could not be read
	// (for example, the monitoring user lacks SELECT on mysql.user).
	ReplGrantsErr error
	// Stats are the server's statistics for metrics, read in the same round
	// as Status when the reader asks for them (MySQLReader.Stats); nil
	// otherwise. Failures of their optional parts are in Stats.Err.
	Stats *mysql.Stats
}

// Node is one configured server in a Snapshot.
type Node struct {
	Server  config.Server
	State   *NodeState    // nil when Err is set
	Err     error         // why the server could not be read
	Elapsed time.Duration // how long reading it took
}

// Reachable reports whether the server answered.
func (n *Node) Reachable() bool { return n.Err == nil && n.State != nil && n.State.Status != nil }

// Status is a shortcut for n.State.Status; nil when unreachable.
func (n *Node) Status() *mysql.Status {
	if !n.Reachable() {
		return nil
	}
	return n.State.Status
}

// Snapshot is the state of every configured server read concurrently.
type Snapshot struct {
	Cluster string
	Nodes   []*Node
	TakenAt time.Time
	Elapsed time.Duration
}

// ErrSnapshotTimeout marks a node that did not answer within the snapshot's
// total time budget.
var ErrSnapshotTimeout = errors.New("no answer within the snapshot time budget")

// Take reads every server of cfg concurrently. The whole snapshot is bounded
// by budget: a server that has not answered by then is recorded with
// ErrSnapshotTimeout, so one silent host never delays the picture of the
// others.
func Take(ctx context.Context, cfg *config.Config, r Reader, budget time.Duration) *Snapshot {
	start := time.Now()
	snap := &Snapshot{Cluster: cfg.Name, TakenAt: start, Nodes: make([]*Node, len(cfg.Servers))}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	type result struct {
		i     int
		state *NodeState
		err   error
		took  time.Duration
	}
	results := make(chan result, len(cfg.Servers))
	var wg sync.WaitGroup
	for i, s := range cfg.Servers {
		snap.Nodes[i] = &Node{Server: s, Err: ErrSnapshotTimeout, Elapsed: budget}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			st, err := r.Read(ctx, s)
			results <- result{i: i, state: st, err: err, took: time.Since(t0)}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	for {
		select {
		case res, ok := <-results:
			if !ok {
				snap.Elapsed = time.Since(start)
				return snap
			}
			n := snap.Nodes[res.i]
			n.State, n.Err, n.Elapsed = res.state, res.err, res.took
			if n.Err == nil && (n.State == nil || n.State.Status == nil) {
				n.Err = fmt.Errorf("reader returned no status for %s", n.Server.Name)
			}
		case <-ctx.Done():
			// Readers honour ctx, but a driver stuck in a syscall may not:
			// return what we have and let the stragglers finish on their own.
			snap.Elapsed = time.Since(start)
			return snap
		}
	}
}

// Primaries returns the reachable nodes that do not replicate from anyone.
func (s *Snapshot) Primaries() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if st := n.Status(); st != nil && st.Replica == nil {
			out = append(out, n)
		}
	}
	return out
}

// Writable returns the reachable nodes with read_only off.
func (s *Snapshot) Writable() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if st := n.Status(); st != nil && !st.ReadOnly {
			out = append(out, n)
		}
	}
	return out
}

// SourceOf returns the configured node that n replicates from, or nil when n
// is not a replica or its source is not one of the configured servers. The
// source is matched by host and port as written in CHANGE MASTER, then by
// the server ID a connected IO thread reports.
func (s *Snapshot) SourceOf(n *Node) *Node {
	st := n.Status()
	if st == nil || st.Replica == nil {
		return nil
	}
	rs := st.Replica
	for _, m := range s.Nodes {
		if m == n {
			continue
		}
		if matchesHost(m, rs.SourceHost, rs.SourcePort) {
			return m
		}
	}
	// Master_Server_Id is only current while the IO thread is connected; after
	// CHANGE MASTER to an unreachable host it still names the old source.
	if rs.SourceServerID != 0 && rs.IORunning == "Yes" {
		for _, m := range s.Nodes {
			if ms := m.Status(); m != n && ms != nil && ms.ServerID == rs.SourceServerID {
				return m
			}
		}
	}
	return nil
}

func matchesHost(n *Node, host string, port int) bool {
	if port != n.Server.Port {
		return false
	}
	if host == n.Server.IP || host == n.Server.Hostname {
		return true
	}
	if st := n.Status(); st != nil && st.Hostname != "" && host == st.Hostname {
		return true
	}
	return false
}
