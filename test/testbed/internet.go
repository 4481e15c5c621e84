package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// The bed's "internet", inside the bed's /24 like everything else (octets of
// the subnet; the hosts use .11–.30, the VIP .100, the client and manager
// .200 and .201):
//
//	.208–.223  the public pool: elastic IPs (EIPs) live here
//	.230       the NAT gateway's private address, on the VPC's bridge
//	.240/29    the internet link: .240 an internet client, .241 the gateway
const (
	eipFirstOctet  = 208
	eipCount       = 16
	natOctet       = 230
	inetOctet      = 240 // the internet client, first address of the /29
	inetGateOctet  = 241 // the gateway's side of the internet link
	inetPrefixBits = 29
	eipPrefixBits  = 28
	natTable       = "cmha_eip"
	natVPCIface    = "eth0"  // the gateway's leg on the bridge
	natInetIface   = "inet0" // the gateway's leg on the internet link
	natSwitchPort  = "nat"   // its switch-side veth on br0
)

// Internet is a public network in front of the bed's VPC, built on demand:
// a namespace <prefix>-inet where internet clients run (address .240), and a
// NAT gateway namespace <prefix>-nat with one leg on the VPC's bridge (.230)
// and one on the internet link. Public clients reach the VPC only through
// elastic IPs, as on a cloud: the gateway maps each EIP one to one
// (stateless NAT, like a cloud's EIP in NAT mode) to the private address the
// cloud's state binds it to — an instance's primary IP, an ENI's, or a
// HaVip's, which the VPC data plane then delivers to whoever holds it — and
// drops traffic to an EIP that is bound to nothing, and every other packet
// from the internet. The guest never sees the EIP, so a host that adds it
// with `ip addr add` and announces it gets nothing: only the cloud
// emulator's state (AliyunPlane.EIP, AWSPlane.EIP) calls Bind.
//
// Replies leave the VPC with the EIP as their source; the gateway answers
// ARP on the bridge for the internet's addresses (proxy ARP), so the hosts
// need no route: the bed still has no default route anywhere. Packets of a
// private address without an EIP never reach the internet.
type Internet struct {
	b         *Bed
	NS        string // <prefix>-inet: run internet clients here (Bed.Dialer, WorkloadOptions.NS)
	ClientIP  string // the internet client's address (.240)
	GatewayNS string // <prefix>-nat
	GatewayIP string // the gateway's private address (.230)

	public netip.Prefix // the EIP pool, .208/28
	inet   netip.Prefix // the internet link, .240/29

	apply  sync.Mutex // serialises render+apply+commit
	mu     sync.Mutex
	eips   map[netip.Addr]netip.Addr // public -> private (zero = bound to nothing)
	closed bool
}

// Internet builds the internet namespace and the NAT gateway, with no EIP
// yet. Bed.Down (or Close) removes them. One per bed.
func (b *Bed) Internet(ctx context.Context) (*Internet, error) {
	n := &Internet{
		b:         b,
		NS:        b.Opts.Prefix + "-inet",
		ClientIP:  hostIP(b.subnet, inetOctet),
		GatewayNS: b.Opts.Prefix + "-nat",
		GatewayIP: hostIP(b.subnet, natOctet),
		public:    netip.PrefixFrom(netip.MustParseAddr(hostIP(b.subnet, eipFirstOctet)), eipPrefixBits),
		inet:      netip.PrefixFrom(netip.MustParseAddr(hostIP(b.subnet, inetOctet)), inetPrefixBits),
		eips:      map[netip.Addr]netip.Addr{},
	}
	if err := n.build(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("testbed: internet: %w", err), n.Close())
	}
	return n, nil
}

