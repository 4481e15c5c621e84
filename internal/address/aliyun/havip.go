package aliyun

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v7/client"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

// HaVipMover moves the clients' address with an Alibaba Cloud HaVip. See
// the package documentation.
//
// # Fencing caveat
//
// A HaVip follows gratuitous ARP: an old primary that is cut off but still
// has the address configured may claim it again when its link returns.
// Release removes the address when SSH reaches the old primary; otherwise
// only fencing (shutdown_script, stopping the instance) or unassociating
// the old instance (UnassociateHaVip Force=True, not done automatically
// because the HaVip could then not come back) closes that gap.
//
// # A public entry on top of the HaVip
//
// An EIP associated with the HaVip (AssociateEipAddress InstanceType=HaVip)
// follows the HaVip's master by itself: no API call moves it during a
// failover. Options:
//
//	eip_allocation_id  the EIP (eip-…) that must stay bound to the HaVip.
//	                   Status checks it is (InUse on this HaVip) and fails
//	                   with ErrConflict otherwise; Acquire logs a warning when
//	                   it is not. The EIP is never taken from another resource.
//	eip_bind           yes: Status binds the EIP to the HaVip when it is
//	                   associated with nothing, and waits until it is InUse;
//	                   no (default): Status only checks
type HaVipMover struct {
	*base
	havipID   string
	iface     string
	prefix    int
	arping    string
	arpCount  int
	associate bool
	eipID     string
	eipBind   bool
}

// NewHaVip builds the aliyun-havip mover from cfg.Address.Options.
func NewHaVip(cfg *config.Config, o Options) (*HaVipMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindHaVip)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindHaVip, cfg, o, op, spec{guest: true, perServer: []string{"instance_id"}})
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	m := &HaVipMover{base: b, havipID: op.get("havip_id", ""), iface: op.get("interface", "eth0"), arping: op.get("arping", "arping"), arpCount: 3, prefix: 32}
	if m.havipID == "" || strings.ContainsAny(m.havipID, " \t\n/") {
		return nil, fmt.Errorf("%s mover: option havip_id is required (havip-…)", KindHaVip)
	}
	if strings.ContainsAny(m.iface, " \t\n'\"$;&|<>`\\/") {
		return nil, fmt.Errorf("%s mover: bad option interface=%q", KindHaVip, m.iface)
	}
	if strings.ContainsAny(m.arping, " \t\n'\"$;&|<>`\\") {
		return nil, fmt.Errorf("%s mover: bad option arping=%q", KindHaVip, m.arping)
	}
	if v := op.get("prefix", ""); v != "" {
		if m.prefix, err = strconv.Atoi(v); err != nil || m.prefix < 1 || m.prefix > 32 {
			return nil, fmt.Errorf("%s mover: option prefix=%q: want 1..32", KindHaVip, v)
		}
	}
	if v := op.get("arp_count", ""); v != "" {
		if m.arpCount, err = strconv.Atoi(v); err != nil || m.arpCount < 1 || m.arpCount > 100 {
			return nil, fmt.Errorf("%s mover: option arp_count=%q: want 1..100", KindHaVip, v)
		}
	}
	if m.associate, err = op.yesNo("associate", true); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	m.eipID = op.get("eip_allocation_id", "")
	if m.eipID != "" && (!strings.HasPrefix(m.eipID, "eip-") || strings.ContainsAny(m.eipID, " \t\n/,")) {
		return nil, fmt.Errorf("%s mover: option eip_allocation_id=%q: want an EIP id (eip-…)", KindHaVip, m.eipID)
	}
	if m.eipBind, err = op.yesNo("eip_bind", false); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	if m.eipBind && m.eipID == "" {
		return nil, fmt.Errorf("%s mover: option eip_bind needs eip_allocation_id", KindHaVip)
	}
	if err := op.unknown(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	m.log = m.log.With("havip", m.havipID)
	return m, nil
}

// Kind implements address.Mover.
func (m *HaVipMover) Kind() string { return KindHaVip }

// havip is what DescribeHaVips says about the HaVip.
type havip struct {
	ip        string
	status    string
	master    string
	instances []string
}

func (m *HaVipMover) describe(ctx context.Context) (havip, error) {
	var out *vpc.DescribeHaVipsResponse
	err := m.call(ctx, "DescribeHaVips", func() error {
		var err error
		out, err = m.api.VPC.DescribeHaVipsWithContext(ctx, &vpc.DescribeHaVipsRequest{
			RegionId: dara.String(m.api.Region),
			Filter:   []*vpc.DescribeHaVipsRequestFilter{{Key: dara.String("HaVipId"), Value: []*string{dara.String(m.havipID)}}},
		}, m.api.Runtime())
		return err
	})
	if err != nil {
		return havip{}, err
	}
	if out.Body == nil || out.Body.HaVips == nil || len(out.Body.HaVips.HaVip) != 1 {
		return havip{}, fmt.Errorf("%s: HaVip %s not found in region %s", m.kind, m.havipID, m.api.Region)
	}
	h := out.Body.HaVips.HaVip[0]
	r := havip{ip: dara.StringValue(h.IpAddress), status: dara.StringValue(h.Status), master: dara.StringValue(h.MasterInstanceId)}
	m.noteClientIP(r.ip)
	if h.AssociatedInstances != nil {
		for _, id := range h.AssociatedInstances.AssociatedInstance {
			r.instances = append(r.instances, dara.StringValue(id))
		}
	}
	return r, nil
}

