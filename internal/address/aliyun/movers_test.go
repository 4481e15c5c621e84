package aliyun

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cloudmha/cloudmha/internal/address"
	sim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
)

var online = func() address.Change { c := change; c.Online = true; return c }()

// events records the emulator's events of the given prefixes.
func events(s *sim.Server, prefixes ...string) func() []string {
	var mu sync.Mutex
	var out []string
	s.OnChange(func(e sim.Event) {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Type, p) {
				mu.Lock()
				out = append(out, e.Type+"@"+e.ResourceID)
				mu.Unlock()
			}
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(out)
	}
}

func secondaryOn(s *sim.Server, eni string) bool {
	e, _ := s.GetENI(eni)
	return slices.Contains(e.SecondaryIPs, testVIP)
}

func mustNot(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("err = %v\nwant it to contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("multi-line error: %q", err)
	}
}

func TestNewMoversValidate(t *testing.T) {
	s := bed(t)
	for name, tc := range map[string]struct {
		kind  string
		extra map[string]string
		want  string
	}{
		"sip no vip":         {KindSecondaryIP, map[string]string{"vip": ""}, "vip"},
		"sip bad vip":        {KindSecondaryIP, map[string]string{"vip": "198.18.0.x"}, "vip"},
		"sip bad prefix":     {KindSecondaryIP, map[string]string{"prefix": "40"}, "prefix"},
		"sip eni of nobody":  {KindSecondaryIP, map[string]string{"eni_id.server9": "eni-x"}, "server9"},
		"sip typo":           {KindSecondaryIP, map[string]string{"arpcount": "3"}, "unknown option"},
		"sip bad interface":  {KindSecondaryIP, map[string]string{"interface": "eth0;reboot"}, "interface"},
		"eip no id":          {KindEIP, map[string]string{"allocation_id": ""}, "allocation_id"},
		"eip both":           {KindEIP, map[string]string{"public_ip": "203.0.113.10"}, "not both"},
		"eip bad id":         {KindEIP, map[string]string{"allocation_id": "eipalloc-1"}, "eip-"},
		"eip bind_to eni":    {KindEIP, map[string]string{"bind_to": "eni", "eni_id.server1": "eni-sa"}, "eni_id.server2"},
		"eip bind_to":        {KindEIP, map[string]string{"bind_to": "vm"}, "bind_to"},
		"eip guest":          {KindEIP, map[string]string{"guest": "ssh"}, "unknown option"},
		"dns no domain":      {KindDNS, map[string]string{"domain": ""}, "domain"},
		"dns no rr":          {KindDNS, map[string]string{"rr": ""}, "rr"},
		"dns type":           {KindDNS, map[string]string{"type": "CNAME"}, "only A"},
		"dns low ttl":        {KindDNS, map[string]string{"ttl": "60"}, "600"},
		"dns on_release":     {KindDNS, map[string]string{"on_release": "maybe"}, "on_release"},
		"dns bad ip":         {KindDNS, map[string]string{"ip.server1": "db1"}, "ip.server1"},
		"dns instance_id":    {KindDNS, map[string]string{"instance_id.server1": "i-a"}, "unknown option"},
		"havip eip_bind":     {KindHaVip, map[string]string{"eip_bind": "yes"}, "eip_allocation_id"},
		"havip bad eip":      {KindHaVip, map[string]string{"eip_allocation_id": "x"}, "eip-"},
		"havip eip_bind val": {KindHaVip, map[string]string{"eip_allocation_id": "eip-db", "eip_bind": "sometimes"}, "eip_bind"},
	} {
		_, err := New(testConfig(s, tc.kind, tc.extra), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	for _, extra := range []map[string]string{{"ttl": "60", "min_ttl": "1"}, {"region": "cn-shanghai"}, {"on_release": "keep", "ip.server2": "203.0.113.2"}} {
		if _, err := New(testConfig(s, KindDNS, extra), Options{}); err != nil {
			t.Errorf("%v: %v", extra, err)
		}
	}
	for _, kind := range []string{"aliyun/secondary-ip", "aliyun/eip", "aliyun/dns"} {
		cfg := testConfig(s, map[string]string{"aliyun/secondary-ip": KindSecondaryIP, "aliyun/eip": KindEIP, "aliyun/dns": KindDNS}[kind], nil)
		cfg.Address.Mover = kind
		if _, err := New(cfg, Options{}); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
}

func TestSecondaryIPMove(t *testing.T) {
	s := bed(t)
	got := events(s, "eni.ip.")
	// Primary ENIs discovered through the instances.
	m := newMover(t, testConfig(s, KindSecondaryIP, nil))
	c := ctx(t)
	sc := m.(address.StatusChecker)
	if err := sc.Status(c, change.Old); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, change.New); !errors.Is(err, ErrConflict) {
		t.Fatalf("status of a non-holder: %v", err)
	}
	if h, err := m.Holder(c); err != nil || h != "server1" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if secondaryOn(s, "eni-pa") {
		t.Fatal("still on the old ENI after release")
	}
	if h, err := m.Holder(c); err != nil || h != "" {
		t.Fatalf("holder after release = %q, %v", h, err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if !secondaryOn(s, "eni-pb") || secondaryOn(s, "eni-pa") {
		t.Fatal("not moved")
	}
	if h, err := m.Holder(c); err != nil || h != "server2" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	want := []string{"eni.ip.unassigning@eni-pa", "eni.ip.unassigned@eni-pa", "eni.ip.assigning@eni-pb", "eni.ip.assigned@eni-pb"}
	if e := got(); !slices.Equal(e, want) {
		t.Fatalf("events %v, want %v", e, want)
	}
	// A re-run calls no mutating API.
	mut := s.Calls("AssignPrivateIpAddresses") + s.Calls("UnassignPrivateIpAddresses")
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if s.Calls("AssignPrivateIpAddresses")+s.Calls("UnassignPrivateIpAddresses") != mut {
		t.Fatal("re-run changed something")
	}
	if err := sc.Status(c, change.New); err != nil {
		t.Fatal(err)
	}
}

func TestSecondaryIPAcquireWithoutRelease(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindSecondaryIP, map[string]string{"eni_id.server1": "eni-pa", "eni_id.server2": "eni-pb"}))
	if err := m.Acquire(ctx(t), change); err != nil {
		t.Fatal(err)
	}
	if !secondaryOn(s, "eni-pb") || secondaryOn(s, "eni-pa") {
		t.Fatal("not moved")
	}
	if s.Calls("DescribeInstances") != 0 {
		t.Fatal("ENIs looked up although configured")
	}
}

func TestSecondaryIPThrottlingAndLostAnswers(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindSecondaryIP, nil))
	s.Throttle("UnassignPrivateIpAddresses", 2, 503)
	s.Throttle("DescribeNetworkInterfaces", 1, 400)
	s.Throttle("AssignPrivateIpAddresses", 1, 400)
	c := ctx(t)
	if err := m.Release(c, change); err != nil {
		t.Fatalf("release with throttling: %v", err)
	}
	if n := s.Calls("UnassignPrivateIpAddresses"); n != 3 {
		t.Fatalf("unassign calls = %d, want 3", n)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatalf("acquire with throttling: %v", err)
	}
	if !secondaryOn(s, "eni-pb") {
		t.Fatal("not moved")
	}
	// A lost answer to the unassign: its retry meets InvalidIp.IpUnassigned.
	s.InjectError(sim.Fault{Action: "UnassignPrivateIpAddresses", Status: 503, Code: "ServiceUnavailable", Applied: true})
	back := address.Change{Old: change.New, New: change.Old}
	if err := m.Release(c, back); err != nil {
		t.Fatalf("release after a lost answer: %v", err)
	}
	if err := m.Acquire(c, back); err != nil {
		t.Fatal(err)
	}
	if !secondaryOn(s, "eni-pa") {
		t.Fatal("not moved back")
	}
}

