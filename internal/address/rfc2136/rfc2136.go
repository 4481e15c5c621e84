package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// Kind is the mover kind (address_mover=rfc2136).
const Kind = "rfc2136"

// Errors a caller may want to tell apart.
var (
	// ErrAuth: the server rejected the TSIG key or refused the update
	// (NOTAUTH, REFUSED), or an answer's signature did not verify.
	ErrAuth = errors.New("the DNS server rejected the credentials")
	// ErrPrerequisite: an update's prerequisite did not hold (the record
	// changed under us).
	ErrPrerequisite = errors.New("update prerequisite failed")
	// ErrConflict: the record holds something this mover cannot account
	// for (unknown addresses, several servers, a CNAME).
	ErrConflict = errors.New("the DNS record is in an unexpected state")
	// ErrVerify: the server accepted an update but does not show it.
	ErrVerify = errors.New("the DNS server does not show the update")
)

// Options are what the mover needs from the outside world.
type Options struct {
	// Logger receives what the mover does; nil discards. The TSIG secret
	// is never logged.
	Logger *slog.Logger
	// Dial opens the connections to the DNS server: network "tcp", or
	// "udp" with transport=udp. nil means net.Dialer.
	Dial remote.DialFunc
}

// Mover moves the clients' address by pointing an A record at the new
// primary with RFC 2136 dynamic updates. See the package documentation.
type Mover struct {
	settings
	log     *slog.Logger
	dial    remote.DialFunc
	servers []config.Server
}

var (
	_ address.Mover         = (*Mover)(nil)
	_ address.StatusChecker = (*Mover)(nil)
)

// New builds the mover from cfg.Address.Options and cfg.Servers.
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", Kind)
	}
	m, err := NewWithOptions(cfg.Servers, cfg.Address.Options, o)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// NewWithOptions builds the mover from an options map (the keys of
// Address.Options described in the package documentation) and the servers
// whose addresses the record may hold. It is meant for using DNS as an
// extra layer on top of another mover. Every option is validated and the
// TSIG secret file is read here; nothing is sent to the DNS server.
func NewWithOptions(servers []config.Server, opts map[string]string, o Options) (*Mover, error) {
	s, err := parseSettings(opts)
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", Kind, err)
	}
	m := &Mover{settings: s, log: o.Logger, dial: o.Dial, servers: slices.Clone(servers)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.dial == nil {
		d := &net.Dialer{}
		m.dial = d.DialContext
	}
	m.log = m.log.With("mover", Kind, "dns_server", m.server, "zone", m.zone, "name", m.name)
	if m.key == nil {
		m.log.Warn("no TSIG key configured: updates are sent unsigned (only a server allowing updates by client address accepts them)")
	} else if fi, err := os.Stat(m.secretFile); err == nil && fi.Mode().Perm()&0o004 != 0 {
		m.log.Warn("the TSIG secret file is readable by every user: chmod 600 (or 640 for a group)", "file", m.secretFile)
	}
	m.log.Debug("mover ready", "tsig_key", m.key, "transport", m.transport, "ttl", m.ttl, "on_release", m.onRelease, "verify", m.verify)
	return m, nil
}

// Kind implements address.Mover.
func (m *Mover) Kind() string { return Kind }

// FQDN is the record's name (canonical, with the trailing dot).
func (m *Mover) FQDN() string { return m.name }

