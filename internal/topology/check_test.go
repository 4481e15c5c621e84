package topology

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// fixture builds a healthy 3-server MariaDB cluster: db1 primary, db2/db3 replicas.
type fixture struct {
	cfg   *config.Config
	snap  *Snapshot
	nodes map[string]*Node
}

func mariadb() mysql.Flavor {
	return mysql.Flavor{Kind: mysql.MariaDB, Version: mysql.Version{Major: 10, Minor: 11, Patch: 6}}
}

var replGrants = map[string][]string{
	"'repl'@'198.18.0.%'": {"GRANT REPLICATION SLAVE ON *.* TO `repl`@`198.18.0.%` IDENTIFIED BY PASSWORD '*x'"},
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		cfg:   &config.Config{Name: "app1", CheckReplDelay: true, CheckReplFilter: true},
		snap:  &Snapshot{Cluster: "app1", Elapsed: 12 * time.Millisecond},
		nodes: map[string]*Node{},
	}
	for i, name := range []string{"db1", "db2", "db3"} {
		ip := "198.18.0.1" + string(rune('1'+i))
		s := config.Server{Name: name, Hostname: ip, IP: ip, Port: 3306, User: "cloudmha", ReplUser: "repl"}
		st := &mysql.Status{
			Flavor: mariadb(), ServerID: uint32(i + 1), Port: 3306, ReadOnly: i > 0,
			LogBin: true, LogReplicaUpdates: true, GTIDMode: "ON", GTIDStrictMode: true,
			GTIDExecuted:    mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-100"),
			SlaveNetTimeout: 10 * time.Second,
			SemiSync:        mysql.SemiSync{Available: true, ReplicaEnabled: i > 0, ReplicaOn: i > 0},
		}
		if i == 0 {
			st.SemiSync.SourceEnabled, st.SemiSync.SourceOn, st.SemiSync.SourceClients, st.SemiSync.WaitPoint = true, true, 2, "AFTER_SYNC"
		} else {
			lag := int64(0)
			st.GTIDExecuted = mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-99")
			st.Replica = &mysql.ReplicaStatus{
				SourceHost: "198.18.0.11", SourcePort: 3306, SourceUser: "repl", IORunning: "Yes", SQLRunning: true,
				SecondsBehind: &lag, AutoPosition: true, UsingGTID: "Slave_Pos", SourceServerID: 1, HeartbeatPeriod: 2 * time.Second,
			}
		}
		f.cfg.Servers = append(f.cfg.Servers, s)
		n := &Node{Server: s, State: &NodeState{Status: st, Grants: []string{"GRANT ALL PRIVILEGES ON *.* TO `cloudmha`@`198.18.0.%` WITH GRANT OPTION"}, ReplGrants: replGrants}}
		f.snap.Nodes = append(f.snap.Nodes, n)
		f.nodes[name] = n
	}
	return f
}

func (f *fixture) st(name string) *mysql.Status { return f.nodes[name].State.Status }

func (f *fixture) check() *Report { return Check(f.snap, f.cfg, CheckOptions{MaxLag: 5 * time.Second}) }

func failureChecks(r *Report) []string {
	var out []string
	for _, f := range r.Failures() {
		out = append(out, f.Check+"@"+f.Server+": "+f.Message)
	}
	return out
}

func TestHealthyCluster(t *testing.T) {
	f := newFixture(t)
	r := f.check()
	if !r.Healthy {
		t.Fatalf("healthy fixture reported unhealthy: %v", failureChecks(r))
	}
	if r.Primary != "db1" {
		t.Errorf("primary %q, want db1", r.Primary)
	}
	for _, x := range r.Findings {
		if x.Severity == Warn {
			t.Errorf("unexpected warning: %s %s", x.Check, x.Message)
		}
	}
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), HealthOK+"\n") {
		t.Errorf("text output does not end with MHA's line:\n%s", b.String())
	}
}

