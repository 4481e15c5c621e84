package aliyun

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	alidns "github.com/alibabacloud-go/alidns-20150109/v5/client"
	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	vpc "github.com/alibabacloud-go/vpc-20160428/v7/client"
)

func i64(v int64) *int64 { return &v }

// recorder collects the emulator's events.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func record(s *Server) *recorder {
	r := &recorder{}
	s.OnChange(func(e Event) { r.mu.Lock(); r.evs = append(r.evs, e); r.mu.Unlock() })
	return r
}

func (r *recorder) types(prefix string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		if strings.HasPrefix(e.Type, prefix) {
			out = append(out, e.Type+":"+e.IP)
		}
	}
	return strings.Join(out, " ")
}

// primaryENIs seeds a vSwitch CIDR and the primary ENIs of i-a and i-b.
func primaryENIs(t *testing.T, s *Server) {
	t.Helper()
	must(t, s.AddVSwitch(VSwitch{ID: "vsw-1", CIDR: "198.18.0.0/24", VpcID: "vpc-1", ZoneID: "cn-hangzhou-k"}))
	must(t, s.AddENI(ENI{ID: "eni-pa", Type: ENITypePrimary, InstanceID: "i-a", PrimaryIP: "198.18.0.11", ZoneID: "cn-hangzhou-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}))
	must(t, s.AddENI(ENI{ID: "eni-pb", Type: ENITypePrimary, InstanceID: "i-b", PrimaryIP: "198.18.0.12", ZoneID: "cn-hangzhou-k", VSwitchID: "vsw-1", VpcID: "vpc-1"}))
}

func secondaries(t *testing.T, e *ecs.Client, id string) []string {
	t.Helper()
	var out []string
	for _, ip := range describeENI(t, e, id).PrivateIpSets.PrivateIpSet {
		if !*ip.Primary {
			out = append(out, *ip.PrivateIpAddress)
		}
	}
	return out
}

func assign(e *ecs.Client, eni, token string, ips ...string) (*ecs.AssignPrivateIpAddressesResponse, error) {
	req := &ecs.AssignPrivateIpAddressesRequest{RegionId: str(DefaultRegion), NetworkInterfaceId: str(eni)}
	for _, ip := range ips {
		req.PrivateIpAddress = append(req.PrivateIpAddress, str(ip))
	}
	if token != "" {
		req.ClientToken = str(token)
	}
	return e.AssignPrivateIpAddresses(req)
}

func unassign(e *ecs.Client, eni string, ips ...string) error {
	req := &ecs.UnassignPrivateIpAddressesRequest{RegionId: str(DefaultRegion), NetworkInterfaceId: str(eni)}
	for _, ip := range ips {
		req.PrivateIpAddress = append(req.PrivateIpAddress, str(ip))
	}
	_, err := e.UnassignPrivateIpAddresses(req)
	return err
}

func TestSecondaryIPsWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	primaryENIs(t, s)
	rec := record(s)
	_, e := clients(t, s, testAK, testSecret)
	const vip = "198.18.0.50"

	out, err := assign(e, "eni-pa", "tok-1", vip)
	must(t, err)
	if set := out.Body.AssignedPrivateIpAddressesSet; *set.NetworkInterfaceId != "eni-pa" || *set.PrivateIpSet.PrivateIpAddress[0] != vip {
		t.Fatalf("answer: %+v", set)
	}
	// Asynchronous: not listed yet, but reserved.
	if got := secondaries(t, e, "eni-pa"); len(got) != 0 {
		t.Fatalf("listed at once: %v", got)
	}
	if _, err := assign(e, "eni-pb", "", vip); code(err) != "InvalidPrivateIpAddress.Duplicated" {
		t.Fatalf("assign of a reserved address: %v", err)
	}
	// The same token and parameters: the first answer, no second change.
	if _, err := assign(e, "eni-pa", "tok-1", vip); err != nil {
		t.Fatalf("token replay: %v", err)
	}
	waitFor(t, "assigned", func() bool { return slices.Equal(secondaries(t, e, "eni-pa"), []string{vip}) })

	for name, tc := range map[string]struct {
		eni, ip, code string
	}{
		"held by another ENI": {"eni-pb", vip, "InvalidPrivateIpAddress.Duplicated"},
		"again on its ENI":    {"eni-pa", vip, "InvalidPrivateIpAddress.Duplicated"},
		"a primary address":   {"eni-pb", "198.18.0.11", "InvalidPrivateIpAddress.Duplicated"},
		"a HaVip's address":   {"eni-pb", "198.18.0.200", "InvalidPrivateIpAddress.Duplicated"},
		"outside the vSwitch": {"eni-pb", "10.1.2.3", "InvalidVSwitchId.IpInvalid"},
		"not an address":      {"eni-pb", "198.18.0.x", "InvalidPrivateIpAddress.Malformed"},
		"unknown ENI":         {"eni-none", "198.18.0.51", "InvalidEniId.NotFound"},
	} {
		if _, err := assign(e, tc.eni, "", tc.ip); code(err) != tc.code {
			t.Errorf("%s: err = %v, want %s", name, err, tc.code)
		}
	}
	if _, err := e.AssignPrivateIpAddresses(&ecs.AssignPrivateIpAddressesRequest{RegionId: str(DefaultRegion), NetworkInterfaceId: str("eni-pa")}); code(err) != "MissingParameter" {
		t.Errorf("no address: %v", err)
	}
	if err := unassign(e, "eni-pb", vip); code(err) != "InvalidIp.IpUnassigned" {
		t.Fatalf("unassign from a non-holder: %v", err)
	}
	if err := unassign(e, "eni-pa", "198.18.0.11"); code(err) != "InvalidIp.IpUnassigned" {
		t.Fatalf("unassign of the primary address: %v", err)
	}
	// Filters: by address (secondary addresses match), by type.
	f, err := e.DescribeNetworkInterfaces(&ecs.DescribeNetworkInterfacesRequest{RegionId: str(DefaultRegion), PrivateIpAddress: []*string{str(vip)}})
	must(t, err)
	if n := f.Body.NetworkInterfaceSets.NetworkInterfaceSet; len(n) != 1 || *n[0].NetworkInterfaceId != "eni-pa" || *n[0].Type != ENITypePrimary {
		t.Fatalf("by address: %d results", len(n))
	}
	f, err = e.DescribeNetworkInterfaces(&ecs.DescribeNetworkInterfacesRequest{RegionId: str(DefaultRegion), InstanceId: str("i-b"), Type: str(ENITypePrimary)})
	must(t, err)
	if n := f.Body.NetworkInterfaceSets.NetworkInterfaceSet; len(n) != 1 || *n[0].NetworkInterfaceId != "eni-pb" {
		t.Fatalf("primary ENI of i-b: %d results", len(n))
	}

	must(t, unassign(e, "eni-pa", vip))
	if got := secondaries(t, e, "eni-pa"); !slices.Equal(got, []string{vip}) {
		t.Fatalf("unassigned at once: %v", got)
	}
	if _, err := assign(e, "eni-pb", "", vip); code(err) != "InvalidPrivateIpAddress.Duplicated" {
		t.Fatalf("assign while the old holder still has it: %v", err)
	}
	if err := unassign(e, "eni-pa", vip); code(err) != "InvalidIp.IpUnassigned" {
		t.Fatalf("second unassign: %v", err)
	}
	waitFor(t, "unassigned", func() bool { return len(secondaries(t, e, "eni-pa")) == 0 })
	_, err = assign(e, "eni-pb", "", vip)
	must(t, err)
	waitFor(t, "moved", func() bool { return slices.Equal(secondaries(t, e, "eni-pb"), []string{vip}) })
	if en, _ := s.GetENI("eni-pb"); !slices.Equal(en.SecondaryIPs, []string{vip}) {
		t.Fatalf("GetENI: %+v", en)
	}

	// Held transitions stay pending until released.
	s.HoldTransitions("eni-pb", true)
	must(t, unassign(e, "eni-pb", vip))
	time.Sleep(150 * time.Millisecond)
	if got := secondaries(t, e, "eni-pb"); len(got) != 1 {
		t.Fatalf("held unassign completed: %v", got)
	}
	s.HoldTransitions("eni-pb", false)
	if got := secondaries(t, e, "eni-pb"); len(got) != 0 {
		t.Fatalf("released unassign still pending: %v", got)
	}

	if _, err := e.DetachNetworkInterface(&ecs.DetachNetworkInterfaceRequest{RegionId: str(DefaultRegion), InstanceId: str("i-a"), NetworkInterfaceId: str("eni-pa")}); code(err) != "InvalidOperation.DetachPrimaryEniNotAllowed" {
		t.Fatalf("detach of a primary ENI: %v", err)
	}
	want := "eni.ip.assigning:" + vip + " eni.ip.assigned:" + vip + " eni.ip.unassigning:" + vip + " eni.ip.unassigned:" + vip +
		" eni.ip.assigning:" + vip + " eni.ip.assigned:" + vip + " eni.ip.unassigning:" + vip + " eni.ip.unassigned:" + vip
	if got := rec.types("eni.ip."); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func describeEIP(t *testing.T, v *vpc.Client, id string) *vpc.DescribeEipAddressesResponseBodyEipAddressesEipAddress {
	t.Helper()
	out, err := v.DescribeEipAddresses(&vpc.DescribeEipAddressesRequest{RegionId: str(DefaultRegion), AllocationId: str(id)})
	must(t, err)
	if n := len(out.Body.EipAddresses.EipAddress); n != 1 {
		t.Fatalf("DescribeEipAddresses %s: %d results", id, n)
	}
	return out.Body.EipAddresses.EipAddress[0]
}

func TestEIPWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	primaryENIs(t, s)
	rec := record(s)
	s.AddEIP(EIP{AllocationID: "eip-1", IP: "203.0.113.10"})
	s.AddEIP(EIP{AllocationID: "eip-2", IP: "203.0.113.11"})
	v, e := clients(t, s, testAK, testSecret)
	associate := func(aid, inst, typ, pip string) error {
		req := &vpc.AssociateEipAddressRequest{RegionId: str(DefaultRegion), AllocationId: str(aid), InstanceId: str(inst)}
		if typ != "" {
			req.InstanceType = str(typ)
		}
		if pip != "" {
			req.PrivateIpAddress = str(pip)
		}
		_, err := v.AssociateEipAddress(req)
		return err
	}
	unassociate := func(aid, inst string) error {
		req := &vpc.UnassociateEipAddressRequest{RegionId: str(DefaultRegion), AllocationId: str(aid)}
		if inst != "" {
			req.InstanceId = str(inst)
		}
		_, err := v.UnassociateEipAddress(req)
		return err
	}

	must(t, associate("eip-1", "i-a", "", ""))
	if d := describeEIP(t, v, "eip-1"); *d.Status != StatusAssociating || *d.InstanceId != "i-a" || *d.PrivateIpAddress != "198.18.0.11" {
		t.Fatalf("after associate: %s %s %s", *d.Status, *d.InstanceId, *d.PrivateIpAddress)
	}
	if err := associate("eip-1", "i-b", "", ""); code(err) != "IncorrectEipStatus" {
		t.Fatalf("associate while Associating: %v", err)
	}
	if err := unassociate("eip-1", ""); code(err) != "IncorrectEipStatus" {
		t.Fatalf("unassociate while Associating: %v", err)
	}
	waitFor(t, "InUse", func() bool { return *describeEIP(t, v, "eip-1").Status == StatusInUse })
	if ip := describeENI(t, e, "eni-pa").PrivateIpSets.PrivateIpSet[0]; ip.AssociatedPublicIp == nil || *ip.AssociatedPublicIp.PublicIpAddress != "203.0.113.10" {
		t.Fatalf("the primary ENI does not show the EIP: %+v", ip)
	}
	if err := associate("eip-2", "i-a", "", ""); code(err) != "InvalidAssociation.Duplicated" {
		t.Fatalf("second EIP on one address: %v", err)
	}
	for name, tc := range map[string]struct {
		aid, inst, typ, pip, code string
	}{
		"unknown EIP":        {"eip-none", "i-a", "", "", "InvalidAllocationId.NotFound"},
		"unknown instance":   {"eip-2", "i-none", "", "", "InvalidInstanceId.NotFound"},
		"unsupported type":   {"eip-2", "slb-1", "SlbInstance", "", "InvalidInstanceType.ValueNotSupported"},
		"primary ENI":        {"eip-2", "eni-pa", EIPTypeENI, "", "InvalidInstanceType.ValueNotSupported"},
		"foreign private IP": {"eip-2", "i-b", "", "198.18.0.11", "InvalidPrivateIpAddress.NotFound"},
		"unknown HaVip":      {"eip-2", "havip-none", EIPTypeHaVip, "", "InvalidHaVipId.NotFound"},
	} {
		if err := associate(tc.aid, tc.inst, tc.typ, tc.pip); code(err) != tc.code {
			t.Errorf("%s: err = %v, want %s", name, err, tc.code)
		}
	}
	if err := unassociate("eip-1", "i-b"); code(err) != "InvalidInstanceId.MisMatch" {
		t.Fatalf("unassociate from another instance: %v", err)
	}
	if err := unassociate("eip-2", ""); code(err) != "IncorrectEipStatus" {
		t.Fatalf("unassociate of an Available EIP: %v", err)
	}
	must(t, unassociate("eip-1", "i-a"))
	if st := *describeEIP(t, v, "eip-1").Status; st != StatusUnassociating {
		t.Fatalf("after unassociate: %s", st)
	}
	waitFor(t, "Available", func() bool { return *describeEIP(t, v, "eip-1").Status == StatusAvailable })

	// On a HaVip, the public entry follows the HaVip's master.
	must(t, associate("eip-1", "havip-1", EIPTypeHaVip, ""))
	waitFor(t, "InUse on the HaVip", func() bool { return *describeEIP(t, v, "eip-1").Status == StatusInUse })
	if h := describeHaVip(t, v, "havip-1"); len(h.AssociatedEipAddresses.AssociatedEipAddresse) != 1 || *h.AssociatedEipAddresses.AssociatedEipAddresse[0] != "203.0.113.10" {
		t.Fatalf("HaVip's EIPs: %+v", h.AssociatedEipAddresses)
	}
	// Filters.
	out, err := v.DescribeEipAddresses(&vpc.DescribeEipAddressesRequest{RegionId: str(DefaultRegion), AssociatedInstanceType: str(EIPTypeHaVip), AssociatedInstanceId: str("havip-1")})
	must(t, err)
	if n := len(out.Body.EipAddresses.EipAddress); n != 1 || *out.Body.TotalCount != 1 {
		t.Fatalf("by association: %d", n)
	}
	out, err = v.DescribeEipAddresses(&vpc.DescribeEipAddressesRequest{RegionId: str(DefaultRegion), EipAddress: str("203.0.113.11,203.0.113.10")})
	must(t, err)
	if n := len(out.Body.EipAddresses.EipAddress); n != 2 {
		t.Fatalf("by address list: %d", n)
	}

	// A held association stays Associating.
	s.HoldTransitions("eip-2", true)
	must(t, associate("eip-2", "i-b", EIPTypeEcs, ""))
	time.Sleep(150 * time.Millisecond)
	if st := *describeEIP(t, v, "eip-2").Status; st != StatusAssociating {
		t.Fatalf("held: %s", st)
	}
	s.HoldTransitions("eip-2", false)
	if g, _ := s.GetEIP("eip-2"); g.Status != StatusInUse || g.InstanceID != "i-b" {
		t.Fatalf("released: %+v", g)
	}
	want := "eip.associating:198.18.0.11 eip.associated:198.18.0.11 eip.unassociating:198.18.0.11 eip.unassociated:198.18.0.11 " +
		"eip.associating:198.18.0.200 eip.associated:198.18.0.200 eip.associating:198.18.0.12 eip.associated:198.18.0.12"
	if got := rec.types("eip."); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func dnsClient(t *testing.T, s *Server) *alidns.Client {
	t.Helper()
	c, err := alidns.NewClient(sdkConfig(s, testAK, testSecret))
	must(t, err)
	return c
}

func TestAlidnsWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	rec := record(s)
	must(t, s.AddDomain("example.com"))
	d := dnsClient(t, s)
	add := func(rr, typ, value string, ttl int64) (string, error) {
		req := &alidns.AddDomainRecordRequest{DomainName: str("example.com"), RR: str(rr), Type: str(typ), Value: str(value)}
		if ttl > 0 {
			req.TTL = i64(ttl)
		}
		out, err := d.AddDomainRecord(req)
		if err != nil {
			return "", err
		}
		return *out.Body.RecordId, nil
	}
	id, err := add("db", "A", "198.18.0.11", 600)
	must(t, err)
	if _, err := add("db", "A", "198.18.0.11", 0); code(err) != "DomainRecordDuplicate" {
		t.Fatalf("duplicate add: %v", err)
	}
	if _, err := add("db", "CNAME", "x.example.net", 0); code(err) != "DomainRecordConflict" {
		t.Fatalf("CNAME beside an A record: %v", err)
	}
	if _, err := add("db2", "A", "198.18.0.12", 60); code(err) != "InvalidTTL.Range" {
		t.Fatalf("TTL below the edition's minimum: %v", err)
	}
	if _, err := add("db2", "A", "not-an-ip", 0); code(err) != "InvalidValue.Format" {
		t.Fatalf("bad A value: %v", err)
	}
	if _, err := d.AddDomainRecord(&alidns.AddDomainRecordRequest{DomainName: str("other.org"), RR: str("db"), Type: str("A"), Value: str("198.18.0.1")}); code(err) != "IncorrectDomainUser" {
		t.Fatalf("foreign domain: %v", err)
	}
	oldID, err := add("db-old", "A", "198.18.0.99", 0)
	must(t, err)

	// RRKeyWord is fuzzy: "db" finds db and db-old.
	out, err := d.DescribeDomainRecords(&alidns.DescribeDomainRecordsRequest{DomainName: str("example.com"), RRKeyWord: str("DB"), Type: str("A")})
	must(t, err)
	if n := len(out.Body.DomainRecords.Record); n != 2 || *out.Body.TotalCount != 2 {
		t.Fatalf("RRKeyWord db: %d records", n)
	}
	if r := out.Body.DomainRecords.Record[0]; *r.RecordId != oldID {
		t.Fatalf("newest first: %s", *r.RecordId)
	}
	out, err = d.DescribeDomainRecords(&alidns.DescribeDomainRecordsRequest{DomainName: str("example.com"), KeyWord: str("db"), SearchMode: str("EXACT"), PageSize: i64(1)})
	must(t, err)
	if n := len(out.Body.DomainRecords.Record); n != 1 || *out.Body.DomainRecords.Record[0].RecordId != id {
		t.Fatalf("EXACT db: %d records", n)
	}
	if _, err := d.DescribeDomainRecords(&alidns.DescribeDomainRecordsRequest{DomainName: str("other.org")}); code(err) != "InvalidDomainName.NoExist" {
		t.Fatalf("describe of a foreign domain: %v", err)
	}

	update := func(rid, value string) error {
		_, err := d.UpdateDomainRecord(&alidns.UpdateDomainRecordRequest{RecordId: str(rid), RR: str("db"), Type: str("A"), Value: str(value), TTL: i64(600)})
		return err
	}
	if err := update(id, "198.18.0.11"); code(err) != "DomainRecordDuplicate" {
		t.Fatalf("unchanged update: %v", err)
	}
	must(t, update(id, "198.18.0.12"))
	info, err := d.DescribeDomainRecordInfo(&alidns.DescribeDomainRecordInfoRequest{RecordId: str(id)})
	must(t, err)
	if *info.Body.Value != "198.18.0.12" || *info.Body.TTL != 600 || *info.Body.RR != "db" || *info.Body.DomainName != "example.com" {
		t.Fatalf("info: %+v", info.Body)
	}
	if err := update("999", "198.18.0.12"); code(err) != "DomainRecordNotBelongToUser" {
		t.Fatalf("update of an unknown record: %v", err)
	}
	lockedID, err := s.AddDNSRecord(DNSRecord{Domain: "example.com", RR: "locked", Type: "A", Value: "198.18.0.1", Locked: true})
	must(t, err)
	if _, err := d.DeleteDomainRecord(&alidns.DeleteDomainRecordRequest{RecordId: str(lockedID)}); code(err) != "DomainRecordLocked" {
		t.Fatalf("delete of a locked record: %v", err)
	}
	_, err = d.DeleteDomainRecord(&alidns.DeleteDomainRecordRequest{RecordId: str(id)})
	must(t, err)
	if _, err := d.DeleteDomainRecord(&alidns.DeleteDomainRecordRequest{RecordId: str(id)}); code(err) != "DomainRecordNotBelongToUser" {
		t.Fatalf("second delete: %v", err)
	}
	if rs := s.DNSRecords("example.com", "db"); len(rs) != 0 {
		t.Fatalf("after delete: %+v", rs)
	}
	want := "dns.added:198.18.0.11 dns.added:198.18.0.99 dns.updated:198.18.0.12 dns.deleted:198.18.0.12"
	if got := rec.types("dns."); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}

	// A lost answer: the update is made, the caller sees a 503; its retry
	// meets DomainRecordDuplicate.
	id2, err := add("db", "A", "198.18.0.21", 0)
	must(t, err)
	s.InjectError(Fault{Action: "UpdateDomainRecord", Status: 503, Code: "ServiceUnavailable", Applied: true})
	if err := update(id2, "198.18.0.22"); code(err) != "ServiceUnavailable" {
		t.Fatalf("lost answer: %v", err)
	}
	if r, _ := s.GetDNSRecord(id2); r.Value != "198.18.0.22" {
		t.Fatalf("lost answer not applied: %+v", r)
	}
	if err := update(id2, "198.18.0.22"); code(err) != "DomainRecordDuplicate" {
		t.Fatalf("retry after a lost answer: %v", err)
	}

	// A paid edition: a lower minimum.
	s2 := startSim(t, Options{MinTTL: 1})
	must(t, s2.AddDomain("example.com"))
	_, err = dnsClient(t, s2).AddDomainRecord(&alidns.AddDomainRecordRequest{DomainName: str("example.com"), RR: str("db"), Type: str("A"), Value: str("198.18.0.11"), TTL: i64(5)})
	must(t, err)
}

func TestSecurityGroupWithSDK(t *testing.T) {
	s := startSim(t, Options{})
	rec := record(s)
	must(t, s.AddSecurityGroup(SecurityGroup{ID: "sg-db", Name: "db", VpcID: "vpc-1"}))
	_, e := clients(t, s, testAK, testSecret)
	perm := func(cidr, ports string) *ecs.AuthorizeSecurityGroupRequestPermissions {
		return &ecs.AuthorizeSecurityGroupRequestPermissions{IpProtocol: str("tcp"), PortRange: str(ports), SourceCidrIp: str(cidr), Policy: str("accept"), Priority: str("1"), Description: str("cloudmha")}
	}
	authorize := func(ps ...*ecs.AuthorizeSecurityGroupRequestPermissions) error {
		_, err := e.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-db"), Permissions: ps})
		return err
	}
	rules := func() []*ecs.DescribeSecurityGroupAttributeResponseBodyPermissionsPermission {
		out, err := e.DescribeSecurityGroupAttribute(&ecs.DescribeSecurityGroupAttributeRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-db")})
		must(t, err)
		return out.Body.Permissions.Permission
	}
	must(t, authorize(perm("198.18.0.0/24", "3306/3306"), perm("198.18.1.0/24", "3306/3306")))
	must(t, authorize(perm("198.18.0.0/24", "3306/3306"))) // existing: no duplicate
	got := rules()
	if len(got) != 2 || *got[0].IpProtocol != "TCP" || *got[0].PortRange != "3306/3306" || *got[0].SourceCidrIp != "198.18.0.0/24" ||
		*got[0].Policy != "Accept" || *got[0].Priority != "1" || *got[0].Description != "cloudmha" || *got[0].SecurityGroupRuleId == "" {
		t.Fatalf("rules: %d %+v", len(got), got)
	}
	for name, tc := range map[string]struct {
		p    *ecs.AuthorizeSecurityGroupRequestPermissions
		code string
	}{
		"port range": {perm("198.18.0.0/24", "3306"), "InvalidPortRange.Malformed"},
		"cidr":       {perm("198.18.0.0/33", "3306/3306"), "InvalidSourceCidrIp.Malformed"},
		"protocol":   {&ecs.AuthorizeSecurityGroupRequestPermissions{IpProtocol: str("sctp"), PortRange: str("1/2"), SourceCidrIp: str("10.0.0.0/8")}, "InvalidIpProtocol.Malformed"},
		"priority":   {&ecs.AuthorizeSecurityGroupRequestPermissions{IpProtocol: str("tcp"), PortRange: str("1/2"), SourceCidrIp: str("10.0.0.0/8"), Priority: str("101")}, "InvalidPriority.Malformed"},
	} {
		if err := authorize(tc.p); code(err) != tc.code {
			t.Errorf("%s: err = %v, want %s", name, err, tc.code)
		}
	}
	if len(rules()) != 2 {
		t.Fatal("a refused authorization added a rule")
	}
	// Legacy top-level fields.
	_, err := e.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-db"),
		IpProtocol: str("TCP"), PortRange: str("33060/33060"), SourceCidrIp: str("198.18.2.7")})
	must(t, err)
	// Revoke by permission, by rule id, and an absent rule.
	_, err = e.RevokeSecurityGroup(&ecs.RevokeSecurityGroupRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-db"),
		Permissions: []*ecs.RevokeSecurityGroupRequestPermissions{{IpProtocol: str("tcp"), PortRange: str("3306/3306"), SourceCidrIp: str("198.18.1.0/24")}}})
	must(t, err)
	got = rules()
	if len(got) != 2 {
		t.Fatalf("after revoke: %d rules", len(got))
	}
	_, err = e.RevokeSecurityGroup(&ecs.RevokeSecurityGroupRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-db"), SecurityGroupRuleId: []*string{got[1].SecurityGroupRuleId}})
	must(t, err)
	_, err = e.RevokeSecurityGroup(&ecs.RevokeSecurityGroupRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-db"),
		Permissions: []*ecs.RevokeSecurityGroupRequestPermissions{{IpProtocol: str("tcp"), PortRange: str("3306/3306"), SourceCidrIp: str("203.0.113.0/24")}}})
	must(t, err)
	if _, err := e.RevokeSecurityGroup(&ecs.RevokeSecurityGroupRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-db"), SecurityGroupRuleId: []*string{str("sgr-none")}}); code(err) != "InvalidSecurityGroupRuleId.NotFound" {
		t.Fatalf("revoke of an unknown rule id: %v", err)
	}
	if g, _ := s.GetSecurityGroup("sg-db"); len(g.Rules) != 1 || g.Rules[0].SourceCidrIP != "198.18.0.0/24" {
		t.Fatalf("left: %+v", g.Rules)
	}
	if _, err := e.DescribeSecurityGroupAttribute(&ecs.DescribeSecurityGroupAttributeRequest{RegionId: str(DefaultRegion), SecurityGroupId: str("sg-none")}); code(err) != "InvalidSecurityGroupId.NotFound" {
		t.Fatalf("unknown group: %v", err)
	}
	want := "sg.authorized:198.18.0.0/24 sg.authorized:198.18.1.0/24 sg.authorized:198.18.2.7 sg.revoked:198.18.1.0/24 sg.revoked:198.18.2.7"
	if got := rec.types("sg."); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}
