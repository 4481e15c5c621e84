package tencent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	sim "github.com/cloudmha/cloudmha/internal/cloudsim/tencent"
	"github.com/cloudmha/cloudmha/internal/config"
)

const (
	testID  = "AKIDmoverTestSecretId"
	testKey = "mover-secret-NEVER-SHOWN-7"
	vip     = "198.18.0.200" // the HaVip
	secIP   = "198.18.0.100" // the secondary private IP
)

// credentialsFromEnv points the credential chain at the environment only.
func credentialsFromEnv(t *testing.T, id, key string) {
	t.Helper()
	for _, k := range []string{"TENCENTCLOUD_SESSION_TOKEN", "TENCENTCLOUD_CREDENTIALS_FILE", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"} {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", t.TempDir())
	if id != "" {
		t.Setenv("TENCENTCLOUD_SECRET_ID", id)
		t.Setenv("TENCENTCLOUD_SECRET_KEY", key)
	}
}

// bed starts the emulator: ins-a (server1, eni-a) carries the secondary
// IP, ins-b (server2, eni-b) has a second ENI eni-b2, ins-z is in another
// subnet, and the HaVip checks its drift scope.
func bed(t *testing.T) *sim.Server {
	t.Helper()
	credentialsFromEnv(t, testID, testKey)
	s := sim.New(sim.Options{Credentials: map[string]string{testID: testKey}, Latency: 30 * time.Millisecond})
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, err := range []error{
		s.AddInstance(sim.Instance{ID: "ins-a", PrivateIP: "198.18.0.11", SubnetID: "subnet-1", VpcID: "vpc-1"}),
		s.AddInstance(sim.Instance{ID: "ins-b", PrivateIP: "198.18.0.12", SubnetID: "subnet-1", VpcID: "vpc-1"}),
		s.AddInstance(sim.Instance{ID: "ins-z", PrivateIP: "198.18.1.13", SubnetID: "subnet-2", VpcID: "vpc-1"}),
		s.AddENI(sim.ENI{ID: "eni-b2", InstanceID: "ins-b", PrimaryIP: "198.18.0.22", SubnetID: "subnet-1", VpcID: "vpc-1", DeviceIndex: 1}),
		s.AddPrivateIP("eni-a", secIP),
		s.AddHaVip(sim.HaVip{ID: "havip-db", Vip: vip, SubnetID: "subnet-1", VpcID: "vpc-1", CheckAssociate: true}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func testConfig(s *sim.Server, kind string, extra map[string]string) *config.Config {
	o := map[string]string{
		"region": sim.DefaultRegion, "endpoint": s.Endpoint(), "guest": "none", "cvm_role": "no",
		"wait_timeout": "2s", "poll_interval": "10ms",
	}
	if kind == KindPrivateIP {
		o["vip"] = secIP
	} else {
		o["havip_id"] = "havip-db"
	}
	for k, v := range extra {
		if v == "" {
			delete(o, k)
		} else {
			o[k] = v
		}
	}
	return &config.Config{
		Name:    "db",
		Servers: []config.Server{{Name: "server1", IP: "198.18.0.11", Port: 3306, SSHPort: 22}, {Name: "server2", IP: "198.18.0.12", Port: 3306, SSHPort: 22}},
		Address: config.Address{Mover: kind, Options: o},
	}
}

var (
	failover = address.Change{
		Old: address.Target{Name: "server1", IP: "198.18.0.11", SSHReachable: true},
		New: address.Target{Name: "server2", IP: "198.18.0.12", SSHReachable: true},
	}
	switchover = address.Change{Old: failover.Old, New: failover.New, Online: true}
	back       = address.Change{Old: failover.New, New: failover.Old}
)

func newMover(t *testing.T, cfg *config.Config) address.Mover {
	t.Helper()
	m, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// guestPlane replaces SSH: it records the commands and plays the data
// plane — an address added on a server's guest is claimed for the HaVip,
// unless that server is "broken"; failing servers' commands fail.
type guestPlane struct {
	mu     sync.Mutex
	s      *sim.Server
	cmds   []string
	broken map[string]bool // adds that never reach the platform
	fail   map[string]bool // servers whose commands fail
	inst   map[string]string
}

func (g *guestPlane) run(_ context.Context, sv server, cmd string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	name := sv.cfg.Name
	g.cmds = append(g.cmds, name+": "+cmd)
	if g.fail[name] {
		return "", errors.New("exit status 1: RTNETLINK answers: Operation not permitted")
	}
	if strings.Contains(cmd, "ip addr add "+vip+"/") && !g.broken[name] {
		_ = g.s.SetHaVipHolder("havip-db", g.inst[name])
	}
	return "", nil
}

func (g *guestPlane) set(m map[string]bool, name string, v bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m[name] = v
}

func (g *guestPlane) log() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.cmds, "\n")
}

func withPlane(s *sim.Server, m address.Mover) *guestPlane {
	g := &guestPlane{s: s, broken: map[string]bool{}, fail: map[string]bool{}, inst: map[string]string{"server1": "ins-a", "server2": "ins-b"}}
	switch v := m.(type) {
	case *HaVipMover:
		v.run = g.run
	case *PrivateIPMover:
		v.run = g.run
	}
	return g
}

func TestNewValidates(t *testing.T) {
	s := bed(t)
	for name, tc := range map[string]struct {
		kind  string
		extra map[string]string
		want  string
	}{
		"no region":         {KindHaVip, map[string]string{"region": ""}, "region is required"},
		"no havip":          {KindHaVip, map[string]string{"havip_id": ""}, "havip_id (havip-…) or vip"},
		"bad havip id":      {KindHaVip, map[string]string{"havip_id": "vip-1"}, "not a HaVip id"},
		"bad havip vip":     {KindHaVip, map[string]string{"vip": "10.0.0"}, `vip="10.0.0"`},
		"no vip":            {KindPrivateIP, map[string]string{"vip": ""}, "option vip is required"},
		"own address":       {KindPrivateIP, map[string]string{"vip": "198.18.0.12"}, "server2's own address"},
		"typo":              {KindPrivateIP, map[string]string{"wait_timeot": "1s"}, "unknown option(s) wait_timeot"},
		"havip option":      {KindPrivateIP, map[string]string{"associate": "no"}, "unknown option(s) associate"},
		"bad guest":         {KindHaVip, map[string]string{"guest": "maybe"}, "guest"},
		"bad duration":      {KindHaVip, map[string]string{"wait_timeout": "soon"}, "wait_timeout"},
		"bad retries":       {KindHaVip, map[string]string{"retries": "0"}, "retries"},
		"bad prefix":        {KindHaVip, map[string]string{"prefix": "33"}, "prefix"},
		"bad interface":     {KindHaVip, map[string]string{"interface": "eth0;reboot"}, "interface"},
		"bad yes/no":        {KindHaVip, map[string]string{"associate": "perhaps"}, "associate"},
		"unknown server":    {KindHaVip, map[string]string{"eni.server9": "eni-x"}, "server9"},
		"bad eni":           {KindHaVip, map[string]string{"eni.server1": "ins-a"}, "not an ENI id"},
		"plain http":        {KindHaVip, map[string]string{"endpoint": "http://vpc.example.com"}, "loopback"},
		"bad proxy":         {KindHaVip, map[string]string{"proxy": "::"}, "proxy"},
		"bad arping":        {KindHaVip, map[string]string{"arping": "arping -X"}, "arping"},
		"bad arp count":     {KindHaVip, map[string]string{"arp_count": "x"}, "arp_count"},
		"bad cvm_role":      {KindHaVip, map[string]string{"cvm_role": "2"}, "cvm_role"},
		"disassociate typo": {KindHaVip, map[string]string{"disassociate_ol": "no"}, "unknown option(s) disassociate_ol"},
	} {
		_, err := New(testConfig(s, tc.kind, tc.extra), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	cfg := testConfig(s, KindHaVip, nil)
	cfg.Address.Mover = "tencent-eip"
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("unknown kind accepted")
	}
	cfg = testConfig(s, KindHaVip, nil)
	cfg.Servers[1].IP, cfg.Servers[1].Hostname = "", "db2.example"
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "eni.server2") {
		t.Errorf("server without an IP: %v", err)
	}
	cfg.Address.Options["eni.server2"] = "eni-b"
	if _, err := New(cfg, Options{}); err != nil {
		t.Errorf("server without an IP but with eni.server2: %v", err)
	}
	if s.Calls("DescribeHaVips")+s.Calls("DescribeNetworkInterfaces") != 0 {
		t.Error("New called the API")
	}
	if m, err := New(testConfig(s, KindPrivateIP, nil), Options{}); err != nil || m.Kind() != KindPrivateIP {
		t.Errorf("private-ip mover: %v", err)
	}
}

// claimAfter plays a host that announces the address once Release is
// done: it claims the HaVip for instance after delay.
func claimAfter(s *sim.Server, instance string, delay time.Duration) {
	go func() {
		time.Sleep(delay)
		_ = s.SetHaVipHolder("havip-db", instance)
	}()
}

func TestHaVipMove(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindHaVip, nil))
	c := ctx(t)
	sc := m.(address.StatusChecker)
	// First use: the primary joins the drift scope (the others join when
	// Acquire makes them primary); no one holds it.
	if err := sc.Status(c, failover.Old); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "no one (UNBIND)") {
		t.Fatalf("status before any claim: %v", err)
	}
	if h, _ := s.GetHaVip("havip-db"); len(h.Associations) != 1 || h.Associations[0].InstanceID != "ins-a" || s.Calls("AssociateHaVipInstance") != 1 {
		t.Fatalf("drift scope %v after %d calls", h.Associations, s.Calls("AssociateHaVipInstance"))
	}
	if err := s.SetHaVipHolder("havip-db", "ins-a"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, failover.Old); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, failover.New); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "held by server1 (ins-a/eni-a)") {
		t.Fatalf("status of a non-holder: %v", err)
	}
	if got, err := m.Holder(c); err != nil || got != "server1" {
		t.Fatalf("holder = %q, %v", got, err)
	}
	// Release takes the old primary out of the checked drift scope, which
	// unbinds the HaVip.
	if err := m.Release(c, failover); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.GetHaVip("havip-db"); h.State() != sim.StateUnbind || len(h.Associations) != 1 {
		t.Fatalf("after release: %+v", h)
	}
	if err := s.SetHaVipHolder("havip-db", "ins-a"); err == nil {
		t.Fatal("the released old primary could claim the HaVip back")
	}
	if got, err := m.Holder(c); err != nil || got != "" {
		t.Fatalf("holder after release = %q, %v", got, err)
	}
	claimAfter(s, "ins-b", 100*time.Millisecond)
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Holder(c); err != nil || got != "server2" {
		t.Fatalf("holder = %q, %v", got, err)
	}
	// Re-runs change nothing.
	calls := s.Calls("AssociateHaVipInstance") + s.Calls("DisassociateHaVipInstance")
	if err := m.Release(c, failover); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if s.Calls("AssociateHaVipInstance")+s.Calls("DisassociateHaVipInstance") != calls {
		t.Fatal("a re-run changed the drift scope")
	}
	// Monitoring the new primary keeps the released old one out of the
	// scope: back from the dead with the address configured, it must not
	// claim the HaVip.
	if err := sc.Status(c, failover.New); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.GetHaVip("havip-db"); len(h.Associations) != 1 || h.Associations[0].InstanceID != "ins-b" {
		t.Fatalf("drift scope after status: %v", h.Associations)
	}
}