func (n *Internet) build(ctx context.Context) error {
	sw, gw, in := n.b.SwitchNS, n.GatewayNS, n.NS
	bits := fmt.Sprint(n.b.subnet.Bits())
	gate := hostIP(n.b.subnet, inetGateOctet)
	for _, ns := range []string{gw, in} {
		if err := run(ctx, "ip", "netns", "add", ns); err != nil {
			return err
		}
		n.b.addNamespace(ns)
		if err := noIPv6(ctx, ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "-n", gw, "link", "set", "lo", "up"},
		{"ip", "-n", in, "link", "set", "lo", "up"},
		// The gateway's VPC leg: a port of br0, as every host has.
		{"ip", "-n", sw, "link", "add", natSwitchPort, "type", "veth", "peer", "name", natVPCIface, "netns", gw},
		{"ip", "-n", sw, "link", "set", natSwitchPort, "master", "br0", "up"},
		{"ip", "-n", gw, "addr", "add", n.GatewayIP + "/" + bits, "dev", natVPCIface},
		{"ip", "-n", gw, "link", "set", natVPCIface, "up"},
		// The internet link: gateway <-> internet namespace, off the bridge.
		{"ip", "-n", gw, "link", "add", natInetIface, "type", "veth", "peer", "name", "eth0", "netns", in},
		{"ip", "-n", gw, "addr", "add", fmt.Sprintf("%s/%d", gate, inetPrefixBits), "dev", natInetIface},
		{"ip", "-n", gw, "link", "set", natInetIface, "up"},
		{"ip", "-n", in, "addr", "add", fmt.Sprintf("%s/%d", n.ClientIP, inetPrefixBits), "dev", "eth0"},
		{"ip", "-n", in, "link", "set", "eth0", "up"},
		// The internet knows only the public pool, through the gateway.
		{"ip", "-n", in, "route", "add", n.public.String(), "via", gate, "dev", "eth0"},
		// Forward; answer ARP on the bridge for the internet's addresses at
		// once (proxy_delay 0); no reverse-path filter on rewritten packets.
		{"ip", "netns", "exec", gw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
			"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
			"net.ipv4.conf." + natVPCIface + ".rp_filter=0", "net.ipv4.conf." + natInetIface + ".rp_filter=0",
			"net.ipv4.conf." + natVPCIface + ".proxy_arp=1", "net.ipv4.neigh." + natVPCIface + ".proxy_delay=0"},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	return n.applyRules(ctx, nil)
}

// PublicIP returns the i-th address of the public pool (0–15).
func (n *Internet) PublicIP(i int) string {
	if i < 0 || i >= eipCount {
		panic(fmt.Sprintf("testbed: public address %d out of range 0–%d", i, eipCount-1))
	}
	return hostIP(n.b.subnet, eipFirstOctet+i)
}

// AddEIP makes public (an address of the pool) an EIP, bound to nothing.
func (n *Internet) AddEIP(ctx context.Context, public string) error {
	ip, err := netip.ParseAddr(public)
	if err != nil || !n.public.Contains(ip) {
		return fmt.Errorf("testbed: EIP %q is not an address of the public pool %s", public, n.public)
	}
	return n.change(ctx, func(m map[netip.Addr]netip.Addr) error {
		if _, ok := m[ip]; ok {
			return fmt.Errorf("testbed: EIP %s exists already", ip)
		}
		m[ip] = netip.Addr{}
		return nil
	})
}

// Bind maps the EIP public to private (an address of the bed's subnet; ""
// binds it to nothing). It takes effect before Bind returns, for the next
// packet: a connection to the old private address breaks, as with a
// cloud's one-to-one NAT.
func (n *Internet) Bind(ctx context.Context, public, private string) error {
	ip, err := netip.ParseAddr(public)
	if err != nil {
		return fmt.Errorf("testbed: bind EIP %q: %w", public, err)
	}
	var to netip.Addr
	if private != "" {
		if to, err = netip.ParseAddr(private); err != nil || !n.b.subnet.Contains(to) || n.public.Contains(to) || n.inet.Contains(to) {
			return fmt.Errorf("testbed: bind EIP %s to %q: not a private address of the bed", public, private)
		}
	}
	return n.change(ctx, func(m map[netip.Addr]netip.Addr) error {
		if _, ok := m[ip]; !ok {
			return fmt.Errorf("testbed: %s is not an EIP (AddEIP first)", ip)
		}
		if to.IsValid() {
			for pub, priv := range m {
				if priv == to && pub != ip {
					return fmt.Errorf("testbed: bind EIP %s to %s: the EIP %s is mapped there already", ip, to, pub)
				}
			}
		}
		m[ip] = to
		return nil
	})
}

// change applies edit to a copy of the bindings, installs the rules for
// the result and only then makes it the state.
func (n *Internet) change(ctx context.Context, edit func(map[netip.Addr]netip.Addr) error) error {
	n.apply.Lock()
	defer n.apply.Unlock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errors.New("testbed: the internet is closed")
	}
	m := make(map[netip.Addr]netip.Addr, len(n.eips)+1)
	for k, v := range n.eips {
		m[k] = v
	}
	n.mu.Unlock()
	if err := edit(m); err != nil {
		return err
	}
	if err := n.applyRules(ctx, m); err != nil {
		return err
	}
	n.mu.Lock()
	n.eips = m
	n.mu.Unlock()
	return nil
}

