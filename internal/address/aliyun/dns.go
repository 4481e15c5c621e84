package aliyun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	alidns "github.com/alibabacloud-go/alidns-20150109/v5/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/cloudmha/cloudmha/internal/address"
	cloud "github.com/cloudmha/cloudmha/internal/cloud/aliyun"
	"github.com/cloudmha/cloudmha/internal/config"
)

// Defaults of the alidns options.
const (
	// DefaultDNSRegion is the region given to the SDK when the option is
	// not set: Alidns is not regional (its endpoint is the central
	// alidns.aliyuncs.com), any region id does.
	DefaultDNSRegion = "cn-hangzhou"
	// DefaultTTL is the record TTL in seconds, also the smallest TTL the
	// free Alidns edition accepts.
	DefaultTTL = 600
	// DefaultMinTTL is the smallest ttl option accepted unless min_ttl
	// lowers it.
	DefaultMinTTL = 600
)

// DNSMover points a DNS A record (Alidns) at the primary. It is meant as
// an extra layer over a mover that really moves the address (HaVip,
// secondary IP, ENI, EIP), or as the only mover where clients connect by
// name and can wait for caches: a DNS change cannot fence the old primary.
// Clients and resolvers keep the old answer until the TTL expires (at least
// 600 s on the free edition, often longer in JVM or connection-pool
// caches), so after a move some clients reach the old primary for up to a
// TTL: the old primary must be fenced (shutdown_script, read_only) by other
// means.
//
// # Options (besides region, endpoint, call_timeout, retries, wait_timeout,
// poll_interval, proxy; credentials come from the credential chain)
//
//	domain       the zone in Alidns (example.com); required
//	rr           the record name in it (db, or @ for the apex); required
//	type         A (the only type supported)
//	ttl          record TTL in seconds (default 600). Lower TTLs shorten the
//	             time clients keep the old address, but the free Alidns
//	             edition refuses less than 600 s; paid editions accept down
//	             to 1 s (set min_ttl too)
//	min_ttl      smallest ttl accepted (default 600, the free edition's);
//	             lower it only for a paid edition
//	on_release   delete (default): Release deletes the record when it points
//	             at the old primary, so that new lookups stop returning it
//	             (resolvers that cached it still do until the TTL ends, and
//	             clients get NXDOMAIN, negatively cached per the zone's SOA,
//	             until Acquire adds it again); keep: Release leaves it, so
//	             lookups keep returning the old primary until Acquire
//	             repoints it (no NXDOMAIN window, but nothing stops new
//	             connections to the old primary in between)
//	ip.<server>  the record value for a server (default: its ip, else the
//	             address the failover gives, else its hostname resolved);
//	             e.g. a public address
//	region       any region id (default cn-hangzhou): Alidns is global
type DNSMover struct {
	*base
	domain    string
	rr        string
	ttl       int64
	onRelease string
	known     map[string]string // server -> record value (options, config, learned); under base.mu
	resolver  *net.Resolver
}

// NewDNS builds the alidns mover from cfg.Address.Options.
func NewDNS(cfg *config.Config, o Options) (*DNSMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindDNS)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindDNS, cfg, o, op, spec{perServer: []string{"ip"}, region: DefaultDNSRegion})
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindDNS, err)
	}
	m := &DNSMover{base: b, domain: strings.ToLower(strings.TrimSuffix(op.get("domain", ""), ".")), rr: op.get("rr", ""),
		onRelease: op.get("on_release", "delete"), known: map[string]string{}, resolver: net.DefaultResolver}
	if m.domain == "" || !strings.Contains(m.domain, ".") || strings.ContainsAny(m.domain, " \t\n/@*") {
		return nil, fmt.Errorf("%s mover: option domain=%q: want the Alidns zone (example.com)", KindDNS, m.domain)
	}
	if m.rr == "" || strings.Trim(strings.ToLower(m.rr), "abcdefghijklmnopqrstuvwxyz0123456789-_.@") != "" || strings.HasSuffix(m.rr, ".") {
		return nil, fmt.Errorf("%s mover: option rr=%q: want the record name within the zone (db, or @ for the apex)", KindDNS, m.rr)
	}
	if t := op.get("type", "A"); !strings.EqualFold(t, "A") {
		return nil, fmt.Errorf("%s mover: option type=%q: only A records are supported", KindDNS, t)
	}
	minTTL, err := intOption(op, "min_ttl", DefaultMinTTL, 1, cloudMaxTTL)
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindDNS, err)
	}
	ttl, err := intOption(op, "ttl", DefaultTTL, 1, cloudMaxTTL)
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindDNS, err)
	}
	if ttl < minTTL {
		return nil, fmt.Errorf("%s mover: option ttl=%d is below %d s, the smallest TTL the free Alidns edition accepts; with a paid edition set min_ttl", KindDNS, ttl, minTTL)
	}
	m.ttl = int64(ttl)
	if m.onRelease != "delete" && m.onRelease != "keep" {
		return nil, fmt.Errorf("%s mover: option on_release=%q: want delete or keep", KindDNS, m.onRelease)
	}
	for _, s := range b.servers {
		if v := op.m["ip."+s.cfg.Name]; v != "" {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%s mover: option ip.%s=%q: want an IPv4 address", KindDNS, s.cfg.Name, v)
			}
			m.known[s.cfg.Name] = a.String()
			continue
		}
		for _, h := range []string{s.cfg.IP, s.cfg.Hostname} {
			if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
				m.known[s.cfg.Name] = a.String()
				break
			}
		}
	}
	if err := op.unknown(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindDNS, err)
	}
	m.log = m.log.With("record", m.fqdn())
	return m, nil
}