func TestSecondaryIPFaultMidMove(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindSecondaryIP, nil))
	c := ctx(t)
	// Failover: released from the dead primary, the assign fails: no
	// rollback, the error says the address is on no ENI.
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	s.InjectError(sim.Fault{Action: "AssignPrivateIpAddresses", Status: 403, Code: "QuotaExceeded.PrivateIpAddress"})
	err := m.Acquire(c, change)
	mustNot(t, err, "QuotaExceeded.PrivateIpAddress", "no rollback in a failover", "198.18.0.50 is left assigned to no ENI")
	if secondaryOn(s, "eni-pa") || secondaryOn(s, "eni-pb") {
		t.Fatal("failover: the address was put somewhere")
	}
	// Switchover: the same fault rolls back to the old primary.
	s.InjectError(sim.Fault{Action: "AssignPrivateIpAddresses", Status: 403, Code: "QuotaExceeded.PrivateIpAddress"})
	err = m.Acquire(c, online)
	mustNot(t, err, "QuotaExceeded.PrivateIpAddress", "rolled back", "server1")
	if !secondaryOn(s, "eni-pa") || secondaryOn(s, "eni-pb") {
		t.Fatal("switchover: not rolled back")
	}
}

func TestSecondaryIPDeadline(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindSecondaryIP, map[string]string{"wait_timeout": "300ms"}))
	c := ctx(t)
	s.HoldTransitions("eni-pa", true)
	err := m.Release(c, change)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("held unassign: %v", err)
	}
	mustNot(t, err, "198.18.0.50 is left assigned to eni-pa (server1)")
	s.HoldTransitions("eni-pa", false)
	s.HoldTransitions("eni-pb", true)
	err = m.Acquire(c, change)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("held assign: %v", err)
	}
	mustNot(t, err, "assignment to eni-pb accepted", "is left assigned to no ENI")
	s.HoldTransitions("eni-pb", false)
	if h, err := m.Holder(c); err != nil || h != "server2" {
		t.Fatalf("holder once released = %q, %v", h, err)
	}
}