// Each case breaks the healthy cluster in one way and names the check that
// must fail and words the message must contain.
func TestCheckFailures(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(f *fixture)
		check  string
		words  []string
	}{
		{"sql thread stopped", func(f *fixture) {
			f.st("db2").Replica.SQLRunning = false
			f.st("db2").Replica.LastSQLErrno, f.st("db2").Replica.LastSQLError = 1062, "Duplicate entry '7'"
		}, "replica.sql_thread", []string{"db2", "SQL thread", "1062", "Duplicate entry"}},
		{"io thread stopped", func(f *fixture) {
			f.st("db3").Replica.IORunning = "No"
		}, "replica.io_thread", []string{"db3", "IO thread is No"}},
		{"io thread connecting", func(f *fixture) {
			f.st("db3").Replica.IORunning = "Connecting"
			f.st("db3").Replica.LastIOErrno, f.st("db3").Replica.LastIOError = 2003, "error connecting to master"
		}, "replica.io_thread", []string{"Connecting", "2003"}},
		{"replica points elsewhere", func(f *fixture) {
			f.st("db3").Replica.SourceHost, f.st("db3").Replica.SourceServerID = "198.18.0.99", 99
		}, "replica.source", []string{"db3", "198.18.0.99:3306", "not a configured server"}},
		{"replica points elsewhere, stale server id", func(f *fixture) {
			// After CHANGE MASTER to a dead address, Master_Server_Id still
			// names the old source: it must not count.
			f.st("db3").Replica.SourceHost, f.st("db3").Replica.IORunning = "198.18.0.99", "Connecting"
		}, "replica.source", []string{"198.18.0.99:3306", "not a configured server"}},
		{"replica of a replica", func(f *fixture) {
			f.st("db3").Replica.SourceHost, f.st("db3").Replica.SourceServerID = "198.18.0.12", 2
		}, "replica.source", []string{"db3 replicates from db2, not from the primary db1"}},
		{"two writable", func(f *fixture) {
			f.st("db2").ReadOnly = false
		}, "primary.writable", []string{"2 writable servers", "db1, db2"}},
		{"two primaries", func(f *fixture) {
			f.st("db2").Replica = nil
		}, "primary.count", []string{"2 servers do not replicate", "db1, db2"}},
		{"errant gtid", func(f *fixture) {
			f.st("db3").GTIDExecuted = mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-99,0-3-101")
		}, "replica.errant_gtid", []string{"db3", "0-3-101"}},
		{"lagging replica", func(f *fixture) {
			lag := int64(42)
			f.st("db2").Replica.SecondsBehind = &lag
		}, "replica.lag", []string{"db2 lags 42s", "limit 5s"}},
		{"missing replication grant", func(f *fixture) {
			f.nodes["db1"].State.ReplGrants = map[string][]string{"'repl'@'198.18.0.%'": {"GRANT USAGE ON *.* TO `repl`@`198.18.0.%`"}}
		}, "grants.replication", []string{"db1", "REPLICATION SLAVE", "db2"}},
		{"missing replication account", func(f *fixture) {
			f.nodes["db1"].State.ReplGrants = map[string][]string{"'repl'@'%'": nil}
		}, "grants.replication", []string{"does not exist"}},
		{"file/position replication", func(f *fixture) {
			f.st("db2").Replica.AutoPosition, f.st("db2").Replica.UsingGTID = false, "No"
		}, "replica.gtid", []string{"db2", "position"}},
		{"filters differ", func(f *fixture) {
			f.st("db3").Replica.Filters = mysql.Filters{IgnoreDB: "scratch"}
		}, "cluster.replication_filter", []string{"db3", "scratch"}},
		{"unreachable", func(f *fixture) {
			f.nodes["db3"].State, f.nodes["db3"].Err = nil, errors.New("dial tcp 198.18.0.13:3306: connect: connection refused")
		}, "server.reachable", []string{"db3", "connection refused"}},
		{"candidate without binlog", func(f *fixture) {
			f.nodes["db2"].Server.CandidateMaster = true
			f.st("db2").LogBin = false
		}, "candidate.log_bin", []string{"db2", "log_bin=OFF"}},
		{"mixed flavors", func(f *fixture) {
			f.st("db3").Flavor = mysql.Flavor{Kind: mysql.MySQL, Version: mysql.Version{Major: 8, Minor: 0, Patch: 36}}
		}, "cluster.flavor", []string{"mixed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.mutate(f)
			r := f.check()
			if r.Healthy {
				t.Fatalf("reported healthy")
			}
			var hit *Finding
			for i, x := range r.Failures() {
				if x.Check == tc.check {
					hit = &r.Failures()[i]
					break
				}
			}
			if hit == nil {
				t.Fatalf("no %s failure; failures: %v", tc.check, failureChecks(r))
			}
			for _, w := range tc.words {
				if !strings.Contains(hit.Message, w) {
					t.Errorf("message %q lacks %q", hit.Message, w)
				}
			}
			if hit.Hint == "" {
				t.Errorf("failure %s has no hint", hit.Check)
			}
			var b strings.Builder
			_ = WriteText(&b, r)
			if !strings.Contains(b.String(), HealthNotOK) {
				t.Errorf("text output lacks %q", HealthNotOK)
			}
		})
	}
}

