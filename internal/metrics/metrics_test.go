package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/netprobe"
	"github.com/cloudmha/cloudmha/internal/notify"
	"github.com/cloudmha/cloudmha/internal/topology"
)

var mariadb = mysql.Flavor{Kind: mysql.MariaDB, Version: mysql.Version{Major: 10, Minor: 11, Patch: 6}}

const (
	uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidB = "73f86016-978b-11ea-b13a-ae5f5a1e3b8d"
)

func server(i int) config.Server {
	ip := fmt.Sprintf("198.18.0.%d", 10+i)
	return config.Server{Name: fmt.Sprintf("db%d", i), Hostname: ip, IP: ip, Port: 3306}
}

// cluster3 is a MariaDB cluster: db1 primary (with statistics and semi-sync
// on), db2 a replica 5 transactions and 300 bytes behind, db3 unreachable.
func cluster3() *topology.Snapshot {
	lag := int64(2)
	primary := &mysql.Status{
		Flavor: mariadb, ServerID: 1, Port: 3306, LogBin: true, GTIDMode: "ON",
		GTIDExecuted: mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-100"),
		Binlog:       mysql.BinlogCoordinates{File: "mysql-bin.000003", Pos: 1300},
		SemiSync:     mysql.SemiSync{Available: true, SourceEnabled: true, SourceOn: true, SourceClients: 1},
	}
	replica := &mysql.Status{
		Flavor: mariadb, ServerID: 2, Port: 3306, ReadOnly: true, LogBin: true, GTIDMode: "ON",
		GTIDExecuted:   mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-95,0-2-3"),
		GTIDCurrentPos: "0-1-95",
		SemiSync:       mysql.SemiSync{Available: true, ReplicaEnabled: true, ReplicaOn: true},
		Replica: &mysql.ReplicaStatus{
			SourceHost: "198.18.0.11", SourcePort: 3306, IORunning: mysql.IOYes, SQLRunning: true,
			SecondsBehind: &lag, SourceLogFile: "mysql-bin.000003", ReadSourceLogPos: 1000,
		},
	}
	at := time.Unix(1700000000, 0)
	return &topology.Snapshot{Cluster: "app1", Nodes: []*topology.Node{
		{Server: server(1), Elapsed: 12 * time.Millisecond, State: &topology.NodeState{Status: primary, Stats: &mysql.Stats{
			Questions: 1234, SlowQueries: 5, ThreadsConnected: 7, MaxConnections: 151,
			InnodbDeadlocks: 1, HasInnodbDeadlocks: true, BinlogBytes: 4096, BinlogFiles: 3, HasBinlog: true,
			SemiSyncTxWaits: 900, SemiSyncNoTx: 2, HasSemiSyncCounters: true,
			DataBytes: 1 << 20, DataBytesAt: at,
		}}},
		{Server: server(2), Elapsed: 8 * time.Millisecond, State: &topology.NodeState{Status: replica, Stats: &mysql.Stats{
			Questions: 10, ThreadsConnected: 2, MaxConnections: 151, HasInnodbDeadlocks: true,
		}}},
		{Server: server(3), Elapsed: time.Second, Err: errors.New("dial tcp 198.18.0.13:3306: connect: connection refused")},
	}}
}

