package tencent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"

	"github.com/cloudmha/cloudmha/internal/address"
	cloud "github.com/cloudmha/cloudmha/internal/cloud/tencent"
	"github.com/cloudmha/cloudmha/internal/config"
)

// HaVipMover moves the clients' address with a Tencent Cloud HaVip. See
// the package documentation.
//
// # Fencing caveat
//
// A HaVip follows gratuitous ARP, and no API call unbinds it: an old
// primary that is cut off but still has the address configured may claim
// it again when its link returns. Release removes the address when SSH
// reaches the old primary and, when the HaVip checks its drift scope
// (CheckAssociate), removes the old primary's instance from that scope
// (disassociate_old), which stops such a claim; otherwise only fencing
// (shutdown_script, stopping the instance) closes that gap.
type HaVipMover struct {
	*base
	vip             string // the vip option ("" when only havip_id is set)
	associate       bool
	disassociateOld bool

	idMu    sync.Mutex
	havipID string // the havip_id option, or the id found by vip
}

// NewHaVip builds the tencent-havip mover from cfg.Address.Options.
func NewHaVip(cfg *config.Config, o Options) (*HaVipMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindHaVip)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindHaVip, cfg, o, op)
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	m := &HaVipMover{base: b, havipID: op.get("havip_id", ""), vip: op.get("vip", "")}
	if m.havipID == "" && m.vip == "" {
		return nil, fmt.Errorf("%s mover: option havip_id (havip-…) or vip (the HaVip's address) is required", KindHaVip)
	}
	if m.havipID != "" && (!strings.HasPrefix(m.havipID, "havip-") || shellSafe("havip_id", m.havipID) != nil) {
		return nil, fmt.Errorf("%s mover: option havip_id=%q is not a HaVip id (havip-…)", KindHaVip, m.havipID)
	}
	if m.vip != "" {
		a, err := netip.ParseAddr(m.vip)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s mover: option vip=%q is not an IPv4 address", KindHaVip, m.vip)
		}
		m.vip = a.String()
	}
	if m.associate, err = op.yesNo("associate", true); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	if m.disassociateOld, err = op.yesNo("disassociate_old", true); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	if err := op.unknown(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindHaVip, err)
	}
	if m.havipID != "" {
		m.log = m.log.With("havip", m.havipID)
	} else {
		m.log = m.log.With("vip", m.vip)
	}
	return m, nil
}

// Kind implements address.Mover.
func (m *HaVipMover) Kind() string { return KindHaVip }

// havip is what DescribeHaVips says about the HaVip.
type havip struct {
	id       string
	vip      string
	subnet   string
	eni      string // holder's ENI
	instance string // holder's instance
	state    string
	check    bool
	assoc    []association
}

type association struct{ id, typ string }

// holder names the holder for wait states.
func (h havip) holder() string {
	if h.eni == "" && h.instance == "" {
		return "none"
	}
	return h.instance + "/" + h.eni
}

func (h havip) heldBy(n nic) bool {
	return h.eni != "" && h.eni == n.id || h.eni == "" && h.instance != "" && h.instance == n.instance
}

// inScope tells whether n (its instance or the ENI itself) is in the
// HaVip's drift scope.
func (h havip) inScope(n nic) bool {
	for _, a := range h.assoc {
		if a.typ == "CVM" && n.instance != "" && a.id == n.instance || a.typ == "ENI" && a.id == n.id {
			return true
		}
	}
	return false
}

func (m *HaVipMover) id() string {
	m.idMu.Lock()
	defer m.idMu.Unlock()
	return m.havipID
}