// ensureAssociated associates the instances of the given servers that are
// not associated yet, one at a time (the HaVip accepts one change at a
// time), waiting for InUse after each.
func (m *HaVipMover) ensureAssociated(ctx context.Context, names ...string) (havip, error) {
	h, err := m.describe(ctx)
	if err != nil {
		return h, err
	}
	for _, name := range names {
		id, err := m.instanceID(ctx, name)
		if err != nil {
			return h, err
		}
		if slices.Contains(h.instances, id) {
			continue
		}
		if !m.associate {
			return h, fmt.Errorf("%s: %w: instance %s (%s) is not associated with HaVip %s and associate=no", m.kind, ErrConflict, id, name, m.havipID)
		}
		if err := m.waitSettled(ctx); err != nil {
			return h, err
		}
		m.log.Info("associating instance with the HaVip", "server", name, "instance", id)
		// One token per (HaVip, instance): a retried call after a lost
		// answer is not a second association.
		token := "cloudmha-" + m.havipID + "-" + id
		if len(token) > 64 {
			token = token[:64]
		}
		err = m.call(ctx, "AssociateHaVip", func() error {
			_, err := m.api.VPC.AssociateHaVipWithContext(ctx, &vpc.AssociateHaVipRequest{
				RegionId: dara.String(m.api.Region), HaVipId: dara.String(m.havipID),
				InstanceId: dara.String(id), InstanceType: dara.String("EcsInstance"), ClientToken: dara.String(token),
			}, m.api.Runtime())
			return err
		})
		if err != nil {
			return h, err
		}
		err = m.wait(ctx, "HaVip "+m.havipID+" associated with "+id, func(ctx context.Context) (bool, string, error) {
			var err error
			h, err = m.describe(ctx)
			return err == nil && h.status == "InUse" && slices.Contains(h.instances, id), h.status, err
		})
		if err != nil {
			return h, err
		}
	}
	return h, nil
}

// waitSettled waits until the HaVip is neither Associating nor
// Unassociating.
func (m *HaVipMover) waitSettled(ctx context.Context) error {
	return m.wait(ctx, "HaVip "+m.havipID+" settled", func(ctx context.Context) (bool, string, error) {
		h, err := m.describe(ctx)
		return err == nil && h.status != "Associating" && h.status != "Unassociating", h.status, err
	})
}

// checkEIP makes sure the EIP of option eip_allocation_id is InUse on the
// HaVip, binding it first when eip_bind=yes and it is associated with
// nothing.
func (m *HaVipMover) checkEIP(ctx context.Context) error {
	bound := false
	return m.wait(ctx, "EIP "+m.eipID+" InUse on HaVip "+m.havipID, func(ctx context.Context) (bool, string, error) {
		e, err := m.describeEIP(ctx, m.eipID, "")
		if err != nil {
			return false, "", err
		}
		switch {
		case e.status == "InUse" && e.typ == eipTypeHaVip && e.instance == m.havipID:
			return true, e.String(), nil
		case e.status == "Associating" && e.instance == m.havipID, e.status == "Unassociating":
			return false, e.String(), nil
		case e.status == "Available" && !m.eipBind:
			return false, e.String(), fmt.Errorf("%w: %s; bind it to HaVip %s (option eip_bind=yes does it)", ErrConflict, e, m.havipID)
		case e.status == "Available" && !bound:
			bound = true
			err := m.associateEIP(ctx, e.id, m.havipID, eipTypeHaVip, "")
			return false, "binding " + e.String(), err
		case e.status == "Available":
			return false, e.String(), nil
		}
		return false, e.String(), fmt.Errorf("%w: %s, not on HaVip %s (it is not taken from there)", ErrConflict, e, m.havipID)
	})
}

// Status implements address.StatusChecker: every server's instance is
// associated with the HaVip (missing associations are made), the EIP of
// eip_allocation_id is bound to the HaVip (bound when eip_bind=yes), and
// the primary's instance is the HaVip's master.
func (m *HaVipMover) Status(ctx context.Context, primary address.Target) error {
	names := make([]string, 0, len(m.servers))
	for _, s := range m.servers {
		names = append(names, s.cfg.Name)
	}
	h, err := m.ensureAssociated(ctx, names...)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	if m.eipID != "" {
		if err := m.checkEIP(ctx); err != nil {
			return fmt.Errorf("%s status: %w", m.kind, err)
		}
	}
	want, err := m.instanceID(ctx, primary.Name)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	if h.master != want {
		who := h.master
		if who == "" {
			who = "no instance (no host has announced the address)"
		}
		return fmt.Errorf("%s status: %w: HaVip %s (%s) is mastered by %s, not by the primary %s (%s)", m.kind, ErrConflict, m.havipID, h.ip, who, primary.Name, want)
	}
	return nil
}

