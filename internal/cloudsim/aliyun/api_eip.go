package aliyun

import (
	"net/url"
	"slices"
	"strings"
)

// defaultPrivateIP is the private address an EIP maps to when the
// association names none; s.mu must be held.
func (s *Server) defaultPrivateIP(id, typ string) string {
	switch typ {
	case EIPTypeENI:
		if e, ok := s.enis[id]; ok {
			return e.PrimaryIP
		}
	case EIPTypeHaVip:
		if h, ok := s.havips[id]; ok {
			return h.IP
		}
	default:
		if in, ok := s.instances[id]; ok {
			return in.PrivateIP
		}
	}
	return ""
}

func (s *Server) eipJSON(e *EIP) map[string]any {
	return map[string]any{
		"AllocationId": e.AllocationID, "IpAddress": e.IP, "Status": e.Status,
		"InstanceId": e.InstanceID, "InstanceType": e.InstanceType, "PrivateIpAddress": e.PrivateIP,
		"RegionId": s.opts.Region, "InstanceRegionId": s.opts.Region, "Mode": "NAT",
		"ChargeType": "PostPaid", "InternetChargeType": "PayByTraffic", "Bandwidth": "5",
		"OperationLocks": map[string]any{"LockReason": []any{}},
	}
}

// eipsOf returns the addresses of the EIPs associated (or being
// associated) with a resource and private IP ("" for any); s.mu must be
// held.
func (s *Server) eipsOf(id, privateIP string) []*EIP {
	var out []*EIP
	for _, aid := range sortedKeys(s.eips) {
		e := s.eips[aid]
		if e.InstanceID == id && id != "" && (privateIP == "" || e.PrivateIP == privateIP) {
			out = append(out, e)
		}
	}
	return out
}

func commaList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (s *Server) describeEipAddresses(p url.Values) (map[string]any, []Event, *apiError) {
	ids, ips := commaList(p.Get("AllocationId")), commaList(p.Get("EipAddress"))
	inst, typ, status := p.Get("AssociatedInstanceId"), p.Get("AssociatedInstanceType"), p.Get("Status")
	var match []map[string]any
	for _, aid := range sortedKeys(s.eips) {
		e := s.eips[aid]
		if len(ids) > 0 && !slices.Contains(ids, aid) || len(ips) > 0 && !slices.Contains(ips, e.IP) ||
			inst != "" && e.InstanceID != inst || typ != "" && e.InstanceType != typ || status != "" && e.Status != status {
			continue
		}
		match = append(match, s.eipJSON(e))
	}
	num, size, from, to := page(p, len(match))
	return map[string]any{
		"TotalCount": len(match), "PageNumber": num, "PageSize": size,
		"EipAddresses": map[string]any{"EipAddress": append([]map[string]any{}, match[from:to]...)},
	}, nil, nil
}

// eipTarget checks the resource an EIP is to be associated with and
// returns the private addresses it may be mapped to (the default first).
func (s *Server) eipTarget(id, typ string) ([]string, *apiError) {
	switch typ {
	case EIPTypeEcs:
		in, ok := s.instances[id]
		if !ok {
			return nil, errNotFound("InvalidInstanceId.NotFound", "The specified instance "+id+" does not exist.")
		}
		if in.Status != StatusRunning && in.Status != "Stopped" {
			return nil, errBadRequest("IncorrectInstanceStatus", "The current status of instance "+id+" ("+in.Status+") does not support this operation.")
		}
		ips := []string{in.PrivateIP}
		for _, eid := range sortedKeys(s.enis) {
			if e := s.enis[eid]; e.InstanceID == id && e.Type == ENITypePrimary {
				ips = append(ips, e.SecondaryIPs...)
			}
		}
		return ips, nil
	case EIPTypeENI:
		e, ok := s.enis[id]
		if !ok {
			return nil, errNotFound("InvalidInstanceId.NotFound", "The specified network interface "+id+" does not exist.")
		}
		if e.Type == ENITypePrimary {
			return nil, errBadRequest("InvalidInstanceType.ValueNotSupported", "An EIP is associated with a primary network interface through its instance (InstanceType EcsInstance).")
		}
		return append([]string{e.PrimaryIP}, e.SecondaryIPs...), nil
	case EIPTypeHaVip:
		h, ok := s.havips[id]
		if !ok {
			return nil, errNotFound("InvalidHaVipId.NotFound", "The specified HaVip "+id+" does not exist.")
		}
		return []string{h.IP}, nil
	}
	return nil, errBadRequest("InvalidInstanceType.ValueNotSupported", "The specified value of InstanceType "+typ+" is not supported (this emulator: EcsInstance, NetworkInterface, HaVip).")
}