func TestSecondaryIPForeignHolder(t *testing.T) {
	s := bed(t)
	if err := s.AddENI(sim.ENI{ID: "eni-other", PrimaryIP: "198.18.0.90", SecondaryIPs: []string{"198.18.0.51"}, VSwitchID: "vsw-1", VpcID: "vpc-1"}); err != nil {
		t.Fatal(err)
	}
	m := newMover(t, testConfig(s, KindSecondaryIP, map[string]string{"vip": "198.18.0.51"}))
	if _, err := m.Holder(ctx(t)); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "eni-other (no configured server)") {
		t.Fatalf("holder: %v", err)
	}
	if err := m.Release(ctx(t), change); !errors.Is(err, ErrConflict) {
		t.Fatalf("release: %v", err)
	}
	if err := m.Acquire(ctx(t), change); !errors.Is(err, ErrConflict) {
		t.Fatalf("acquire: %v", err)
	}
	if e, _ := s.GetENI("eni-other"); len(e.SecondaryIPs) != 1 {
		t.Fatal("a foreign ENI's address was taken")
	}
}

func eipOn(s *sim.Server) (string, string) {
	e, _ := s.GetEIP("eip-db")
	return e.Status, e.InstanceID
}

func TestEIPMove(t *testing.T) {
	s := bed(t)
	got := events(s, "eip.")
	m := newMover(t, testConfig(s, KindEIP, nil))
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
	if st, in := eipOn(s); st != sim.StatusAvailable || in != "" {
		t.Fatalf("after release: %s %s", st, in)
	}
	if h, err := m.Holder(c); err != nil || h != "" {
		t.Fatalf("holder after release = %q, %v", h, err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if st, in := eipOn(s); st != sim.StatusInUse || in != "i-b" {
		t.Fatalf("after acquire: %s %s", st, in)
	}
	if h, err := m.Holder(c); err != nil || h != "server2" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	want := []string{"eip.unassociating@eip-db", "eip.unassociated@eip-db", "eip.associating@eip-db", "eip.associated@eip-db"}
	if e := got(); !slices.Equal(e, want) {
		t.Fatalf("events %v, want %v", e, want)
	}
	mut := s.Calls("AssociateEipAddress") + s.Calls("UnassociateEipAddress")
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if s.Calls("AssociateEipAddress")+s.Calls("UnassociateEipAddress") != mut {
		t.Fatal("re-run changed something")
	}
	// Acquire without release (and by public address): unassociated
	// from the other server first.
	m2 := newMover(t, testConfig(s, KindEIP, map[string]string{"allocation_id": "", "public_ip": "203.0.113.10"}))
	if err := m2.Acquire(c, address.Change{Old: change.New, New: change.Old}); err != nil {
		t.Fatal(err)
	}
	if st, in := eipOn(s); st != sim.StatusInUse || in != "i-a" {
		t.Fatalf("after acquire without release: %s %s", st, in)
	}
}

func TestEIPThrottlingAndLostAnswers(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindEIP, nil))
	c := ctx(t)
	s.Throttle("UnassociateEipAddress", 1, 503)
	s.Throttle("DescribeEipAddresses", 2, 400)
	// A lost answer to the association: the retry meets IncorrectEipStatus.
	s.InjectError(sim.Fault{Action: "AssociateEipAddress", Status: 503, Code: "ServiceUnavailable", Applied: true})
	if err := m.Release(c, change); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if st, in := eipOn(s); st != sim.StatusInUse || in != "i-b" {
		t.Fatalf("after acquire: %s %s", st, in)
	}
	if n := s.Calls("UnassociateEipAddress"); n != 2 {
		t.Fatalf("unassociate calls = %d, want 2", n)
	}
}

