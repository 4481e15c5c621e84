package aliyun

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type tokenEntry struct {
	params string
	status int
	body   []byte
}

// handler answers one action; s.mu is held. It returns the response
// fields (RequestId is added) and the events to emit.
type handler func(s *Server, p url.Values) (map[string]any, []Event, *apiError)

var actions = map[string]struct {
	version string
	fn      handler
}{
	"DescribeHaVips":            {VersionVPC, (*Server).describeHaVips},
	"AssociateHaVip":            {VersionVPC, (*Server).associateHaVip},
	"UnassociateHaVip":          {VersionVPC, (*Server).unassociateHaVip},
	"CreateHaVip":               {VersionVPC, (*Server).createHaVip},
	"DescribeNetworkInterfaces": {VersionECS, (*Server).describeNetworkInterfaces},
	"AttachNetworkInterface":    {VersionECS, (*Server).attachNetworkInterface},
	"DetachNetworkInterface":    {VersionECS, (*Server).detachNetworkInterface},
	"DescribeInstances":         {VersionECS, (*Server).describeInstances},
	// Secondary private IPs (ECS).
	"AssignPrivateIpAddresses":   {VersionECS, (*Server).assignPrivateIPAddresses},
	"UnassignPrivateIpAddresses": {VersionECS, (*Server).unassignPrivateIPAddresses},
	// EIPs (VPC).
	"DescribeEipAddresses":  {VersionVPC, (*Server).describeEipAddresses},
	"AssociateEipAddress":   {VersionVPC, (*Server).associateEipAddress},
	"UnassociateEipAddress": {VersionVPC, (*Server).unassociateEipAddress},
	// Alidns.
	"DescribeDomainRecords":    {VersionDNS, (*Server).describeDomainRecords},
	"AddDomainRecord":          {VersionDNS, (*Server).addDomainRecord},
	"UpdateDomainRecord":       {VersionDNS, (*Server).updateDomainRecord},
	"DeleteDomainRecord":       {VersionDNS, (*Server).deleteDomainRecord},
	"DescribeDomainRecordInfo": {VersionDNS, (*Server).describeDomainRecordInfo},
	// Security groups (ECS).
	"AuthorizeSecurityGroup":         {VersionECS, (*Server).authorizeSecurityGroup},
	"RevokeSecurityGroup":            {VersionECS, (*Server).revokeSecurityGroup},
	"DescribeSecurityGroupAttribute": {VersionECS, (*Server).describeSecurityGroupAttribute},
	// CloudMonitor custom metrics (cms.go).
	"PutCustomMetric": {VersionCMS, (*Server).putCustomMetric},
}

// signature-only parameters, left out of the ClientToken comparison.
var commonParams = map[string]bool{
	"Signature": true, "SignatureNonce": true, "Timestamp": true, "SignatureMethod": true,
	"SignatureVersion": true, "AccessKeyId": true, "Format": true, "Version": true, "Action": true,
}

