package aliyun

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// EIP association types (AssociateEipAddress InstanceType).
const (
	EIPTypeEcs   = "EcsInstance"
	EIPTypeENI   = "NetworkInterface"
	EIPTypeHaVip = "HaVip"
)

// Event types of the resources added after the HaVip and ENI ones.
const (
	EventIPAssigning     = "eni.ip.assigning"
	EventIPAssigned      = "eni.ip.assigned"
	EventIPUnassigning   = "eni.ip.unassigning"
	EventIPUnassigned    = "eni.ip.unassigned"
	EventEIPAssociating  = "eip.associating"
	EventEIPAssociated   = "eip.associated"
	EventEIPUnassociated = "eip.unassociated"
	// EventEIPUnassociating is emitted when the unassociation starts.
	EventEIPUnassociating = "eip.unassociating"
	EventDNSAdded         = "dns.added"
	EventDNSUpdated       = "dns.updated"
	EventDNSDeleted       = "dns.deleted"
	EventSGAuthorized     = "sg.authorized"
	EventSGRevoked        = "sg.revoked"
)

// VSwitch is a vSwitch. Its CIDR bounds the secondary private IPs that
// AssignPrivateIpAddresses accepts on its ENIs; the ENIs of a vSwitch that
// was never added are not checked against a CIDR.
type VSwitch struct {
	ID     string
	CIDR   string // 198.18.0.0/24
	VpcID  string
	ZoneID string
}

// DNSRecord is an Alidns record.
type DNSRecord struct {
	ID     string // assigned by AddDNSRecord / AddDomainRecord when empty
	Domain string // example.com
	RR     string // host record: db, @, *.x
	Type   string // A, AAAA, CNAME, TXT, MX, NS
	Value  string
	TTL    int    // 600 when 0
	Line   string // default
	Status string // ENABLE (default) or DISABLE
	// Locked records refuse updates and deletion (DomainRecordLocked).
	Locked  bool
	seq     int64 // creation order
	created int64 // Unix ms
	updated int64
}

// SecurityGroup is an ECS security group with its rules.
type SecurityGroup struct {
	ID          string
	Name        string
	VpcID       string
	Description string
	Rules       []SGRule
}

// SGRule is one security group rule, as DescribeSecurityGroupAttribute
// shows it.
type SGRule struct {
	ID            string // sgr-…, assigned when empty
	Direction     string // ingress (default) or egress
	IPProtocol    string // TCP, UDP, ICMP, GRE, ALL (upper case)
	PortRange     string // 3306/3306; -1/-1 for ALL and ICMP
	SourceCidrIP  string
	SourceGroupID string
	Policy        string // Accept (default) or Drop
	Priority      string // "1" (default) .. "100"
	Description   string
	NicType       string // intranet
}

// key is what makes two rules the same rule (the description is not
// part of it).
func (r SGRule) key() string {
	return strings.Join([]string{r.Direction, r.IPProtocol, r.PortRange, r.SourceCidrIP, r.SourceGroupID, r.Policy, r.Priority, r.NicType}, "|")
}

func (r SGRule) detail() string {
	src := r.SourceCidrIP
	if src == "" {
		src = r.SourceGroupID
	}
	return fmt.Sprintf("%s %s %s %s %s %s", r.Direction, r.IPProtocol, r.PortRange, src, r.Policy, r.Priority)
}