func TestHaVipByAddressWithoutScopeCheck(t *testing.T) {
	s := bed(t)
	if err := s.AddHaVip(sim.HaVip{ID: "havip-db", Vip: vip, SubnetID: "subnet-1", VpcID: "vpc-1", InstanceID: "ins-a", NetworkInterfaceID: "eni-a"}); err != nil {
		t.Fatal(err)
	}
	m := newMover(t, testConfig(s, KindHaVip, map[string]string{"havip_id": "", "vip": vip}))
	c := ctx(t)
	if err := m.(address.StatusChecker).Status(c, failover.Old); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(c, failover); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.GetHaVip("havip-db"); h.InstanceID != "ins-a" {
		t.Fatalf("without a checked scope the HaVip stays until the new primary's ARP: %+v", h)
	}
	claimAfter(s, "ins-b", 50*time.Millisecond)
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("AssociateHaVipInstance") + s.Calls("DisassociateHaVipInstance"); n != 0 {
		t.Fatalf("%d drift scope calls for a HaVip that does not check it", n)
	}
	if got, _ := m.Holder(c); got != "server2" {
		t.Fatalf("holder = %q", got)
	}
	// An address no HaVip has.
	m = newMover(t, testConfig(s, KindHaVip, map[string]string{"havip_id": "", "vip": "198.18.0.201"}))
	if _, err := m.Holder(c); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown address: %v", err)
	}
}

