package aliyun

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// normaliseRule validates a rule and fills its defaults.
func normaliseRule(r SGRule) (SGRule, *apiError) {
	r.Direction = strings.ToLower(r.Direction)
	if r.Direction == "" {
		r.Direction = "ingress"
	}
	if r.Direction != "ingress" && r.Direction != "egress" {
		return r, errBadRequest("InvalidDirection.Malformed", "The direction "+r.Direction+" is not ingress or egress.")
	}
	r.IPProtocol = strings.ToUpper(r.IPProtocol)
	switch r.IPProtocol {
	case "TCP", "UDP":
		lo, hi, ok := strings.Cut(r.PortRange, "/")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
			return r, errBadRequest("InvalidPortRange.Malformed", "The port range "+strconv.Quote(r.PortRange)+" is not valid for "+r.IPProtocol+" (want 1/65535 … 3306/3306).")
		}
	case "ICMP", "GRE", "ALL":
		if r.PortRange == "" {
			r.PortRange = "-1/-1"
		}
		if r.PortRange != "-1/-1" {
			return r, errBadRequest("InvalidPortRange.Malformed", "The port range of protocol "+r.IPProtocol+" must be -1/-1.")
		}
	case "":
		return r, missing("IpProtocol")
	default:
		return r, errBadRequest("InvalidIpProtocol.Malformed", "The protocol "+r.IPProtocol+" is not TCP, UDP, ICMP, GRE or ALL.")
	}
	switch {
	case r.SourceCidrIP != "":
		if _, err := netip.ParsePrefix(r.SourceCidrIP); err != nil {
			if _, err := netip.ParseAddr(r.SourceCidrIP); err != nil {
				return r, errBadRequest("InvalidSourceCidrIp.Malformed", "The source "+r.SourceCidrIP+" is not an IP address or CIDR block.")
			}
		}
	case r.SourceGroupID == "":
		return r, missing("SourceCidrIp or SourceGroupId")
	}
	switch strings.ToLower(r.Policy) {
	case "", "accept":
		r.Policy = "Accept"
	case "drop":
		r.Policy = "Drop"
	default:
		return r, errBadRequest("InvalidPolicy.Malformed", "The policy "+r.Policy+" is not accept or drop.")
	}
	if r.Priority == "" {
		r.Priority = "1"
	}
	if n, err := strconv.Atoi(r.Priority); err != nil || n < 1 || n > 100 {
		return r, errBadRequest("InvalidPriority.Malformed", "The priority "+r.Priority+" is not in 1..100.")
	}
	if r.NicType == "" {
		r.NicType = "intranet"
	}
	return r, nil
}

// permissions reads Permissions.N.* and the legacy top-level fields.
func permissions(p url.Values) []SGRule {
	rule := func(prefix string) SGRule {
		return SGRule{
			IPProtocol: p.Get(prefix + "IpProtocol"), PortRange: p.Get(prefix + "PortRange"),
			SourceCidrIP: p.Get(prefix + "SourceCidrIp"), SourceGroupID: p.Get(prefix + "SourceGroupId"),
			Policy: p.Get(prefix + "Policy"), Priority: p.Get(prefix + "Priority"),
			Description: p.Get(prefix + "Description"), NicType: p.Get(prefix + "NicType"),
		}
	}
	var out []SGRule
	if p.Get("IpProtocol") != "" {
		out = append(out, rule(""))
	}
	for i := 1; ; i++ {
		prefix := "Permissions." + strconv.Itoa(i) + "."
		found := false
		for k := range p {
			if strings.HasPrefix(k, prefix) {
				found = true
				break
			}
		}
		if !found {
			return out
		}
		out = append(out, rule(prefix))
	}
}

func (s *Server) group(p url.Values) (*SecurityGroup, *apiError) {
	id := p.Get("SecurityGroupId")
	if id == "" {
		return nil, missing("SecurityGroupId")
	}
	g, ok := s.sgroups[id]
	if !ok {
		return nil, errNotFound("InvalidSecurityGroupId.NotFound", "The specified security group "+id+" does not exist.")
	}
	return g, nil
}