// cloudMaxTTL is the largest TTL Alidns accepts.
const cloudMaxTTL = 86400

func intOption(op *opts, k string, def, lo, hi int) (int, error) {
	v := op.get(k, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("option %s=%q: want %d..%d", k, v, lo, hi)
	}
	return n, nil
}

// Kind implements address.Mover.
func (m *DNSMover) Kind() string { return KindDNS }

func (m *DNSMover) fqdn() string {
	if m.rr == "@" {
		return m.domain
	}
	return m.rr + "." + m.domain
}

// valueOf is the record value for a server: ip.<server>, its configured
// IP, the address the failover gives (hint), or its hostname resolved.
func (m *DNSMover) valueOf(ctx context.Context, name, hint string) (string, error) {
	m.mu.Lock()
	v, ok := m.known[name]
	m.mu.Unlock()
	if ok {
		return v, nil
	}
	if a, err := netip.ParseAddr(hint); err == nil && a.Is4() {
		v = a.String()
	} else {
		s, err := m.server(name)
		if err != nil {
			return "", err
		}
		if s.cfg.Hostname == "" {
			return "", fmt.Errorf("%s: server %s has no address for the record; set ip.%s", m.kind, name, name)
		}
		addrs, err := m.resolver.LookupNetIP(ctx, "ip4", s.cfg.Hostname)
		if err != nil || len(addrs) == 0 {
			return "", fmt.Errorf("%s: server %s: resolve %s for the record (set ip.%s): %w", m.kind, name, s.cfg.Hostname, name, errors.Join(err, errors.New("no IPv4 address")))
		}
		v = addrs[0].Unmap().String()
	}
	m.mu.Lock()
	m.known[name] = v
	m.mu.Unlock()
	return v, nil
}

// serverOfValue maps a record value back to a server ("" when none).
func (m *DNSMover) serverOfValue(ctx context.Context, v string) string {
	for _, s := range m.servers {
		if got, err := m.valueOf(ctx, s.cfg.Name, ""); err == nil && got == v {
			return s.cfg.Name
		}
	}
	return ""
}

type dnsRecord struct {
	id, value string
	ttl       int64
	locked    bool
}

// records returns the A records named exactly rr (DescribeDomainRecords'
// RRKeyWord matches fuzzily: db also finds db-old), oldest first.
func (m *DNSMover) records(ctx context.Context) ([]dnsRecord, error) {
	var out []dnsRecord
	for page := int64(1); ; page++ {
		var resp *alidns.DescribeDomainRecordsResponse
		err := m.call(ctx, "DescribeDomainRecords", func() error {
			var err error
			resp, err = m.api.DNS.DescribeDomainRecordsWithContext(ctx, &alidns.DescribeDomainRecordsRequest{
				DomainName: dara.String(m.domain), RRKeyWord: dara.String(m.rr), Type: dara.String("A"),
				PageNumber: dara.Int64(page), PageSize: dara.Int64(500), Direction: dara.String("ASC"),
			}, m.api.Runtime())
			return err
		})
		if err != nil {
			return nil, err
		}
		var recs []*alidns.DescribeDomainRecordsResponseBodyDomainRecordsRecord
		if resp.Body != nil && resp.Body.DomainRecords != nil {
			recs = resp.Body.DomainRecords.Record
		}
		for _, r := range recs {
			if strings.EqualFold(dara.StringValue(r.RR), m.rr) && strings.EqualFold(dara.StringValue(r.Type), "A") {
				out = append(out, dnsRecord{id: dara.StringValue(r.RecordId), value: dara.StringValue(r.Value), ttl: dara.Int64Value(r.TTL), locked: dara.BoolValue(r.Locked)})
			}
		}
		if len(recs) < 500 || resp.Body == nil || int64(len(recs))*page >= dara.Int64Value(resp.Body.TotalCount) {
			return out, nil
		}
	}
}

