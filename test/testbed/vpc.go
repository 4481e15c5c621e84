package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

// VPC makes the bed's bridge behave like a cloud VPC for a set of managed
// addresses: the virtual switch delivers an address only to the host the
// control plane assigned it to, accepts it as a source only from that host,
// and lets only that host answer ARP for it. A host that merely runs
// `ip addr add` and sends gratuitous ARP for an address it was not
// assigned gets nothing, exactly as in a real VPC — so an address mover
// that skips the cloud API fails its tests. A cloud emulator (or a
// controller reading moto's state) calls Assign when its state changes.
type VPC struct {
	b     *Bed
	table string

	mu     sync.Mutex
	owners map[netip.Addr]string // address -> host name ("" = nobody)
	ports  map[netip.Addr]string // address -> switch port, when it is not its owner's eth0 (an ENI)
}

// VPC turns on the VPC data plane for addrs (each initially assigned to
// nobody). Close removes it.
func (b *Bed) VPC(ctx context.Context, addrs ...string) (*VPC, error) {
	v := &VPC{b: b, table: "cmha_vpc", owners: map[netip.Addr]string{}, ports: map[netip.Addr]string{}}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("testbed: vpc address %q: %w", a, err)
		}
		if !b.subnet.Contains(ip) {
			return nil, fmt.Errorf("testbed: vpc address %s is outside the bed's subnet", ip)
		}
		v.owners[ip] = ""
	}
	if err := v.apply(ctx); err != nil {
		_ = v.Close()
		return nil, err
	}
	return v, nil
}

// Assign gives addr to host (a host name like "db2"; "" takes it from
// everyone). It takes effect before Assign returns.
func (v *VPC) Assign(ctx context.Context, addr, host string) error {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("testbed: vpc assign %q: %w", addr, err)
	}
	if host != "" && v.b.Host(host) == nil {
		return fmt.Errorf("testbed: vpc assign %s to unknown host %q", addr, host)
	}
	v.mu.Lock()
	if _, ok := v.owners[ip]; !ok {
		v.mu.Unlock()
		return fmt.Errorf("testbed: %s is not a VPC-managed address", addr)
	}
	v.owners[ip] = host
	v.mu.Unlock()
	if err := v.apply(ctx); err != nil {
		return err
	}
	v.flushNeighbours(ctx, ip)
	return nil
}

// flushNeighbours: a VPC resolves addresses itself, so nobody keeps a
// stale MAC for an address that moved. Forget it everywhere, so the next
// packet asks again and only the new owner may answer.
func (v *VPC) flushNeighbours(ctx context.Context, ip netip.Addr) {
	for _, ns := range v.b.Namespaces() {
		if ns == v.b.SwitchNS {
			continue
		}
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = commandIn(c, ns, "ip", "neigh", "flush", "to", ip.String()).Run()
		cancel()
	}
}

// BindENI makes addr an ENI's address: the VPC delivers it only through
// the ENI's switch port, wherever the ENI is attached, and — as a VPC
// answers ARP itself — every namespace resolves addr to the ENI's MAC
// (a permanent neighbour entry), so clients never hold a stale or failed
// entry while the ENI moves, and a host that claims addr on another
// interface gets nothing.
func (v *VPC) BindENI(ctx context.Context, addr string, e *ENI) error {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("testbed: vpc bind %q: %w", addr, err)
	}
	v.mu.Lock()
	if _, ok := v.owners[ip]; !ok {
		v.mu.Unlock()
		return fmt.Errorf("testbed: %s is not a VPC-managed address", addr)
	}
	v.ports[ip] = e.Port
	v.mu.Unlock()
	if err := v.apply(ctx); err != nil {
		return err
	}
	for _, ns := range v.b.Namespaces() {
		if ns == v.b.SwitchNS {
			continue
		}
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := commandIn(c, ns, "ip", "neigh", "replace", ip.String(), "lladdr", e.MAC, "dev", "eth0", "nud", "permanent").CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("testbed: vpc neighbour %s -> %s in %s: %w: %s", ip, e.MAC, ns, err, out)
		}
	}
	return nil
}

// Owner returns the host addr is assigned to ("" when none).
func (v *VPC) Owner(addr string) string {
	ip, _ := netip.ParseAddr(addr)
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.owners[ip]
}

// apply replaces the nftables table atomically with rules for the current
// assignments (one `nft -f` transaction, so no packet sees half a state).
func (v *VPC) apply(ctx context.Context) error {
	v.mu.Lock()
	addrs := make([]netip.Addr, 0, len(v.owners))
	for a := range v.owners {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	var r strings.Builder
	fmt.Fprintf(&r, "table bridge %s\ndelete table bridge %s\ntable bridge %s {\n chain forward {\n  type filter hook forward priority 0; policy accept;\n", v.table, v.table, v.table)
	for _, a := range addrs {
		owner := v.owners[a]
		port := "-"
		if h := v.b.Host(owner); h != nil {
			port = h.SwitchIface
		}
		if p, ok := v.ports[a]; ok {
			port = p
		}
		// Only the owner's port may send from, receive for, or answer ARP
		// for the address; with no owner nobody may.
		fmt.Fprintf(&r, "  ip daddr %s oifname != %q drop\n", a, port)
		fmt.Fprintf(&r, "  ip saddr %s iifname != %q drop\n", a, port)
		fmt.Fprintf(&r, "  arp saddr ip %s iifname != %q drop\n", a, port)
	}
	r.WriteString(" }\n}\n")
	v.mu.Unlock()

	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := commandIn(c, v.b.SwitchNS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(r.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: vpc rules: %w: %s", err, out)
	}
	return nil
}

// Close removes the VPC data plane: the bridge is a plain switch again.
func (v *VPC) Close() error {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := commandIn(c, v.b.SwitchNS, "nft", "delete", "table", "bridge", v.table)
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("testbed: vpc close: %w: %s", err, out)
	}
	return nil
}

// commandIn prepares name args… to run inside network namespace ns.
func commandIn(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}
