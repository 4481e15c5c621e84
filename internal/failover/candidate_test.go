package failover

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

func choose(t *testing.T, tc *testCluster, o ChooseOptions) (string, []Rejection, error) {
	t.Helper()
	n, rej, err := ChooseCandidate(tc.snap, tc.cfg, "server1", o)
	if err != nil {
		return "", rej, err
	}
	return n.Server.Name, rej, nil
}

func rejectedFor(rej []Rejection, server, word string) bool {
	for _, r := range rej {
		if r.Server == server && strings.Contains(r.Reason, word) {
			return true
		}
	}
	return false
}

func TestChooseLatestFirst(t *testing.T) {
	tc := newCluster(4)
	tc.kill("server1")
	tc.st("server2").GTIDExecuted = gs("0-1-98")
	tc.st("server3").GTIDExecuted = gs("0-1-100")
	tc.st("server4").GTIDExecuted = gs("0-1-99")
	got, _, err := choose(t, tc, ChooseOptions{})
	if err != nil || got != "server3" {
		t.Fatalf("got %q, %v; want the latest, server3", got, err)
	}
	// latest_priority=0: configuration order.
	tc.cfg.LatestPriority = false
	if got, _, _ := choose(t, tc, ChooseOptions{}); got != "server2" {
		t.Fatalf("latest_priority=0: got %q, want server2", got)
	}
}

func TestChooseCandidateMaster(t *testing.T) {
	tc := newCluster(4)
	tc.kill("server1")
	tc.st("server2").GTIDExecuted = gs("0-1-98")
	tc.server("server2", func(s *config.Server) { s.CandidateMaster = true })
	// A candidate_master among the latest wins over the others.
	tc.server("server4", func(s *config.Server) { s.CandidateMaster = true })
	if got, _, _ := choose(t, tc, ChooseOptions{}); got != "server4" {
		t.Fatalf("got %q, want server4 (candidate_master and latest)", got)
	}
	// Without a latest candidate_master, any candidate_master beats a latest replica.
	tc.server("server4", func(s *config.Server) { s.CandidateMaster = false })
	if got, _, _ := choose(t, tc, ChooseOptions{}); got != "server2" {
		t.Fatalf("got %q, want server2 (candidate_master)", got)
	}
}

func TestChooseBadRules(t *testing.T) {
	cases := []struct {
		name   string
		change func(tc *testCluster)
		word   string
	}{
		{"no_master", func(tc *testCluster) { tc.server("server2", func(s *config.Server) { s.NoMaster = true }) }, "no_master"},
		{"log_bin", func(tc *testCluster) { tc.st("server2").LogBin = false }, "log_bin"},
		{"older version", func(tc *testCluster) {
			tc.st("server2").Flavor = mysql.Flavor{Kind: mysql.MariaDB, Version: mysql.Version{Major: 10, Minor: 6, Patch: 1}}
		}, "older"},
		{"repl delay bytes", func(tc *testCluster) {
			tc.st("server3").Replica.ReadSourceLogPos = 200_005_000
			tc.st("server3").Replica.ExecSourceLogPos = 200_005_000
			tc.st("server2").Replica.ReadSourceLogPos = 200_005_000
			tc.st("server2").Replica.ExecSourceLogPos = 5000
		}, "SQL thread"},
		{"repl delay file", func(tc *testCluster) {
			tc.st("server2").Replica.RelaySourceLogFile = "mysql-bin.000002"
		}, "SQL thread far behind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newCluster(3)
			tc.kill("server1")
			c.change(tc)
			got, rej, err := choose(t, tc, ChooseOptions{})
			if err != nil || got != "server3" {
				t.Fatalf("got %q, %v; want server3", got, err)
			}
			if !rejectedFor(rej, "server2", c.word) {
				t.Fatalf("server2 not rejected for %q: %v", c.word, rej)
			}
			// Asked for explicitly, a bad server is refused.
			if _, _, err := choose(t, tc, ChooseOptions{NewPrimary: "server2"}); !errors.Is(err, ErrNoCandidate) {
				t.Fatalf("explicit bad server2: err %v", err)
			}
		})
	}
	t.Run("check_repl_delay off", func(t *testing.T) {
		tc := newCluster(2)
		tc.kill("server1")
		tc.cfg.CheckReplDelay = false
		tc.st("server2").Replica.RelaySourceLogFile = "mysql-bin.000001"
		if got, _, err := choose(t, tc, ChooseOptions{}); got != "server2" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
}

func TestChooseExplicit(t *testing.T) {
	tc := newCluster(3)
	tc.kill("server1")
	tc.st("server2").GTIDExecuted = gs("0-1-90")
	for _, want := range []string{"server2", "10.0.0.2", "10.0.0.2:3306"} {
		if got, _, err := choose(t, tc, ChooseOptions{NewPrimary: want}); err != nil || got != "server2" {
			t.Fatalf("NewPrimary %s: got %q, %v", want, got, err)
		}
	}
	if _, _, err := choose(t, tc, ChooseOptions{NewPrimary: "server9"}); !errors.Is(err, ErrNoCandidate) || !strings.Contains(err.Error(), "server9") {
		t.Fatalf("unknown server: %v", err)
	}
	if _, _, err := choose(t, tc, ChooseOptions{NewPrimary: "server1"}); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("the dead primary itself: %v", err)
	}
}

