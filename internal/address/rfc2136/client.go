package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// tsigFudge is the clock skew a TSIG signature tolerates (RFC 8945
// recommends 300 s).
const tsigFudge = 300

// udpAttempts is how many times a message is sent over UDP when no answer
// comes back in time. Every message this mover sends is safe to repeat:
// Acquire's update sets the whole RRset, Release's has a prerequisite,
// Status's changes nothing.
const udpAttempts = 3

// exchange sends req (a TSIG-signed copy when a key is configured) and
// returns the answer. Transport errors, a TSIG signature that does not
// verify and an unsigned answer to a signed request are errors (the latter
// two wrap ErrAuth) unless the answer is itself an error Rcode, which is
// returned for rcodeErr to describe (BIND's BADKEY/BADSIG answers carry a
// TSIG record without a valid MAC).
func (m *Mover) exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	network := m.transport
	for attempt := 1; ; attempt++ {
		r, err := m.exchangeOnce(ctx, network, req)
		switch {
		case err == nil && r.Truncated && network == "udp":
			m.log.Debug("answer truncated over UDP, retrying over TCP")
			network = "tcp"
			continue
		case err != nil && network == "udp" && attempt < udpAttempts && ctx.Err() == nil && isTimeout(err):
			m.log.Debug("no answer over UDP, retrying", "attempt", attempt, "err", err)
			continue
		}
		return r, err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func (m *Mover) exchangeOnce(ctx context.Context, network string, req *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	msg := req.Copy()
	c := &dns.Client{Net: network, Timeout: m.timeout}
	if m.key != nil {
		msg.SetTsig(m.key.name, m.key.alg, tsigFudge, time.Now().Unix())
		c.TsigProvider = m.key
	}
	nc, err := m.dial(ctx, network, m.server)
	if err != nil {
		return nil, fmt.Errorf("connect to DNS server %s over %s: %w", m.server, network, err)
	}
	defer nc.Close()
	// ExchangeWithConnContext only honours the context's deadline; this
	// makes a cancellation end the exchange too.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()

	r, _, err := c.ExchangeWithConnContext(ctx, msg, &dns.Conn{Conn: nc})
	if err != nil {
		if r != nil && r.Id == msg.Id && r.Response && r.Rcode != dns.RcodeSuccess {
			return r, nil
		}
		if ctx.Err() != nil || isTimeout(err) {
			cause := err
			if ctx.Err() != nil {
				cause = ctx.Err()
			}
			return nil, fmt.Errorf("no answer from DNS server %s over %s within %s: %w", m.server, network, m.timeout, cause)
		}
		switch {
		case errors.Is(err, dns.ErrSig), errors.Is(err, dns.ErrTime), errors.Is(err, dns.ErrSecret), errors.Is(err, dns.ErrKeyAlg):
			return nil, fmt.Errorf("%w: the TSIG signature of the answer from %s does not verify with %s: %w", ErrAuth, m.server, m.key, err)
		}
		return nil, fmt.Errorf("exchange with DNS server %s over %s: %w", m.server, network, err)
	}
	if m.key != nil && r.IsTsig() == nil && r.Rcode == dns.RcodeSuccess {
		return nil, fmt.Errorf("%w: the answer from %s is not signed although the request was signed with %s", ErrAuth, m.server, m.key)
	}
	return r, nil
}

// rcodeErr describes an answer's error Rcode. update says whether the
// request was an UPDATE (else a query). The key's name appears, never its
// secret.
func (m *Mover) rcodeErr(update bool, r *dns.Msg) error {
	rc, ok := dns.RcodeToString[r.Rcode]
	if !ok {
		rc = fmt.Sprintf("RCODE%d", r.Rcode)
	}
	tsigErr := ""
	if t := r.IsTsig(); t != nil && t.Error != 0 {
		if tsigErr, ok = dns.RcodeToString[int(t.Error)]; !ok {
			tsigErr = fmt.Sprintf("error %d", t.Error)
		}
	}
	what := "query"
	if update {
		what = "update"
	}
	switch r.Rcode {
	case dns.RcodeNotAuth:
		switch {
		case m.key != nil && tsigErr != "":
			hint := map[string]string{
				"BADKEY":  "the server does not know a key of that name and algorithm",
				"BADSIG":  "the secret does not match the server's",
				"BADTIME": "the clocks of this host and of the server differ by more than the TSIG fudge (300s)",
			}[tsigErr]
			if hint == "" {
				hint = "the server rejected the signature"
			}
			return fmt.Errorf("%w: DNS server %s answered the %s with NOTAUTH (TSIG %s) for %s: %s", ErrAuth, m.server, what, tsigErr, m.key, hint)
		case m.key != nil:
			return fmt.Errorf("%w: DNS server %s answered the %s with NOTAUTH for %s: it is not authoritative for zone %s or rejected the key", ErrAuth, m.server, what, m.key, m.zone)
		default:
			return fmt.Errorf("%w: DNS server %s answered the unsigned %s with NOTAUTH: it is not authoritative for zone %s (or requires a TSIG key)", ErrAuth, m.server, what, m.zone)
		}
	case dns.RcodeRefused:
		switch {
		case !update:
			return fmt.Errorf("DNS server %s refused the query: it does not serve zone %s (or does not allow this client to query it)", m.server, m.zone)
		case m.key != nil:
			return fmt.Errorf("%w: DNS server %s refused the update signed with %s: the update-policy (or allow-update) of zone %s does not grant that key %s type A", ErrAuth, m.server, m.key, m.zone, m.name)
		default:
			return fmt.Errorf("%w: DNS server %s refused the unsigned update of zone %s: set tsig_key_name and tsig_secret_file", ErrAuth, m.server, m.zone)
		}
	case dns.RcodeNXRrset, dns.RcodeYXRrset, dns.RcodeNameError, dns.RcodeYXDomain:
		return fmt.Errorf("%w: DNS server %s answered %s", ErrPrerequisite, m.server, rc)
	case dns.RcodeNotZone:
		return fmt.Errorf("DNS server %s answered NOTZONE: %s is not inside zone %s as the server sees it", m.server, m.name, m.zone)
	case dns.RcodeServerFailure:
		return fmt.Errorf("DNS server %s answered the %s with SERVFAIL (zone %s not loaded, or journal not writable: see the server's log)", m.server, what, m.zone)
	}
	if tsigErr != "" {
		rc += " (TSIG " + tsigErr + ")"
	}
	return fmt.Errorf("DNS server %s answered the %s with %s", m.server, what, rc)
}

// query asks the server for qname/qtype and checks that the answer is
// authoritative. NXDOMAIN is not an error.
func (m *Mover) query(ctx context.Context, qname string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(qname, qtype)
	q.RecursionDesired = false
	if m.transport == "udp" {
		q.SetEdns0(1232, false)
	}
	r, err := m.exchange(ctx, q)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, m.rcodeErr(false, r)
	}
	if !r.Authoritative {
		return nil, fmt.Errorf("DNS server %s is not authoritative for %s (answer without the AA bit): point option server at the zone's primary", m.server, qname)
	}
	return r, nil
}