func TestEIPFaultMidMove(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindEIP, nil))
	c := ctx(t)
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	s.InjectError(sim.Fault{Action: "AssociateEipAddress", Code: "IncorrectInstanceStatus"})
	mustNot(t, m.Acquire(c, change), "IncorrectInstanceStatus", "no rollback in a failover", "EIP eip-db (203.0.113.10) Available, associated with nothing")
	if st, in := eipOn(s); st != sim.StatusAvailable || in != "" {
		t.Fatalf("failover: %s %s", st, in)
	}
	s.InjectError(sim.Fault{Action: "AssociateEipAddress", Code: "IncorrectInstanceStatus"})
	mustNot(t, m.Acquire(c, online), "IncorrectInstanceStatus", "rolled back", "server1")
	if st, in := eipOn(s); st != sim.StatusInUse || in != "i-a" {
		t.Fatalf("switchover: %s %s", st, in)
	}
}

func TestEIPDeadline(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindEIP, map[string]string{"wait_timeout": "300ms"}))
	s.HoldTransitions("eip-db", true)
	err := m.Release(ctx(t), change)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("held: %v", err)
	}
	mustNot(t, err, "Unassociating on EcsInstance i-a", "server1")
	s.HoldTransitions("eip-db", false)
}

func TestEIPOnSecondaryENI(t *testing.T) {
	s := bed(t)
	for _, e := range []sim.ENI{
		{ID: "eni-sa", InstanceID: "i-a", PrimaryIP: "198.18.0.31", ZoneID: "z-k", VSwitchID: "vsw-1", VpcID: "vpc-1"},
		{ID: "eni-sb", InstanceID: "i-b", PrimaryIP: "198.18.0.32", ZoneID: "z-k", VSwitchID: "vsw-1", VpcID: "vpc-1"},
	} {
		if err := s.AddENI(e); err != nil {
			t.Fatal(err)
		}
	}
	s.AddEIP(sim.EIP{AllocationID: "eip-db", IP: "203.0.113.10", InstanceID: "eni-sa", InstanceType: "NetworkInterface"})
	m := newMover(t, testConfig(s, KindEIP, map[string]string{"bind_to": "eni", "eni_id.server1": "eni-sa", "eni_id.server2": "eni-sb"}))
	c := ctx(t)
	if h, err := m.Holder(c); err != nil || h != "server1" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.GetEIP("eip-db"); e.InstanceID != "eni-sb" || e.InstanceType != "NetworkInterface" || e.PrivateIP != "198.18.0.32" {
		t.Fatalf("after move: %+v", e)
	}
}

func dnsValues(s *sim.Server) []string {
	var out []string
	for _, r := range s.DNSRecords("example.com", "db") {
		out = append(out, r.Value)
	}
	return out
}