func (s *Server) sgEvent(typ string, g *SecurityGroup, r SGRule) Event {
	ev := s.event(typ, g.ID, "", r.SourceCidrIP, "")
	ev.Detail = r.detail()
	return ev
}

func (s *Server) authorizeSecurityGroup(p url.Values) (map[string]any, []Event, *apiError) {
	g, ae := s.group(p)
	if ae != nil {
		return nil, nil, ae
	}
	perms := permissions(p)
	if len(perms) == 0 {
		return nil, nil, missing("Permissions.N.IpProtocol")
	}
	var add []SGRule
	for _, r := range perms {
		n, ae := normaliseRule(r)
		if ae != nil {
			return nil, nil, ae
		}
		if n.Direction != "ingress" {
			return nil, nil, errBadRequest("InvalidDirection.Malformed", "AuthorizeSecurityGroup adds inbound rules only.")
		}
		add = append(add, n)
	}
	var evs []Event
	for _, n := range add {
		// Authorizing an existing rule succeeds and adds nothing.
		if slices.ContainsFunc(g.Rules, func(o SGRule) bool { return o.key() == n.key() }) {
			continue
		}
		s.nextID++
		n.ID = fmt.Sprintf("sgr-sim%06d", s.nextID)
		g.Rules = append(g.Rules, n)
		evs = append(evs, s.sgEvent(EventSGAuthorized, g, n))
	}
	return map[string]any{}, evs, nil
}

func (s *Server) revokeSecurityGroup(p url.Values) (map[string]any, []Event, *apiError) {
	g, ae := s.group(p)
	if ae != nil {
		return nil, nil, ae
	}
	ids := repeatList(p, "SecurityGroupRuleId")
	perms := permissions(p)
	if len(ids) == 0 && len(perms) == 0 {
		return nil, nil, missing("Permissions.N.IpProtocol or SecurityGroupRuleId.N")
	}
	for _, id := range ids {
		if !slices.ContainsFunc(g.Rules, func(o SGRule) bool { return o.ID == id }) {
			return nil, nil, errNotFound("InvalidSecurityGroupRuleId.NotFound", "The security group rule "+id+" does not exist.")
		}
	}
	var keys []string
	for _, r := range perms {
		n, ae := normaliseRule(r)
		if ae != nil {
			return nil, nil, ae
		}
		keys = append(keys, n.key())
	}
	var evs []Event
	// A permission that matches no rule is not an error: the rule is
	// already gone.
	g.Rules = slices.DeleteFunc(g.Rules, func(o SGRule) bool {
		if slices.Contains(ids, o.ID) || slices.Contains(keys, o.key()) {
			evs = append(evs, s.sgEvent(EventSGRevoked, g, o))
			return true
		}
		return false
	})
	return map[string]any{}, evs, nil
}

func (s *Server) describeSecurityGroupAttribute(p url.Values) (map[string]any, []Event, *apiError) {
	g, ae := s.group(p)
	if ae != nil {
		return nil, nil, ae
	}
	dir := strings.ToLower(p.Get("Direction"))
	perms := []map[string]any{}
	for _, r := range g.Rules {
		if dir != "" && dir != "all" && r.Direction != dir {
			continue
		}
		perms = append(perms, map[string]any{
			"SecurityGroupRuleId": r.ID, "Direction": r.Direction, "IpProtocol": r.IPProtocol, "PortRange": r.PortRange,
			"SourceCidrIp": r.SourceCidrIP, "SourceGroupId": r.SourceGroupID, "Policy": r.Policy, "Priority": r.Priority,
			"Description": r.Description, "NicType": r.NicType, "CreateTime": s.now().UTC().Format("2006-01-02T15:04:05Z"),
		})
	}
	return map[string]any{
		"SecurityGroupId": g.ID, "SecurityGroupName": g.Name, "VpcId": g.VpcID, "Description": g.Description,
		"RegionId": s.opts.Region, "InnerAccessPolicy": "Accept",
		"Permissions": map[string]any{"Permission": perms},
	}, nil, nil
}