// record is the A RRset of the name as the server has it.
type record struct {
	addrs []netip.Addr // sorted; empty when the name has no A record
	ttl   uint32
}

func (r record) String() string {
	if len(r.addrs) == 0 {
		return "no A record"
	}
	s := make([]string, len(r.addrs))
	for i, a := range r.addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// is reports whether the RRset is exactly {a}.
func (r record) is(a netip.Addr) bool { return len(r.addrs) == 1 && r.addrs[0] == a }

// lookup reads the A RRset of the name. A CNAME at the name is an error:
// an A record cannot live beside it.
func (m *Mover) lookup(ctx context.Context) (record, error) {
	r, err := m.query(ctx, m.name, dns.TypeA)
	if err != nil {
		return record{}, fmt.Errorf("look up %s A: %w", m.name, err)
	}
	var rec record
	for _, rr := range r.Answer {
		if dns.CanonicalName(rr.Header().Name) != m.name {
			continue
		}
		switch rr := rr.(type) {
		case *dns.A:
			a, ok := netip.AddrFromSlice(rr.A)
			if !ok {
				continue
			}
			rec.addrs = append(rec.addrs, a.Unmap())
			rec.ttl = rr.Hdr.Ttl
		case *dns.CNAME:
			return record{}, fmt.Errorf("look up %s A: %w: the name is a CNAME to %s; an A record cannot be set there", m.name, ErrConflict, rr.Target)
		}
	}
	slices.SortFunc(rec.addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	rec.addrs = slices.Compact(rec.addrs)
	return rec, nil
}

// serial reads the zone's SOA serial.
func (m *Mover) serial(ctx context.Context) (uint32, error) {
	r, err := m.query(ctx, m.zone, dns.TypeSOA)
	if err != nil {
		return 0, fmt.Errorf("read the SOA of %s: %w", m.zone, err)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == m.zone {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("read the SOA of %s: DNS server %s has no SOA record at %s: is %s the zone's apex?", m.zone, m.server, m.zone, m.zone)
}

// serialAfter reports whether serial b is after a (RFC 1982 arithmetic).
func serialAfter(b, a uint32) bool { return b != a && int32(b-a) > 0 }

// update sends an UPDATE and checks its Rcode.
func (m *Mover) update(ctx context.Context, u *dns.Msg) error {
	r, err := m.exchange(ctx, u)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return m.rcodeErr(true, r)
	}
	return nil
}

// newA is an A record of the name.
func (m *Mover) newA(a netip.Addr, ttl uint32) *dns.A {
	return &dns.A{Hdr: dns.RR_Header{Name: m.name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IP(a.AsSlice())}
}