func TestWarningsOnly(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(f *fixture)
		check  string
	}{
		{"ignore_fail unreachable", func(f *fixture) {
			f.nodes["db3"].Server.IgnoreFail = true
			f.nodes["db3"].State, f.nodes["db3"].Err = nil, errors.New("timeout")
		}, "server.reachable"},
		{"lag without check_repl_delay", func(f *fixture) {
			f.cfg.CheckReplDelay = false
			lag := int64(42)
			f.st("db2").Replica.SecondsBehind = &lag
		}, "replica.lag"},
		{"semi-sync fell back", func(f *fixture) { f.st("db1").SemiSync.SourceOn = false }, "semisync.primary"},
		{"semi-sync off", func(f *fixture) { f.st("db1").SemiSync.SourceEnabled = false }, "semisync.primary"},
		{"semi-sync source on a replica", func(f *fixture) { f.st("db2").SemiSync.SourceEnabled = true }, "semisync.replica_source_side"},
		{"slow detection", func(f *fixture) { f.st("db2").SlaveNetTimeout = 60 * time.Second }, "replica.detection.slave_net_timeout"},
		{"long heartbeat", func(f *fixture) { f.st("db2").Replica.HeartbeatPeriod = 30 * time.Second }, "replica.detection.heartbeat"},
		{"monitor lacks privileges", func(f *fixture) {
			f.nodes["db2"].State.Grants = []string{"GRANT SELECT, PROCESS ON *.* TO `cloudmha`@`%`"}
		}, "grants.monitor"},
		{"filters differ, check off", func(f *fixture) {
			f.cfg.CheckReplFilter = false
			f.st("db3").Replica.Filters = mysql.Filters{IgnoreDB: "scratch"}
			f.st("db3").SlaveNetTimeout = time.Hour // something to warn about
		}, "replica.detection.slave_net_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.mutate(f)
			r := f.check()
			if !r.Healthy {
				t.Fatalf("a warning made the cluster unhealthy: %v", failureChecks(r))
			}
			found := false
			for _, x := range r.Findings {
				found = found || (x.Check == tc.check && x.Severity == Warn)
			}
			if !found {
				t.Fatalf("no %s warning in %+v", tc.check, r.Findings)
			}
		})
	}
}

// fakeReader serves statuses from a fixture; the primary's GTID set advances
// on each read, as it does under load.
// Take reads the servers concurrently, so the read counter is locked.
type fakeReader struct {
	f     *fixture
	mu    sync.Mutex
	reads map[string]int
}

func (r *fakeReader) Read(_ context.Context, s config.Server) (*NodeState, error) {
	r.mu.Lock()
	r.reads[s.Name]++
	nth := r.reads[s.Name]
	r.mu.Unlock()
	n := r.f.nodes[s.Name]
	if n.Err != nil {
		return nil, n.Err
	}
	st := *n.State
	status := *st.Status
	if s.Name == "db1" && nth > 1 {
		status.GTIDExecuted = mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-105")
	}
	st.Status = &status
	return &st, nil
}

// A replica read after the primary may hold transactions newer than the
// primary's reading: CheckRepl must not call them errant.
func TestCheckReplRereadsPrimaryBeforeCallingErrant(t *testing.T) {
	f := newFixture(t)
	f.st("db2").GTIDExecuted = mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-103") // newer than db1's first reading
	r := &fakeReader{f: f, reads: map[string]int{}}
	rep, _ := CheckRepl(context.Background(), f.cfg, r, time.Second, CheckOptions{})
	if !rep.Healthy {
		t.Fatalf("race reported as failure: %v", failureChecks(rep))
	}
	if r.reads["db1"] != 2 {
		t.Fatalf("primary read %d times, want 2", r.reads["db1"])
	}
	// A real errant transaction survives the second reading.
	f = newFixture(t)
	f.st("db3").GTIDExecuted = mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-99,0-3-101")
	rep, _ = CheckRepl(context.Background(), f.cfg, &fakeReader{f: f, reads: map[string]int{}}, time.Second, CheckOptions{})
	if rep.Healthy {
		t.Fatal("errant GTID not reported")
	}
}

type slowReader struct{ delay map[string]time.Duration }

func (r slowReader) Read(ctx context.Context, s config.Server) (*NodeState, error) {
	select {
	case <-time.After(r.delay[s.Name]):
		return &NodeState{Status: &mysql.Status{Flavor: mariadb()}}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestTakeIsBoundedByBudget(t *testing.T) {
	cfg := &config.Config{Name: "x", Servers: []config.Server{{Name: "a"}, {Name: "b"}}}
	start := time.Now()
	snap := Take(context.Background(), cfg, slowReader{delay: map[string]time.Duration{"a": 0, "b": time.Hour}}, 200*time.Millisecond)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Take ignored its budget: %s", el)
	}
	if !snap.Nodes[0].Reachable() || snap.Nodes[1].Reachable() {
		t.Fatalf("want a reachable, b not: %+v %+v", snap.Nodes[0], snap.Nodes[1])
	}
}

func TestHostMatches(t *testing.T) {
	cases := []struct {
		pattern, addr string
		want          bool
	}{
		{"%", "198.18.0.12", true},
		{"198.18.0.%", "198.18.0.12", true},
		{"198.18.0.%", "198.18.1.12", false},
		{"198.18.0.1_", "198.18.0.12", true},
		{"198.18.0.1_", "198.18.0.123", false},
		{"198.18.0.0/255.255.255.0", "198.18.0.12", true},
		{"198.18.0.0/255.255.255.0", "198.18.1.12", false},
		{"198.18.0.0/24", "198.18.0.200", true},
		{"198.18.0.0/255.0.255.0", "198.18.0.1", false},
		{"DB2.example.com", "db2.example.com", true},
		{"%.example.com", "db2.example.com", true},
		{"localhost", "198.18.0.12", false},
		{"%", "", false},
	}
	for _, c := range cases {
		if got := HostMatches(c.pattern, c.addr); got != c.want {
			t.Errorf("HostMatches(%q, %q) = %v, want %v", c.pattern, c.addr, got, c.want)
		}
	}
}
