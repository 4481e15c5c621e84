package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/topology"
)

var maria = mysql.Flavor{Kind: mysql.MariaDB, Version: mysql.Version{Major: 10, Minor: 11, Patch: 6}}

func gs(s string) mysql.GTIDSet { return mysql.MustParseGTIDSet(mysql.MariaDB, s) }

// testCluster builds a config and a snapshot: server1 is the primary (dead
// when dead is set: unreachable), the others replicate from it.
type testCluster struct {
	cfg  *config.Config
	snap *topology.Snapshot
}

func newCluster(n int) *testCluster {
	tc := &testCluster{cfg: &config.Config{Name: "app1", CheckReplDelay: true, LatestPriority: true},
		snap: &topology.Snapshot{Cluster: "app1", TakenAt: time.Unix(1700000000, 0)}}
	for i := 1; i <= n; i++ {
		s := config.Server{Name: fmt.Sprintf("server%d", i), Hostname: fmt.Sprintf("10.0.0.%d", i), Port: 3306,
			User: "root", Password: config.NewSecret("pw"), ReplUser: "repl", ReplPassword: config.NewSecret("rpw")}
		tc.cfg.Servers = append(tc.cfg.Servers, s)
		st := &mysql.Status{Flavor: maria, ServerID: uint32(i), LogBin: true, LogReplicaUpdates: true,
			ReadOnly: i != 1, GTIDExecuted: gs("0-1-100")}
		if i != 1 {
			zero := int64(0)
			st.Replica = &mysql.ReplicaStatus{SourceHost: "10.0.0.1", SourcePort: 3306, IORunning: mysql.IOYes, SQLRunning: true,
				SourceLogFile: "mysql-bin.000003", ReadSourceLogPos: 5000, RelaySourceLogFile: "mysql-bin.000003",
				ExecSourceLogPos: 5000, SourceServerID: 1, SecondsBehind: &zero, AutoPosition: true, UsingGTID: "Slave_Pos"}
		}
		tc.snap.Nodes = append(tc.snap.Nodes, &topology.Node{Server: s, State: &topology.NodeState{Status: st}})
	}
	return tc
}

func (tc *testCluster) node(name string) *topology.Node {
	for _, n := range tc.snap.Nodes {
		if n.Server.Name == name {
			return n
		}
	}
	panic(name)
}

func (tc *testCluster) st(name string) *mysql.Status { return tc.node(name).Status() }

// server changes a server's configuration in both cfg and snapshot.
func (tc *testCluster) server(name string, f func(*config.Server)) {
	for i := range tc.cfg.Servers {
		if tc.cfg.Servers[i].Name == name {
			f(&tc.cfg.Servers[i])
		}
	}
	f(&tc.node(name).Server)
}

// kill makes server1 unreachable.
func (tc *testCluster) kill(name string) {
	n := tc.node(name)
	n.State, n.Err = nil, errors.New("dial tcp: connection refused")
}

// fakeOps records every call as "Op server[ arg]" and answers from gtids.
type fakeOps struct {
	mu    sync.Mutex
	calls []string
	gtids map[string]mysql.GTIDSet
	fail  map[string]error // call string -> error
	ro    map[string]bool
	// onCall runs (unlocked) before each call is answered.
	onCall func(call string)
}

func newFakeOps() *fakeOps {
	return &fakeOps{gtids: map[string]mysql.GTIDSet{}, fail: map[string]error{}, ro: map[string]bool{}}
}