func TestHaVipGuestSSH(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindHaVip, map[string]string{"guest": "ssh", "arp_count": "5"}))
	g := withPlane(s, m)
	c := ctx(t)
	if err := m.(address.StatusChecker).Status(c, failover.Old); !errors.Is(err, ErrConflict) {
		t.Fatalf("status: %v", err)
	}
	_ = s.SetHaVipHolder("havip-db", "ins-a")
	if err := m.Release(c, failover); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Holder(c); got != "server2" {
		t.Fatalf("holder = %q", got)
	}
	eni, _ := s.GetENI("eni-b")
	log := g.log()
	for _, want := range []string{
		"server1: pkill -f 'arping.* " + vip + "$'",
		"server2: d=$(ip -o link | grep -i ' link/ether " + eni.MAC + " '",
		"ip addr add " + vip + "/32 dev \"$d\"",
		"arping -q -U -c 5 -I \"$d\" " + vip, "arping -q -A -c 5 -I \"$d\" " + vip,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("guest commands lack %q:\n%s", want, log)
		}
	}
	// A fixed interface name.
	m2 := newMover(t, testConfig(s, KindHaVip, map[string]string{"guest": "ssh", "interface": "eth1", "prefix": "24"}))
	g2 := withPlane(s, m2)
	if err := m2.Acquire(c, back); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g2.log(), "server1: d=eth1; ip -o addr show dev \"$d\" | grep -q ' "+vip+"/' || ip addr add "+vip+"/24 dev \"$d\"") {
		t.Fatalf("fixed interface:\n%s", g2.log())
	}
}