func (m *HaVipMover) describe(ctx context.Context) (havip, error) {
	id := m.id()
	var set []*vpc.HaVip
	err := m.call(ctx, "DescribeHaVips", func() error {
		req := vpc.NewDescribeHaVipsRequest()
		if id != "" {
			req.HaVipIds = common.StringPtrs([]string{id})
		} else {
			req.Filters = []*vpc.Filter{{Name: common.StringPtr("vip"), Values: common.StringPtrs([]string{m.vip})}}
		}
		resp, err := m.api.VPC.DescribeHaVipsWithContext(ctx, req)
		if err != nil {
			return err
		}
		set = nil
		if resp.Response != nil {
			set = resp.Response.HaVipSet
		}
		return nil
	})
	if err != nil {
		return havip{}, err
	}
	what := "HaVip " + id
	if id == "" {
		what = "a HaVip with the address " + m.vip
	}
	switch {
	case len(set) == 0 || set[0] == nil:
		return havip{}, fmt.Errorf("%s: %w: %s not found in region %s", m.kind, ErrConflict, what, m.api.Region)
	case len(set) > 1:
		return havip{}, fmt.Errorf("%s: %w: %d HaVips have the address %s in region %s; set havip_id", m.kind, ErrConflict, len(set), m.vip, m.api.Region)
	}
	v := set[0]
	h := havip{id: str(v.HaVipId), vip: str(v.Vip), subnet: str(v.SubnetId), eni: str(v.NetworkInterfaceId),
		instance: str(v.InstanceId), state: str(v.State), check: v.CheckAssociate != nil && *v.CheckAssociate}
	for _, a := range v.HaVipAssociationSet {
		if a != nil {
			h.assoc = append(h.assoc, association{id: str(a.InstanceId), typ: str(a.InstanceType)})
		}
	}
	if m.vip != "" && h.vip != m.vip {
		return havip{}, fmt.Errorf("%s: %w: HaVip %s has the address %s, not the configured vip %s", m.kind, ErrConflict, h.id, h.vip, m.vip)
	}
	if _, err := netip.ParseAddr(h.vip); err != nil {
		return havip{}, fmt.Errorf("%s: HaVip %s: the API gave no usable address (%q)", m.kind, h.id, h.vip)
	}
	if id == "" {
		m.idMu.Lock()
		m.havipID = h.id
		m.idMu.Unlock()
		m.log.Info("HaVip found by address", "havip", h.id)
	}
	return h, nil
}

// checkSubnet makes sure a server's ENI can claim the HaVip.
func (m *HaVipMover) checkSubnet(h havip, name string, n nic) error {
	if n.subnet != h.subnet {
		return fmt.Errorf("%s: %w: server %s's ENI %s is in subnet %s, HaVip %s in subnet %s: it cannot claim the address (set eni.%s to its ENI in %s)",
			m.kind, ErrConflict, name, n.id, n.subnet, h.id, h.subnet, name, h.subnet)
	}
	if n.instance == "" {
		return fmt.Errorf("%s: %w: server %s's ENI %s is not attached to an instance", m.kind, ErrConflict, name, n.id)
	}
	return nil
}

// ensureScope puts the given servers' instances into the HaVip's drift
// scope when the HaVip checks it (CheckAssociate) and they are not in it.
func (m *HaVipMover) ensureScope(ctx context.Context, h havip, names ...string) (havip, error) {
	if !h.check {
		return h, nil
	}
	for _, name := range names {
		n, err := m.serverNIC(ctx, name)
		if err != nil {
			return h, err
		}
		if h.inScope(n) {
			continue
		}
		if !m.associate {
			return h, fmt.Errorf("%s: %w: instance %s (%s) is not in the drift scope of HaVip %s, which checks it, and associate=no", m.kind, ErrConflict, n.instance, name, h.id)
		}
		m.log.Info("adding the instance to the HaVip's drift scope", "server", name, "instance", n.instance)
		err = m.call(ctx, "AssociateHaVipInstance", func() error {
			req := vpc.NewAssociateHaVipInstanceRequest()
			req.HaVipAssociationSet = []*vpc.HaVipAssociation{{HaVipId: common.StringPtr(h.id), InstanceId: common.StringPtr(n.instance), InstanceType: common.StringPtr("CVM")}}
			_, err := m.api.VPC.AssociateHaVipInstanceWithContext(ctx, req)
			if cloud.Code(err) == "InvalidParameterValue.DuplicatedHaVipAssociations" {
				return nil // a lost answer, retried: it is there
			}
			return err
		})
		if err != nil {
			return h, err
		}
		err = m.wait(ctx, "instance "+n.instance+" in the drift scope of "+h.id, func(ctx context.Context) (bool, string, error) {
			var err error
			h, err = m.describe(ctx)
			return err == nil && h.inScope(n), fmt.Sprintf("%d associations", len(h.assoc)), err
		})
		if err != nil {
			return h, err
		}
	}
	return h, nil
}

// disassociate removes n (as instance and as ENI) from the drift scope.
func (m *HaVipMover) disassociate(ctx context.Context, h havip, n nic) error {
	req := vpc.NewDisassociateHaVipInstanceRequest()
	for _, a := range h.assoc {
		if a.typ == "CVM" && a.id == n.instance || a.typ == "ENI" && a.id == n.id {
			req.HaVipAssociationSet = append(req.HaVipAssociationSet, &vpc.HaVipAssociation{HaVipId: common.StringPtr(h.id), InstanceId: common.StringPtr(a.id), InstanceType: common.StringPtr(a.typ)})
		}
	}
	if len(req.HaVipAssociationSet) == 0 {
		return nil
	}
	return m.call(ctx, "DisassociateHaVipInstance", func() error {
		_, err := m.api.VPC.DisassociateHaVipInstanceWithContext(ctx, req)
		return err
	})
}

