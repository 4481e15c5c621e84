// Package vip is the classic virtual-IP address mover: the address is a
// secondary address on the primary's network interface, moved with
// `ip addr del` / `ip addr add` over SSH and announced with gratuitous ARP,
// so that clients and routers on the segment update their ARP caches at
// once.
//
// # Fencing caveat
//
// Release removes the address from the old primary over SSH. When the old
// primary cannot be reached over SSH, Release probes the address itself from
// the manager: if nothing answers there (a powered-off or crashed host cannot
// serve the VIP), Release succeeds with a warning; if something still
// answers (MySQL, or a TCP reset from a live kernel holding the address), it
// fails, because moving the address would leave two hosts claiming it.
//
// A host that is only cut off (link down, partition) looks dead from the
// manager but still has the address configured. When its link comes back it
// may answer ARP for the VIP again next to the new primary. Gratuitous ARP
// from the new primary wins the race for caches it reaches, but only real
// fencing closes that gap: configure shutdown_script (power off / STONITH),
// make sure a returning old primary is read_only (cloudmha sets
// super_read_only where it can reach it), or use a cloud mover whose API
// detaches the address from the old instance.
package vip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// Kind is the mover's name in the configuration (address_mover=vip).
const Kind = "vip"

// Defaults of Options.
const (
	DefaultVerifyTimeout = 10 * time.Second
	DefaultProbeTimeout  = 1 * time.Second
	DefaultParallel      = 8
	// DefaultARPCount is how many gratuitous ARP packets are sent.
	DefaultARPCount = 3
)

// Errors a caller may want to tell apart.
var (
	// ErrStillHeld: the old primary cannot be reached over SSH but the
	// address still answers; it cannot be released safely.
	ErrStillHeld = errors.New("the VIP still answers")
	// ErrVerify: the address was added but does not answer MySQL.
	ErrVerify = errors.New("the VIP does not answer MySQL")
	// ErrMultipleHolders: more than one server has the address.
	ErrMultipleHolders = errors.New("the VIP is configured on more than one server")
)

// Options configures the mover.
type Options struct {
	// Dial opens TCP connections, for SSH and for the checks through the
	// address; nil means net.Dialer.
	Dial remote.DialFunc
	// Logger receives what the mover does; nil discards.
	Logger *slog.Logger
	// VerifyTimeout bounds Acquire's wait for MySQL to answer at the VIP.
	VerifyTimeout time.Duration
	// ProbeTimeout bounds Release's probe of the VIP when the old primary
	// is unreachable over SSH.
	ProbeTimeout time.Duration
	// Parallel bounds Holder's concurrent SSH sessions.
	Parallel int
}

// Mover moves a VIP between the servers of one cluster.
//
// Address.Options keys understood (app.cnf: address_option_… / YAML
// address.options): sudo = auto (default: prefix `sudo -n` when ssh_user is
// not root) | yes | no; arping = the arping program (default arping;
// "none" disables gratuitous ARP); arp_count (default 3); verify = mysql
// (default: read the MySQL handshake through the VIP) | tcp | none.
type Mover struct {
	vip      netip.Addr
	iface    string
	prefix   int
	servers  []server
	dial     remote.DialFunc
	log      *slog.Logger
	verifyTO time.Duration
	probeTO  time.Duration
	parallel int
	sudo     string // auto|yes|no
	arping   string
	arpCount int
	verify   string // mysql|tcp|none
}

type server struct {
	cfg config.Server
	ssh remote.Target
}

var (
	_ address.Mover         = (*Mover)(nil)
	_ address.StatusChecker = (*Mover)(nil)
)