func TestDNSMove(t *testing.T) {
	s := bed(t)
	// RRKeyWord matches fuzzily: a foreign db-old must not be touched.
	if _, err := s.AddDNSRecord(sim.DNSRecord{Domain: "example.com", RR: "db-old", Type: "A", Value: "203.0.113.99"}); err != nil {
		t.Fatal(err)
	}
	got := events(s, "dns.")
	m := newMover(t, testConfig(s, KindDNS, nil))
	c := ctx(t)
	sc := m.(address.StatusChecker)
	if err := sc.Status(c, change.Old); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, change.New); !errors.Is(err, ErrConflict) {
		t.Fatalf("status of a non-holder: %v", err)
	}
	if h, err := m.Holder(c); err != nil || h != "server1" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if v := dnsValues(s); len(v) != 0 {
		t.Fatalf("after release: %v", v)
	}
	if h, err := m.Holder(c); err != nil || h != "" {
		t.Fatalf("holder after release = %q, %v", h, err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if v := dnsValues(s); !slices.Equal(v, []string{"198.18.0.12"}) {
		t.Fatalf("after acquire: %v", v)
	}
	if r := s.DNSRecords("example.com", "db"); r[0].TTL != 600 {
		t.Fatalf("TTL %d", r[0].TTL)
	}
	if h, err := m.Holder(c); err != nil || h != "server2" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	if old := s.DNSRecords("example.com", "db-old"); len(old) != 1 || old[0].Value != "203.0.113.99" {
		t.Fatalf("db-old touched: %+v", old)
	}
	if e := got(); len(e) != 2 || !strings.HasPrefix(e[0], "dns.deleted@") || !strings.HasPrefix(e[1], "dns.added@") {
		t.Fatalf("events %v", e)
	}
	mut := s.Calls("AddDomainRecord") + s.Calls("UpdateDomainRecord") + s.Calls("DeleteDomainRecord")
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if s.Calls("AddDomainRecord")+s.Calls("UpdateDomainRecord")+s.Calls("DeleteDomainRecord") != mut {
		t.Fatal("re-run changed something")
	}
	if s.Calls("DescribeDomainRecordInfo") == 0 {
		t.Fatal("not read back")
	}
}

func TestDNSKeepAndDuplicate(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindDNS, map[string]string{"on_release": "keep", "ip.server2": "203.0.113.2"}))
	c := ctx(t)
	if err := m.Release(c, change); err != nil {
		t.Fatal(err)
	}
	if v := dnsValues(s); !slices.Equal(v, []string{"198.18.0.11"}) {
		t.Fatalf("on_release=keep: %v", v)
	}
	// A lost answer to the update: the retry meets DomainRecordDuplicate,
	// which is success.
	s.InjectError(sim.Fault{Action: "UpdateDomainRecord", Status: 503, Code: "ServiceUnavailable", Applied: true})
	if err := m.Acquire(c, change); err != nil {
		t.Fatalf("acquire after a lost answer: %v", err)
	}
	if n := s.Calls("UpdateDomainRecord"); n != 2 {
		t.Fatalf("update calls = %d, want 2", n)
	}
	if v := dnsValues(s); !slices.Equal(v, []string{"203.0.113.2"}) {
		t.Fatalf("after acquire: %v", v)
	}
	if h, err := m.Holder(c); err != nil || h != "server2" {
		t.Fatalf("holder = %q, %v", h, err)
	}
	// Two records (round robin): the holder cannot tell, acquire leaves one.
	if _, err := s.AddDNSRecord(sim.DNSRecord{Domain: "example.com", RR: "db", Type: "A", Value: "198.18.0.11"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Holder(c); !errors.Is(err, ErrConflict) {
		t.Fatalf("two records: %v", err)
	}
	if err := m.Acquire(c, change); err != nil {
		t.Fatal(err)
	}
	if v := dnsValues(s); !slices.Equal(v, []string{"203.0.113.2"}) {
		t.Fatalf("after acquire with two records: %v", v)
	}
}

func TestDNSThrottlingAndFaults(t *testing.T) {
	s := bed(t)
	m := newMover(t, testConfig(s, KindDNS, nil))
	c := ctx(t)
	s.Throttle("DescribeDomainRecords", 2, 400)
	s.Throttle("DeleteDomainRecord", 1, 503)
	if err := m.Release(c, change); err != nil {
		t.Fatalf("release with throttling: %v", err)
	}
	// Failover: the add fails, nothing is undone, the error says the
	// record is gone.
	s.InjectError(sim.Fault{Action: "AddDomainRecord", Code: "DomainForbidden", Message: "The domain has been forbidden."})
	mustNot(t, m.Acquire(c, change), "DomainForbidden", "no rollback in a failover", "no A record db.example.com exists")
	if v := dnsValues(s); len(v) != 0 {
		t.Fatalf("failover: %v", v)
	}
	// Switchover: rolled back to the old primary.
	s.InjectError(sim.Fault{Action: "AddDomainRecord", Code: "DomainForbidden"})
	mustNot(t, m.Acquire(c, online), "DomainForbidden", "rolled back", "server1")
	if v := dnsValues(s); !slices.Equal(v, []string{"198.18.0.11"}) {
		t.Fatalf("switchover: %v", v)
	}
	// A record at a foreign address is not this cluster's.
	if _, err := s.AddDNSRecord(sim.DNSRecord{Domain: "example.com", RR: "db", Type: "A", Value: "203.0.113.77"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(c, change); !errors.Is(err, ErrConflict) {
		t.Fatalf("foreign record: %v", err)
	}
	if err := m.Acquire(c, change); !errors.Is(err, ErrConflict) {
		t.Fatalf("foreign record: %v", err)
	}
	// The edition refuses a low TTL: the error says so.
	s2 := bed(t)
	m2 := newMover(t, testConfig(s2, KindDNS, map[string]string{"ttl": "60", "min_ttl": "1"}))
	if err := m2.Release(c, change); err != nil {
		t.Fatal(err)
	}
	mustNot(t, m2.Acquire(c, change), "InvalidTTL.Range")
}

func TestHaVipEIPBinding(t *testing.T) {
	s := bed(t)
	s.AddEIP(sim.EIP{AllocationID: "eip-pub", IP: "203.0.113.20"})
	c := ctx(t)
	m := newMover(t, testConfig(s, KindHaVip, map[string]string{"eip_allocation_id": "eip-pub"}))
	sc := m.(address.StatusChecker)
	if err := sc.Status(c, change.Old); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "eip_bind=yes") {
		t.Fatalf("unbound EIP: %v", err)
	}
	mb := newMover(t, testConfig(s, KindHaVip, map[string]string{"eip_allocation_id": "eip-pub", "eip_bind": "yes"}))
	// Binds the EIP, then fails on the master (no claim yet).
	if err := mb.(address.StatusChecker).Status(c, change.Old); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "no instance") {
		t.Fatalf("status with eip_bind: %v", err)
	}
	if e, _ := s.GetEIP("eip-pub"); e.Status != sim.StatusInUse || e.InstanceID != "havip-db" || e.InstanceType != "HaVip" || e.PrivateIP != "198.18.0.200" {
		t.Fatalf("EIP after eip_bind: %+v", e)
	}
	if err := s.SetHaVipMaster("havip-db", "i-a"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Status(c, change.Old); err != nil {
		t.Fatal(err)
	}
	// Bound elsewhere: never taken.
	m2 := newMover(t, testConfig(s, KindHaVip, map[string]string{"eip_allocation_id": "eip-db", "eip_bind": "yes"}))
	if err := m2.(address.StatusChecker).Status(c, change.Old); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "not taken") {
		t.Fatalf("EIP on an instance: %v", err)
	}
	if st, in := eipOn(s); st != sim.StatusInUse || in != "i-a" {
		t.Fatalf("eip-db moved: %s %s", st, in)
	}
}

func TestSecondaryIPGuestSideOverSSH(t *testing.T) {
	s := bed(t)
	cfg := testConfig(s, KindSecondaryIP, map[string]string{"guest": "ssh"})
	m, err := NewSecondaryIP(cfg, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errors.New("no route to host (test)")
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	// Release: the API call cuts the old primary off; the guest-side
	// removal is best effort.
	if err := m.Release(c, change); err != nil {
		t.Fatalf("release with SSH failing: %v", err)
	}
	// Failover: the address is assigned, the guest side fails: the error
	// says where the address is.
	mustNot(t, m.Acquire(c, change), "guest side", "no rollback in a failover", "198.18.0.50 is left assigned to eni-pb (server2)")
	// Switchover: moved back to the old primary's ENI.
	mustNot(t, m.Acquire(c, online), "guest side", "rolled back")
	if !secondaryOn(s, "eni-pa") || secondaryOn(s, "eni-pb") {
		t.Fatal("switchover: not rolled back")
	}
}
