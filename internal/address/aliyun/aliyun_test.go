package aliyun

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	sim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
	"github.com/cloudmha/cloudmha/internal/config"
)

const (
	testAK     = "LTAI5tMoverTestKey"
	testSecret = "mover-secret-NEVER-SHOWN-7"
)

// credentialsFromEnv points the credential chain at the environment only
// (no instance metadata, no profile files).
func credentialsFromEnv(t *testing.T, ak, secret string) {
	t.Helper()
	for _, k := range []string{"ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_ROLE_ARN",
		"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_ECS_METADATA"} {
		t.Setenv(k, "")
	}
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ak)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
}

func bed(t *testing.T) *sim.Server {
	t.Helper()
	credentialsFromEnv(t, testAK, testSecret)
	s := sim.New(sim.Options{Credentials: map[string]string{testAK: testSecret}, Latency: 30 * time.Millisecond})
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddEIP(sim.EIP{AllocationID: "eip-db", IP: "203.0.113.10", InstanceID: "i-a", InstanceType: "EcsInstance"})
	if _, err := s.AddDNSRecord(sim.DNSRecord{Domain: "example.com", RR: "db", Type: "A", Value: "198.18.0.11"}); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.AddInstance(sim.Instance{ID: "i-a", PrivateIP: "198.18.0.11", ZoneID: "z-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}),
		s.AddInstance(sim.Instance{ID: "i-b", PrivateIP: "198.18.0.12", ZoneID: "z-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}),
		s.AddENI(sim.ENI{ID: "eni-db", InstanceID: "i-a", PrimaryIP: "198.18.0.100", ZoneID: "z-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}),
		s.AddHaVip(sim.HaVip{ID: "havip-db", IP: "198.18.0.200", VSwitchID: "vsw-1", VpcID: "vpc-1"}),
		// For the secondary IP, EIP and DNS movers.
		s.AddVSwitch(sim.VSwitch{ID: "vsw-1", CIDR: "198.18.0.0/24", VpcID: "vpc-1", ZoneID: "z-k"}),
		s.AddENI(sim.ENI{ID: "eni-pa", Type: sim.ENITypePrimary, InstanceID: "i-a", PrimaryIP: "198.18.0.11", SecondaryIPs: []string{testVIP}, ZoneID: "z-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}),
		s.AddENI(sim.ENI{ID: "eni-pb", Type: sim.ENITypePrimary, InstanceID: "i-b", PrimaryIP: "198.18.0.12", ZoneID: "z-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}),
		s.AddDomain("example.com"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

const testVIP = "198.18.0.50"

func testConfig(s *sim.Server, kind string, extra map[string]string) *config.Config {
	o := map[string]string{
		"region": sim.DefaultRegion, "endpoint": s.Endpoint(), "guest": "none",
		"wait_timeout": "2s", "poll_interval": "10ms",
		"instance_id.server1": "i-a", "instance_id.server2": "i-b",
	}
	switch kind {
	case KindENI:
		o["eni_id"] = "eni-db"
	case KindHaVip:
		o["havip_id"] = "havip-db"
	case KindSecondaryIP:
		o["vip"] = testVIP
	case KindEIP:
		o["allocation_id"] = "eip-db"
		delete(o, "guest")
	case KindDNS:
		o["domain"], o["rr"] = "example.com", "db"
		for _, k := range []string{"guest", "instance_id.server1", "instance_id.server2", "region"} {
			delete(o, k)
		}
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
		Servers: []config.Server{{Name: "server1", IP: "198.18.0.11", Port: 3306}, {Name: "server2", IP: "198.18.0.12", Port: 3306}},
		Address: config.Address{Mover: kind, Options: o},
	}
}

var change = address.Change{
	Old: address.Target{Name: "server1", IP: "198.18.0.11", SSHReachable: true},
	New: address.Target{Name: "server2", IP: "198.18.0.12", SSHReachable: true},
}

func newMover(t *testing.T, cfg *config.Config) address.Mover {
	t.Helper()
	m, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestNewValidates(t *testing.T) {
	s := bed(t)
	for name, tc := range map[string]struct {
		kind  string
		extra map[string]string
		want  string
	}{
		"no region":      {KindENI, map[string]string{"region": ""}, "region is required"},
		"no eni":         {KindENI, map[string]string{"eni_id": ""}, "eni_id is required"},
		"no havip":       {KindHaVip, map[string]string{"havip_id": ""}, "havip_id is required"},
		"typo":           {KindENI, map[string]string{"wait_timeot": "1s"}, "unknown option"},
		"bad guest":      {KindHaVip, map[string]string{"guest": "maybe"}, "guest"},
		"bad duration":   {KindENI, map[string]string{"wait_timeout": "soon"}, "wait_timeout"},
		"unknown server": {KindENI, map[string]string{"instance_id.server9": "i-x"}, "server9"},
		"plain http":     {KindENI, map[string]string{"endpoint": "http://ecs.example.com"}, "loopback"},
	} {
		_, err := New(testConfig(s, tc.kind, tc.extra), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	cfg := testConfig(s, KindENI, nil)
	cfg.Address.Mover = "aliyun-nope"
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestENIMove(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindENI, nil))
	c := ctx(t)
	sc := m.(address.StatusChecker)
	if err := sc.Status(c, change.Old); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, change.New); !errors.Is(err, ErrConflict) {
		t.Fatalf("status of a non-holder: %v", err)
	}
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.GetENI("eni-db"); e.Status != sim.StatusAvailable {
		t.Fatalf("after release: %+v", e)
	}
	if h, err := m.Holder(c); err != nil || h != "" {
		t.Fatalf("holder after release = %q, %v", h, err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.GetENI("eni-db"); e.Status != sim.StatusInUse || e.InstanceID != "i-b" {
		t.Fatalf("after acquire: %+v", e)
	}
	if h, err := m.Holder(c); err != nil || h != "server2" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	// A re-run (the executor resuming) changes nothing and calls no
	// mutating API.
	att, det := s.Calls("AttachNetworkInterface"), s.Calls("DetachNetworkInterface")
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if s.Calls("AttachNetworkInterface") != att || s.Calls("DetachNetworkInterface") != det {
		t.Fatal("re-run called attach or detach again")
	}
}

func TestENIDiscoveryByPrivateIP(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindENI, map[string]string{"instance_id.server1": "", "instance_id.server2": ""}))
	if h, err := m.Holder(ctx(t)); err != nil || h != "server1" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	if s.Calls("DescribeInstances") == 0 {
		t.Fatal("instances not looked up")
	}
}

func TestENIThrottlingRetried(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindENI, nil))
	s.Throttle("DetachNetworkInterface", 2, 503)
	s.Throttle("DescribeNetworkInterfaces", 1, 400)
	s.Throttle("AttachNetworkInterface", 1, 400)
	c := ctx(t)
	if err := m.Release(c, change); err != nil {
		t.Fatalf("release with throttling: %v", err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatalf("acquire with throttling: %v", err)
	}
	if n := s.Calls("DetachNetworkInterface"); n != 3 {
		t.Fatalf("detach calls = %d, want 3", n)
	}
	if e, _ := s.GetENI("eni-db"); e.InstanceID != "i-b" || e.Status != sim.StatusInUse {
		t.Fatalf("after move: %+v", e)
	}
}

func TestENIThrottlingGivesUp(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindENI, map[string]string{"retries": "2"}))
	s.Throttle("DetachNetworkInterface", 5, 400)
	err := m.Release(ctx(t), change)
	if err == nil || !strings.Contains(err.Error(), "Throttling.User") {
		t.Fatalf("err = %v", err)
	}
}

func TestENIStuckDetachingTimesOut(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindENI, map[string]string{"wait_timeout": "300ms"}))
	s.StickDetaching("eni-db", true)
	start := time.Now()
	err := m.Release(ctx(t), change)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "fence") {
		t.Fatalf("err = %v, want a timeout that suggests fencing", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
	if n := s.Calls("DetachNetworkInterface"); n != 2 {
		t.Fatalf("detach calls = %d, want 2 (one re-sent)", n)
	}
}

func TestENIRollbackOnlyInSwitchover(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindENI, nil))
	c := ctx(t)
	// A planned switchover: the old primary is alive, the ENI goes back.
	online := change
	online.Online = true
	if err := m.Release(c, online); err != nil {
		t.Fatal(err)
	}
	s.InjectError(sim.Fault{Action: "AttachNetworkInterface", Status: 403, Code: "IncorrectInstanceStatus", Message: "The instance is not running."})
	err := m.Acquire(c, online)
	if err == nil || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "IncorrectInstanceStatus") {
		t.Fatalf("switchover: err = %v", err)
	}
	if e, _ := s.GetENI("eni-db"); e.InstanceID != "i-a" || e.Status != sim.StatusInUse {
		t.Fatalf("after rollback: %+v", e)
	}
	// A failover: the old primary is presumed dead; nothing is undone and
	// the error says where the ENI is.
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	attaches := s.Calls("AttachNetworkInterface")
	s.InjectError(sim.Fault{Action: "AttachNetworkInterface", Status: 403, Code: "IncorrectInstanceStatus"})
	err = m.Acquire(c, change)
	if err == nil || strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "ENI eni-db is left detached (Available, on no instance)") {
		t.Fatalf("failover: err = %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("multi-line error: %q", err)
	}
	if n := s.Calls("AttachNetworkInterface") - attaches; n != 1 {
		t.Fatalf("failover: %d attach calls, want 1 (no rollback)", n)
	}
	if e, _ := s.GetENI("eni-db"); e.Status != sim.StatusAvailable {
		t.Fatalf("failover: %+v", e)
	}
	// rollback=no: no rollback in a switchover either.
	m2 := newMover(t, testConfig(s, KindENI, map[string]string{"rollback": "no"}))
	s.InjectError(sim.Fault{Action: "AttachNetworkInterface", Status: 403, Code: "IncorrectInstanceStatus"})
	if err := m2.Acquire(c, online); err == nil || strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "rollback=no") {
		t.Fatalf("rollback=no: %v", err)
	}
	if e, _ := s.GetENI("eni-db"); e.Status != sim.StatusAvailable {
		t.Fatalf("rollback=no: %+v", e)
	}
}

func TestWrongCredentials(t *testing.T) {
	s := bed(t)
	credentialsFromEnv(t, testAK, "wrong-"+testSecret)
	var logs bytes.Buffer
	m, err := New(testConfig(s, KindENI, nil), Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Release(ctx(t), change)
	if strings.Contains(logs.String(), testSecret) {
		t.Fatalf("secret in the logs:\n%s", logs.String())
	}
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("secret in the error: %v", err)
	}
	if strings.Count(err.Error(), "\n") > 0 {
		t.Fatalf("multi-line error: %q", err)
	}
	credentialsFromEnv(t, "LTAInobody", testSecret)
	m = newMover(t, testConfig(s, KindHaVip, nil))
	if _, err := m.Holder(ctx(t)); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "InvalidAccessKeyId.NotFound") {
		t.Fatalf("unknown key: %v", err)
	}
}

// claimWhenAssociated plays the data plane: once instance is associated
// with the HaVip, it "sends gratuitous ARP" after a delay.
func claimWhenAssociated(t *testing.T, s *sim.Server, instance string, delay time.Duration) {
	t.Helper()
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if h, _ := s.GetHaVip("havip-db"); h.Status == sim.StatusInUse && contains(h.Instances, instance) {
				time.Sleep(delay)
				_ = s.SetHaVipMaster("havip-db", instance)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestHaVipMove(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindHaVip, nil))
	c := ctx(t)
	sc := m.(address.StatusChecker)
	// First use: both instances get associated; no one is master yet.
	if err := sc.Status(c, change.Old); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "no instance") {
		t.Fatalf("status before any claim: %v", err)
	}
	h, _ := s.GetHaVip("havip-db")
	if len(h.Instances) != 2 || s.Calls("AssociateHaVip") != 2 {
		t.Fatalf("associations %v, %d calls", h.Instances, s.Calls("AssociateHaVip"))
	}
	if err := s.SetHaVipMaster("havip-db", "i-a"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, change.Old); err != nil {
		t.Fatal(err)
	}
	mutating := func() int { return s.Calls("AssociateHaVip") + s.Calls("UnassociateHaVip") }
	before := mutating()
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	claimWhenAssociated(t, s, "i-b", 100*time.Millisecond)
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if mutating() != before {
		t.Fatal("the switch changed associations")
	}
	if got, err := m.Holder(c); err != nil || got != "server2" {
		t.Fatalf("holder = %q, %v", got, err)
	}
	// Idempotent re-run.
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
}

func TestHaVipAcquireAssociatesAndTimesOut(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindHaVip, map[string]string{"wait_timeout": "400ms"}))
	err := m.Acquire(ctx(t), change)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "master") {
		t.Fatalf("no claim: err = %v", err)
	}
	if h, _ := s.GetHaVip("havip-db"); !contains(h.Instances, "i-b") {
		t.Fatalf("new primary not associated: %+v", h)
	}
	m2 := newMover(t, testConfig(s, KindHaVip, map[string]string{"associate": "no"}))
	if err := m2.(address.StatusChecker).Status(ctx(t), change.Old); !errors.Is(err, ErrConflict) {
		t.Fatalf("associate=no: %v", err)
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
	unreachable := change
	unreachable.Old.SSHReachable = false
	if err := m.Release(ctx(t), unreachable); err != nil {
		t.Fatalf("unreachable old primary: %v", err)
	}
	if err := m.Release(ctx(t), change); err == nil || !strings.Contains(err.Error(), "fence") {
		t.Fatalf("reachable old primary whose SSH fails: %v", err)
	}
}