// New builds the mover from cfg.Address (VIP, Interface, Prefix, Options)
// and the servers' SSH settings.
func New(cfg *config.Config, o Options) (*Mover, error) {
	if cfg == nil {
		return nil, errors.New("vip mover: no configuration")
	}
	a := cfg.Address
	vip, err := netip.ParseAddr(a.VIP)
	if err != nil {
		return nil, fmt.Errorf("vip mover: vip %q: %w", a.VIP, err)
	}
	if a.Interface == "" || strings.ContainsAny(a.Interface, " \t\n'\"$;&|<>`\\/") {
		return nil, fmt.Errorf("vip mover: bad vip_interface %q", a.Interface)
	}
	prefix := a.Prefix
	if prefix == 0 {
		prefix = vip.BitLen()
	}
	if prefix < 1 || prefix > vip.BitLen() {
		return nil, fmt.Errorf("vip mover: vip_prefix %d out of range for %s", prefix, vip)
	}
	m := &Mover{
		vip: vip, iface: a.Interface, prefix: prefix,
		dial: o.Dial, log: o.Logger,
		verifyTO: o.VerifyTimeout, probeTO: o.ProbeTimeout, parallel: o.Parallel,
		sudo: "auto", arping: "arping", arpCount: DefaultARPCount, verify: "mysql",
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("mover", Kind, "vip", vip.String())
	if m.dial == nil {
		d := &net.Dialer{}
		m.dial = d.DialContext
	}
	if m.verifyTO <= 0 {
		m.verifyTO = DefaultVerifyTimeout
	}
	if m.probeTO <= 0 {
		m.probeTO = DefaultProbeTimeout
	}
	if m.parallel <= 0 {
		m.parallel = DefaultParallel
	}
	for k, v := range a.Options {
		switch k {
		case "sudo":
			if v != "auto" && v != "yes" && v != "no" {
				return nil, fmt.Errorf("vip mover: option sudo=%q: want auto, yes or no", v)
			}
			m.sudo = v
		case "arping":
			if v == "" || strings.ContainsAny(v, " \t\n'\"$;&|<>`\\") {
				return nil, fmt.Errorf("vip mover: option arping=%q: want a program path or none", v)
			}
			m.arping = v
		case "arp_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return nil, fmt.Errorf("vip mover: option arp_count=%q: want 1..100", v)
			}
			m.arpCount = n
		case "verify":
			if v != "mysql" && v != "tcp" && v != "none" {
				return nil, fmt.Errorf("vip mover: option verify=%q: want mysql, tcp or none", v)
			}
			m.verify = v
		default:
			return nil, fmt.Errorf("vip mover: unknown option %q (known: sudo, arping, arp_count, verify)", k)
		}
	}
	for _, s := range cfg.Servers {
		t, err := remote.TargetFor(s, m.dial)
		if err != nil {
			return nil, fmt.Errorf("vip mover: server %s: %w", s.Name, err)
		}
		m.servers = append(m.servers, server{cfg: s, ssh: t})
	}
	return m, nil
}

// Kind implements address.Mover.
func (m *Mover) Kind() string { return Kind }

func (m *Mover) server(name string) (server, error) {
	for _, s := range m.servers {
		if s.cfg.Name == name {
			return s, nil
		}
	}
	return server{}, fmt.Errorf("vip mover: server %q is not in the configuration", name)
}

// sh wraps a command for the remote shell: a PATH that has ip and arping
// (non-login SSH sessions often lack /usr/sbin) and sudo when needed.
func (m *Mover) sh(s server, cmd string) string {
	return remote.AdminShell(cmd, m.sudo == "yes" || m.sudo == "auto" && s.ssh.User != "root")
}

// garpPIDFile is where the background arping of server s records its PID.
func (m *Mover) garpPIDFile(s server) string {
	id := strings.NewReplacer(":", "_", "/", "_").Replace(m.vip.String() + "-" + s.cfg.Host())
	return "/tmp/cloudmha-garp-" + id + ".pid"
}

// stopGARP is a shell snippet that stops a background arping this mover
// started earlier on the server: an old holder must not keep announcing
// the VIP with its MAC after the address moved away.
func (m *Mover) stopGARP(s server) string {
	return fmt.Sprintf(`f=%s; if [ -f "$f" ]; then p=$(cat "$f"); if grep -qa arping "/proc/$p/cmdline" 2>/dev/null; then kill "$p"; fi; rm -f "$f"; fi; true`, m.garpPIDFile(s))
}

// vipAddrs returns the prefixes of the VIP configured on the interface
// (usually zero or one).
func (m *Mover) vipAddrs(ctx context.Context, s server, c *remote.Client) ([]netip.Prefix, error) {
	out, err := c.Run(ctx, m.sh(s, "ip -o addr show dev "+m.iface))
	if err != nil {
		return nil, fmt.Errorf("%s: list addresses of %s: %w", s.cfg.Name, m.iface, err)
	}
	return m.parseAddrs(string(out)), nil
}

// parseAddrs reads `ip -o addr show` output and keeps the VIP's entries.
func (m *Mover) parseAddrs(out string) []netip.Prefix {
	var found []netip.Prefix
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" && f[i] != "inet6" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err == nil && p.Addr() == m.vip {
				found = append(found, p)
			}
			break
		}
	}
	return found
}