func TestHaVipRollbackOnlyInSwitchover(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindHaVip, map[string]string{"guest": "ssh", "wait_timeout": "300ms"}))
	g := withPlane(s, m)
	c := ctx(t)
	_ = m.(address.StatusChecker).Status(c, failover.Old)
	_ = s.SetHaVipHolder("havip-db", "ins-a")
	g.set(g.broken, "server2", true) // its gratuitous ARP never moves the HaVip

	// Failover: no rollback; the error says where the address is.
	if err := m.Release(c, failover); err != nil {
		t.Fatal(err)
	}
	err := m.Acquire(c, failover)
	if !errors.Is(err, ErrTimeout) || strings.Contains(err.Error(), "rolled back") ||
		!strings.Contains(err.Error(), "the address was left: HaVip havip-db ("+vip+") is held by no one (UNBIND)") ||
		!strings.Contains(err.Error(), "configured on server2's guest") {
		t.Fatalf("failover: %v", err)
	}
	if strings.Contains(g.log(), "server1: d=") {
		t.Fatalf("failover re-added the address on the old primary:\n%s", g.log())
	}

	// Switchover: back to the old primary.
	_ = m.(address.StatusChecker).Status(c, failover.Old) // server1 is primary again: back in the scope
	if err := s.SetHaVipHolder("havip-db", "ins-a"); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(c, switchover); err != nil {
		t.Fatal(err)
	}
	err = m.Acquire(c, switchover)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "rolled back: HaVip havip-db is held by server1 (ins-a) again") {
		t.Fatalf("switchover: %v", err)
	}
	if got, _ := m.Holder(c); got != "server1" {
		t.Fatalf("holder after rollback = %q", got)
	}
	if !regexp.MustCompile(`server2: pkill[^\n]*\nserver1: d=`).MatchString(g.log()) {
		t.Fatalf("rollback did not remove the address from server2, then add it on server1:\n%s", g.log())
	}
}

