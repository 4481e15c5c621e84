package aliyun

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/cloudmha/cloudmha/internal/address"
	cloud "github.com/cloudmha/cloudmha/internal/cloud/aliyun"
	"github.com/cloudmha/cloudmha/internal/config"
)

// SecondaryIPMover moves a secondary private IP between the servers'
// ENIs. Alibaba Cloud has no atomic reassignment: Release unassigns the
// address from the old primary's ENI (UnassignPrivateIpAddresses, which
// needs no help from the old host: this cuts a dead or isolated old
// primary off), Acquire assigns it to the new primary's
// (AssignPrivateIpAddresses) and waits until DescribeNetworkInterfaces
// lists it there; both calls are asynchronous. The guest configures the
// address itself: with guest=ssh, Acquire adds it to the interface and
// sends gratuitous ARP, Release removes it from a reachable old primary
// (best effort: the vSwitch no longer delivers it there anyway).
//
// # Options (besides the shared ones)
//
//	vip              the secondary private IPv4 address (default: the
//	                 address section's vip); it must be in the servers'
//	                 vSwitch and used by nothing else
//	eni_id.<server>  the ENI that carries it on a server (default: the
//	                 primary ENI of the server's instance, found once)
//	interface        guest interface (default: the address section's, else eth0)
//	prefix           prefix length on the guest (default: the address
//	                 section's, else 32)
//	arping           arping | none (default arping): gratuitous ARP after add
//	arp_count        gratuitous ARP packets (default 3)
type SecondaryIPMover struct {
	*base
	vip      string
	iface    string
	prefix   int
	arping   string
	arpCount int
}

// NewSecondaryIP builds the aliyun-secondary-ip mover from
// cfg.Address.Options.
func NewSecondaryIP(cfg *config.Config, o Options) (*SecondaryIPMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindSecondaryIP)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindSecondaryIP, cfg, o, op, spec{guest: true, perServer: []string{"instance_id", "eni_id"}})
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindSecondaryIP, err)
	}
	iface := cfg.Address.Interface
	if iface == "" {
		iface = "eth0"
	}
	m := &SecondaryIPMover{base: b, iface: op.get("interface", iface), arping: op.get("arping", "arping"), arpCount: 3, prefix: 32}
	vip := op.get("vip", cfg.Address.VIP)
	a, perr := netip.ParseAddr(vip)
	if perr != nil || !a.Is4() {
		return nil, fmt.Errorf("%s mover: option vip=%q: want the secondary private IPv4 address", KindSecondaryIP, vip)
	}
	m.vip = a.String()
	m.noteClientIP(m.vip)
	if strings.ContainsAny(m.iface, " \t\n'\"$;&|<>`\\/") || m.iface == "" {
		return nil, fmt.Errorf("%s mover: bad option interface=%q", KindSecondaryIP, m.iface)
	}
	if strings.ContainsAny(m.arping, " \t\n'\"$;&|<>`\\") {
		return nil, fmt.Errorf("%s mover: bad option arping=%q", KindSecondaryIP, m.arping)
	}
	if cfg.Address.Prefix != 0 {
		m.prefix = cfg.Address.Prefix
	}
	if v := op.get("prefix", ""); v != "" {
		if m.prefix, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("%s mover: option prefix=%q: want 1..32", KindSecondaryIP, v)
		}
	}
	if m.prefix < 1 || m.prefix > 32 {
		return nil, fmt.Errorf("%s mover: prefix %d: want 1..32", KindSecondaryIP, m.prefix)
	}
	if v := op.get("arp_count", ""); v != "" {
		if m.arpCount, err = strconv.Atoi(v); err != nil || m.arpCount < 1 || m.arpCount > 100 {
			return nil, fmt.Errorf("%s mover: option arp_count=%q: want 1..100", KindSecondaryIP, v)
		}
	}
	if err := op.unknown(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindSecondaryIP, err)
	}
	m.log = m.log.With("vip", m.vip)
	return m, nil
}

// Kind implements address.Mover.
func (m *SecondaryIPMover) Kind() string { return KindSecondaryIP }