// Acquire implements address.Mover: one TSIG-signed UPDATE without
// prerequisite that deletes the name's A RRset and adds an A record with
// the new primary's address (the server applies both atomically). With
// verify=yes it then checks that the zone's SOA serial increased (unless
// the record already was exactly that) and that the A RRset is exactly
// the new address.
func (m *Mover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	ip, err := m.targetAddr(ctx, c.New)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", Kind, err)
	}
	log := m.log.With("op", "acquire", "server", c.New.Name, "ip", ip)
	var before uint32
	var prev record
	if m.verify {
		if before, err = m.serial(ctx); err != nil {
			return fmt.Errorf("%s acquire: %w", Kind, err)
		}
		if prev, err = m.lookup(ctx); err != nil {
			return fmt.Errorf("%s acquire: %w", Kind, err)
		}
	}
	u := new(dns.Msg)
	u.SetUpdate(m.zone)
	u.RemoveRRset([]dns.RR{m.newA(ip, 0)})
	u.Insert([]dns.RR{m.newA(ip, m.ttl)})
	if err := m.update(ctx, u); err != nil {
		return fmt.Errorf("%s acquire: point %s at %s (%s): %w", Kind, m.name, ip, c.New.Name, err)
	}
	if m.verify {
		after, err := m.serial(ctx)
		if err != nil {
			return fmt.Errorf("%s acquire: verify: %w", Kind, err)
		}
		now, err := m.lookup(ctx)
		if err != nil {
			return fmt.Errorf("%s acquire: verify: %w", Kind, err)
		}
		if !now.is(ip) {
			return fmt.Errorf("%s acquire: %w: after the update %s A is %s, not %s", Kind, ErrVerify, m.name, now, ip)
		}
		unchanged := prev.is(ip) && prev.ttl == m.ttl
		if !serialAfter(after, before) && !unchanged {
			return fmt.Errorf("%s acquire: %w: the SOA serial of %s did not increase (%d before, %d after)", Kind, ErrVerify, m.zone, before, after)
		}
		log = log.With("serial", after, "previous", prev.String())
	}
	log.Info("DNS record points at the new primary", "ttl", m.ttl, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// Release implements address.Mover. With on_release=keep (the default) it
// does nothing: Acquire replaces the record in one atomic update. With
// on_release=delete it deletes the A RRset only while it is exactly the
// old primary's address (prerequisite "RRset exists, value dependent"),
// so a concurrent change is never clobbered; a record that no longer
// points at the old primary is fine, one that still does among other
// addresses is an error wrapping ErrConflict.
//
// Either way the old primary may keep receiving clients whose resolvers
// cached the record, for up to its TTL: DNS is never the fencing.
func (m *Mover) Release(ctx context.Context, c address.Change) error {
	log := m.log.With("op", "release", "server", c.Old.Name)
	if m.onRelease == OnReleaseKeep {
		log.Info("on_release=keep: the record is left as it is until the new primary acquires it")
		return nil
	}
	ip, err := m.targetAddr(ctx, c.Old)
	if err != nil {
		return fmt.Errorf("%s release: %w", Kind, err)
	}
	log = log.With("ip", ip)
	u := new(dns.Msg)
	u.SetUpdate(m.zone)
	u.Used([]dns.RR{m.newA(ip, 0)})
	u.RemoveRRset([]dns.RR{m.newA(ip, 0)})
	err = m.update(ctx, u)
	if err != nil && !errors.Is(err, ErrPrerequisite) {
		return fmt.Errorf("%s release: delete %s A %s: %w", Kind, m.name, ip, err)
	}
	if err != nil {
		cur, lerr := m.lookup(ctx)
		if lerr != nil {
			return fmt.Errorf("%s release: the record is not exactly %s (%w); reading it: %w", Kind, ip, err, lerr)
		}
		if slices.Contains(cur.addrs, ip) {
			return fmt.Errorf("%s release: %w: %s A is %s: it still includes the old primary %s among other addresses; not deleting it", Kind, ErrConflict, m.name, cur, ip)
		}
		log.Info("the record no longer points at the old primary: nothing to delete", "record", cur.String())
		return nil
	}
	if m.verify {
		cur, err := m.lookup(ctx)
		if err != nil {
			return fmt.Errorf("%s release: verify: %w", Kind, err)
		}
		if slices.Contains(cur.addrs, ip) {
			return fmt.Errorf("%s release: %w: after the delete %s A is still %s", Kind, ErrVerify, m.name, cur)
		}
	}
	log.Info("DNS record deleted: resolvers may cache the missing name for the zone's negative TTL (SOA minimum)")
	return nil
}

// Holder implements address.Mover: the server whose address the A record
// holds, "" when the name has no A record. Addresses that belong to no
// configured server, or to several servers, are an error wrapping
// ErrConflict.
func (m *Mover) Holder(ctx context.Context) (string, error) {
	rec, err := m.lookup(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", Kind, err)
	}
	if len(rec.addrs) == 0 {
		return "", nil
	}
	byAddr, unresolved := m.serverAddrs(ctx)
	var names, unknown []string
	for _, a := range rec.addrs {
		n, ok := byAddr[a]
		if !ok {
			unknown = append(unknown, a.String())
			continue
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(unknown) > 0 {
		note := ""
		if len(unresolved) > 0 {
			note = fmt.Sprintf(" (the address of %s could not be resolved)", strings.Join(unresolved, ", "))
		}
		return "", fmt.Errorf("%s holder: %w: %s A holds %s, which belong to no configured server%s", Kind, ErrConflict, m.name, strings.Join(unknown, ", "), note)
	}
	if len(names) > 1 {
		return "", fmt.Errorf("%s holder: %w: %s A (%s) points at several servers: %s", Kind, ErrConflict, m.name, rec, strings.Join(names, ", "))
	}
	return names[0], nil
}

// Status implements address.StatusChecker: the A record is exactly the
// primary's address, and the TSIG key may update it. The latter is checked
// with an update that changes nothing: prerequisite "RRset exists (value
// dependent)" on the primary's address, and adding that same record with
// its current TTL (RFC 2136 ignores a duplicate), so the server checks the
// signature and the update-policy for this name and type.
func (m *Mover) Status(ctx context.Context, primary address.Target) error {
	ip, err := m.targetAddr(ctx, primary)
	if err != nil {
		return fmt.Errorf("%s status: %w", Kind, err)
	}
	rec, err := m.lookup(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", Kind, err)
	}
	if !rec.is(ip) {
		return fmt.Errorf("%s status: %w: %s A is %s, not the primary %s (%s)", Kind, ErrConflict, m.name, rec, primary.Name, ip)
	}
	u := new(dns.Msg)
	u.SetUpdate(m.zone)
	u.Used([]dns.RR{m.newA(ip, 0)})
	u.Insert([]dns.RR{m.newA(ip, rec.ttl)})
	if err := m.update(ctx, u); err != nil {
		return fmt.Errorf("%s status: no-op update of %s: %w", Kind, m.name, err)
	}
	m.log.Debug("status ok", "primary", primary.Name, "ip", ip, "tsig_key", m.key)
	return nil
}

// targetAddr is the IPv4 address a server's A record gets: Target.IP,
// else the configured server's ip or hostname, else Target.Hostname,
// resolved when not a literal address.
func (m *Mover) targetAddr(ctx context.Context, t address.Target) (netip.Addr, error) {
	if a, err := netip.ParseAddr(t.IP); err == nil {
		return ipv4(t.Name, a)
	}
	host := t.Hostname
	if i := slices.IndexFunc(m.servers, func(s config.Server) bool { return s.Name == t.Name }); i >= 0 && m.servers[i].Host() != "" {
		host = m.servers[i].Host()
	}
	if host == "" {
		return netip.Addr{}, fmt.Errorf("server %q has no IP address or hostname", t.Name)
	}
	addrs, err := resolve(ctx, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("server %s: %w", t.Name, err)
	}
	return ipv4(t.Name, addrs[0])
}

func ipv4(name string, a netip.Addr) (netip.Addr, error) {
	a = a.Unmap()
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("server %s: address %s is not IPv4: this mover manages an A record", name, a)
	}
	return a, nil
}

// resolve returns the IPv4 addresses of host (itself when a literal).
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no IPv4 address", host)
	}
	return addrs, nil
}

// serverAddrs maps the configured servers' addresses to their names, and
// lists the servers whose hostname did not resolve.
func (m *Mover) serverAddrs(ctx context.Context) (map[netip.Addr]string, []string) {
	byAddr := map[netip.Addr]string{}
	var unresolved []string
	for _, s := range m.servers {
		if s.Host() == "" {
			continue
		}
		addrs, err := resolve(ctx, s.Host())
		if err != nil {
			unresolved = append(unresolved, s.Name)
			m.log.Warn("cannot resolve a server's address", "server", s.Name, "err", err)
			continue
		}
		for _, a := range addrs {
			if _, dup := byAddr[a.Unmap()]; !dup {
				byAddr[a.Unmap()] = s.Name
			}
		}
	}
	return byAddr, unresolved
}