func (f *fakeOps) rec(call string) error {
	if f.onCall != nil {
		f.onCall(call)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.fail[call]
}

func (f *fakeOps) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeOps) GTIDExecuted(_ context.Context, s config.Server) (mysql.GTIDSet, error) {
	err := f.rec("GTIDExecuted " + s.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gtids[s.Name], err
}
func (f *fakeOps) SetReadOnly(_ context.Context, s config.Server, on bool) error {
	err := f.rec(fmt.Sprintf("SetReadOnly %s %v", s.Name, on))
	if err == nil {
		f.mu.Lock()
		f.ro[s.Name] = on
		f.mu.Unlock()
	}
	return err
}
func (f *fakeOps) KillClientConnections(_ context.Context, s config.Server, _ ...string) (int, error) {
	return 2, f.rec("Kill " + s.Name)
}
func (f *fakeOps) StopReplicaIO(_ context.Context, s config.Server) error {
	return f.rec("StopReplicaIO " + s.Name)
}
func (f *fakeOps) StopReplica(_ context.Context, s config.Server) error {
	return f.rec("StopReplica " + s.Name)
}
func (f *fakeOps) StartReplica(_ context.Context, s config.Server) error {
	return f.rec("StartReplica " + s.Name)
}
func (f *fakeOps) ResetReplicaAll(_ context.Context, s config.Server) error {
	return f.rec("ResetReplicaAll " + s.Name)
}
func (f *fakeOps) WaitRelayApplied(_ context.Context, s config.Server) error {
	return f.rec("WaitRelayApplied " + s.Name)
}
func (f *fakeOps) ChangeSource(_ context.Context, s config.Server, src config.Server) error {
	return f.rec("ChangeSource " + s.Name + " " + src.Name)
}
func (f *fakeOps) WaitGTID(_ context.Context, s config.Server, set mysql.GTIDSet) error {
	err := f.rec("WaitGTID " + s.Name + " " + set.String())
	if err == nil {
		f.mu.Lock()
		u, _ := f.gtids[s.Name].Union(set)
		f.gtids[s.Name] = u
		f.mu.Unlock()
	}
	return err
}
func (f *fakeOps) WaitReplicating(_ context.Context, s config.Server) error {
	return f.rec("WaitReplicating " + s.Name)
}
func (f *fakeOps) SetSemiSync(_ context.Context, s config.Server, source, replica bool) error {
	return f.rec(fmt.Sprintf("SetSemiSync %s %v %v", s.Name, source, replica))
}
func (f *fakeOps) WritesRunning(_ context.Context, s config.Server, _ time.Duration) ([]string, error) {
	return nil, f.rec("WritesRunning " + s.Name)
}

// fakeMover logs into the same call log as the ops.
type fakeMover struct {
	ops *fakeOps
}

func (m fakeMover) Kind() string { return "fake" }
func (m fakeMover) Release(_ context.Context, c address.Change) error {
	return m.ops.rec("Release " + c.Old.Name)
}
func (m fakeMover) Acquire(_ context.Context, c address.Change) error {
	return m.ops.rec("Acquire " + c.New.Name)
}
func (m fakeMover) Holder(context.Context) (string, error) { return "", address.ErrHolderUnknown }

type fakeHooks struct {
	ops    *fakeOps
	report *Report
}

func (h *fakeHooks) Shutdown(_ context.Context, old config.Server, ssh bool) error {
	return h.ops.rec(fmt.Sprintf("Shutdown %s %v", old.Name, ssh))
}
func (h *fakeHooks) Report(_ context.Context, r *Report) error {
	h.report = r
	return h.ops.rec("Report " + r.NewPrimary)
}

type fakeSalvager struct {
	ops *fakeOps
	add mysql.GTIDSet
}

func (s fakeSalvager) Salvage(_ context.Context, dead, cand config.Server, have mysql.GTIDSet) (SalvageResult, error) {
	if err := s.ops.rec("Salvage " + dead.Name + " " + cand.Name + " " + have.String()); err != nil {
		return SalvageResult{}, err
	}
	s.ops.mu.Lock()
	u, _ := s.ops.gtids[cand.Name].Union(s.add)
	s.ops.gtids[cand.Name] = u
	s.ops.mu.Unlock()
	return SalvageResult{Applied: 1, AppliedGTIDs: s.add}, nil
}

// index returns the position of the first call with prefix, or -1.
func index(calls []string, prefix string) int {
	for i, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return i
		}
	}
	return -1
}

func mustIndex(t *testing.T, calls []string, prefix string) int {
	t.Helper()
	i := index(calls, prefix)
	if i < 0 {
		t.Fatalf("no call %q in\n%s", prefix, strings.Join(calls, "\n"))
	}
	return i
}