// locate returns the ENIs that list the VIP as a secondary address (an
// assignment in progress is not listed yet).
func (m *SecondaryIPMover) locate(ctx context.Context) ([]string, error) {
	var out *ecs.DescribeNetworkInterfacesResponse
	err := m.call(ctx, "DescribeNetworkInterfaces", func() error {
		var err error
		out, err = m.api.ECS.DescribeNetworkInterfacesWithContext(ctx, &ecs.DescribeNetworkInterfacesRequest{
			RegionId: dara.String(m.api.Region), PrivateIpAddress: []*string{dara.String(m.vip)}, PageSize: dara.Int32(100),
		}, m.api.Runtime())
		return err
	})
	if err != nil {
		return nil, err
	}
	var enis []string
	if out.Body == nil || out.Body.NetworkInterfaceSets == nil {
		return nil, nil
	}
	for _, n := range out.Body.NetworkInterfaceSets.NetworkInterfaceSet {
		id := dara.StringValue(n.NetworkInterfaceId)
		if dara.StringValue(n.PrivateIpAddress) == m.vip {
			return nil, fmt.Errorf("%s: %w: %s is the primary address of ENI %s, not a secondary one", m.kind, ErrConflict, m.vip, id)
		}
		if n.PrivateIpSets == nil {
			continue
		}
		for _, ip := range n.PrivateIpSets.PrivateIpSet {
			if dara.StringValue(ip.PrivateIpAddress) == m.vip && !dara.BoolValue(ip.Primary) && !slices.Contains(enis, id) {
				enis = append(enis, id)
			}
		}
	}
	slices.Sort(enis)
	return enis, nil
}

// describeHolders names the ENIs and their servers, for messages.
func (m *SecondaryIPMover) describeHolders(ctx context.Context, enis []string) string {
	if len(enis) == 0 {
		return "assigned to no ENI"
	}
	var parts []string
	for _, id := range enis {
		name, _ := m.serverOfENI(ctx, id)
		if name == "" {
			name = "no configured server"
		}
		parts = append(parts, id+" ("+name+")")
	}
	return "assigned to " + strings.Join(parts, ", ")
}

