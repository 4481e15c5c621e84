package manager

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// snap builds a snapshot: sources maps a server to the IP it replicates
// from ("" = replicates from nobody); unreachable servers are not read.
func snap(sources map[string]string, unreachable ...string) *topology.Snapshot {
	s := &topology.Snapshot{Cluster: "app1"}
	for i, name := range []string{"server1", "server2", "server3"} {
		ip := "198.18.0.1" + string(rune('1'+i))
		n := &topology.Node{Server: config.Server{Name: name, Hostname: ip, IP: ip, Port: 3306}}
		down := false
		for _, u := range unreachable {
			down = down || u == name
		}
		if down {
			n.Err = errors.New("unreachable")
		} else {
			st := &mysql.Status{ServerID: uint32(i + 1), ReadOnly: sources[name] != ""}
			if src := sources[name]; src != "" {
				st.Replica = &mysql.ReplicaStatus{SourceHost: src, SourcePort: 3306, IORunning: "Connecting"}
			}
			n.State = &topology.NodeState{Status: st}
		}
		s.Nodes = append(s.Nodes, n)
	}
	return s
}

func TestFindPrimary(t *testing.T) {
	sup := &supervisor{log: slog.New(slog.DiscardHandler)}
	cases := []struct {
		name    string
		snap    *topology.Snapshot
		current string
		want    string
		err     string
	}{
		{"healthy", snap(map[string]string{"server2": "198.18.0.11", "server3": "198.18.0.11"}), "", "server1", ""},
		{"primary unreachable, replicas agree", snap(map[string]string{"server2": "198.18.0.11", "server3": "198.18.0.11"}, "server1"), "", "server1", ""},
		{"old primary back after a failover", snap(map[string]string{"server3": "198.18.0.12"}), "server2", "server2", ""},
		{"two primaries, no history", snap(map[string]string{"server3": "198.18.0.12"}), "", "", "2 servers replicate from nobody"},
		{"replicas disagree", snap(map[string]string{"server2": "198.18.0.11", "server3": "198.18.0.99"}, "server1"), "", "server1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sup.primary = config.Server{Name: tc.current}
			p, replicas, err := sup.findPrimary(tc.snap)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tc.want {
				t.Fatalf("primary %s, want %s", p.Name, tc.want)
			}
			if len(replicas) != 2 {
				t.Fatalf("replicas %v", replicas)
			}
		})
	}
}