const snapshotExposition = `
# HELP cloudmha_instance_binlog_bytes Sum of SHOW BINARY LOGS file sizes.
# TYPE cloudmha_instance_binlog_bytes gauge
cloudmha_instance_binlog_bytes{cluster="app1",instance="db1"} 4096
# HELP cloudmha_instance_data_bytes Data + index size of all tables.
# TYPE cloudmha_instance_data_bytes gauge
cloudmha_instance_data_bytes{cluster="app1",instance="db1"} 1.048576e+06
# HELP cloudmha_instance_innodb_deadlocks_total Innodb_deadlocks.
# TYPE cloudmha_instance_innodb_deadlocks_total counter
cloudmha_instance_innodb_deadlocks_total{cluster="app1",instance="db1"} 1
cloudmha_instance_innodb_deadlocks_total{cluster="app1",instance="db2"} 0
# HELP cloudmha_instance_max_connections @@max_connections.
# TYPE cloudmha_instance_max_connections gauge
cloudmha_instance_max_connections{cluster="app1",instance="db1"} 151
cloudmha_instance_max_connections{cluster="app1",instance="db2"} 151
# HELP cloudmha_instance_queries_total Questions (use rate() for QPS).
# TYPE cloudmha_instance_queries_total counter
cloudmha_instance_queries_total{cluster="app1",instance="db1"} 1234
cloudmha_instance_queries_total{cluster="app1",instance="db2"} 10
# HELP cloudmha_instance_read_duration_seconds How long the last read took.
# TYPE cloudmha_instance_read_duration_seconds gauge
cloudmha_instance_read_duration_seconds{cluster="app1",instance="db1"} 0.012
cloudmha_instance_read_duration_seconds{cluster="app1",instance="db2"} 0.008
cloudmha_instance_read_duration_seconds{cluster="app1",instance="db3"} 1
# HELP cloudmha_instance_read_only @@read_only.
# TYPE cloudmha_instance_read_only gauge
cloudmha_instance_read_only{cluster="app1",instance="db1"} 0
cloudmha_instance_read_only{cluster="app1",instance="db2"} 1
# HELP cloudmha_instance_role 1, with label role = primary, replica or unknown.
# TYPE cloudmha_instance_role gauge
cloudmha_instance_role{cluster="app1",instance="db1",role="primary"} 1
cloudmha_instance_role{cluster="app1",instance="db2",role="replica"} 1
cloudmha_instance_role{cluster="app1",instance="db3",role="unknown"} 1
# HELP cloudmha_instance_slow_queries_total Slow_queries.
# TYPE cloudmha_instance_slow_queries_total counter
cloudmha_instance_slow_queries_total{cluster="app1",instance="db1"} 5
cloudmha_instance_slow_queries_total{cluster="app1",instance="db2"} 0
# HELP cloudmha_instance_threads_connected Threads_connected.
# TYPE cloudmha_instance_threads_connected gauge
cloudmha_instance_threads_connected{cluster="app1",instance="db1"} 7
cloudmha_instance_threads_connected{cluster="app1",instance="db2"} 2
# HELP cloudmha_instance_up 1 when the manager could read the instance.
# TYPE cloudmha_instance_up gauge
cloudmha_instance_up{cluster="app1",instance="db1"} 1
cloudmha_instance_up{cluster="app1",instance="db2"} 1
cloudmha_instance_up{cluster="app1",instance="db3"} 0
# HELP cloudmha_replication_bytes_behind Bytes of the primary's current binlog the replica has not read; absent when they are in different files.
# TYPE cloudmha_replication_bytes_behind gauge
cloudmha_replication_bytes_behind{cluster="app1",instance="db2"} 300
# HELP cloudmha_replication_errant_transactions Transactions the replica has and the primary lacks.
# TYPE cloudmha_replication_errant_transactions gauge
cloudmha_replication_errant_transactions{cluster="app1",instance="db2"} 1
# HELP cloudmha_replication_io_running Replicas only: IO thread running.
# TYPE cloudmha_replication_io_running gauge
cloudmha_replication_io_running{cluster="app1",instance="db2"} 1
# HELP cloudmha_replication_seconds_behind_source Seconds_Behind_Master; absent when NULL.
# TYPE cloudmha_replication_seconds_behind_source gauge
cloudmha_replication_seconds_behind_source{cluster="app1",instance="db2"} 2
# HELP cloudmha_replication_sql_running Replicas only: SQL thread running.
# TYPE cloudmha_replication_sql_running gauge
cloudmha_replication_sql_running{cluster="app1",instance="db2"} 1
# HELP cloudmha_replication_transactions_behind GTID distance: transactions the primary has and the replica has not applied.
# TYPE cloudmha_replication_transactions_behind gauge
cloudmha_replication_transactions_behind{cluster="app1",instance="db2"} 5
# HELP cloudmha_semisync_replica_on Replica: semi-sync in effect.
# TYPE cloudmha_semisync_replica_on gauge
cloudmha_semisync_replica_on{cluster="app1",instance="db2"} 1
# HELP cloudmha_semisync_source_clients Primary: semi-sync replicas connected.
# TYPE cloudmha_semisync_source_clients gauge
cloudmha_semisync_source_clients{cluster="app1",instance="db1"} 1
# HELP cloudmha_semisync_source_no_tx_total Primary: commits not acknowledged (async fallback).
# TYPE cloudmha_semisync_source_no_tx_total counter
cloudmha_semisync_source_no_tx_total{cluster="app1",instance="db1"} 2
# HELP cloudmha_semisync_source_on Primary: semi-sync in effect (not fallen back to async).
# TYPE cloudmha_semisync_source_on gauge
cloudmha_semisync_source_on{cluster="app1",instance="db1"} 1
# HELP cloudmha_semisync_source_tx_waits_total Primary: commits that waited for an acknowledgement.
# TYPE cloudmha_semisync_source_tx_waits_total counter
cloudmha_semisync_source_tx_waits_total{cluster="app1",instance="db1"} 900
`

