package aliyun

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
)

// MaxSecondaryIPs bounds the secondary private IPs of one ENI (the
// vendor's limit for an ENI that is not attached; attached ENIs have an
// instance-type limit, not modelled).
const MaxSecondaryIPs = 49

// pendingIP is a secondary IP whose (un)assignment has not completed.
type pendingIP struct {
	eni    string
	assign bool
}

// ipHolder says which resource of the VPC uses ip ("" when none); s.mu
// must be held.
func (s *Server) ipHolder(ip, vpc string) string {
	same := func(v string) bool { return vpc == "" || v == "" || v == vpc }
	for _, id := range sortedKeys(s.enis) {
		e := s.enis[id]
		if !same(e.VpcID) {
			continue
		}
		if e.PrimaryIP == ip {
			return "network interface " + id + " (primary address)"
		}
		if slices.Contains(e.SecondaryIPs, ip) {
			return "network interface " + id
		}
	}
	if op, ok := s.ipOps[ip]; ok && op.assign {
		return "network interface " + op.eni + " (assignment in progress)"
	}
	for _, id := range sortedKeys(s.instances) {
		if in := s.instances[id]; in.PrivateIP == ip && same(in.VpcID) {
			return "instance " + id
		}
	}
	for _, id := range sortedKeys(s.havips) {
		if h := s.havips[id]; h.IP == ip && same(h.VpcID) {
			return "HaVip " + id
		}
	}
	return ""
}

// eniForIPs returns the ENI of an (Un)AssignPrivateIpAddresses call and
// the addresses, after the checks both share.
func (s *Server) eniForIPs(p url.Values) (*ENI, []string, *apiError) {
	eid := p.Get("NetworkInterfaceId")
	if eid == "" {
		return nil, nil, missing("NetworkInterfaceId")
	}
	e, ok := s.enis[eid]
	if !ok {
		return nil, nil, errNotFound("InvalidEniId.NotFound", "The specified network interface "+eid+" does not exist.")
	}
	if e.Status != StatusAvailable && e.Status != StatusInUse {
		return nil, nil, errForbidden("InvalidOperation.InvalidEniState", "The operation is not allowed in the current ENI state "+e.Status+"; expecting Available or InUse.")
	}
	if e.InstanceID != "" {
		if in, ok := s.instances[e.InstanceID]; ok && in.Status != StatusRunning && in.Status != "Stopped" {
			return nil, nil, errForbidden("IncorrectInstanceStatus", "The instance "+in.ID+" is "+in.Status+".")
		}
	}
	var ips []string
	for _, ip := range repeatList(p, "PrivateIpAddress") {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return nil, nil, errBadRequest("InvalidPrivateIpAddress.Malformed", "The private IP address "+ip+" is not an IPv4 address.")
		}
		if !slices.Contains(ips, a.String()) {
			ips = append(ips, a.String())
		}
	}
	return e, ips, nil
}

func (s *Server) assignPrivateIPAddresses(p url.Values) (map[string]any, []Event, *apiError) {
	e, ips, ae := s.eniForIPs(p)
	if ae != nil {
		return nil, nil, ae
	}
	if len(ips) == 0 {
		if p.Get("SecondaryPrivateIpAddressCount") != "" {
			return nil, nil, errBadRequest("InvalidParameter", "This emulator does not allocate addresses: give PrivateIpAddress.N.")
		}
		return nil, nil, missing("PrivateIpAddress.N")
	}
	pending := 0
	for _, op := range s.ipOps {
		if op.eni == e.ID && op.assign {
			pending++
		}
	}
	if len(e.SecondaryIPs)+pending+len(ips) > MaxSecondaryIPs {
		return nil, nil, errForbidden("QuotaExceeded.PrivateIpAddress", "The network interface can have at most "+strconv.Itoa(MaxSecondaryIPs)+" secondary private IP addresses.")
	}
	for _, ip := range ips {
		if v, ok := s.vswitches[e.VSwitchID]; ok {
			if pfx, err := netip.ParsePrefix(v.CIDR); err == nil && !pfx.Contains(netip.MustParseAddr(ip)) {
				return nil, nil, errForbidden("InvalidVSwitchId.IpInvalid", "The specified IpAddress "+ip+" is not valid in the CIDR block "+v.CIDR+" of vSwitch "+v.ID+".")
			}
		}
		if h := s.ipHolder(ip, e.VpcID); h != "" {
			// No atomic reassignment on Alibaba Cloud: the address must
			// be unassigned from its holder first.
			return nil, nil, errForbidden("InvalidPrivateIpAddress.Duplicated", "The private IP address "+ip+" is already used by "+h+".")
		}
	}
	var evs []Event
	for _, ip := range ips {
		s.ipOps[ip] = pendingIP{eni: e.ID, assign: true}
		evs = append(evs, s.event(EventIPAssigning, e.ID, e.InstanceID, ip, e.Status))
	}
	s.later(e.ID, func() []Event {
		var out []Event
		for _, ip := range ips {
			if op, ok := s.ipOps[ip]; !ok || op.eni != e.ID || !op.assign {
				continue
			}
			delete(s.ipOps, ip)
			e.SecondaryIPs = append(e.SecondaryIPs, ip)
			out = append(out, s.event(EventIPAssigned, e.ID, e.InstanceID, ip, e.Status))
		}
		return out
	})
	return map[string]any{"AssignedPrivateIpAddressesSet": map[string]any{
		"NetworkInterfaceId": e.ID,
		"PrivateIpSet":       map[string]any{"PrivateIpAddress": slices.Clone(ips)},
	}}, evs, nil
}

func (s *Server) unassignPrivateIPAddresses(p url.Values) (map[string]any, []Event, *apiError) {
	e, ips, ae := s.eniForIPs(p)
	if ae != nil {
		return nil, nil, ae
	}
	if len(ips) == 0 {
		return nil, nil, missing("PrivateIpAddress.N")
	}
	for _, ip := range ips {
		if _, busy := s.ipOps[ip]; busy || !slices.Contains(e.SecondaryIPs, ip) {
			return nil, nil, errForbidden("InvalidIp.IpUnassigned", "The specified IP "+ip+" is not assigned on this ENI.")
		}
	}
	var evs []Event
	for _, ip := range ips {
		s.ipOps[ip] = pendingIP{eni: e.ID}
		evs = append(evs, s.event(EventIPUnassigning, e.ID, e.InstanceID, ip, e.Status))
	}
	s.later(e.ID, func() []Event {
		var out []Event
		for _, ip := range ips {
			if op, ok := s.ipOps[ip]; !ok || op.eni != e.ID || op.assign {
				continue
			}
			delete(s.ipOps, ip)
			e.SecondaryIPs = slices.DeleteFunc(e.SecondaryIPs, func(x string) bool { return x == ip })
			out = append(out, s.event(EventIPUnassigned, e.ID, e.InstanceID, ip, e.Status))
		}
		return out
	})
	return map[string]any{}, evs, nil
}