func TestChoosePriorityAndZone(t *testing.T) {
	tc := newCluster(4)
	tc.kill("server1")
	tc.server("server3", func(s *config.Server) { s.Zone = "b" })
	tc.server("server4", func(s *config.Server) { s.Zone = "b"; s.Priority = 10 })
	if got, _, _ := choose(t, tc, ChooseOptions{}); got != "server4" {
		t.Fatalf("priority: got %q, want server4", got)
	}
	tc.server("server4", func(s *config.Server) { s.Priority = 0 })
	if got, _, _ := choose(t, tc, ChooseOptions{PreferZone: "b"}); got != "server3" {
		t.Fatalf("zone: got %q, want server3", got)
	}
	if got, _, _ := choose(t, tc, ChooseOptions{}); got != "server2" {
		t.Fatalf("no preference: got %q, want server2", got)
	}
	// Priority never beats being latest (MHA's tiers come first).
	tc.server("server2", func(s *config.Server) { s.Priority = 100 })
	tc.st("server2").GTIDExecuted = gs("0-1-50")
	if got, _, _ := choose(t, tc, ChooseOptions{}); got != "server3" {
		t.Fatalf("priority vs latest: got %q, want server3", got)
	}
}

func TestChooseErrant(t *testing.T) {
	tc := newCluster(3)
	tc.kill("server1")
	// server2 wrote a transaction of its own (server_id 2).
	tc.st("server2").GTIDExecuted = gs("0-1-100,0-2-7")
	tc.st("server3").GTIDExecuted = gs("0-1-99")
	tc.server("server2", func(s *config.Server) { s.CandidateMaster = true })
	got, rej, err := choose(t, tc, ChooseOptions{DeadGTIDs: gs("0-1-100")})
	if err != nil || got != "server3" {
		t.Fatalf("got %q, %v; want server3 (server2 is errant)", got, err)
	}
	if !rejectedFor(rej, "server2", "errant GTIDs 0-2-7") {
		t.Fatalf("rejections %v", rej)
	}
	if _, _, err := choose(t, tc, ChooseOptions{NewPrimary: "server2"}); !errors.Is(err, ErrNoCandidate) || !strings.Contains(err.Error(), "errant") {
		t.Fatalf("explicit errant: %v", err)
	}
	if got, _, err := choose(t, tc, ChooseOptions{Force: true}); err != nil || got != "server2" {
		t.Fatalf("force: got %q, %v", got, err)
	}
	// Only errant replicas: a clear error.
	tc.st("server3").GTIDExecuted = gs("0-1-100,0-3-1")
	_, rej, err = choose(t, tc, ChooseOptions{DeadGTIDs: gs("0-1-100")})
	if !errors.Is(err, ErrNoCandidate) || !strings.Contains(err.Error(), "server2") || !strings.Contains(err.Error(), "server3") || len(rej) != 2 {
		t.Fatalf("no eligible: %v %v", err, rej)
	}
}

func TestChooseDeadPrimaryNewerTransactionsAreNotErrant(t *testing.T) {
	tc := newCluster(3)
	tc.kill("server1")
	// The replicas got more of server1's writes than its last known set.
	tc.st("server2").GTIDExecuted = gs("0-1-120")
	tc.st("server3").GTIDExecuted = gs("0-1-110")
	got, rej, err := choose(t, tc, ChooseOptions{DeadGTIDs: gs("0-1-100")})
	if err != nil || got != "server2" || len(rej) != 0 {
		t.Fatalf("got %q, %v, %v", got, rej, err)
	}
	// MySQL sets too: the dead primary's UUID comes from the replicas.
	u1, u2 := "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
	for _, n := range tc.snap.Nodes[1:] {
		n.Status().Flavor = mysql.Flavor{Kind: mysql.MySQL, Version: mysql.Version{Major: 8, Minor: 0, Patch: 36}}
		n.Status().Replica.SourceUUID = u1
	}
	tc.st("server2").GTIDExecuted = mysql.MustParseGTIDSet(mysql.MySQL, u1+":1-120")
	tc.st("server3").GTIDExecuted = mysql.MustParseGTIDSet(mysql.MySQL, u1+":1-110,"+u2+":1-3")
	got, rej, err = choose(t, tc, ChooseOptions{DeadGTIDs: mysql.MustParseGTIDSet(mysql.MySQL, u1+":1-100")})
	if err != nil || got != "server2" || !rejectedFor(rej, "server3", u2+":1-3") {
		t.Fatalf("mysql: got %q, %v, %v", got, rej, err)
	}
}

func TestChooseNoSurvivor(t *testing.T) {
	tc := newCluster(2)
	tc.kill("server1")
	tc.kill("server2")
	_, rej, err := choose(t, tc, ChooseOptions{})
	if !errors.Is(err, ErrNoCandidate) || !rejectedFor(rej, "server2", "unreachable") {
		t.Fatalf("%v %v", err, rej)
	}
}