func TestHaVipReleaseGuestSSH(t *testing.T) {
	s := bed(t)
	cfg := testConfig(s, KindHaVip, map[string]string{"guest": "ssh"})
	m, err := NewHaVip(cfg, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errors.New("no route to host (test)")
	}})
	if err != nil {
		t.Fatal(err)
	}
	unreachable := failover
	unreachable.Old.SSHReachable = false
	if err := m.Release(ctx(t), unreachable); err != nil {
		t.Fatalf("unreachable old primary: %v", err)
	}
	if err := m.Release(ctx(t), failover); err == nil || !strings.Contains(err.Error(), "fence server1") || !strings.Contains(err.Error(), "ssh server1") {
		t.Fatalf("reachable old primary whose SSH fails: %v", err)
	}
}

func TestHaVipSubnetAndScope(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindHaVip, map[string]string{"eni.server2": "eni-z"}))
	if err := m.(address.StatusChecker).Status(ctx(t), failover.Old); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "subnet subnet-2") {
		t.Fatalf("ENI in another subnet: %v", err)
	}
	m = newMover(t, testConfig(s, KindHaVip, map[string]string{"associate": "no"}))
	if err := m.(address.StatusChecker).Status(ctx(t), failover.Old); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "associate=no") {
		t.Fatalf("associate=no: %v", err)
	}
	if s.Calls("AssociateHaVipInstance") != 0 {
		t.Fatal("associate=no associated")
	}
}

func TestPrivateIPMove(t *testing.T) {
	s := bed(t)
	var mu sync.Mutex
	plane := map[string]string{secIP: "ins-a"} // the data plane: address -> instance
	s.OnChange(func(e sim.Event) {
		if e.Type == sim.EventIPMigrated {
			mu.Lock()
			plane[e.IP] = e.InstanceID
			mu.Unlock()
		}
	})
	m := newMover(t, testConfig(s, KindPrivateIP, nil))
	c := ctx(t)
	sc := m.(address.StatusChecker)
	if err := sc.Status(c, failover.Old); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, failover.New); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "on ENI eni-a (instance ins-a, server1)") {
		t.Fatalf("status of a non-holder: %v", err)
	}
	if err := m.Release(c, failover); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := s.IPHolder(secIP); e != "eni-b" {
		t.Fatalf("after release the address is on %s", e)
	}
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Holder(c); err != nil || got != "server2" {
		t.Fatalf("holder = %q, %v", got, err)
	}
	mu.Lock()
	if plane[secIP] != "ins-b" {
		t.Errorf("data plane: %v", plane)
	}
	mu.Unlock()
	// Re-runs call no mutating API.
	n := s.Calls("MigratePrivateIpAddress")
	if err := m.Release(c, failover); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if s.Calls("MigratePrivateIpAddress") != n || n != 1 {
		t.Fatalf("migrations: %d then %d", n, s.Calls("MigratePrivateIpAddress"))
	}
	if err := sc.Status(c, failover.New); err != nil {
		t.Fatal(err)
	}
	// Acquire alone (the engine skipped Release) migrates; eni.server2
	// points at the instance's other ENI.
	m2 := newMover(t, testConfig(s, KindPrivateIP, map[string]string{"eni.server2": "eni-b2"}))
	if err := m2.Acquire(c, back); err != nil {
		t.Fatal(err)
	}
	if err := m2.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := s.IPHolder(secIP); e != "eni-b2" {
		t.Fatalf("eni.server2: the address is on %s", e)
	}
}