// Release implements address.Mover: it deletes the VIP from the old
// primary's interface over SSH (no error when it is not there). When SSH
// does not work, see the package documentation.
func (m *Mover) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	s, err := m.server(c.Old.Name)
	if err != nil {
		return err
	}
	log := m.log.With("op", "release", "server", s.cfg.Name)
	if !c.Old.SSHReachable {
		log.Warn("old primary is not reachable over SSH: probing the VIP instead")
		return m.releaseUnreachable(ctx, log, c.Old, errors.New("marked unreachable over SSH by the failover"))
	}
	cl, err := remote.Dial(ctx, s.ssh)
	if err != nil {
		log.Warn("cannot reach the old primary over SSH: probing the VIP instead", "err", err)
		return m.releaseUnreachable(ctx, log, c.Old, err)
	}
	defer cl.Close()
	have, err := m.vipAddrs(ctx, s, cl)
	if err != nil {
		return fmt.Errorf("vip release: %w", err)
	}
	if len(have) == 0 {
		log.Info("VIP not present on the old primary: nothing to release", "elapsed", time.Since(start).Round(time.Millisecond))
		return nil
	}
	if _, err := cl.Run(ctx, m.sh(s, m.stopGARP(s))); err != nil {
		log.Warn("could not stop an earlier gratuitous ARP sender", "err", err)
	}
	for _, p := range have {
		cmd := fmt.Sprintf("ip addr del %s dev %s", p, m.iface)
		if _, err := cl.Run(ctx, m.sh(s, cmd)); err != nil {
			if strings.Contains(err.Error(), "Cannot assign requested address") {
				continue // gone meanwhile
			}
			return fmt.Errorf("vip release on %s: %w", s.cfg.Name, err)
		}
	}
	log.Info("VIP released", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// releaseUnreachable decides from the VIP itself whether an old primary
// that SSH cannot reach still holds the address.
func (m *Mover) releaseUnreachable(ctx context.Context, log *slog.Logger, old address.Target, sshErr error) error {
	port := old.Port
	if port == 0 {
		port = config.DefaultPort
	}
	addr := net.JoinHostPort(m.vip.String(), strconv.Itoa(port))
	pctx, cancel := context.WithTimeout(ctx, m.probeTO)
	defer cancel()
	banner, err := m.handshake(pctx, addr)
	switch {
	case err == nil:
		return fmt.Errorf("vip release: %s is unreachable over SSH (%v) but %w with MySQL %s: cannot release it; fence the old primary first (shutdown_script, power off)", old.Name, sshErr, ErrStillHeld, banner)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("vip release: %s is unreachable over SSH (%v) but %w (connection refused: a live host holds the address): cannot release it; fence the old primary first", old.Name, sshErr, ErrStillHeld)
	case ctx.Err() != nil:
		return fmt.Errorf("vip release: %w", ctx.Err())
	}
	log.Warn("VIP does not answer and the old primary is unreachable: assuming it is down and no longer holds the address; if it is only cut off it keeps the VIP configured — fence it before it comes back",
		"probe", addr, "probe_err", err)
	return nil
}

// Acquire implements address.Mover: it adds the VIP to the new primary's
// interface, sends gratuitous ARP (IPv4) and waits until MySQL answers
// through the VIP.
func (m *Mover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	s, err := m.server(c.New.Name)
	if err != nil {
		return err
	}
	log := m.log.With("op", "acquire", "server", s.cfg.Name)
	cl, err := remote.Dial(ctx, s.ssh)
	if err != nil {
		return fmt.Errorf("vip acquire on %s: %w", s.cfg.Name, err)
	}
	defer cl.Close()
	have, err := m.vipAddrs(ctx, s, cl)
	if err != nil {
		return fmt.Errorf("vip acquire: %w", err)
	}
	want := netip.PrefixFrom(m.vip, m.prefix)
	present := false
	for _, p := range have {
		if p == want {
			present = true
		}
	}
	if present {
		log.Info("VIP already present on the new primary")
	} else {
		cmd := fmt.Sprintf("ip addr add %s dev %s", want, m.iface)
		if _, err := cl.Run(ctx, m.sh(s, cmd)); err != nil && !strings.Contains(err.Error(), "File exists") {
			return fmt.Errorf("vip acquire on %s: %w", s.cfg.Name, err)
		}
	}
	added := time.Since(start)
	if m.vip.Is4() && m.arping != "none" {
		// In the background: arping keeps running for its interval after
		// each packet; the first one leaves at once.
		cmd := fmt.Sprintf("%[5]s; if command -v %[1]s >/dev/null 2>&1; then nohup %[1]s -q -U -c %[2]d -I %[3]s %[4]s >/dev/null 2>&1 </dev/null & echo $! > %[6]s; echo sent; else echo missing; fi",
			m.arping, m.arpCount, m.iface, m.vip, m.stopGARP(s), m.garpPIDFile(s))
		out, err := cl.Run(ctx, m.sh(s, cmd))
		switch {
		case err != nil:
			log.Warn("gratuitous ARP failed: clients may reach the old MAC until their ARP caches expire", "err", err)
		case strings.TrimSpace(string(out)) == "missing":
			log.Warn("arping is not installed on the new primary: no gratuitous ARP; clients may reach the old MAC until their ARP caches expire", "arping", m.arping)
		}
	}
	port := c.New.Port
	if port == 0 {
		port = s.cfg.Port
	}
	if err := m.verifyAddr(ctx, log, port); err != nil {
		return fmt.Errorf("vip acquire on %s: %w", s.cfg.Name, err)
	}
	log.Info("VIP acquired", "elapsed", time.Since(start).Round(time.Millisecond), "added_after", added.Round(time.Millisecond))
	return nil
}

// verifyAddr waits until the VIP answers (a MySQL handshake, or a TCP
// connect with verify=tcp).
func (m *Mover) verifyAddr(ctx context.Context, log *slog.Logger, port int) error {
	if port == 0 {
		port = config.DefaultPort
	}
	addr := net.JoinHostPort(m.vip.String(), strconv.Itoa(port))
	if err := address.WaitAnswer(ctx, address.DialFunc(m.dial), addr, m.verify, m.verifyTO, log); err != nil {
		return fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return nil
}

// handshake reads the MySQL handshake at addr.
func (m *Mover) handshake(ctx context.Context, addr string) (string, error) {
	return address.Handshake(ctx, address.DialFunc(m.dial), addr)
}

// Holder implements address.Mover: it asks every server (in parallel, over
// SSH, or locally when the manager runs on that server) whether the VIP is
// on its interface. More than one holder is an error wrapping
// ErrMultipleHolders; unreachable servers are an error only when no holder
// is found.
func (m *Mover) Holder(ctx context.Context) (string, error) {
	type answer struct {
		has bool
		err error
	}
	answers := make([]answer, len(m.servers))
	sem := make(chan struct{}, m.parallel)
	var wg sync.WaitGroup
	for i, s := range m.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				answers[i].err = ctx.Err()
				return
			}
			has, err := m.holds(ctx, s)
			answers[i] = answer{has, err}
		}()
	}
	wg.Wait()
	var holders []string
	var errs []error
	for i, a := range answers {
		switch {
		case a.err != nil:
			errs = append(errs, a.err)
		case a.has:
			holders = append(holders, m.servers[i].cfg.Name)
		}
	}
	switch {
	case len(holders) > 1:
		return "", fmt.Errorf("vip holder: %w: %s", ErrMultipleHolders, strings.Join(holders, ", "))
	case len(holders) == 1:
		if len(errs) > 0 {
			m.log.Warn("VIP holder found, but some servers could not be asked", "holder", holders[0], "err", errors.Join(errs...))
		}
		return holders[0], nil
	case len(errs) > 0:
		return "", fmt.Errorf("vip holder: not found on the servers that answered: %w", errors.Join(errs...))
	}
	return "", nil
}

