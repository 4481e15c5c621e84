package aliyun

import (
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// MaxTTL is the largest record TTL Alidns accepts.
const MaxTTL = 86400

var dnsTypes = map[string]bool{"A": true, "AAAA": true, "CNAME": true, "TXT": true, "MX": true, "NS": true}

func (r *DNSRecord) name() string {
	if r.RR == "@" {
		return r.Domain
	}
	return r.RR + "." + r.Domain
}

func recordJSON(r *DNSRecord) map[string]any {
	return map[string]any{
		"RecordId": r.ID, "DomainName": r.Domain, "RR": r.RR, "Type": r.Type, "Value": r.Value,
		"TTL": r.TTL, "Line": r.Line, "Status": r.Status, "Locked": r.Locked, "Weight": 1,
		"CreateTimestamp": r.created, "UpdateTimestamp": r.updated,
	}
}

// dnsEvent makes a record event; s.mu must be held.
func (s *Server) dnsEvent(typ string, r *DNSRecord) Event {
	ev := s.event(typ, r.ID, "", r.Value, r.Status)
	ev.Name = r.name()
	ev.Detail = r.Type
	return ev
}

// checkRecord validates the fields of an Add/UpdateDomainRecord call and
// returns the record they describe (no id, domain or status).
func (s *Server) checkRecord(p url.Values, old *DNSRecord) (DNSRecord, *apiError) {
	r := DNSRecord{RR: p.Get("RR"), Type: strings.ToUpper(p.Get("Type")), Value: p.Get("Value"), Line: p.Get("Line"), TTL: DefaultMinTTL}
	if old != nil {
		r.TTL = old.TTL
	}
	for _, f := range []struct{ k, v string }{{"RR", r.RR}, {"Type", r.Type}, {"Value", r.Value}} {
		if f.v == "" {
			return r, missing(f.k)
		}
	}
	if strings.Trim(strings.ToLower(r.RR), "abcdefghijklmnopqrstuvwxyz0123456789-_.*@") != "" || strings.HasPrefix(r.RR, ".") || strings.HasSuffix(r.RR, ".") {
		return r, errBadRequest("InvalidRR.Format", "The host record "+r.RR+" is not valid.")
	}
	if !dnsTypes[r.Type] {
		return r, errBadRequest("InvalidType.Format", "The record type "+r.Type+" is not supported (this emulator: A, AAAA, CNAME, TXT, MX, NS).")
	}
	switch r.Type {
	case "A", "AAAA":
		a, err := netip.ParseAddr(r.Value)
		if err != nil || (r.Type == "A") != a.Is4() {
			return r, errBadRequest("InvalidValue.Format", "The value "+r.Value+" is not valid for a record of type "+r.Type+".")
		}
	}
	if v := p.Get("TTL"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < s.opts.MinTTL || n > MaxTTL {
			return r, errBadRequest("InvalidTTL.Range", "The TTL "+v+" is out of the range "+strconv.Itoa(s.opts.MinTTL)+".."+strconv.Itoa(MaxTTL)+" of this DNS edition.")
		}
		r.TTL = n
	}
	if r.Line == "" {
		r.Line = "default"
	}
	return r, nil
}

// conflict checks r (in domain) against the other records of the domain.
func (s *Server) conflict(domain string, r DNSRecord, self string) *apiError {
	for _, id := range sortedKeys(s.records) {
		o := s.records[id]
		if id == self || o.Domain != domain || !strings.EqualFold(o.RR, r.RR) || o.Line != r.Line {
			continue
		}
		if o.Type == r.Type && o.Value == r.Value {
			return errBadRequest("DomainRecordDuplicate", "The domain record is duplicated.")
		}
		if o.Type == "CNAME" || r.Type == "CNAME" {
			return errBadRequest("DomainRecordConflict", "The domain record is conflict with other records.")
		}
	}
	return nil
}

func (s *Server) domainOf(p url.Values, code string) (string, *apiError) {
	d := strings.ToLower(strings.TrimSuffix(p.Get("DomainName"), "."))
	if d == "" {
		return "", missing("DomainName")
	}
	if !s.domains[d] {
		if code == "IncorrectDomainUser" {
			return "", errBadRequest(code, "The domain name does not belong to this user.")
		}
		return "", errBadRequest(code, "The domain name "+d+" does not exist.")
	}
	return d, nil
}

func (s *Server) recordOf(p url.Values) (*DNSRecord, *apiError) {
	id := p.Get("RecordId")
	if id == "" {
		return nil, missing("RecordId")
	}
	r, ok := s.records[id]
	if !ok {
		return nil, errBadRequest("DomainRecordNotBelongToUser", "The domain record does not belong to this user.")
	}
	return r, nil
}

func (s *Server) describeDomainRecords(p url.Values) (map[string]any, []Event, *apiError) {
	d, ae := s.domainOf(p, "InvalidDomainName.NoExist")
	if ae != nil {
		return nil, nil, ae
	}
	has := func(v, kw string) bool { return kw == "" || strings.Contains(strings.ToLower(v), strings.ToLower(kw)) }
	is := func(v, want string) bool { return want == "" || strings.EqualFold(v, want) }
	kw, mode := p.Get("KeyWord"), strings.ToUpper(p.Get("SearchMode"))
	if mode == "" && kw != "" {
		mode = "LIKE"
	}
	var match []*DNSRecord
	for _, r := range s.records {
		if r.Domain != d {
			continue
		}
		var ok bool
		switch mode {
		case "LIKE":
			ok = has(r.RR, kw) || has(r.Value, kw)
		case "EXACT":
			ok = is(r.RR, kw) || is(r.Value, kw)
		default: // ADVANCED, or none: RR and value keywords are fuzzy
			ok = has(r.RR, p.Get("RRKeyWord")) && has(r.Value, p.Get("ValueKeyWord")) &&
				is(r.Type, p.Get("TypeKeyWord")) && is(r.Type, p.Get("Type")) &&
				is(r.Line, p.Get("Line")) && is(r.Status, p.Get("Status"))
		}
		if ok {
			match = append(match, r)
		}
	}
	asc := strings.EqualFold(p.Get("Direction"), "ASC")
	sort.Slice(match, func(i, j int) bool {
		if asc {
			return match[i].seq < match[j].seq
		}
		return match[i].seq > match[j].seq
	})
	num, size := 1, 20
	if v, err := strconv.Atoi(p.Get("PageNumber")); err == nil && v > 0 {
		num = v
	}
	if v, err := strconv.Atoi(p.Get("PageSize")); err == nil && v > 0 {
		size = min(v, 500)
	}
	from := min((num-1)*size, len(match))
	to := min(from+size, len(match))
	out := []map[string]any{}
	for _, r := range match[from:to] {
		out = append(out, recordJSON(r))
	}
	return map[string]any{
		"TotalCount": len(match), "PageNumber": num, "PageSize": size,
		"DomainRecords": map[string]any{"Record": out},
	}, nil, nil
}

func (s *Server) addDomainRecord(p url.Values) (map[string]any, []Event, *apiError) {
	d, ae := s.domainOf(p, "IncorrectDomainUser")
	if ae != nil {
		return nil, nil, ae
	}
	r, ae := s.checkRecord(p, nil)
	if ae != nil {
		return nil, nil, ae
	}
	if ae := s.conflict(d, r, ""); ae != nil {
		return nil, nil, ae
	}
	r.Domain = d
	s.storeRecord(&r)
	return map[string]any{"RecordId": r.ID}, []Event{s.dnsEvent(EventDNSAdded, &r)}, nil
}

func (s *Server) updateDomainRecord(p url.Values) (map[string]any, []Event, *apiError) {
	old, ae := s.recordOf(p)
	if ae != nil {
		return nil, nil, ae
	}
	r, ae := s.checkRecord(p, old)
	if ae != nil {
		return nil, nil, ae
	}
	if old.Locked {
		return nil, nil, errBadRequest("DomainRecordLocked", "The domain record has been locked.")
	}
	// An update that changes nothing but (at most) the TTL is refused,
	// as the service does: DDNS scripts meet it whenever the address did
	// not change.
	if old.RR == r.RR && old.Type == r.Type && old.Value == r.Value && old.Line == r.Line {
		return nil, nil, errBadRequest("DomainRecordDuplicate", "The domain record is duplicated.")
	}
	if ae := s.conflict(old.Domain, r, old.ID); ae != nil {
		return nil, nil, ae
	}
	old.RR, old.Type, old.Value, old.Line, old.TTL = r.RR, r.Type, r.Value, r.Line, r.TTL
	old.updated = s.now().UnixMilli()
	return map[string]any{"RecordId": old.ID}, []Event{s.dnsEvent(EventDNSUpdated, old)}, nil
}

func (s *Server) deleteDomainRecord(p url.Values) (map[string]any, []Event, *apiError) {
	r, ae := s.recordOf(p)
	if ae != nil {
		return nil, nil, ae
	}
	if r.Locked {
		return nil, nil, errBadRequest("DomainRecordLocked", "The domain record has been locked.")
	}
	delete(s.records, r.ID)
	return map[string]any{"RecordId": r.ID}, []Event{s.dnsEvent(EventDNSDeleted, r)}, nil
}

func (s *Server) describeDomainRecordInfo(p url.Values) (map[string]any, []Event, *apiError) {
	r, ae := s.recordOf(p)
	if ae != nil {
		return nil, nil, ae
	}
	m := recordJSON(r)
	delete(m, "CreateTimestamp")
	delete(m, "UpdateTimestamp")
	delete(m, "Weight")
	m["DomainId"] = "dom-" + r.Domain
	m["GroupId"] = "1"
	m["GroupName"] = "default"
	m["PunyCode"] = r.Domain
	return m, nil, nil
}