// describe names the records' values and servers, for messages.
func (m *DNSMover) describe(ctx context.Context, rs []dnsRecord) string {
	if len(rs) == 0 {
		return "no A record " + m.fqdn() + " exists"
	}
	var parts []string
	for _, r := range rs {
		name := m.serverOfValue(ctx, r.value)
		if name == "" {
			name = "no configured server"
		}
		parts = append(parts, r.value+" ("+name+")")
	}
	return "A record " + m.fqdn() + " points at " + strings.Join(parts, ", ")
}

// foreign refuses records whose value is no configured server's: they
// are not this cluster's to change.
func (m *DNSMover) foreign(ctx context.Context, rs []dnsRecord) error {
	for _, r := range rs {
		if m.serverOfValue(ctx, r.value) == "" {
			return fmt.Errorf("%w: %s, which is none of the configured servers' addresses (set ip.<server>, or fix the record)", ErrConflict, m.describe(ctx, rs))
		}
	}
	return nil
}

// Status implements address.StatusChecker: the zone is readable with the
// credentials, and exactly one A record points at the primary.
func (m *DNSMover) Status(ctx context.Context, primary address.Target) error {
	want, err := m.valueOf(ctx, primary.Name, primary.IP)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	rs, err := m.records(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	if len(rs) != 1 || rs[0].value != want {
		return fmt.Errorf("%s status: %w: %s, not only at the primary %s (%s)", m.kind, ErrConflict, m.describe(ctx, rs), primary.Name, want)
	}
	if rs[0].ttl != m.ttl {
		m.log.Warn("record TTL differs from the ttl option; it changes at the next move", "ttl", rs[0].ttl, "want", m.ttl)
	}
	return nil
}

// Holder implements address.Mover: the server the record points at, ""
// when there is no record.
func (m *DNSMover) Holder(ctx context.Context) (string, error) {
	rs, err := m.records(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if len(rs) == 0 {
		return "", nil
	}
	name := m.serverOfValue(ctx, rs[0].value)
	if len(rs) > 1 || name == "" {
		return "", fmt.Errorf("%s holder: %w: %s", m.kind, ErrConflict, m.describe(ctx, rs))
	}
	return name, nil
}

func (m *DNSMover) delete(ctx context.Context, r dnsRecord) error {
	err := m.call(ctx, "DeleteDomainRecord", func() error {
		_, err := m.api.DNS.DeleteDomainRecordWithContext(ctx, &alidns.DeleteDomainRecordRequest{RecordId: dara.String(r.id)}, m.api.Runtime())
		return err
	})
	if cloud.Code(err) == "DomainRecordNotBelongToUser" {
		return nil // already gone (a retry after a lost answer)
	}
	if err != nil {
		return fmt.Errorf("delete record %s (%s): %w", r.id, r.value, err)
	}
	m.log.Info("record deleted", "record_id", r.id, "value", r.value)
	return nil
}

// Release implements address.Mover: with on_release=delete (default) the
// records pointing at the old primary are deleted; with keep they are
// left for Acquire to repoint. Records pointing at the new primary are
// kept (a re-run); records pointing at no configured server are
// ErrConflict and nothing is changed. Release cannot stop clients that
// cached the old answer (see the type's documentation).
func (m *DNSMover) Release(ctx context.Context, c address.Change) error {
	log := m.log.With("op", "release", "server", c.Old.Name)
	old, err := m.valueOf(ctx, c.Old.Name, c.Old.IP)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	rs, err := m.records(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if err := m.foreign(ctx, rs); err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if m.onRelease == "keep" {
		log.Info("on_release=keep: the record is left as it is until acquire", "state", m.describe(ctx, rs))
		return nil
	}
	n := 0
	for _, r := range rs {
		if r.value != old {
			continue
		}
		if err := m.delete(ctx, r); err != nil {
			return fmt.Errorf("%s release: %w; %s", m.kind, err, m.where(ctx))
		}
		n++
	}
	log.Info("release done: resolvers may return the old address until the TTL ends", "deleted", n, "ttl", m.ttl)
	return nil
}

// Acquire implements address.Mover: the record is pointed at the new
// primary (UpdateDomainRecord of an existing record, AddDomainRecord
// when there is none; DomainRecordDuplicate, the service's answer to an
// update that changes nothing, is success), other records of the name
// pointing at configured servers are deleted, and the result is read back
// (DescribeDomainRecordInfo and the record list) until it shows exactly
// the new address. When that fails in a planned switchover
// (Change.Online) the record is pointed back at the old primary; in a
// failover the error says what the record was left pointing at.
func (m *DNSMover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	ip, err := m.valueOf(ctx, c.New.Name, c.New.IP)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	if err := m.pointAt(ctx, ip); err != nil {
		err = fmt.Errorf("%s acquire on %s: %w", m.kind, c.New.Name, err)
		if !rollbackAllowed(c) {
			return fmt.Errorf("%w (no rollback in a failover: the old primary is presumed dead; %s)", err, m.where(ctx))
		}
		old, verr := m.valueOf(ctx, c.Old.Name, c.Old.IP)
		if verr == nil {
			m.log.Warn("acquire failed in a switchover: pointing the record at the old primary again", "server", c.Old.Name, "err", err)
			verr = m.pointAt(ctx, old)
		}
		if verr != nil {
			return errors.Join(err, fmt.Errorf("%s rollback to %s failed: %w; %s", m.kind, c.Old.Name, verr, m.where(ctx)))
		}
		return fmt.Errorf("%w (rolled back: %s points at %s again)", err, m.fqdn(), c.Old.Name)
	}
	m.log.Info("record points at the new primary", "server", c.New.Name, "value", ip, "ttl", m.ttl, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// pointAt makes ip the only value of the record and verifies it.
func (m *DNSMover) pointAt(ctx context.Context, ip string) error {
	rs, err := m.records(ctx)
	if err != nil {
		return err
	}
	if err := m.foreign(ctx, rs); err != nil {
		return err
	}
	keep := -1
	for i, r := range rs {
		if r.value == ip {
			keep = i
			break
		}
	}
	var id string
	switch {
	case keep >= 0:
		id = rs[keep].id
		if rs[keep].ttl != m.ttl {
			m.log.Warn("record already points at the address; its TTL differs from the ttl option and is left", "ttl", rs[keep].ttl, "want", m.ttl)
		}
	case len(rs) > 0:
		keep, id = 0, rs[0].id
		err := m.call(ctx, "UpdateDomainRecord", func() error {
			_, err := m.api.DNS.UpdateDomainRecordWithContext(ctx, &alidns.UpdateDomainRecordRequest{
				RecordId: dara.String(id), RR: dara.String(m.rr), Type: dara.String("A"), Value: dara.String(ip), TTL: dara.Int64(m.ttl),
			}, m.api.Runtime())
			return err
		})
		if err != nil && cloud.Code(err) != "DomainRecordDuplicate" {
			return fmt.Errorf("update record %s to %s: %w", id, ip, err)
		}
		m.log.Info("record updated", "record_id", id, "from", rs[0].value, "to", ip)
	default:
		var out *alidns.AddDomainRecordResponse
		err := m.call(ctx, "AddDomainRecord", func() error {
			var err error
			out, err = m.api.DNS.AddDomainRecordWithContext(ctx, &alidns.AddDomainRecordRequest{
				DomainName: dara.String(m.domain), RR: dara.String(m.rr), Type: dara.String("A"), Value: dara.String(ip), TTL: dara.Int64(m.ttl),
			}, m.api.Runtime())
			return err
		})
		switch {
		case err == nil && out.Body != nil:
			id = dara.StringValue(out.Body.RecordId)
			m.log.Info("record added", "record_id", id, "value", ip)
		case cloud.Code(err) == "DomainRecordDuplicate":
			// Added meanwhile (a retry after a lost answer): find it.
			again, rerr := m.records(ctx)
			if rerr != nil {
				return rerr
			}
			for _, r := range again {
				if r.value == ip {
					id = r.id
				}
			}
		default:
			return fmt.Errorf("add record %s -> %s: %w", m.fqdn(), ip, err)
		}
	}
	for i, r := range rs {
		if i != keep {
			if err := m.delete(ctx, r); err != nil {
				return err
			}
		}
	}
	return m.wait(ctx, m.fqdn()+" -> "+ip, func(ctx context.Context) (bool, string, error) {
		if id != "" {
			var info *alidns.DescribeDomainRecordInfoResponse
			err := m.call(ctx, "DescribeDomainRecordInfo", func() error {
				var err error
				info, err = m.api.DNS.DescribeDomainRecordInfoWithContext(ctx, &alidns.DescribeDomainRecordInfoRequest{RecordId: dara.String(id)}, m.api.Runtime())
				return err
			})
			if err != nil && cloud.Code(err) != "DomainRecordNotBelongToUser" {
				return false, "", err
			}
			if err != nil || info.Body == nil || dara.StringValue(info.Body.Value) != ip {
				return false, "record " + id + " does not read back as " + ip, nil
			}
		}
		rs, err := m.records(ctx)
		if err != nil {
			return false, "", err
		}
		return len(rs) == 1 && rs[0].value == ip, m.describe(ctx, rs), nil
	})
}

// where says what the record points at now, for error messages.
func (m *DNSMover) where(ctx context.Context) string {
	rctx, cancel := reportCtx(ctx)
	defer cancel()
	rs, err := m.records(rctx)
	if err != nil {
		return fmt.Sprintf("what %s is left pointing at is unknown: %v", m.fqdn(), err)
	}
	return "left as: " + m.describe(rctx, rs)
}