// holds tells whether server s has the VIP.
func (m *Mover) holds(ctx context.Context, s server) (bool, error) {
	if local, has, err := m.localHolds(s); local {
		return has, err
	}
	cl, err := remote.Dial(ctx, s.ssh)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	defer cl.Close()
	have, err := m.vipAddrs(ctx, s, cl)
	return len(have) > 0, err
}

// localHolds answers for a server that is this very host (an address of
// the server is configured here): local reports whether it could answer,
// has whether the VIP is on the local interface.
func (m *Mover) localHolds(s server) (local, has bool, err error) {
	ip, err := netip.ParseAddr(s.cfg.Host())
	if err != nil || ip.IsLoopback() {
		return false, false, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, false, nil
	}
	mine := false
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ip {
			mine = true
		}
	}
	if !mine {
		return false, false, nil
	}
	ifc, err := net.InterfaceByName(m.iface)
	if err != nil {
		return true, false, fmt.Errorf("%s (local): interface %s: %w", s.cfg.Name, m.iface, err)
	}
	ifAddrs, err := ifc.Addrs()
	if err != nil {
		return true, false, fmt.Errorf("%s (local): interface %s: %w", s.cfg.Name, m.iface, err)
	}
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == m.vip {
			return true, true, nil
		}
	}
	return true, false, nil
}

// Status implements address.StatusChecker: the VIP must be on the current
// primary and nowhere else.
func (m *Mover) Status(ctx context.Context, primary address.Target) error {
	h, err := m.Holder(ctx)
	if err != nil {
		return fmt.Errorf("vip status: %w", err)
	}
	if h != primary.Name {
		who := h
		if who == "" {
			who = "no server"
		}
		return fmt.Errorf("vip status: %s is held by %s, not by the primary %s", m.vip, who, primary.Name)
	}
	return nil
}