func TestObserveSnapshot(t *testing.T) {
	m := New("1.2.3")
	m.Cluster("app1").ObserveSnapshot(cluster3(), "db1")
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(snapshotExposition), instanceMetricNames(m)...); err != nil {
		t.Error(err)
	}
}

// instanceMetricNames lists every per-instance metric name.
func instanceMetricNames(m *Metrics) []string { return m.instances.d.names }

// series returns the exposition lines of the registry that mention every
// one of parts.
func series(t *testing.T, m *Metrics, parts ...string) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var out []string
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func TestUnreachableInstance(t *testing.T) {
	m := New("dev")
	c := m.Cluster("app1")
	snap := cluster3()
	c.ObserveSnapshot(snap, "db1")
	if got := series(t, m, `instance="db2"`, "cloudmha_replication_"); len(got) != 6 {
		t.Fatalf("db2 replication series while reachable: %q", got)
	}

	// db2 becomes unreachable: up=0, role unknown, and nothing else but
	// its read duration.
	snap.Nodes[1] = &topology.Node{Server: server(2), Elapsed: time.Second, Err: topology.ErrSnapshotTimeout}
	c.ObserveSnapshot(snap, "db1")
	got := series(t, m, `instance="db2"`)
	want := []string{
		`cloudmha_instance_read_duration_seconds{cluster="app1",instance="db2"} 1`,
		`cloudmha_instance_role{cluster="app1",instance="db2",role="unknown"} 1`,
		`cloudmha_instance_up{cluster="app1",instance="db2"} 0`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("unreachable db2:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The primary unreachable: replicas keep their own state but lose the
	// distances to it.
	snap = cluster3()
	snap.Nodes[0] = &topology.Node{Server: server(1), Err: errors.New("refused")}
	c.ObserveSnapshot(snap, "db1")
	for _, name := range []string{"transactions_behind", "bytes_behind", "errant_transactions"} {
		if got := series(t, m, "cloudmha_replication_"+name); len(got) != 0 {
			t.Errorf("%s without a readable primary: %q", name, got)
		}
	}
	if got := series(t, m, "cloudmha_replication_io_running"); len(got) != 1 {
		t.Errorf("io_running: %q", got)
	}
	if got := series(t, m, `role="primary"`, `instance="db1"`); len(got) != 1 {
		t.Errorf("the unreachable primary keeps role primary: %q", got)
	}

	// An instance removed from the configuration takes every series with
	// it, network ones included.
	c.ObserveNetwork("db3", 2*time.Millisecond, true)
	c.ObserveNetwork("db2", 2*time.Millisecond, true)
	snap.Nodes = snap.Nodes[:2]
	c.ObserveSnapshot(snap, "db1")
	if got := series(t, m, `instance="db3"`); len(got) != 0 {
		t.Errorf("removed db3 still has %q", got)
	}
	if got := series(t, m, `cloudmha_network_rtt_seconds{cluster="app1",instance="db2"}`); len(got) != 1 {
		t.Errorf("db2's network series lost: %q", got)
	}
}

func TestGTIDDistance(t *testing.T) {
	mysql8 := mysql.Flavor{Kind: mysql.MySQL, Version: mysql.Version{Major: 8, Minor: 0, Patch: 36}}
	node := func(i int, f mysql.Flavor, gtids string, mutate func(*mysql.Status)) *topology.Node {
		st := &mysql.Status{Flavor: f, ServerID: uint32(i), GTIDMode: "ON", GTIDExecuted: mysql.MustParseGTIDSet(f.Kind, gtids)}
		if i > 1 {
			st.Replica = &mysql.ReplicaStatus{SourceHost: "198.18.0.11", SourcePort: 3306, IORunning: mysql.IOYes, SQLRunning: true}
		}
		if mutate != nil {
			mutate(st)
		}
		return &topology.Node{Server: server(i), State: &topology.NodeState{Status: st}}
	}
	tests := []struct {
		name               string
		nodes              []*topology.Node
		behind, errant     []string
		wantNoBehindErrant bool
	}{
		{
			name: "MySQL UUID:intervals",
			nodes: []*topology.Node{
				node(1, mysql8, uuidA+":1-100", nil),
				node(2, mysql8, uuidA+":1-90", nil),                          // 10 behind
				node(3, mysql8, uuidA+":1-50:61-100,"+uuidB+":1-3:5-6", nil), // 10 behind, 5 errant
			},
			behind: []string{"db2 10", "db3 10"},
			errant: []string{"db2 0", "db3 5"},
		},
		{
			name: "MariaDB domain-server-seq",
			nodes: []*topology.Node{
				node(1, mariadb, "0-1-100,1-1-20", nil),
				// Without log_slave_updates: the binlog state has only its
				// own write; gtid_current_pos says where it applied.
				node(2, mariadb, "0-2-7", func(s *mysql.Status) { s.GTIDCurrentPos = "0-1-97,1-1-20" }),
				node(3, mariadb, "0-1-100,1-1-15", func(s *mysql.Status) {
					s.GTIDCurrentPos, s.GTIDSlavePos = "0-1-100,1-1-15", "0-1-100,1-1-15"
				}),
			},
			behind: []string{"db2 3", "db3 5"},
			errant: []string{"db2 1", "db3 0"},
		},
		{
			name: "MySQL with gtid_mode OFF: no GTID distances",
			nodes: []*topology.Node{
				node(1, mysql8, "", func(s *mysql.Status) { s.GTIDMode = "OFF" }),
				node(2, mysql8, "", func(s *mysql.Status) { s.GTIDMode = "OFF" }),
			},
			wantNoBehindErrant: true,
		},
	}
	for _, tt := range tests {
		m := New("dev")
		m.Cluster("c").ObserveSnapshot(&topology.Snapshot{Nodes: tt.nodes}, "db1")
		values := func(metric string) []string {
			var out []string
			for _, l := range series(t, m, metric+"{") {
				inst := l[strings.Index(l, `instance="`)+len(`instance="`):]
				out = append(out, inst[:strings.Index(inst, `"`)]+" "+l[strings.LastIndex(l, " ")+1:])
			}
			return out
		}
		if got := values("cloudmha_replication_transactions_behind"); strings.Join(got, ",") != strings.Join(tt.behind, ",") {
			t.Errorf("%s: transactions behind %q, want %q", tt.name, got, tt.behind)
		}
		if got := values("cloudmha_replication_errant_transactions"); strings.Join(got, ",") != strings.Join(tt.errant, ",") {
			t.Errorf("%s: errant %q, want %q", tt.name, got, tt.errant)
		}
		if tt.wantNoBehindErrant && len(series(t, m, "cloudmha_replication_errant")) != 0 {
			t.Errorf("%s: errant series", tt.name)
		}
	}
}

func TestBytesBehind(t *testing.T) {
	snap := cluster3()
	rs := snap.Nodes[1].State.Status.Replica
	m := New("dev")
	c := m.Cluster("app1")

	rs.SourceLogFile = "mysql-bin.000002" // the IO thread is a file behind
	c.ObserveSnapshot(snap, "db1")
	if got := series(t, m, "cloudmha_replication_bytes_behind"); len(got) != 0 {
		t.Errorf("different files: %q", got)
	}
	rs.SourceLogFile, rs.ReadSourceLogPos = "mysql-bin.000003", 1400 // read past the primary's snapshot
	c.ObserveSnapshot(snap, "db1")
	if got := series(t, m, "cloudmha_replication_bytes_behind"); len(got) != 1 || !strings.HasSuffix(got[0], " 0") {
		t.Errorf("replica ahead of the primary's position: %q", got)
	}
	rs.SourceHost = "198.18.0.99" // replicates from elsewhere (a relay)
	c.ObserveSnapshot(snap, "db1")
	if got := series(t, m, "cloudmha_replication_bytes_behind"); len(got) != 0 {
		t.Errorf("not the primary's replica: %q", got)
	}
}

func TestOneHot(t *testing.T) {
	m := New("dev")
	c := m.Cluster("app1")
	other := m.Cluster("app2")
	other.SetState("PING_OK")
	for _, s := range []string{"PING_OK", "PING_FAILING", "FAILOVER_RUNNING", "FAILOVER_RUNNING", "PING_OK"} {
		c.SetState(s)
		got := series(t, m, "cloudmha_cluster_state{", `cluster="app1"`)
		if len(got) != 1 || got[0] != `cloudmha_cluster_state{cluster="app1",state="`+s+`"} 1` {
			t.Errorf("after SetState(%s): %q", s, got)
		}
	}
	if got := series(t, m, "cloudmha_cluster_state{", `cluster="app2"`); len(got) != 1 {
		t.Errorf("another cluster's state touched: %q", got)
	}
	for _, v := range []string{"healthy", "suspect", "dead_primary"} {
		c.SetVerdict(v)
	}
	if got := series(t, m, "cloudmha_cluster_verdict{"); len(got) != 1 || got[0] != `cloudmha_cluster_verdict{cluster="app1",verdict="dead_primary"} 1` {
		t.Errorf("verdict: %q", got)
	}
	c.SetVerdict("")
	if got := series(t, m, "cloudmha_cluster_verdict{"); len(got) != 0 {
		t.Errorf("verdict cleared: %q", got)
	}
	if m.Cluster("app1") != c {
		t.Error("Cluster is not idempotent")
	}
}

const clusterExposition = `
# HELP cloudmha_cluster_failover_blocked The anti-flapping guard blocks automatic failover.
# TYPE cloudmha_cluster_failover_blocked gauge
cloudmha_cluster_failover_blocked{cluster="app1"} 1
# HELP cloudmha_cluster_paused Automatic failover paused by an operator.
# TYPE cloudmha_cluster_paused gauge
cloudmha_cluster_paused{cluster="app1"} 0
# HELP cloudmha_failovers_total Failovers, by outcome (success, error, blocked).
# TYPE cloudmha_failovers_total counter
cloudmha_failovers_total{cluster="app1",outcome="blocked"} 1
cloudmha_failovers_total{cluster="app1",outcome="error"} 0
cloudmha_failovers_total{cluster="app1",outcome="success"} 1
# HELP cloudmha_last_failover_timestamp_seconds Unix time of the last completed failover.
# TYPE cloudmha_last_failover_timestamp_seconds gauge
cloudmha_last_failover_timestamp_seconds{cluster="app1"} 1.7000000005e+09
# HELP cloudmha_manager_leader 1 when this manager is the one acting for the cluster.
# TYPE cloudmha_manager_leader gauge
cloudmha_manager_leader{cluster="app1"} 1
# HELP cloudmha_manager_running 1 while this manager watches the cluster.
# TYPE cloudmha_manager_running gauge
cloudmha_manager_running{cluster="app1"} 1
# HELP cloudmha_mover_api_calls_total Cloud API requests of the address movers, by outcome (ok, error).
# TYPE cloudmha_mover_api_calls_total counter
cloudmha_mover_api_calls_total{api="AssociateHaVipAddress",cluster="app1",mover="aliyun-havip",outcome="error"} 1
cloudmha_mover_api_calls_total{api="AssociateHaVipAddress",cluster="app1",mover="aliyun-havip",outcome="ok"} 2
# HELP cloudmha_mover_operations_total Address mover operations (op = release, acquire, status), by outcome (ok, error).
# TYPE cloudmha_mover_operations_total counter
cloudmha_mover_operations_total{cluster="app1",mover="vip",op="acquire",outcome="ok"} 1
cloudmha_mover_operations_total{cluster="app1",mover="vip",op="release",outcome="error"} 1
# HELP cloudmha_network_probes_total Replica to primary network probes, by outcome (ok, lost).
# TYPE cloudmha_network_probes_total counter
cloudmha_network_probes_total{cluster="app1",instance="db2",outcome="lost"} 2
cloudmha_network_probes_total{cluster="app1",instance="db2",outcome="ok"} 4
# HELP cloudmha_network_rtt_seconds Replica to primary round trip (TCP connect to the primary's MySQL port, run over SSH on the replica's host).
# TYPE cloudmha_network_rtt_seconds gauge
cloudmha_network_rtt_seconds{cluster="app1",instance="db2"} 0.0003
# HELP cloudmha_primary_probe_latency_seconds The last probe's latency.
# TYPE cloudmha_primary_probe_latency_seconds gauge
cloudmha_primary_probe_latency_seconds{cluster="app1"} 1
# HELP cloudmha_primary_probe_ok The last probe of the primary succeeded.
# TYPE cloudmha_primary_probe_ok gauge
cloudmha_primary_probe_ok{cluster="app1"} 0
# HELP cloudmha_primary_probes_total Probes of the primary, by outcome (ok, error, timeout).
# TYPE cloudmha_primary_probes_total counter
cloudmha_primary_probes_total{cluster="app1",outcome="error"} 1
cloudmha_primary_probes_total{cluster="app1",outcome="ok"} 2
cloudmha_primary_probes_total{cluster="app1",outcome="timeout"} 1
# HELP cloudmha_switchovers_total Switchovers, by outcome (success, error).
# TYPE cloudmha_switchovers_total counter
cloudmha_switchovers_total{cluster="app1",outcome="error"} 0
cloudmha_switchovers_total{cluster="app1",outcome="success"} 1
`

func TestClusterRecorder(t *testing.T) {
	m := New("dev")
	c := m.Cluster("app1")
	c.SetRunning(true)
	c.SetLeader(true)
	c.SetPaused(true)
	c.SetPaused(false)
	c.SetBlocked(true)
	c.ObserveProbe(3*time.Millisecond, true, false)
	c.ObserveProbe(2*time.Millisecond, true, false)
	c.ObserveProbe(500*time.Millisecond, false, false)
	c.ObserveProbe(time.Second, false, true)
	c.ObserveChange(KindFailover, OutcomeSuccess, 8*time.Second, 0)
	c.ObserveChange(KindFailover, OutcomeBlocked, 0, 0)
	c.ObserveChange(KindSwitchover, OutcomeSuccess, 1500*time.Millisecond, 400*time.Millisecond)
	c.ObserveChange("bogus", OutcomeSuccess, time.Second, 0)
	c.SetLastFailover(time.Unix(1700000000, 500000000))
	c.SetLastFailover(time.Time{}) // ignored
	c.MoverOp("vip", "release", errors.New("arping failed"))
	c.MoverOp("vip", "acquire", nil)
	c.APICall("aliyun-havip", "AssociateHaVipAddress", nil)
	c.APICall("aliyun-havip", "AssociateHaVipAddress", nil)
	c.APICall("aliyun-havip", "AssociateHaVipAddress", errors.New("Throttling"))
	c.ObserveNetwork("db2", time.Millisecond, true)
	c.ObserveNetwork("db2", 0, false)
	c.ObserveNetworkResult("db2", netprobe.Result{RTTs: []time.Duration{200 * time.Microsecond, 400 * time.Microsecond, 300 * time.Microsecond}, Lost: 1})

	names := []string{
		"cloudmha_cluster_failover_blocked", "cloudmha_cluster_paused", "cloudmha_failovers_total",
		"cloudmha_last_failover_timestamp_seconds", "cloudmha_manager_leader", "cloudmha_manager_running",
		"cloudmha_mover_api_calls_total", "cloudmha_mover_operations_total", "cloudmha_network_probes_total",
		"cloudmha_network_rtt_seconds", "cloudmha_primary_probe_latency_seconds", "cloudmha_primary_probe_ok",
		"cloudmha_primary_probes_total", "cloudmha_switchovers_total",
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(clusterExposition), names...); err != nil {
		t.Error(err)
	}

	// Histograms: one failover of 8 s, one switchover of 1.5 s (the blocked
	// failover and the bogus kind are not observed); 0.4 s of writes blocked.
	for _, tc := range []struct {
		line string
	}{
		{`cloudmha_failover_duration_seconds_count{cluster="app1",kind="failover"} 1`},
		{`cloudmha_failover_duration_seconds_sum{cluster="app1",kind="failover"} 8`},
		{`cloudmha_failover_duration_seconds_bucket{cluster="app1",kind="failover",le="7.5"} 0`},
		{`cloudmha_failover_duration_seconds_bucket{cluster="app1",kind="failover",le="10"} 1`},
		{`cloudmha_failover_duration_seconds_count{cluster="app1",kind="switchover"} 1`},
		{`cloudmha_switchover_write_block_seconds_bucket{cluster="app1",le="0.5"} 1`},
		{`cloudmha_switchover_write_block_seconds_bucket{cluster="app1",le="0.25"} 0`},
		{`cloudmha_failover_duration_seconds_bucket{cluster="app1",kind="switchover",le="120"} 1`},
	} {
		if got := series(t, m, tc.line); len(got) != 1 {
			t.Errorf("missing %s", tc.line)
		}
	}
	if got := series(t, m, "cloudmha_failover_duration_seconds_count"); len(got) != 2 {
		t.Errorf("duration series: %q", got)
	}
	c.ObserveDetection(4 * time.Second)
	if got := series(t, m, `cloudmha_detection_duration_seconds_bucket{cluster="app1",le="5"} 1`); len(got) != 1 {
		t.Error("detection not observed")
	}
}

func TestManagerMetrics(t *testing.T) {
	m := New("1.2.3")
	stats := []notify.ChannelStats{
		{Name: "ops-dingtalk", Kind: "dingtalk", Sent: 5, Failed: 1, Dropped: 0},
		{Name: "mail", Kind: "email", Sent: 2},
	}
	var mu sync.Mutex
	m.WatchNotifications(func() []notify.ChannelStats {
		mu.Lock()
		defer mu.Unlock()
		return stats
	})
	want := `
# HELP cloudmha_notifications_total Notifications by channel and outcome (sent, failed, dropped).
# TYPE cloudmha_notifications_total counter
cloudmha_notifications_total{channel="mail",outcome="dropped"} 0
cloudmha_notifications_total{channel="mail",outcome="failed"} 0
cloudmha_notifications_total{channel="mail",outcome="sent"} 2
cloudmha_notifications_total{channel="ops-dingtalk",outcome="dropped"} 0
cloudmha_notifications_total{channel="ops-dingtalk",outcome="failed"} 1
cloudmha_notifications_total{channel="ops-dingtalk",outcome="sent"} 5
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "cloudmha_notifications_total"); err != nil {
		t.Error(err)
	}
	mu.Lock()
	stats[0].Sent = 6
	mu.Unlock()
	if got := series(t, m, `cloudmha_notifications_total{channel="ops-dingtalk",outcome="sent"} 6`); len(got) != 1 {
		t.Error("notifications not read at scrape time")
	}
	m.WatchNotifications(nil)
	if got := series(t, m, "cloudmha_notifications_total"); len(got) != 0 {
		t.Errorf("after WatchNotifications(nil): %q", got)
	}

	// build_info, Go and process collectors, through the HTTP handler.
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, w := range []string{`cloudmha_build_info{goversion="go`, `version="1.2.3"} 1`, "go_goroutines ", "process_start_time_seconds "} {
		if !strings.Contains(string(body), w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
}

func TestLint(t *testing.T) {
	m := New("dev")
	c := m.Cluster("app1")
	c.ObserveSnapshot(cluster3(), "db1")
	c.SetState("PING_OK")
	c.SetVerdict("healthy")
	c.ObserveDetection(time.Second)
	c.ObserveChange(KindSwitchover, OutcomeSuccess, time.Second, time.Second)
	c.ObserveNetwork("db2", time.Millisecond, true)
	c.SetLastFailover(time.Now())
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "cloudmha_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestForget(t *testing.T) {
	m := New("dev")
	for _, name := range []string{"app1", "app2"} {
		c := m.Cluster(name)
		c.ObserveSnapshot(cluster3(), "db1")
		c.SetRunning(true)
		c.SetState("PING_OK")
		c.ObserveNetwork("db2", time.Millisecond, true)
	}
	m.Forget("app1")
	if got := series(t, m, `cluster="app1"`); len(got) != 0 {
		t.Errorf("after Forget: %q", got)
	}
	if got := series(t, m, `cluster="app2"`); len(got) < 20 {
		t.Errorf("Forget removed another cluster's series: %d left", len(got))
	}
}

// TestConcurrent runs the recorders and scrapes together (run with -race).
func TestConcurrent(t *testing.T) {
	m := New("dev")
	var wg sync.WaitGroup
	for i := range 4 {
		c := m.Cluster(fmt.Sprintf("app%d", i%2))
		wg.Go(func() {
			for j := range 50 {
				c.ObserveSnapshot(cluster3(), "db1")
				c.SetState([]string{"PING_OK", "PING_FAILING"}[j%2])
				c.SetVerdict([]string{"healthy", "suspect"}[j%2])
				c.ObserveProbe(time.Millisecond, j%3 != 0, j%3 == 0)
				c.ObserveNetwork("db2", time.Millisecond, j%2 == 0)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := m.Registry().Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	for _, cl := range []string{"app0", "app1"} {
		if got := series(t, m, "cloudmha_cluster_state{", `cluster="`+cl+`"`); len(got) != 1 {
			t.Errorf("%s: %q", cl, got)
		}
	}
}