func TestPrivateIPThrottlingRetried(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindPrivateIP, nil))
	s.Throttle("MigratePrivateIpAddress", 2)
	s.Throttle("DescribeVpcTaskResult", 1)
	s.Throttle("DescribeNetworkInterfaces", 1)
	s.InjectError(sim.Fault{Action: "DescribeVpcTaskResult", Code: "InternalError", HTTPStatus: 503})
	c := ctx(t)
	if err := m.Release(c, failover); err != nil {
		t.Fatalf("release with throttling: %v", err)
	}
	if n := s.Calls("MigratePrivateIpAddress"); n != 3 {
		t.Fatalf("migrate calls = %d, want 3", n)
	}
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	// Throttling that outlasts the retries is reported.
	m = newMover(t, testConfig(s, KindPrivateIP, map[string]string{"retries": "2"}))
	s.Throttle("MigratePrivateIpAddress", 5)
	err := m.Release(c, back)
	if err == nil || !strings.Contains(err.Error(), "RequestLimitExceeded") || !strings.Contains(err.Error(), "is on ENI eni-b") {
		t.Fatalf("persistent throttling: %v", err)
	}
}

func TestPrivateIPFailedTask(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindPrivateIP, map[string]string{"guest": "ssh"}))
	g := withPlane(s, m)
	s.FailMigrations(secIP, 1, "the destination ENI was busy")
	c := ctx(t)
	err := m.Release(c, switchover)
	if !errors.Is(err, ErrTaskFailed) || !strings.Contains(err.Error(), "the destination ENI was busy") ||
		!strings.Contains(err.Error(), "the address "+secIP+" is on ENI eni-a (instance ins-a, server1)") ||
		!strings.Contains(err.Error(), "configured on server1 again") {
		t.Fatalf("failed task: %v", err)
	}
	if !regexp.MustCompile(`server1: pkill[^\n]*\nserver1: d=`).MatchString(g.log()) {
		t.Fatalf("the address was not restored on the old primary:\n%s", g.log())
	}
	// In a failover it is not restored.
	s.FailMigrations(secIP, 1, "")
	err = m.Release(c, failover)
	if !errors.Is(err, ErrTaskFailed) || !strings.Contains(err.Error(), "removed from server1's guest") {
		t.Fatalf("failed task in a failover: %v", err)
	}
	if e, _, _ := s.IPHolder(secIP); e != "eni-a" {
		t.Fatalf("after failed tasks the address is on %s", e)
	}
}