func (s *Server) dispatch(ai *authInfo, reqID string) (int, []byte, *apiError) {
	a, ok := actions[ai.action]
	if !ok {
		return 0, nil, errNotFound("InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	}
	if ai.version != a.version {
		return 0, nil, errBadRequest("InvalidVersion", fmt.Sprintf("Specified version %q is not valid for %s (want %s).", ai.version, ai.action, a.version))
	}
	if r := ai.params.Get("RegionId"); r != "" && r != s.opts.Region {
		return 0, nil, errBadRequest("InvalidRegionId.NotFound", "The specified region "+r+" does not exist.")
	}
	s.mu.Lock()
	s.calls[ai.action]++
	fault, applied := s.takeFault(ai.action)
	if fault != nil && !applied {
		s.mu.Unlock()
		return 0, nil, fault
	}
	token := ai.params.Get("ClientToken")
	var canon string
	if token != "" {
		keys := make([]string, 0, len(ai.params))
		for k := range ai.params {
			if !commonParams[k] {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			canon += k + "=" + ai.params.Get(k) + "&"
		}
		if te, ok := s.tokens[ai.accessKeyID+"\x00"+ai.action+"\x00"+token]; ok {
			s.mu.Unlock()
			if te.params != canon {
				return 0, nil, errBadRequest("IdempotentParameterMismatch", "The request uses the same client token as a previous, but non-identical request.")
			}
			return te.status, te.body, nil
		}
	}
	resp, evs, ae := a.fn(s, ai.params)
	if ae != nil {
		s.mu.Unlock()
		return 0, nil, ae
	}
	if fault != nil {
		// A lost answer: the change is made (and reported), the caller
		// sees the fault.
		s.mu.Unlock()
		s.emit(evs)
		return 0, nil, fault
	}
	resp["RequestId"] = reqID
	body, err := json.Marshal(resp)
	if err != nil {
		s.mu.Unlock()
		return 0, nil, &apiError{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	}
	if token != "" {
		s.tokens[ai.accessKeyID+"\x00"+ai.action+"\x00"+token] = tokenEntry{params: canon, status: http.StatusOK, body: body}
	}
	s.mu.Unlock()
	s.emit(evs)
	return http.StatusOK, body, nil
}

func missing(name string) *apiError {
	return errBadRequest("MissingParameter", "The input parameter \""+name+"\" that is mandatory for processing this request is not supplied.")
}

// repeatList reads Name.1, Name.2, … (and a JSON array in Name, as ECS
// DescribeInstances takes).
func repeatList(p url.Values, name string) []string {
	var out []string
	if v := p.Get(name); strings.HasPrefix(v, "[") {
		_ = json.Unmarshal([]byte(v), &out)
		return out
	}
	for i := 1; ; i++ {
		v, ok := p[name+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func page(p url.Values, n int) (num, size, from, to int) {
	num, size = 1, 10
	if v, err := strconv.Atoi(p.Get("PageNumber")); err == nil && v > 0 {
		num = v
	}
	if v, err := strconv.Atoi(p.Get("PageSize")); err == nil && v > 0 {
		size = min(v, 100)
	}
	from = min((num-1)*size, n)
	to = min(from+size, n)
	return
}

func (s *Server) havipJSON(h *HaVip) map[string]any {
	return map[string]any{
		"HaVipId": h.ID, "IpAddress": h.IP, "Status": h.Status, "MasterInstanceId": h.Master,
		"VSwitchId": h.VSwitchID, "VpcId": h.VpcID, "RegionId": s.opts.Region,
		"AssociatedInstanceType": h.InstanceType, "ChargeType": "Free",
		"AssociatedInstances":    map[string]any{"associatedInstance": slices.Clone(h.Instances)},
		"AssociatedEipAddresses": map[string]any{"associatedEipAddresse": s.eipAddresses(h.ID)},
	}
}

// eipAddresses lists the public addresses of the EIPs associated with a
// resource; s.mu must be held.
func (s *Server) eipAddresses(id string) []string {
	out := []string{}
	for _, e := range s.eipsOf(id, "") {
		out = append(out, e.IP)
	}
	return out
}

func (s *Server) describeHaVips(p url.Values) (map[string]any, []Event, *apiError) {
	filters := map[string][]string{}
	for i := 1; ; i++ {
		k := p.Get("Filter." + strconv.Itoa(i) + ".Key")
		if k == "" {
			break
		}
		filters[k] = repeatList(p, "Filter."+strconv.Itoa(i)+".Value")
	}
	ids := make([]string, 0, len(s.havips))
	for id := range s.havips {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var match []map[string]any
	for _, id := range ids {
		h := s.havips[id]
		ok := true
		for k, vs := range filters {
			var v string
			switch k {
			case "HaVipId":
				v = h.ID
			case "VpcId":
				v = h.VpcID
			case "VSwitchId":
				v = h.VSwitchID
			case "Status":
				v = h.Status
			case "HaVipAddress", "IpAddress":
				v = h.IP
			default:
				return nil, nil, errBadRequest("InvalidFilterKey.ValueNotSupported", "Filter key "+k+" is not supported.")
			}
			if !slices.Contains(vs, v) {
				ok = false
			}
		}
		if ok {
			match = append(match, s.havipJSON(h))
		}
	}
	num, size, from, to := page(p, len(match))
	return map[string]any{
		"TotalCount": len(match), "PageNumber": num, "PageSize": size,
		"HaVips": map[string]any{"HaVip": append([]map[string]any{}, match[from:to]...)},
	}, nil, nil
}

// vswitchOf returns the vSwitch of an instance or ENI id.
func (s *Server) vswitchOf(id, typ string) (string, *apiError) {
	if typ == "NetworkInterface" {
		e, ok := s.enis[id]
		if !ok {
			return "", errNotFound("InvalidEniId.NotFound", "The specified network interface "+id+" does not exist.")
		}
		return e.VSwitchID, nil
	}
	in, ok := s.instances[id]
	if !ok {
		return "", errNotFound("InvalidInstanceId.NotFound", "The specified instance "+id+" does not exist.")
	}
	return in.VSwitchID, nil
}

func (s *Server) associateHaVip(p url.Values) (map[string]any, []Event, *apiError) {
	hid, iid := p.Get("HaVipId"), p.Get("InstanceId")
	if hid == "" {
		return nil, nil, missing("HaVipId")
	}
	if iid == "" {
		return nil, nil, missing("InstanceId")
	}
	typ := p.Get("InstanceType")
	if typ == "" {
		typ = "EcsInstance"
	}
	if typ != "EcsInstance" && typ != "NetworkInterface" {
		return nil, nil, errBadRequest("InvalidParameter.InstanceType", "InstanceType must be EcsInstance or NetworkInterface.")
	}
	h, ok := s.havips[hid]
	if !ok {
		return nil, nil, errNotFound("InvalidHaVipId.NotFound", "The specified HaVip "+hid+" does not exist.")
	}
	vsw, ae := s.vswitchOf(iid, typ)
	if ae != nil {
		return nil, nil, ae
	}
	if h.Status == StatusAssociating || h.Status == StatusUnassociating {
		return nil, nil, errBadRequest("IncorrectHaVipStatus", "The HaVip is "+h.Status+"; retry when the operation completes.")
	}
	if slices.Contains(h.Instances, iid) {
		return nil, nil, errBadRequest("InvalidInstanceId.AlreadyAssociated", "The instance "+iid+" is already associated with the HaVip.")
	}
	if len(h.Instances) > 0 && h.InstanceType != typ {
		return nil, nil, errBadRequest("InvalidParameter.InstanceType", "The HaVip is associated with instances of type "+h.InstanceType+".")
	}
	if vsw != h.VSwitchID {
		return nil, nil, errBadRequest("InvalidVSwitchId.Mismatch", "The instance and the HaVip are not in the same vSwitch.")
	}
	if len(h.Instances) >= s.opts.MaxHaVipInstances {
		return nil, nil, errBadRequest("QuotaExceeded.HaVipBindInstance", fmt.Sprintf("A HaVip can be associated with at most %d instances.", s.opts.MaxHaVipInstances))
	}
	h.Status = StatusAssociating
	h.InstanceType = typ
	s.later(hid, func() []Event {
		if h.Status != StatusAssociating {
			return nil
		}
		h.Instances = append(h.Instances, iid)
		h.Status = StatusInUse
		return []Event{s.event(EventHaVipAssociated, hid, iid, h.IP, h.Status)}
	})
	return map[string]any{}, nil, nil
}

func (s *Server) unassociateHaVip(p url.Values) (map[string]any, []Event, *apiError) {
	hid, iid := p.Get("HaVipId"), p.Get("InstanceId")
	if hid == "" {
		return nil, nil, missing("HaVipId")
	}
	if iid == "" {
		return nil, nil, missing("InstanceId")
	}
	h, ok := s.havips[hid]
	if !ok {
		return nil, nil, errNotFound("InvalidHaVipId.NotFound", "The specified HaVip "+hid+" does not exist.")
	}
	if h.Status == StatusAssociating || h.Status == StatusUnassociating {
		return nil, nil, errBadRequest("IncorrectHaVipStatus", "The HaVip is "+h.Status+"; retry when the operation completes.")
	}
	if !slices.Contains(h.Instances, iid) {
		return nil, nil, errBadRequest("InvalidInstanceId.NotAssociated", "The instance "+iid+" is not associated with the HaVip.")
	}
	if h.Master == iid && !strings.EqualFold(p.Get("Force"), "true") {
		return nil, nil, errBadRequest("OperationDenied.HaVipMasterInstance", "The instance is the HaVip's master; set Force=True to unassociate it.")
	}
	h.Status = StatusUnassociating
	s.later(hid, func() []Event {
		if h.Status != StatusUnassociating {
			return nil
		}
		h.Instances = slices.DeleteFunc(h.Instances, func(x string) bool { return x == iid })
		if h.Master == iid {
			h.Master = ""
		}
		h.Status = StatusAvailable
		if len(h.Instances) > 0 {
			h.Status = StatusInUse
		}
		return []Event{s.event(EventHaVipUnassociated, hid, iid, h.IP, h.Status)}
	})
	return map[string]any{}, nil, nil
}

func (s *Server) createHaVip(p url.Values) (map[string]any, []Event, *apiError) {
	vsw := p.Get("VSwitchId")
	if vsw == "" {
		return nil, nil, missing("VSwitchId")
	}
	ip := p.Get("IpAddress")
	if ip == "" {
		return nil, nil, missing("IpAddress (this emulator does not allocate addresses)")
	}
	vpc := ""
	for _, in := range s.instances {
		if in.VSwitchID == vsw {
			vpc = in.VpcID
		}
	}
	for _, h := range s.havips {
		if h.IP == ip && h.VSwitchID == vsw {
			return nil, nil, errBadRequest("InvalidIpAddress.AlreadyExist", "The address "+ip+" is already used by "+h.ID+".")
		}
	}
	s.nextID++
	id := fmt.Sprintf("havip-sim%06d", s.nextID)
	h := &HaVip{ID: id, IP: ip, VSwitchID: vsw, VpcID: vpc, Status: StatusAvailable, InstanceType: "EcsInstance"}
	s.havips[id] = h
	return map[string]any{"HaVipId": id, "IpAddress": ip},
		[]Event{s.event(EventHaVipCreated, id, "", ip, h.Status)}, nil
}

func (s *Server) eniJSON(e *ENI) map[string]any {
	ipSet := func(ip string, primary bool) map[string]any {
		m := map[string]any{"PrivateIpAddress": ip, "Primary": primary}
		// An EIP maps to a private IP of an ENI, or of an instance
		// through its primary ENI.
		owner := e.ID
		if e.Type == ENITypePrimary {
			owner = e.InstanceID
		}
		if eips := s.eipsOf(owner, ip); len(eips) > 0 {
			m["AssociatedPublicIp"] = map[string]any{"PublicIpAddress": eips[0].IP, "AllocationId": eips[0].AllocationID}
		}
		return m
	}
	ips := []map[string]any{ipSet(e.PrimaryIP, true)}
	for _, ip := range e.SecondaryIPs {
		ips = append(ips, ipSet(ip, false))
	}
	m := map[string]any{
		"NetworkInterfaceId": e.ID, "Status": e.Status, "InstanceId": e.InstanceID, "Type": e.Type,
		"PrivateIpAddress": e.PrimaryIP, "MacAddress": e.MAC, "VSwitchId": e.VSwitchID, "VpcId": e.VpcID, "ZoneId": e.ZoneID,
		"PrivateIpSets": map[string]any{"PrivateIpSet": ips},
	}
	if e.InstanceID != "" {
		idx := 1
		if e.Type == ENITypePrimary {
			idx = 0
		}
		m["Attachment"] = map[string]any{"InstanceId": e.InstanceID, "DeviceIndex": idx}
	}
	return m
}

func (s *Server) describeNetworkInterfaces(p url.Values) (map[string]any, []Event, *apiError) {
	ids := repeatList(p, "NetworkInterfaceId")
	ips := repeatList(p, "PrivateIpAddress")
	inst, status, vsw, typ := p.Get("InstanceId"), p.Get("Status"), p.Get("VSwitchId"), p.Get("Type")
	keys := make([]string, 0, len(s.enis))
	for id := range s.enis {
		keys = append(keys, id)
	}
	sort.Strings(keys)
	var match []map[string]any
	for _, id := range keys {
		e := s.enis[id]
		if len(ids) > 0 && !slices.Contains(ids, e.ID) ||
			inst != "" && e.InstanceID != inst ||
			status != "" && e.Status != status ||
			vsw != "" && e.VSwitchID != vsw ||
			typ != "" && e.Type != typ {
			continue
		}
		if len(ips) > 0 && !slices.ContainsFunc(append([]string{e.PrimaryIP}, e.SecondaryIPs...), func(ip string) bool { return slices.Contains(ips, ip) }) {
			continue
		}
		match = append(match, s.eniJSON(e))
	}
	num, size, from, to := page(p, len(match))
	return map[string]any{
		"TotalCount": len(match), "PageNumber": num, "PageSize": size,
		"NetworkInterfaceSets": map[string]any{"NetworkInterfaceSet": append([]map[string]any{}, match[from:to]...)},
	}, nil, nil
}

func (s *Server) eniAndInstance(p url.Values) (*ENI, *Instance, *apiError) {
	eid, iid := p.Get("NetworkInterfaceId"), p.Get("InstanceId")
	if eid == "" {
		return nil, nil, missing("NetworkInterfaceId")
	}
	if iid == "" {
		return nil, nil, missing("InstanceId")
	}
	e, ok := s.enis[eid]
	if !ok {
		return nil, nil, errNotFound("InvalidEniId.NotFound", "The specified network interface "+eid+" does not exist.")
	}
	in, ok := s.instances[iid]
	if !ok {
		return nil, nil, errNotFound("InvalidInstanceId.NotFound", "The specified instance "+iid+" does not exist.")
	}
	return e, in, nil
}

func (s *Server) attachNetworkInterface(p url.Values) (map[string]any, []Event, *apiError) {
	e, in, ae := s.eniAndInstance(p)
	if ae != nil {
		return nil, nil, ae
	}
	if e.Status != StatusAvailable {
		return nil, nil, errForbidden("InvalidOperation.InvalidEniState", "The network interface is "+e.Status+"; it must be Available to be attached.")
	}
	if e.ZoneID != "" && in.ZoneID != "" && e.ZoneID != in.ZoneID {
		return nil, nil, errForbidden("InvalidOperation.AvailabilityZoneMismatch", "The network interface and the instance are not in the same zone.")
	}
	if e.VpcID != "" && in.VpcID != "" && e.VpcID != in.VpcID {
		return nil, nil, errForbidden("InvalidOperation.VpcMismatch", "The network interface and the instance are not in the same VPC.")
	}
	if in.Status != StatusRunning && in.Status != "Stopped" {
		return nil, nil, errForbidden("IncorrectInstanceStatus", "The instance is "+in.Status+".")
	}
	e.Status = StatusAttaching
	e.InstanceID = in.ID
	evs := []Event{s.event(EventENIAttaching, e.ID, in.ID, e.PrimaryIP, e.Status)}
	s.later(e.ID, func() []Event {
		if e.Status != StatusAttaching || e.InstanceID != in.ID {
			return nil
		}
		e.Status = StatusInUse
		return []Event{s.event(EventENIAttached, e.ID, in.ID, e.PrimaryIP, e.Status)}
	})
	return map[string]any{}, evs, nil
}

func (s *Server) detachNetworkInterface(p url.Values) (map[string]any, []Event, *apiError) {
	e, in, ae := s.eniAndInstance(p)
	if ae != nil {
		return nil, nil, ae
	}
	if e.Type == ENITypePrimary {
		return nil, nil, errForbidden("InvalidOperation.DetachPrimaryEniNotAllowed", "The primary network interface of an instance cannot be detached.")
	}
	if e.InstanceID != in.ID {
		return nil, nil, errForbidden("InvalidOperation.InvalidEniState", "The network interface is not attached to instance "+in.ID+".")
	}
	switch e.Status {
	case StatusDetaching:
		// Re-sending a detach is the vendor's advice for a stuck ENI; it
		// is accepted and changes nothing here.
		return map[string]any{}, nil, nil
	case StatusInUse:
	default:
		return nil, nil, errForbidden("InvalidOperation.InvalidEniState", "The network interface is "+e.Status+"; it must be InUse to be detached.")
	}
	e.Status = StatusDetaching
	evs := []Event{s.event(EventENIDetaching, e.ID, in.ID, e.PrimaryIP, e.Status)}
	s.later(e.ID, func() []Event {
		if e.Status != StatusDetaching || s.stuck[e.ID] {
			return nil
		}
		var out []Event
		s.finishDetach(e, &out)
		return out
	})
	return map[string]any{}, evs, nil
}

// finishDetach completes a detach; s.mu must be held.
func (s *Server) finishDetach(e *ENI, evs *[]Event) {
	old := e.InstanceID
	e.Status = StatusAvailable
	e.InstanceID = ""
	*evs = append(*evs, s.event(EventENIDetached, e.ID, old, e.PrimaryIP, e.Status))
}

func (s *Server) describeInstances(p url.Values) (map[string]any, []Event, *apiError) {
	ids := repeatList(p, "InstanceIds")
	ips := repeatList(p, "PrivateIpAddresses")
	keys := make([]string, 0, len(s.instances))
	for id := range s.instances {
		keys = append(keys, id)
	}
	sort.Strings(keys)
	var match []map[string]any
	for _, id := range keys {
		in := s.instances[id]
		if len(ids) > 0 && !slices.Contains(ids, id) || len(ips) > 0 && !slices.Contains(ips, in.PrivateIP) {
			continue
		}
		var nics []map[string]any
		for _, eid := range sortedKeys(s.enis) {
			if e := s.enis[eid]; e.InstanceID == id {
				nics = append(nics, map[string]any{"NetworkInterfaceId": e.ID, "PrimaryIpAddress": e.PrimaryIP, "MacAddress": e.MAC, "Type": e.Type})
			}
		}
		match = append(match, map[string]any{
			"InstanceId": id, "Status": in.Status, "ZoneId": in.ZoneID, "RegionId": s.opts.Region, "VpcId": in.VpcID,
			"VpcAttributes": map[string]any{"VpcId": in.VpcID, "VSwitchId": in.VSwitchID,
				"PrivateIpAddress": map[string]any{"IpAddress": []string{in.PrivateIP}}},
			"NetworkInterfaces": map[string]any{"NetworkInterface": nics},
		})
	}
	num, size, from, to := page(p, len(match))
	return map[string]any{
		"TotalCount": len(match), "PageNumber": num, "PageSize": size,
		"Instances": map[string]any{"Instance": append([]map[string]any{}, match[from:to]...)},
	}, nil, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
