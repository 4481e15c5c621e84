package tencent

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// params are a request's parameters: a JSON object (TC3 POST) or the
// unflattened form/query parameters (string leaves).
type params map[string]any

func (p params) str(k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func (p params) boolean(k string) (val, set bool, ae *apiError) {
	switch v := p[k].(type) {
	case nil:
		return false, false, nil
	case bool:
		return v, true, nil
	case string:
		b, err := strconv.ParseBool(v)
		if err == nil {
			return b, true, nil
		}
	}
	return false, false, newErr("InvalidParameterValue", "The value of `"+k+"` is not a boolean.")
}

func (p params) uint(k string, def uint64) (uint64, *apiError) {
	s := p.str(k)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, newErr("InvalidParameterValue", "The value of `"+k+"` is not a non-negative integer.")
	}
	return n, nil
}

func (p params) strs(k string) ([]string, *apiError) {
	v, ok := p[k]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, newErr("InvalidParameter", "`"+k+"` must be a list.")
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, newErr("InvalidParameter", "`"+k+"` must be a list of strings.")
		}
		out = append(out, s)
	}
	return out, nil
}

func (p params) objs(k string) ([]params, *apiError) {
	v, ok := p[k]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, newErr("InvalidParameter", "`"+k+"` must be a list.")
	}
	out := make([]params, 0, len(list))
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, newErr("InvalidParameter", "`"+k+"` must be a list of objects.")
		}
		out = append(out, params(m))
	}
	return out, nil
}

// filters reads Filters [{Name, Values}] and checks the names.
func (p params) filters(allowed ...string) (map[string][]string, *apiError) {
	fs, ae := p.objs("Filters")
	if ae != nil {
		return nil, ae
	}
	out := map[string][]string{}
	for _, f := range fs {
		name := f.str("Name")
		if !slices.Contains(allowed, name) {
			return nil, newErr("InvalidParameter.FilterInvalidKey", "The filter name `"+name+"` is not supported.")
		}
		vs, ae := f.strs("Values")
		if ae != nil || len(vs) == 0 {
			return nil, newErr("InvalidParameter.FilterValuesNotList", "The filter `"+name+"` needs a list of Values.")
		}
		out[name] = append(out[name], vs...)
	}
	return out, nil
}

// call is one request being answered.
type call struct {
	p        params
	reqID    string
	secretID string
}

// handler answers one action; s.mu is held. It returns the response
// fields (RequestId is added) and the events to emit.
type handler func(s *Server, c *call) (map[string]any, []Event, *apiError)

type action struct {
	fn     handler
	params []string // accepted parameters
}

var actions = map[string]action{
	"DescribeHaVips":            {(*Server).describeHaVips, []string{"HaVipIds", "Filters", "Offset", "Limit"}},
	"CreateHaVip":               {(*Server).createHaVip, []string{"VpcId", "SubnetId", "HaVipName", "Vip", "NetworkInterfaceId", "CheckAssociate", "Tags", "HaVipAssociationSet", "ClientToken"}},
	"AssociateHaVipInstance":    {(*Server).associateHaVipInstance, []string{"HaVipAssociationSet"}},
	"DisassociateHaVipInstance": {(*Server).disassociateHaVipInstance, []string{"HaVipAssociationSet"}},
	"DescribeNetworkInterfaces": {(*Server).describeNetworkInterfaces, []string{"NetworkInterfaceIds", "Filters", "Offset", "Limit"}},
	"MigratePrivateIpAddress":   {(*Server).migratePrivateIPAddress, []string{"SourceNetworkInterfaceId", "DestinationNetworkInterfaceId", "PrivateIpAddress"}},
	"DescribeVpcTaskResult":     {(*Server).describeVpcTaskResult, []string{"TaskId"}},
}

type idemEntry struct {
	params string
	body   []byte
}