// Release implements address.Mover. The HaVip's associations are left as
// they are (both instances stay associated, so the address can come
// back): nothing but DescribeHaVips is called. With guest=ssh the
// address is removed from an old primary marked SSHReachable (failing to
// do so is an error); one marked unreachable is logged (see the fencing
// caveat) and not an error: the new primary's gratuitous ARP moves the
// HaVip.
func (m *HaVipMover) Release(ctx context.Context, c address.Change) error {
	s, err := m.server(c.Old.Name)
	if err != nil {
		return err
	}
	log := m.log.With("op", "release", "server", s.cfg.Name)
	if m.guest == "none" {
		log.Info("guest=none: the address is removed by the host itself; no API call needed")
		return nil
	}
	h, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if !c.Old.SSHReachable {
		log.Warn("old primary not reachable over SSH: the address stays configured there until it is fenced; the new primary's gratuitous ARP takes the HaVip", "ip", h.ip)
		return nil
	}
	cmd := fmt.Sprintf("pkill -f 'arping.* %[1]s$' 2>/dev/null; if ip -o addr show dev %[2]s | grep -q ' %[1]s/'; then ip addr del %[1]s/%[3]d dev %[2]s; fi; true", h.ip, m.iface, m.prefix)
	if _, err := m.runSSH(ctx, s, cmd); err != nil {
		// The failover believes the host reachable: leaving the address
		// there silently would keep clients on it until the new primary's
		// ARP. The caller may retry with SSHReachable=false once it has
		// fenced the host.
		return fmt.Errorf("%s release: could not remove %s from %s (fence it, then release it as unreachable): %w", m.kind, h.ip, s.cfg.Name, err)
	}
	log.Info("address removed from the old primary", "ip", h.ip)
	return nil
}

// Acquire implements address.Mover: it makes sure the new primary's
// instance is associated, adds the address and sends gratuitous ARP over
// SSH (guest=ssh), and waits until DescribeHaVips names the new instance
// as master.
func (m *HaVipMover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	s, err := m.server(c.New.Name)
	if err != nil {
		return err
	}
	log := m.log.With("op", "acquire", "server", s.cfg.Name)
	id, err := m.instanceID(ctx, s.cfg.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	h, err := m.ensureAssociated(ctx, s.cfg.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	if m.guest == "ssh" {
		ip, perr := netip.ParseAddr(h.ip)
		if perr != nil {
			return fmt.Errorf("%s acquire: HaVip address %q: %w", m.kind, h.ip, perr)
		}
		cmd := fmt.Sprintf("ip -o addr show dev %[2]s | grep -q ' %[1]s/' || ip addr add %[1]s/%[3]d dev %[2]s", ip, m.iface, m.prefix)
		if m.arping != "none" {
			cmd += fmt.Sprintf("; if command -v %[1]s >/dev/null 2>&1; then nohup %[1]s -q -U -c %[2]d -I %[3]s %[4]s >/dev/null 2>&1 </dev/null & fi; true", m.arping, m.arpCount, m.iface, ip)
		}
		if _, err := m.runSSH(ctx, s, cmd); err != nil {
			return fmt.Errorf("%s acquire: add %s on %s: %w", m.kind, ip, s.cfg.Name, err)
		}
	}
	err = m.wait(ctx, "HaVip "+m.havipID+" master "+id, func(ctx context.Context) (bool, string, error) {
		var err error
		h, err = m.describe(ctx)
		return err == nil && h.master == id, "master=" + h.master, err
	})
	if err != nil {
		return fmt.Errorf("%s acquire on %s: %w", m.kind, s.cfg.Name, err)
	}
	log.Info("HaVip acquired", "ip", h.ip, "instance", id, "elapsed", time.Since(start).Round(time.Millisecond))
	if m.eipID != "" {
		// The public entry follows the HaVip by itself; a missing binding
		// does not undo the private move, but must be seen.
		if e, err := m.describeEIP(ctx, m.eipID, ""); err != nil {
			log.Warn("could not check the HaVip's EIP", "eip", m.eipID, "err", err)
		} else if e.status != "InUse" || e.typ != eipTypeHaVip || e.instance != m.havipID {
			log.Warn("the EIP is not bound to the HaVip: the public address does not follow the primary", "eip", m.eipID, "state", e.String())
		}
	}
	return nil
}

// Holder implements address.Mover: the server whose instance is the
// HaVip's master, "" when none is.
func (m *HaVipMover) Holder(ctx context.Context) (string, error) {
	h, err := m.describe(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if h.master == "" {
		return "", nil
	}
	name, err := m.serverOf(ctx, h.master)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if name == "" {
		return "", fmt.Errorf("%s holder: %w: HaVip %s is mastered by %s, which is none of the configured servers", m.kind, ErrConflict, m.havipID, h.master)
	}
	return name, nil
}