// Target returns the private address the EIP public is mapped to ("" when
// it is bound to nothing or no EIP).
func (n *Internet) Target(public string) string {
	ip, _ := netip.ParseAddr(public)
	n.mu.Lock()
	defer n.mu.Unlock()
	if to := n.eips[ip]; to.IsValid() {
		return to.String()
	}
	return ""
}

// eipBinding is one EIP and the private address it maps to (zero: none).
type eipBinding struct{ public, private netip.Addr }

// natRules renders the gateway's nftables table for the bindings, as one
// `nft -f` transaction that replaces the table. Stateless one-to-one NAT
// in the prerouting hook before connection tracking (a rebinding applies
// to the very next packet): from the internet, a bound EIP is rewritten
// to its private address, anything else is dropped; from the VPC, a bound
// private address talking to the internet is rewritten to its EIP, any
// other packet for the internet is dropped. Routing then follows the
// rewritten address.
func natRules(table, vpcIface, inetIface string, internet netip.Prefix, bindings []eipBinding) string {
	bs := slices.Clone(bindings)
	slices.SortFunc(bs, func(a, b eipBinding) int { return a.public.Compare(b.public) })
	var r strings.Builder
	fmt.Fprintf(&r, "table ip %[1]s\ndelete table ip %[1]s\ntable ip %[1]s {\n", table)
	r.WriteString(" chain prerouting {\n  type filter hook prerouting priority raw; policy accept;\n")
	for _, e := range bs {
		if e.private.IsValid() {
			fmt.Fprintf(&r, "  iifname %q ip daddr %s ip daddr set %s notrack accept\n", inetIface, e.public, e.private)
		} else {
			fmt.Fprintf(&r, "  iifname %q ip daddr %s drop\n", inetIface, e.public)
		}
	}
	fmt.Fprintf(&r, "  iifname %q drop\n", inetIface)
	for _, e := range bs {
		if e.private.IsValid() {
			fmt.Fprintf(&r, "  iifname %q ip daddr %s ip saddr %s ip saddr set %s notrack accept\n", vpcIface, internet, e.private, e.public)
		}
	}
	fmt.Fprintf(&r, "  iifname %q ip daddr %s drop\n", vpcIface, internet)
	r.WriteString(" }\n}\n")
	return r.String()
}

func (n *Internet) applyRules(ctx context.Context, m map[netip.Addr]netip.Addr) error {
	bs := make([]eipBinding, 0, len(m))
	for pub, priv := range m {
		bs = append(bs, eipBinding{pub, priv})
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := commandIn(c, n.GatewayNS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(natRules(natTable, natVPCIface, natInetIface, n.inet, bs))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: NAT gateway rules: %w: %s", err, out)
	}
	return nil
}

// Close removes the internet and the NAT gateway (their namespaces).
func (n *Internet) Close() error {
	n.apply.Lock()
	defer n.apply.Unlock()
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	var errs []error
	for _, ns := range []string{n.NS, n.GatewayNS} {
		if _, err := output(context.Background(), "ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		n.b.removeNamespace(ns)
	}
	return errors.Join(errs...)
}

// hostOfIP names what a private address belongs to, for data plane
// records: a host (db2), "the VIP", or the address itself.
func (b *Bed) hostOfIP(ip string) string {
	for _, h := range b.Hosts {
		if h.IP == ip {
			return h.Name
		}
	}
	if ip == b.VIP {
		return "the VIP"
	}
	return ip
}
