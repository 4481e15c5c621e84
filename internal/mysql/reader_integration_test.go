package mysql_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/metrics"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// TestIntegrationReaderStats reads a real MariaDB the way the manager does
// (topology.Take with MySQLReader.Stats and a data-size cache) and exports
// the snapshot through internal/metrics.
func TestIntegrationReaderStats(t *testing.T) {
	addr, user, pass := mysql.StartMariaDBForTest(t)
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	cfg := &config.Config{Name: "it", Servers: []config.Server{
		{Name: "db1", Hostname: host, IP: host, Port: port, User: user, Password: config.NewSecret(pass)},
		{Name: "gone", Hostname: host, IP: host, Port: 1, User: user},
	}}
	cache := topology.NewDataSizeCache(time.Hour)
	r := topology.MySQLReader{ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second, SkipGrants: true, Stats: true, DataSize: cache}
	ctx := context.Background()

	first := topology.Take(ctx, cfg, r, 10*time.Second)
	n := first.Nodes[0]
	if !n.Reachable() || n.State.Stats == nil {
		t.Fatalf("db1: err %v, state %+v", n.Err, n.State)
	}
	s1 := n.State.Stats
	t.Logf("first read: %+v", *s1)
	if s1.Err != nil || !s1.DataBytesRead || s1.DataBytesAt.IsZero() || !s1.HasBinlog || s1.MaxConnections == 0 {
		t.Errorf("first read: %+v", *s1)
	}
	second := topology.Take(ctx, cfg, r, 10*time.Second)
	s2 := second.Nodes[0].State.Stats
	if s2.DataBytesRead || s2.DataBytes != s1.DataBytes || !s2.DataBytesAt.Equal(s1.DataBytesAt) || s2.Questions <= s1.Questions {
		t.Errorf("second read (data size from the cache): %+v", *s2)
	}
	// The failover path's reader does not read statistics.
	plain := topology.Take(ctx, cfg, topology.MySQLReader{SkipGrants: true}, 10*time.Second)
	if plain.Nodes[0].State.Stats != nil {
		t.Error("Stats read without MySQLReader.Stats")
	}

	m := metrics.New("it")
	m.Cluster("it").ObserveSnapshot(second, "db1")
	if got := testutil.CollectAndCount(m.Registry(), "cloudmha_instance_data_bytes", "cloudmha_instance_binlog_bytes",
		"cloudmha_instance_queries_total", "cloudmha_instance_innodb_deadlocks_total", "cloudmha_semisync_source_tx_waits_total"); got != 5 {
		t.Errorf("%d statistics series for db1, want 5", got)
	}
	want := `
# HELP cloudmha_instance_up 1 when the manager could read the instance.
# TYPE cloudmha_instance_up gauge
cloudmha_instance_up{cluster="it",instance="db1"} 1
cloudmha_instance_up{cluster="it",instance="gone"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "cloudmha_instance_up"); err != nil {
		t.Error(err)
	}
}
