package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// Roles of an instance (label role of cloudmha_instance_role).
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
	RoleUnknown = "unknown"
)

// instanceDescs are the descriptions of the per-instance metrics.
type instanceDescs struct {
	up, role, readOnly, readDuration                 *prometheus.Desc
	threads, maxConns, queries, slow, deadlocks      *prometheus.Desc
	binlogBytes, dataBytes                           *prometheus.Desc
	ioRunning, sqlRunning, secondsBehind             *prometheus.Desc
	txBehind, bytesBehind, errant                    *prometheus.Desc
	semiSourceOn, semiClients, semiTxWaits, semiNoTx *prometheus.Desc
	semiReplicaOn                                    *prometheus.Desc
	all                                              []*prometheus.Desc
	names                                            []string // of all
	instanceLabels, roleLabels                       []string
}

func newInstanceDescs() *instanceDescs {
	d := &instanceDescs{instanceLabels: []string{"cluster", "instance"}, roleLabels: []string{"cluster", "instance", "role"}}
	desc := func(name, help string, labels []string) *prometheus.Desc {
		fq := prometheus.BuildFQName(Namespace, "", name)
		x := prometheus.NewDesc(fq, help, labels, nil)
		d.all, d.names = append(d.all, x), append(d.names, fq)
		return x
	}
	il := d.instanceLabels
	d.up = desc("instance_up", "1 when the manager could read the instance.", il)
	d.role = desc("instance_role", "1, with label role = primary, replica or unknown.", d.roleLabels)
	d.readOnly = desc("instance_read_only", "@@read_only.", il)
	d.readDuration = desc("instance_read_duration_seconds", "How long the last read took.", il)
	d.threads = desc("instance_threads_connected", "Threads_connected.", il)
	d.maxConns = desc("instance_max_connections", "@@max_connections.", il)
	d.queries = desc("instance_queries_total", "Questions (use rate() for QPS).", il)
	d.slow = desc("instance_slow_queries_total", "Slow_queries.", il)
	d.deadlocks = desc("instance_innodb_deadlocks_total", "Innodb_deadlocks.", il)
	d.binlogBytes = desc("instance_binlog_bytes", "Sum of SHOW BINARY LOGS file sizes.", il)
	d.dataBytes = desc("instance_data_bytes", "Data + index size of all tables.", il)
	d.ioRunning = desc("replication_io_running", "Replicas only: IO thread running.", il)
	d.sqlRunning = desc("replication_sql_running", "Replicas only: SQL thread running.", il)
	d.secondsBehind = desc("replication_seconds_behind_source", "Seconds_Behind_Master; absent when NULL.", il)
	d.txBehind = desc("replication_transactions_behind", "GTID distance: transactions the primary has and the replica has not applied.", il)
	d.bytesBehind = desc("replication_bytes_behind", "Bytes of the primary's current binlog the replica has not read; absent when they are in different files.", il)
	d.errant = desc("replication_errant_transactions", "Transactions the replica has and the primary lacks.", il)
	d.semiSourceOn = desc("semisync_source_on", "Primary: semi-sync in effect (not fallen back to async).", il)
	d.semiClients = desc("semisync_source_clients", "Primary: semi-sync replicas connected.", il)
	d.semiTxWaits = desc("semisync_source_tx_waits_total", "Primary: commits that waited for an acknowledgement.", il)
	d.semiNoTx = desc("semisync_source_no_tx_total", "Primary: commits not acknowledged (async fallback).", il)
	d.semiReplicaOn = desc("semisync_replica_on", "Replica: semi-sync in effect.", il)
	return d
}

// sample is one series computed from a snapshot.
type sample struct {
	desc   *prometheus.Desc
	typ    prometheus.ValueType
	value  float64
	labels []string
}

// instanceCollector emits, at scrape time, the samples of each cluster's
// last snapshot as constant metrics.
type instanceCollector struct {
	d  *instanceDescs
	mu sync.RWMutex
	by map[string][]sample // cluster → samples
}

func newInstanceCollector() *instanceCollector {
	return &instanceCollector{d: newInstanceDescs(), by: map[string][]sample{}}
}

func (c *instanceCollector) set(cluster string, s []sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.by[cluster] = s
}

func (c *instanceCollector) forget(cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.by, cluster)
}

func (c *instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all {
		ch <- d
	}
}

func (c *instanceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, samples := range c.by {
		for _, s := range samples {
			m, err := prometheus.NewConstMetric(s.desc, s.typ, s.value, s.labels...)
			if err != nil {
				m = prometheus.NewInvalidMetric(s.desc, err)
			}
			ch <- m
		}
	}
}