// Status implements address.StatusChecker: every server's ENI resolves
// and the VIP is assigned to the primary's only.
func (m *SecondaryIPMover) Status(ctx context.Context, primary address.Target) error {
	for _, s := range m.servers {
		if _, err := m.eniOf(ctx, s.cfg.Name); err != nil {
			return fmt.Errorf("%s status: %w", m.kind, err)
		}
	}
	want, err := m.eniOf(ctx, primary.Name)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	enis, err := m.locate(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	if !slices.Equal(enis, []string{want}) {
		return fmt.Errorf("%s status: %w: %s is %s, not only to the primary %s's ENI %s", m.kind, ErrConflict, m.vip, m.describeHolders(ctx, enis), primary.Name, want)
	}
	return nil
}

// Holder implements address.Mover: the server whose ENI lists the VIP,
// "" when none does.
func (m *SecondaryIPMover) Holder(ctx context.Context) (string, error) {
	enis, err := m.locate(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if len(enis) == 0 {
		return "", nil
	}
	name, err := m.serverOfENI(ctx, enis[0])
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if len(enis) > 1 || name == "" {
		return "", fmt.Errorf("%s holder: %w: %s is %s", m.kind, ErrConflict, m.vip, m.describeHolders(ctx, enis))
	}
	return name, nil
}

func (m *SecondaryIPMover) assign(ctx context.Context, eni string) error {
	token := clientToken()
	return m.call(ctx, "AssignPrivateIpAddresses", func() error {
		_, err := m.api.ECS.AssignPrivateIpAddressesWithContext(ctx, &ecs.AssignPrivateIpAddressesRequest{
			RegionId: dara.String(m.api.Region), NetworkInterfaceId: dara.String(eni),
			PrivateIpAddress: []*string{dara.String(m.vip)}, ClientToken: dara.String(token),
		}, m.api.Runtime())
		return err
	})
}

// unassign removes the VIP from an ENI. InvalidIp.IpUnassigned (already
// gone, or being unassigned: e.g. a retry after a lost answer) is success.
func (m *SecondaryIPMover) unassign(ctx context.Context, eni string) error {
	err := m.call(ctx, "UnassignPrivateIpAddresses", func() error {
		_, err := m.api.ECS.UnassignPrivateIpAddressesWithContext(ctx, &ecs.UnassignPrivateIpAddressesRequest{
			RegionId: dara.String(m.api.Region), NetworkInterfaceId: dara.String(eni), PrivateIpAddress: []*string{dara.String(m.vip)},
		}, m.api.Runtime())
		return err
	})
	if cloud.Code(err) == "InvalidIp.IpUnassigned" {
		return nil
	}
	return err
}

// Release implements address.Mover: the VIP is unassigned from the old
// primary's ENI and Release waits until that ENI no longer lists it.
// Nothing is done when it is on no ENI or on the new primary's only (a
// re-run); on an ENI of no configured server it is ErrConflict. With
// guest=ssh the address is then removed from a reachable old primary's
// interface (a failure there is logged: the vSwitch no longer delivers it).
func (m *SecondaryIPMover) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "release", "server", c.Old.Name)
	oldENI, err := m.eniOf(ctx, c.Old.Name)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	enis, err := m.locate(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	for _, id := range enis {
		if id == oldENI {
			continue
		}
		name, err := m.serverOfENI(ctx, id)
		if err != nil {
			return fmt.Errorf("%s release: %w", m.kind, err)
		}
		if name == "" {
			return fmt.Errorf("%s release: %w: %s is %s", m.kind, ErrConflict, m.vip, m.describeHolders(ctx, enis))
		}
	}
	if slices.Contains(enis, oldENI) {
		if err := m.unassign(ctx, oldENI); err != nil {
			return fmt.Errorf("%s release from %s (%s): %w", m.kind, c.Old.Name, oldENI, err)
		}
		err = m.wait(ctx, m.vip+" unassigned from "+oldENI, func(ctx context.Context) (bool, string, error) {
			enis, err := m.locate(ctx)
			return err == nil && !slices.Contains(enis, oldENI), m.describeHolders(ctx, enis), err
		})
		if err != nil {
			return fmt.Errorf("%s release from %s (%s): %w; %s", m.kind, c.Old.Name, oldENI, err, m.where(ctx))
		}
		log.Info("VIP unassigned from the old primary's ENI", "eni", oldENI, "elapsed", time.Since(start).Round(time.Millisecond))
	} else {
		log.Info("VIP not on the old primary's ENI: nothing to unassign", "state", m.describeHolders(ctx, enis))
	}
	if m.guest == "ssh" && c.Old.SSHReachable && c.Old.Name != c.New.Name {
		if err := m.guestSide(ctx, c.Old.Name, false); err != nil {
			log.Warn("could not remove the VIP from the old primary's interface (the vSwitch no longer delivers it there)", "err", err)
		}
	}
	return nil
}

// Acquire implements address.Mover: the VIP is assigned to the new
// primary's ENI (unassigned first from another configured server's when
// Release did not run), Acquire waits until that ENI lists it, then with
// guest=ssh adds it on the interface and sends gratuitous ARP. When that
// fails in a planned switchover (Change.Online) the VIP is moved back to
// the old primary; in a failover the error says where it was left.
func (m *SecondaryIPMover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	err := m.moveTo(ctx, c.New.Name)
	if err == nil && m.guest == "ssh" {
		if gerr := m.guestSide(ctx, c.New.Name, true); gerr != nil {
			err = fmt.Errorf("guest side: %w", gerr)
		}
	}
	if err != nil {
		err = fmt.Errorf("%s acquire on %s: %w", m.kind, c.New.Name, err)
		if !rollbackAllowed(c) {
			return fmt.Errorf("%w (no rollback in a failover: the old primary is presumed dead; %s)", err, m.where(ctx))
		}
		m.log.Warn("acquire failed in a switchover: moving the VIP back to the old primary", "server", c.Old.Name, "err", err)
		if rerr := m.moveTo(ctx, c.Old.Name); rerr != nil {
			return errors.Join(err, fmt.Errorf("%s rollback to %s failed: %w; %s", m.kind, c.Old.Name, rerr, m.where(ctx)))
		}
		if m.guest == "ssh" && c.Old.SSHReachable {
			if gerr := m.guestSide(ctx, c.Old.Name, true); gerr != nil {
				m.log.Warn("rollback: the VIP is assigned to the old primary's ENI again, but could not be added on its interface", "err", gerr)
			}
		}
		return fmt.Errorf("%w (rolled back: %s is assigned to %s's ENI again)", err, m.vip, c.Old.Name)
	}
	m.log.Info("VIP acquired", "server", c.New.Name, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// moveTo makes the VIP listed on a server's ENI only: it unassigns it
// from other configured servers' ENIs, assigns it when no ENI lists it
// (retrying while the address is still held: an unassignment in
// progress), and waits up to wait_timeout.
func (m *SecondaryIPMover) moveTo(ctx context.Context, name string) error {
	target, err := m.eniOf(ctx, name)
	if err != nil {
		return err
	}
	unassigned := map[string]bool{}
	accepted := false
	return m.wait(ctx, fmt.Sprintf("%s on %s (%s) only", m.vip, name, target), func(ctx context.Context) (bool, string, error) {
		enis, err := m.locate(ctx)
		if err != nil {
			return false, "", err
		}
		state := m.describeHolders(ctx, enis)
		others := slices.DeleteFunc(slices.Clone(enis), func(id string) bool { return id == target })
		if len(others) == 0 && len(enis) == 1 {
			return true, state, nil
		}
		for _, id := range others {
			other, err := m.serverOfENI(ctx, id)
			if err != nil {
				return false, state, err
			}
			if other == "" {
				return false, state, fmt.Errorf("%w: %s is %s", ErrConflict, m.vip, state)
			}
			if !unassigned[id] {
				m.log.Warn("VIP still on another server's ENI: unassigning it first", "server", other, "eni", id)
				if err := m.unassign(ctx, id); err != nil {
					return false, state, fmt.Errorf("unassign from %s (%s): %w", other, id, err)
				}
				unassigned[id] = true
			}
		}
		if accepted {
			return false, state + "; assignment to " + target + " accepted, not listed yet", nil
		}
		if len(others) > 0 {
			return false, state, nil
		}
		switch err := m.assign(ctx, target); cloud.Code(err) {
		case "":
			if err != nil {
				return false, state, fmt.Errorf("assign to %s: %w", target, err)
			}
			accepted = true
			return false, state + "; assignment to " + target + " accepted", nil
		case "InvalidPrivateIpAddress.Duplicated":
			// Still held (an unassignment completing, or an assignment
			// in progress): look again.
			return false, state + "; address still held: " + cloud.Describe(err), nil
		default:
			return false, state, fmt.Errorf("assign to %s: %w", target, err)
		}
	})
}

// where says where the VIP is now, for error messages.
func (m *SecondaryIPMover) where(ctx context.Context) string {
	rctx, cancel := reportCtx(ctx)
	defer cancel()
	enis, err := m.locate(rctx)
	if err != nil {
		return fmt.Sprintf("where %s is left is unknown: %v", m.vip, err)
	}
	return fmt.Sprintf("%s is left %s", m.vip, m.describeHolders(rctx, enis))
}

// guestSide adds (with gratuitous ARP) or removes the VIP on a server's
// interface over SSH.
func (m *SecondaryIPMover) guestSide(ctx context.Context, name string, add bool) error {
	s, err := m.server(name)
	if err != nil {
		return err
	}
	var cmd string
	if add {
		cmd = fmt.Sprintf("ip -o addr show dev %[2]s | grep -q ' %[1]s/' || ip addr add %[1]s/%[3]d dev %[2]s", m.vip, m.iface, m.prefix)
		if m.arping != "none" {
			cmd += fmt.Sprintf("; if command -v %[1]s >/dev/null 2>&1; then nohup %[1]s -q -U -c %[2]d -I %[3]s %[4]s >/dev/null 2>&1 </dev/null & fi; true", m.arping, m.arpCount, m.iface, m.vip)
		}
	} else {
		cmd = fmt.Sprintf("pkill -f 'arping.* %[1]s$' 2>/dev/null; if ip -o addr show dev %[2]s | grep -q ' %[1]s/'; then ip addr del %[1]s/%[3]d dev %[2]s; fi; true", m.vip, m.iface, m.prefix)
	}
	if _, err := m.runSSH(ctx, s, cmd); err != nil {
		verb := "remove"
		if add {
			verb = "add"
		}
		return fmt.Errorf("%s %s on %s: %w", verb, m.vip, name, err)
	}
	return nil
}