func TestPrivateIPSlowTaskTimesOut(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindPrivateIP, map[string]string{"wait_timeout": "300ms"}))
	s.SetResourceLatency(secIP, time.Hour)
	start := time.Now()
	err := m.Release(ctx(t), failover)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "MIGRATING") {
		t.Fatalf("slow task: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestPrivateIPRollbackOnlyInSwitchover(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindPrivateIP, map[string]string{"guest": "ssh"}))
	g := withPlane(s, m)
	g.set(g.fail, "server2", true)
	c := ctx(t)
	// Failover: Acquire migrates (Release could not reach the old primary
	// but migrated the address), the guest step fails, nothing moves back.
	unreachable := failover
	unreachable.Old.SSHReachable = false
	if err := m.Release(c, unreachable); err != nil {
		t.Fatal(err)
	}
	err := m.Acquire(c, failover)
	if err == nil || strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "is on ENI eni-b (instance ins-b, server2)") ||
		!strings.Contains(err.Error(), "Operation not permitted") {
		t.Fatalf("failover: %v", err)
	}
	if e, _, _ := s.IPHolder(secIP); e != "eni-b" {
		t.Fatalf("failover moved the address back to %s", e)
	}
	// Switchover: put the address back on server1, then switch over to
	// server2, whose guest step fails.
	g.set(g.fail, "server2", false)
	if err := m.Acquire(c, back); err != nil {
		t.Fatal(err)
	}
	g.set(g.fail, "server2", true)
	if err := m.Release(c, switchover); err != nil {
		t.Fatal(err)
	}
	err = m.Acquire(c, switchover)
	if err == nil || !strings.Contains(err.Error(), "rolled back: the address "+secIP+" is on server1's ENI eni-a again") {
		t.Fatalf("switchover: %v", err)
	}
	if e, _, _ := s.IPHolder(secIP); e != "eni-a" {
		t.Fatalf("after rollback the address is on %s", e)
	}
}

func TestWrongCredentialsNeverLeak(t *testing.T) {
	s := bed(t)
	credentialsFromEnv(t, testID, "wrong-"+testKey)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(testConfig(s, KindPrivateIP, nil), Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Release(ctx(t), failover)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "AuthFailure.SignatureFailure") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("wrong key: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		for _, secret := range []string{testKey, "wrong-" + testKey} {
			if strings.Contains(logs.String(), secret) || err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("%s: secret leaked:\n%s\n%v", what, logs.String(), err)
			}
		}
	}
	check("wrong key", err)
	if !strings.Contains(logs.String(), "AKIDmo…") {
		t.Fatalf("logs lack the SecretId hint:\n%s", logs.String())
	}
	credentialsFromEnv(t, "AKIDnobody", testKey)
	m, _ = New(testConfig(s, KindHaVip, nil), Options{Logger: log})
	_, err = m.Holder(ctx(t))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "AuthFailure.SecretIdNotFound") {
		t.Fatalf("unknown SecretId: %v", err)
	}
	check("unknown id", err)
	credentialsFromEnv(t, "", "")
	m, _ = New(testConfig(s, KindHaVip, nil), Options{Logger: log})
	err = m.(address.StatusChecker).Status(ctx(t), failover.Old)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "TENCENTCLOUD_SECRET_ID") {
		t.Fatalf("no credentials: %v", err)
	}
	check("no credentials", err)
	// Throttling retries are logged without secrets too.
	credentialsFromEnv(t, testID, testKey)
	m, _ = New(testConfig(s, KindHaVip, nil), Options{Logger: log})
	s.Throttle("DescribeHaVips", 1)
	if _, err := m.Holder(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "RequestLimitExceeded") {
		t.Fatalf("retry not logged:\n%s", logs.String())
	}
	check("retry", nil)
}

// Perl MHA's --command=stop|stopssh names no new primary: Release must not
// fail (MHA would abort the failover) and migrates nothing; Acquire moves
// the address.
func TestPrivateIPReleaseWithoutNewPrimary(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindPrivateIP, nil))
	c := ctx(t)
	if err := m.Release(c, address.Change{Old: failover.Old}); err != nil {
		t.Fatalf("release without a new primary: %v", err)
	}
	if n := s.Calls("MigratePrivateIpAddress"); n != 0 {
		t.Fatalf("release without a new primary migrated the address (%d calls)", n)
	}
	if err := m.Acquire(c, failover); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Holder(c); got != failover.New.Name {
		t.Fatalf("holder after acquire = %q, want %s", got, failover.New.Name)
	}
}