func (s *Server) dispatch(req *request, reqID string) ([]byte, *apiError) {
	if req.version != Version {
		if req.version == "" {
			return nil, errMissing("Version")
		}
		return nil, newErr("NoSuchVersion", "The API version `"+req.version+"` does not exist.")
	}
	a, ok := actions[req.action]
	if !ok {
		return nil, newErr("InvalidAction", "The action `"+req.action+"` is not found.")
	}
	if req.region == "" {
		return nil, errMissing("Region")
	}
	if req.region != s.opts.Region {
		return nil, newErr("UnsupportedRegion", "The region `"+req.region+"` is not supported (this emulator serves "+s.opts.Region+").")
	}
	for k := range req.params {
		if !slices.Contains(a.params, k) {
			return nil, newErr("UnknownParameter", "The parameter `"+k+"` is not recognized.")
		}
	}
	s.mu.Lock()
	s.calls[req.action]++
	if ae := s.takeFault(req.action); ae != nil {
		s.mu.Unlock()
		return nil, ae
	}
	token := req.params.str("ClientToken")
	var idemKey, canon string
	if token != "" {
		rest := params{}
		for k, v := range req.params {
			if k != "ClientToken" {
				rest[k] = v
			}
		}
		b, _ := json.Marshal(rest) // map keys are sorted
		canon = string(b)
		idemKey = req.secretID + "\x00" + req.action + "\x00" + token
		if e, ok := s.idem[idemKey]; ok {
			s.mu.Unlock()
			if e.params != canon {
				return nil, newErr("UnsupportedOperation.IdempotentParameterMismatch", "The request uses the same ClientToken as a previous, but different, request.")
			}
			return e.body, nil
		}
	}
	resp, evs, ae := a.fn(s, &call{p: req.params, reqID: reqID, secretID: req.secretID})
	if ae != nil {
		s.mu.Unlock()
		return nil, ae
	}
	resp["RequestId"] = reqID
	body, err := json.Marshal(map[string]any{"Response": resp})
	if err != nil {
		s.mu.Unlock()
		return nil, newErr("InternalError", "cannot encode the answer: "+err.Error())
	}
	if idemKey != "" {
		s.idem[idemKey] = idemEntry{params: canon, body: body}
	}
	s.mu.Unlock()
	s.emit(evs)
	return body, nil
}

func page(p params, n int) (from, to int, ae *apiError) {
	off, ae := p.uint("Offset", 0)
	if ae != nil {
		return 0, 0, ae
	}
	lim, ae := p.uint("Limit", 20)
	if ae != nil {
		return 0, 0, ae
	}
	if lim > 100 {
		return 0, 0, newErr("InvalidParameterValue.LimitExceeded", "Limit must not exceed 100.")
	}
	from = n
	if off < uint64(n) {
		from = int(off)
	}
	to = min(from+int(lim), n)
	return from, to, nil
}