// who names the HaVip's holder for messages.
func (m *HaVipMover) who(ctx context.Context, h havip) string {
	if h.eni == "" && h.instance == "" {
		return "no one (" + h.state + ")"
	}
	name, err := m.serverOf(ctx, h.eni, h.instance)
	switch {
	case err != nil:
		return fmt.Sprintf("%s/%s", h.instance, h.eni)
	case name == "":
		return fmt.Sprintf("%s/%s, which is none of the configured servers", h.instance, h.eni)
	}
	return fmt.Sprintf("%s (%s/%s)", name, h.instance, h.eni)
}

// Status implements address.StatusChecker: the credentials work, the
// HaVip exists, every server's ENI is in its subnet (and, when the HaVip
// checks its drift scope, in that scope: missing associations are made
// when associate=yes), and the primary holds it.
func (m *HaVipMover) Status(ctx context.Context, primary address.Target) error {
	h, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	nics, err := m.allNICs(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	for _, s := range m.servers {
		if err := m.checkSubnet(h, s.cfg.Name, nics[s.cfg.Name]); err != nil {
			return fmt.Errorf("%s status: %w", m.kind, err)
		}
	}
	// Only the primary is put in the drift scope here: a server released
	// by a failover (disassociate_old) must stay out of it until Acquire
	// makes it primary again, or a dead primary that comes back with the
	// address still configured could claim the HaVip. Acquire adds the new
	// primary before it claims.
	if h, err = m.ensureScope(ctx, h, primary.Name); err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	pn, ok := nics[primary.Name]
	if !ok {
		return fmt.Errorf("%s status: primary %q is not in the configuration", m.kind, primary.Name)
	}
	if !h.heldBy(pn) {
		return fmt.Errorf("%s status: %w: HaVip %s (%s) is held by %s, not by the primary %s (%s)", m.kind, ErrConflict, h.id, h.vip, m.who(ctx, h), primary.Name, pn.instance)
	}
	return nil
}

// Release implements address.Mover. With guest=ssh the address is removed
// from an old primary marked SSHReachable (failing to do so is an error).
// When the old primary holds the HaVip and the HaVip checks its drift
// scope, the old primary is removed from that scope (disassociate_old=yes)
// and Release waits until the HaVip no longer names it; otherwise no API
// call can take the HaVip away before the new primary's gratuitous ARP,
// and an unreachable old primary is logged (see the fencing caveat).
func (m *HaVipMover) Release(ctx context.Context, c address.Change) error {
	if _, err := m.server(c.Old.Name); err != nil {
		return err
	}
	log := m.log.With("op", "release", "server", c.Old.Name)
	h, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	on, err := m.serverNIC(ctx, c.Old.Name)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	removed := false
	if m.guest == "ssh" && c.Old.SSHReachable {
		if err := m.guestDel(ctx, c.Old.Name, h.vip); err != nil {
			// The failover believes the host reachable: leaving the address
			// there silently would keep clients on it. The caller may retry
			// with SSHReachable=false once it has fenced the host.
			return fmt.Errorf("%s release: could not remove the address (fence %s, then release it as unreachable): %w", m.kind, c.Old.Name, err)
		}
		removed = true
	}
	if !h.heldBy(on) {
		log.Info("the old primary does not hold the HaVip", "holder", m.who(ctx, h))
		return nil
	}
	if h.check && m.disassociateOld && h.inScope(on) {
		log.Info("removing the old primary from the HaVip's drift scope", "instance", on.instance)
		if err := m.disassociate(ctx, h, on); err != nil {
			return fmt.Errorf("%s release: %w", m.kind, err)
		}
		err := m.wait(ctx, "HaVip "+h.id+" no longer held by "+c.Old.Name, func(ctx context.Context) (bool, string, error) {
			var err error
			h, err = m.describe(ctx)
			return err == nil && !h.heldBy(on), "holder=" + h.holder(), err
		})
		switch {
		case errors.Is(err, ErrTimeout):
			// Outside the drift scope it cannot claim the address again; the
			// platform's record lags.
			log.Warn("the HaVip still names the old primary, which is outside its drift scope now", "err", err)
		case err != nil:
			return fmt.Errorf("%s release: %w", m.kind, err)
		}
		return nil
	}
	switch {
	case removed:
		log.Info("address removed from the old primary; the HaVip names it until the new primary announces the address", "ip", h.vip)
	case m.guest == "none":
		log.Info("guest=none: the host side removes the address; the HaVip names the old primary until the new one announces it", "ip", h.vip)
	default:
		log.Warn("old primary not reachable over SSH and the HaVip does not check its drift scope: the address stays configured there until it is fenced; the new primary's gratuitous ARP takes the HaVip", "ip", h.vip)
	}
	return nil
}

// Acquire implements address.Mover: it makes sure the new primary can
// claim the HaVip (subnet, drift scope), adds the address and sends
// gratuitous ARP over SSH (guest=ssh), and waits until DescribeHaVips
// names the new primary. When that fails during a planned switchover
// (c.Online) the address goes back to the old primary; in a failover it
// stays where it is, and the error says where.
func (m *HaVipMover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	if _, err := m.server(c.New.Name); err != nil {
		return err
	}
	log := m.log.With("op", "acquire", "server", c.New.Name)
	nn, err := m.serverNIC(ctx, c.New.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	h, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	if err := m.checkSubnet(h, c.New.Name, nn); err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	added, vip := false, h.vip
	err = func() error {
		if h, err = m.ensureScope(ctx, h, c.New.Name); err != nil {
			return err
		}
		if m.guest == "ssh" {
			added = true // possibly partly: removed again on rollback
			if err := m.guestAdd(ctx, c.New.Name, nn, h.vip); err != nil {
				return err
			}
		}
		return m.wait(ctx, "HaVip "+h.id+" held by "+c.New.Name+" ("+nn.instance+")", func(ctx context.Context) (bool, string, error) {
			var err error
			h, err = m.describe(ctx)
			return err == nil && h.heldBy(nn), "holder=" + h.holder(), err
		})
	}()
	if err != nil {
		return m.fail(ctx, c, err, added, vip)
	}
	log.Info("HaVip acquired", "ip", h.vip, "instance", nn.instance, "eni", nn.id, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// fail reports a failed Acquire, after moving the address back to the old
// primary in a planned switchover.
func (m *HaVipMover) fail(ctx context.Context, c address.Change, cause error, added bool, vip string) error {
	err := fmt.Errorf("%s acquire on %s: %w", m.kind, c.New.Name, cause)
	where := func() string {
		s := "the address was left: "
		if h, derr := m.describe(ctx); derr == nil {
			s += "HaVip " + h.id + " (" + h.vip + ") is held by " + m.who(ctx, h)
		} else {
			s += "the HaVip's holder is unknown (" + derr.Error() + ")"
		}
		if added {
			s += "; the address may be configured on " + c.New.Name + "'s guest"
		}
		return s
	}
	if !c.Online || c.Old.Name == "" || c.Old.Name == c.New.Name || ctx.Err() != nil {
		return fmt.Errorf("%w; %s", err, where())
	}
	m.log.Warn("acquire failed in a planned switchover: moving the address back to the old primary", "server", c.Old.Name, "err", cause)
	on, rerr := m.serverNIC(ctx, c.Old.Name)
	if rerr == nil && m.guest == "ssh" && added && vip != "" {
		if derr := m.guestDel(ctx, c.New.Name, vip); derr != nil {
			m.log.Warn("could not remove the address from the new primary", "server", c.New.Name, "err", derr)
		} else {
			added = false
		}
	}
	var h havip
	if rerr == nil {
		h, rerr = m.describe(ctx)
	}
	if rerr == nil {
		h, rerr = m.ensureScope(ctx, h, c.Old.Name)
	}
	if rerr == nil && m.guest == "ssh" {
		if rerr = m.guestAdd(ctx, c.Old.Name, on, h.vip); rerr == nil {
			rerr = m.wait(ctx, "HaVip "+h.id+" held by "+c.Old.Name+" again", func(ctx context.Context) (bool, string, error) {
				var err error
				h, err = m.describe(ctx)
				return err == nil && h.heldBy(on), "holder=" + h.holder(), err
			})
		}
	}
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("%s rollback to %s failed: %w; %s", m.kind, c.Old.Name, rerr, where()))
	}
	if m.guest == "none" {
		return fmt.Errorf("%w (rollback: %s is in the drift scope again; guest=none, so its host must announce the address again; %s)", err, c.Old.Name, where())
	}
	return fmt.Errorf("%w (rolled back: HaVip %s is held by %s (%s) again)", err, h.id, c.Old.Name, on.instance)
}

// Holder implements address.Mover: the server whose ENI (or instance)
// holds the HaVip, "" when no one does.
func (m *HaVipMover) Holder(ctx context.Context) (string, error) {
	h, err := m.describe(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if h.eni == "" && h.instance == "" {
		return "", nil
	}
	name, err := m.serverOf(ctx, h.eni, h.instance)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if name == "" {
		return "", fmt.Errorf("%s holder: %w: HaVip %s is held by %s/%s, which is none of the configured servers", m.kind, ErrConflict, h.id, h.instance, h.eni)
	}
	return name, nil
}