func (s *Server) associateEipAddress(p url.Values) (map[string]any, []Event, *apiError) {
	aid, iid := p.Get("AllocationId"), p.Get("InstanceId")
	if aid == "" {
		return nil, nil, missing("AllocationId")
	}
	if iid == "" {
		return nil, nil, missing("InstanceId")
	}
	typ := p.Get("InstanceType")
	if typ == "" {
		typ = EIPTypeEcs
	}
	e, ok := s.eips[aid]
	if !ok {
		return nil, nil, errNotFound("InvalidAllocationId.NotFound", "The specified EIP "+aid+" does not exist.")
	}
	ips, ae := s.eipTarget(iid, typ)
	if ae != nil {
		return nil, nil, ae
	}
	if e.Status != StatusAvailable {
		return nil, nil, errBadRequest("IncorrectEipStatus", "The EIP "+aid+" is "+e.Status+" (on "+e.InstanceID+"); it must be Available to be associated.")
	}
	pip := p.Get("PrivateIpAddress")
	if pip == "" {
		pip = ips[0]
	} else if !slices.Contains(ips, pip) {
		return nil, nil, errBadRequest("InvalidPrivateIpAddress.NotFound", "The private IP address "+pip+" is not an address of "+iid+".")
	}
	if others := s.eipsOf(iid, pip); len(others) > 0 {
		return nil, nil, errBadRequest("InvalidAssociation.Duplicated", "The private IP address "+pip+" of "+iid+" already has the EIP "+others[0].AllocationID+".")
	}
	e.Status, e.InstanceID, e.InstanceType, e.PrivateIP = StatusAssociating, iid, typ, pip
	ev := s.eipEvent(EventEIPAssociating, e)
	s.later(aid, func() []Event {
		if e.Status != StatusAssociating || e.InstanceID != iid {
			return nil
		}
		e.Status = StatusInUse
		return []Event{s.eipEvent(EventEIPAssociated, e)}
	})
	return map[string]any{}, []Event{ev}, nil
}

// eipEvent makes an EIP event; s.mu must be held.
func (s *Server) eipEvent(typ string, e *EIP) Event {
	ev := s.event(typ, e.AllocationID, e.InstanceID, e.PrivateIP, e.Status)
	ev.PublicIP = e.IP
	ev.Detail = e.InstanceType
	return ev
}

func (s *Server) unassociateEipAddress(p url.Values) (map[string]any, []Event, *apiError) {
	aid := p.Get("AllocationId")
	if aid == "" {
		return nil, nil, missing("AllocationId")
	}
	e, ok := s.eips[aid]
	if !ok {
		return nil, nil, errNotFound("InvalidAllocationId.NotFound", "The specified EIP "+aid+" does not exist.")
	}
	if e.Status != StatusInUse {
		return nil, nil, errBadRequest("IncorrectEipStatus", "The EIP "+aid+" is "+e.Status+"; it must be InUse to be unassociated.")
	}
	if iid := p.Get("InstanceId"); iid != "" && iid != e.InstanceID {
		return nil, nil, errBadRequest("InvalidInstanceId.MisMatch", "The EIP "+aid+" is associated with "+e.InstanceID+", not with "+iid+".")
	}
	if typ := p.Get("InstanceType"); typ != "" && typ != e.InstanceType {
		return nil, nil, errBadRequest("InvalidInstanceType.MisMatch", "The EIP "+aid+" is associated with a resource of type "+e.InstanceType+", not "+typ+".")
	}
	if pip := p.Get("PrivateIpAddress"); pip != "" && pip != e.PrivateIP {
		return nil, nil, errBadRequest("InvalidPrivateIpAddress.MisMatch", "The EIP "+aid+" is mapped to "+e.PrivateIP+", not to "+pip+".")
	}
	e.Status = StatusUnassociating
	ev := s.eipEvent(EventEIPUnassociating, e)
	s.later(aid, func() []Event {
		if e.Status != StatusUnassociating {
			return nil
		}
		ev := s.eipEvent(EventEIPUnassociated, e)
		e.Status, e.InstanceID, e.InstanceType, e.PrivateIP = StatusAvailable, "", "", ""
		ev.Status = e.Status
		return []Event{ev}
	})
	return map[string]any{}, []Event{ev}, nil
}