// instanceSamples computes the instance series of one snapshot. primary is
// the primary's server name: it has role primary; any other instance that
// replicates is a replica, the rest unknown. Replication series exist only
// for reachable replicas; distances to the primary only while the primary
// could be read too.
func instanceSamples(d *instanceDescs, cluster string, snap *topology.Snapshot, primary string) []sample {
	var out []sample
	var pnode *topology.Node
	for _, n := range snap.Nodes {
		if n.Server.Name == primary {
			pnode = n
		}
	}
	var pst *mysql.Status
	if pnode != nil {
		pst = pnode.Status()
	}
	seen := map[string]bool{}
	for _, n := range snap.Nodes {
		name := n.Server.Name
		if seen[name] { // a duplicate name would fail the whole scrape
			continue
		}
		seen[name] = true
		add := func(desc *prometheus.Desc, typ prometheus.ValueType, v float64) {
			out = append(out, sample{desc: desc, typ: typ, value: v, labels: []string{cluster, name}})
		}
		gauge := func(desc *prometheus.Desc, v float64) { add(desc, prometheus.GaugeValue, v) }
		counter := func(desc *prometheus.Desc, v uint64) { add(desc, prometheus.CounterValue, float64(v)) }

		st := n.Status()
		role := RoleUnknown
		switch {
		case name == primary:
			role = RolePrimary
		case st != nil && st.Replica != nil:
			role = RoleReplica
		}
		gauge(d.up, boolValue(st != nil))
		out = append(out, sample{desc: d.role, typ: prometheus.GaugeValue, value: 1, labels: []string{cluster, name, role}})
		gauge(d.readDuration, seconds(n.Elapsed))
		if st == nil {
			continue
		}
		gauge(d.readOnly, boolValue(st.ReadOnly))

		if s := n.State.Stats; s != nil {
			gauge(d.threads, float64(s.ThreadsConnected))
			gauge(d.maxConns, float64(s.MaxConnections))
			counter(d.queries, s.Questions)
			counter(d.slow, s.SlowQueries)
			if s.HasInnodbDeadlocks {
				counter(d.deadlocks, s.InnodbDeadlocks)
			}
			if s.HasBinlog {
				gauge(d.binlogBytes, float64(s.BinlogBytes))
			}
			if !s.DataBytesAt.IsZero() {
				gauge(d.dataBytes, float64(s.DataBytes))
			}
		}

		ss := st.SemiSync
		switch role {
		case RolePrimary:
			if ss.Available {
				gauge(d.semiSourceOn, boolValue(ss.SourceOn))
				gauge(d.semiClients, float64(ss.SourceClients))
			}
			if s := n.State.Stats; s != nil && s.HasSemiSyncCounters {
				counter(d.semiTxWaits, s.SemiSyncTxWaits)
				counter(d.semiNoTx, s.SemiSyncNoTx)
			}
		case RoleReplica:
			if ss.Available {
				gauge(d.semiReplicaOn, boolValue(ss.ReplicaOn))
			}
			rs := st.Replica
			gauge(d.ioRunning, boolValue(rs.IORunning == mysql.IOYes))
			gauge(d.sqlRunning, boolValue(rs.SQLRunning))
			if rs.SecondsBehind != nil {
				gauge(d.secondsBehind, float64(*rs.SecondsBehind))
			}
			if pst == nil {
				continue
			}
			if v, ok := bytesBehind(snap, n, pnode); ok {
				gauge(d.bytesBehind, float64(v))
			}
			if !gtidOn(pst) || !gtidOn(st) {
				continue
			}
			if v, ok := transactionsBehind(pst, st); ok {
				gauge(d.txBehind, float64(v))
			}
			// The primary's own transactions are left out: under writes
			// the replica may be read after the primary and hold newer ones.
			if e, err := mysql.ErrantCount(st.GTIDExecuted.WithoutOrigin(pst.Origin()), pst.GTIDExecuted); err == nil {
				gauge(d.errant, float64(e))
			}
		}
	}
	return out
}

// gtidOn reports whether the server assigns GTIDs (always on MariaDB).
func gtidOn(st *mysql.Status) bool {
	return st.Flavor.Kind == mysql.MariaDB || st.GTIDMode == "ON"
}

// transactionsBehind is the GTID distance from replica r to primary p; false
// when the sets are of different kinds or unreadable. On MariaDB, the
// replica's position is the union of its binlog state and its
// gtid_current_pos and gtid_slave_pos, so that a replica without
// log_slave_updates counts what it applied.
func transactionsBehind(p, r *mysql.Status) (uint64, bool) {
	mine := r.GTIDExecuted
	if r.Flavor.Kind == mysql.MariaDB {
		for _, pos := range []string{r.GTIDCurrentPos, r.GTIDSlavePos} {
			if pos == "" {
				continue
			}
			g, err := mysql.ParseGTIDSet(mysql.MariaDB, pos)
			if err != nil {
				return 0, false
			}
			if mine, err = mine.Union(g); err != nil {
				return 0, false
			}
		}
	}
	v, err := mysql.TransactionsBehind(p.GTIDExecuted, mine)
	return v, err == nil
}

// bytesBehind is how many bytes of the primary's current binlog replica n
// has not read; false unless n replicates from the primary itself and its
// IO thread reads the primary's current file.
func bytesBehind(snap *topology.Snapshot, n, pnode *topology.Node) (uint64, bool) {
	if pnode == nil || snap.SourceOf(n) != pnode {
		return 0, false
	}
	p := pnode.Status().Binlog
	r := n.Status().Replica.ReadPosition()
	if p.File == "" || r.File != p.File {
		return 0, false
	}
	if r.Pos >= p.Pos {
		return 0, true
	}
	return p.Pos - r.Pos, true
}