// AddVSwitch adds (or replaces) a vSwitch.
func (s *Server) AddVSwitch(v VSwitch) error {
	if v.ID == "" {
		return fmt.Errorf("aliyun emulator: vSwitch without id")
	}
	if _, err := netip.ParsePrefix(v.CIDR); err != nil {
		return fmt.Errorf("aliyun emulator: vSwitch %s: CIDR %q: %w", v.ID, v.CIDR, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vswitches[v.ID] = &v
	return nil
}

// GetEIP returns a copy of an EIP.
func (s *Server) GetEIP(allocationID string) (EIP, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.eips[allocationID]
	if !ok {
		return EIP{}, false
	}
	return *e, true
}

// AddDomain makes a domain name exist in the account (Alidns answers
// IncorrectDomainUser for others).
func (s *Server) AddDomain(name string) error {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || !strings.Contains(name, ".") {
		return fmt.Errorf("aliyun emulator: domain %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[name] = true
	return nil
}

// AddDNSRecord adds a record (adding its domain when missing) and
// returns its id. No conflict check is made.
func (s *Server) AddDNSRecord(r DNSRecord) (string, error) {
	r.Domain = strings.ToLower(strings.TrimSuffix(r.Domain, "."))
	if r.Domain == "" || r.RR == "" || r.Type == "" || r.Value == "" {
		return "", fmt.Errorf("aliyun emulator: DNS record needs a domain, an RR, a type and a value")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[r.Domain] = true
	s.storeRecord(&r)
	return r.ID, nil
}

// storeRecord fills defaults and stores r; s.mu must be held.
func (s *Server) storeRecord(r *DNSRecord) {
	s.seq++
	r.seq = s.seq
	r.created = s.now().UnixMilli()
	r.updated = r.created
	if r.ID == "" {
		s.nextID++
		r.ID = strconv.FormatInt(int64(18_000_000_000_000_000)+int64(s.nextID), 10)
	}
	r.Type = strings.ToUpper(r.Type)
	if r.TTL == 0 {
		r.TTL = DefaultMinTTL
	}
	if r.Line == "" {
		r.Line = "default"
	}
	if r.Status == "" {
		r.Status = "ENABLE"
	}
	s.records[r.ID] = r
}

// GetDNSRecord returns a copy of a record.
func (s *Server) GetDNSRecord(id string) (DNSRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok {
		return DNSRecord{}, false
	}
	return *r, true
}

// DNSRecords returns copies of a domain's records named rr ("" for all),
// oldest first.
func (s *Server) DNSRecords(domain, rr string) []DNSRecord {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DNSRecord
	for _, r := range s.records {
		if r.Domain == domain && (rr == "" || strings.EqualFold(r.RR, rr)) {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// AddSecurityGroup adds (or replaces) a security group; its rules are
// normalised as AuthorizeSecurityGroup would.
func (s *Server) AddSecurityGroup(g SecurityGroup) error {
	if g.ID == "" {
		return fmt.Errorf("aliyun emulator: security group without id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rules := g.Rules
	g.Rules = nil
	for _, r := range rules {
		n, ae := normaliseRule(r)
		if ae != nil {
			return fmt.Errorf("aliyun emulator: security group %s: %s: %s", g.ID, ae.Code, ae.Message)
		}
		if n.ID == "" {
			s.nextID++
			n.ID = fmt.Sprintf("sgr-sim%06d", s.nextID)
		}
		g.Rules = append(g.Rules, n)
	}
	s.sgroups[g.ID] = &g
	return nil
}

// GetSecurityGroup returns a copy of a security group.
func (s *Server) GetSecurityGroup(id string) (SecurityGroup, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.sgroups[id]
	if !ok {
		return SecurityGroup{}, false
	}
	c := *g
	c.Rules = slices.Clone(g.Rules)
	return c, true
}

// HoldTransitions makes the asynchronous transitions of one resource (an
// ENI id for attach/detach and secondary IPs, a HaVip id, an EIP
// allocation id) stay pending when their latency has passed: the
// resource stays Associating, Unassociating, Attaching, … and a pending
// secondary IP stays unlisted. Called with false, it completes the held
// transitions at once, in order.
func (s *Server) HoldTransitions(resourceID string, hold bool) {
	s.mu.Lock()
	var evs []Event
	if hold {
		s.holding[resourceID] = true
	} else {
		delete(s.holding, resourceID)
		for _, f := range s.held[resourceID] {
			evs = append(evs, f()...)
		}
		delete(s.held, resourceID)
	}
	s.mu.Unlock()
	s.emit(evs)
}