func tcTime(t time.Time) string {
	if t.IsZero() {
		return "0000-00-00 00:00:00"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func (s *Server) havipJSON(h *HaVip) map[string]any {
	assoc := make([]map[string]any, 0, len(h.Associations))
	for _, a := range h.Associations {
		assoc = append(assoc, map[string]any{"InstanceId": a.InstanceID, "HaVipId": h.ID, "InstanceType": a.Type})
	}
	return map[string]any{
		"HaVipId": h.ID, "HaVipName": h.Name, "Vip": h.Vip, "VpcId": h.VpcID, "SubnetId": h.SubnetID,
		"NetworkInterfaceId": h.NetworkInterfaceID, "InstanceId": h.InstanceID, "AddressIp": "",
		"State": h.State(), "CreatedTime": tcTime(h.CreatedTime), "Business": "",
		"HaVipAssociationSet": assoc, "CheckAssociate": h.CheckAssociate, "CdcId": "",
		"FlushedTime": tcTime(h.FlushedTime), "TagSet": []any{},
	}
}

func (s *Server) describeHaVips(c *call) (map[string]any, []Event, *apiError) {
	ids, ae := c.p.strs("HaVipIds")
	if ae != nil {
		return nil, nil, ae
	}
	fs, ae := c.p.filters("havip-id", "havip-name", "vpc-id", "subnet-id", "vip", "havip-association.instance-id")
	if ae != nil {
		return nil, nil, ae
	}
	if len(ids) > 0 && len(fs) > 0 {
		return nil, nil, newErr("InvalidParameter.Coexist", "HaVipIds and Filters cannot be specified together.")
	}
	var match []map[string]any
	for _, id := range sortedKeys(s.havips) {
		h := s.havips[id]
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		ok := true
		for name, vs := range fs {
			switch name {
			case "havip-id":
				ok = ok && slices.Contains(vs, h.ID)
			case "havip-name":
				ok = ok && slices.Contains(vs, h.Name)
			case "vpc-id":
				ok = ok && slices.Contains(vs, h.VpcID)
			case "subnet-id":
				ok = ok && slices.Contains(vs, h.SubnetID)
			case "vip":
				ok = ok && slices.Contains(vs, h.Vip)
			case "havip-association.instance-id":
				ok = ok && slices.ContainsFunc(h.Associations, func(a Association) bool { return slices.Contains(vs, a.InstanceID) })
			}
		}
		if ok {
			match = append(match, s.havipJSON(h))
		}
	}
	from, to, ae := page(c.p, len(match))
	if ae != nil {
		return nil, nil, ae
	}
	return map[string]any{"TotalCount": len(match), "HaVipSet": append([]map[string]any{}, match[from:to]...)}, nil, nil
}

// associations reads and checks HaVipAssociationSet.
func (s *Server) associations(c *call) ([]*HaVip, []Association, *apiError) {
	set, ae := c.p.objs("HaVipAssociationSet")
	if ae != nil {
		return nil, nil, ae
	}
	if len(set) == 0 {
		return nil, nil, errMissing("HaVipAssociationSet")
	}
	if len(set) > 10 {
		return nil, nil, newErr("InvalidParameterValue.LimitExceeded", "HaVipAssociationSet takes at most 10 items.")
	}
	var hs []*HaVip
	var as []Association
	for _, a := range set {
		hid, iid, typ := a.str("HaVipId"), a.str("InstanceId"), a.str("InstanceType")
		switch {
		case hid == "":
			return nil, nil, errMissing("HaVipAssociationSet.HaVipId")
		case iid == "":
			return nil, nil, errMissing("HaVipAssociationSet.InstanceId")
		case typ == "":
			typ = AssocCVM
			if strings.HasPrefix(iid, "eni-") {
				typ = AssocENI
			}
		case typ != AssocCVM && typ != AssocENI:
			return nil, nil, newErr("InvalidParameterValue", "InstanceType must be CVM or ENI.")
		}
		h, ok := s.havips[hid]
		if !ok {
			return nil, nil, errNotFound("HaVip " + hid)
		}
		var subnets []string
		if typ == AssocENI {
			e, ok := s.enis[iid]
			if !ok {
				return nil, nil, errNotFound("network interface " + iid)
			}
			subnets = []string{e.SubnetID}
		} else {
			if _, ok := s.instances[iid]; !ok {
				return nil, nil, errNotFound("instance " + iid)
			}
			for _, e := range s.enis {
				if e.InstanceID == iid {
					subnets = append(subnets, e.SubnetID)
				}
			}
		}
		if !slices.Contains(subnets, h.SubnetID) {
			return nil, nil, newErr("InvalidParameterValue.ParameterMismatch", iid+" has no network interface in subnet "+h.SubnetID+" of HaVip "+hid+".")
		}
		hs = append(hs, h)
		as = append(as, Association{InstanceID: iid, Type: typ})
	}
	return hs, as, nil
}

func (s *Server) associateHaVipInstance(c *call) (map[string]any, []Event, *apiError) {
	hs, as, ae := s.associations(c)
	if ae != nil {
		return nil, nil, ae
	}
	added := map[string]int{}
	seen := map[string]bool{}
	for i, h := range hs {
		key := h.ID + "\x00" + as[i].Type + "\x00" + as[i].InstanceID
		if slices.Contains(h.Associations, as[i]) || seen[key] {
			return nil, nil, newErr("InvalidParameterValue.DuplicatedHaVipAssociations", as[i].InstanceID+" is already in the drift scope of "+h.ID+".")
		}
		seen[key] = true
		added[h.ID]++
		if len(h.Associations)+added[h.ID] > s.opts.MaxHaVipAssociations {
			return nil, nil, newErr("LimitExceeded", fmt.Sprintf("A HaVip's drift scope holds at most %d instances or ENIs.", s.opts.MaxHaVipAssociations))
		}
	}
	var evs []Event
	for i, h := range hs {
		h.Associations = append(h.Associations, as[i])
		evs = append(evs, s.event(Event{Type: EventHaVipAssociated, ResourceID: h.ID, InstanceID: as[i].InstanceID, IP: h.Vip, Status: h.State()}))
	}
	return map[string]any{}, evs, nil
}

func (s *Server) disassociateHaVipInstance(c *call) (map[string]any, []Event, *apiError) {
	hs, as, ae := s.associations(c)
	if ae != nil {
		return nil, nil, ae
	}
	for i, h := range hs {
		if !slices.Contains(h.Associations, as[i]) {
			return nil, nil, newErr("InvalidParameterValue", as[i].InstanceID+" is not in the drift scope of "+h.ID+".")
		}
	}
	var evs []Event
	for i, h := range hs {
		h.Associations = slices.DeleteFunc(h.Associations, func(a Association) bool { return a == as[i] })
		evs = append(evs, s.event(Event{Type: EventHaVipDisassociated, ResourceID: h.ID, InstanceID: as[i].InstanceID, IP: h.Vip, Status: h.State()}))
		if e, ok := s.enis[h.NetworkInterfaceID]; ok && h.CheckAssociate && !s.inScope(h, e) {
			evs = append(evs, s.unbind(h)...)
		}
	}
	return map[string]any{}, evs, nil
}

func (s *Server) createHaVip(c *call) (map[string]any, []Event, *apiError) {
	vpc, subnet, vip := c.p.str("VpcId"), c.p.str("SubnetId"), c.p.str("Vip")
	switch {
	case vpc == "":
		return nil, nil, errMissing("VpcId")
	case subnet == "":
		return nil, nil, errMissing("SubnetId")
	case vip == "":
		return nil, nil, errMissing("Vip (this emulator does not allocate addresses)")
	}
	if a, err := netip.ParseAddr(vip); err != nil || !a.Is4() {
		return nil, nil, newErr("InvalidParameterValue.Malformed", "Vip `"+vip+"` is not an IPv4 address.")
	}
	if c.p.str("NetworkInterfaceId") != "" {
		return nil, nil, newErr("UnsupportedOperation", "NetworkInterfaceId is not served by this emulator.")
	}
	check, _, ae := c.p.boolean("CheckAssociate")
	if ae != nil {
		return nil, nil, ae
	}
	for _, h := range s.havips {
		if h.Vip == vip && h.SubnetID == subnet {
			return nil, nil, newErr("InvalidParameterValue.Reserved", "The address "+vip+" is already used by "+h.ID+".")
		}
	}
	if s.ipOwner(vip) != nil {
		return nil, nil, newErr("InvalidParameterValue.Reserved", "The address "+vip+" is already assigned to a network interface.")
	}
	s.nextID++
	h := &HaVip{ID: fmt.Sprintf("havip-sim%05d", s.nextID), Vip: vip, Name: c.p.str("HaVipName"), SubnetID: subnet, VpcID: vpc,
		CheckAssociate: check, CreatedTime: s.now()}
	s.havips[h.ID] = h
	evs := []Event{s.event(Event{Type: EventHaVipCreated, ResourceID: h.ID, IP: vip, Status: h.State()})}
	if set, _ := c.p.objs("HaVipAssociationSet"); len(set) > 0 {
		for _, a := range set {
			a["HaVipId"] = h.ID
		}
		_, more, ae := s.associateHaVipInstance(c)
		if ae != nil {
			delete(s.havips, h.ID)
			return nil, nil, ae
		}
		evs = append(evs, more...)
	}
	return map[string]any{"HaVip": s.havipJSON(h)}, evs, nil
}

func (s *Server) eniJSON(e *ENI) map[string]any {
	ips := []map[string]any{s.ipJSON(e.PrimaryIP, true)}
	for _, ip := range e.SecondaryIPs {
		ips = append(ips, s.ipJSON(ip, false))
	}
	state := StateAvailable
	var att any
	if e.InstanceID != "" {
		state = StateInUse
		att = map[string]any{"DeviceIndex": e.DeviceIndex, "InstanceAccountId": "100000000001", "AttachTime": tcTime(time.Unix(0, 0)), "InstanceId": e.InstanceID}
	}
	typ := 0
	if e.Primary {
		typ = 1
	}
	return map[string]any{
		"NetworkInterfaceId": e.ID, "NetworkInterfaceName": e.ID, "NetworkInterfaceDescription": "",
		"SubnetId": e.SubnetID, "VpcId": e.VpcID, "GroupSet": []string{}, "Primary": e.Primary, "MacAddress": e.MAC,
		"State": StateAvailable, "NetworkInterfaceState": state, "PrivateIpAddressSet": ips, "Attachment": att,
		"Zone": e.Zone, "CreatedTime": tcTime(time.Unix(0, 0)), "Ipv6AddressSet": []any{}, "TagSet": []any{},
		"EniType": typ, "Business": "cvm", "AttachType": 0, "QosLevel": "DEFAULT",
	}
}

func (s *Server) ipJSON(ip string, primary bool) map[string]any {
	state := StateAvailable
	if _, ok := s.migrating[ip]; ok {
		state = StateMigrating
	}
	return map[string]any{"PrivateIpAddress": ip, "Primary": primary, "PublicIpAddress": "", "AddressId": "",
		"Description": "", "IsWanIpBlocked": false, "State": state, "QosLevel": "DEFAULT"}
}

func (s *Server) describeNetworkInterfaces(c *call) (map[string]any, []Event, *apiError) {
	ids, ae := c.p.strs("NetworkInterfaceIds")
	if ae != nil {
		return nil, nil, ae
	}
	fs, ae := c.p.filters("vpc-id", "subnet-id", "network-interface-id", "attachment.instance-id", "address-ip", "ip-exact-match", "is-primary")
	if ae != nil {
		return nil, nil, ae
	}
	if len(ids) > 0 && len(fs) > 0 {
		return nil, nil, newErr("InvalidParameter.Coexist", "NetworkInterfaceIds and Filters cannot be specified together.")
	}
	if len(ids) > 100 {
		return nil, nil, newErr("InvalidParameterValue.LimitExceeded", "At most 100 NetworkInterfaceIds.")
	}
	exact := len(fs["ip-exact-match"]) > 0 && strings.EqualFold(fs["ip-exact-match"][0], "true") || len(fs["address-ip"]) > 1
	var match []map[string]any
	for _, id := range sortedKeys(s.enis) {
		e := s.enis[id]
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		ok := true
		for name, vs := range fs {
			switch name {
			case "vpc-id":
				ok = ok && slices.Contains(vs, e.VpcID)
			case "subnet-id":
				ok = ok && slices.Contains(vs, e.SubnetID)
			case "network-interface-id":
				ok = ok && slices.Contains(vs, e.ID)
			case "attachment.instance-id":
				ok = ok && slices.Contains(vs, e.InstanceID)
			case "is-primary":
				ok = ok && strings.EqualFold(vs[0], strconv.FormatBool(e.Primary))
			case "address-ip":
				all := append([]string{e.PrimaryIP}, e.SecondaryIPs...)
				ok = ok && slices.ContainsFunc(all, func(ip string) bool {
					if exact {
						return slices.Contains(vs, ip)
					}
					return strings.HasSuffix(ip, vs[0])
				})
			}
		}
		if ok {
			match = append(match, s.eniJSON(e))
		}
	}
	from, to, ae := page(c.p, len(match))
	if ae != nil {
		return nil, nil, ae
	}
	return map[string]any{"TotalCount": len(match), "NetworkInterfaceSet": append([]map[string]any{}, match[from:to]...)}, nil, nil
}

func (s *Server) migratePrivateIPAddress(c *call) (map[string]any, []Event, *apiError) {
	src, dst, ip := c.p.str("SourceNetworkInterfaceId"), c.p.str("DestinationNetworkInterfaceId"), c.p.str("PrivateIpAddress")
	switch {
	case src == "":
		return nil, nil, errMissing("SourceNetworkInterfaceId")
	case dst == "":
		return nil, nil, errMissing("DestinationNetworkInterfaceId")
	case ip == "":
		return nil, nil, errMissing("PrivateIpAddress")
	}
	if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
		return nil, nil, newErr("InvalidParameterValue.Malformed", "PrivateIpAddress `"+ip+"` is not an IPv4 address.")
	}
	se, ok := s.enis[src]
	if !ok {
		return nil, nil, errNotFound("network interface " + src)
	}
	de, ok := s.enis[dst]
	if !ok {
		return nil, nil, errNotFound("network interface " + dst)
	}
	if src == dst {
		return nil, nil, newErr("InvalidParameterValue", "The source and destination network interfaces are the same.")
	}
	if se.PrimaryIP == ip {
		return nil, nil, newErr("UnsupportedOperation.PrimaryIp", "The primary private IP of a network interface cannot be migrated.")
	}
	if !slices.Contains(se.SecondaryIPs, ip) {
		return nil, nil, errNotFound("private IP " + ip + " on network interface " + src)
	}
	if se.SubnetID != de.SubnetID {
		return nil, nil, newErr("InvalidParameterValue.SubnetConflict", "The source and destination network interfaces must be in the same subnet.")
	}
	for a, tid := range s.migrating {
		t := s.tasks[tid]
		if a == ip || t.Source == src || t.Source == dst || t.Destination == src || t.Destination == dst {
			return nil, nil, newErr("UnsupportedOperation.MutexOperationTaskRunning", "Task "+tid+" is running on these resources; retry when it completes.")
		}
	}
	if 1+len(de.SecondaryIPs) >= s.opts.MaxPrivateIPs {
		return nil, nil, newErr("LimitExceeded", fmt.Sprintf("Network interface %s has the maximum of %d private IPs.", dst, s.opts.MaxPrivateIPs))
	}
	t := &Task{ID: c.reqID, Action: "MigratePrivateIpAddress", Status: TaskRunning, Source: src, Destination: dst, IP: ip}
	s.tasks[t.ID] = t
	s.migrating[ip] = t.ID
	evs := []Event{s.event(Event{Type: EventIPMigrating, ResourceID: src, NetworkInterfaceID: src, InstanceID: se.InstanceID, IP: ip, Status: TaskRunning, TaskID: t.ID, From: src})}
	s.later([]string{ip, src, dst}, func() []Event {
		delete(s.migrating, ip)
		if outs := s.failMig[ip]; len(outs) > 0 {
			s.failMig[ip] = outs[1:]
			t.Status, t.Output = TaskFailed, outs[0]
			return []Event{s.event(Event{Type: EventIPMigrationFailed, ResourceID: se.ID, NetworkInterfaceID: se.ID, InstanceID: se.InstanceID, IP: ip, Status: TaskFailed, TaskID: t.ID, From: src})}
		}
		se.SecondaryIPs = slices.DeleteFunc(se.SecondaryIPs, func(x string) bool { return x == ip })
		de.SecondaryIPs = append(de.SecondaryIPs, ip)
		t.Status, t.Output = TaskSuccess, "Migrated "+ip+" from "+src+" to "+dst+"."
		return []Event{s.event(Event{Type: EventIPMigrated, ResourceID: de.ID, NetworkInterfaceID: de.ID, InstanceID: de.InstanceID, IP: ip, Status: TaskSuccess, TaskID: t.ID, From: src})}
	})
	return map[string]any{}, evs, nil
}

func (s *Server) describeVpcTaskResult(c *call) (map[string]any, []Event, *apiError) {
	id := c.p.str("TaskId")
	if id == "" {
		return nil, nil, errMissing("TaskId")
	}
	t, ok := s.tasks[id]
	if !ok {
		return nil, nil, errNotFound("task " + id)
	}
	return map[string]any{"Status": t.Status, "Output": t.Output, "Result": []any{}}, nil, nil
}
