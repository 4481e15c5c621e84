package aliyun

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v7/client"

	"github.com/cloudmha/cloudmha/internal/address"
	cloud "github.com/cloudmha/cloudmha/internal/cloud/aliyun"
	"github.com/cloudmha/cloudmha/internal/config"
)

// EIP association types.
const (
	eipTypeEcs   = "EcsInstance"
	eipTypeENI   = "NetworkInterface"
	eipTypeHaVip = "HaVip"
)

// eipState is what DescribeEipAddresses says about an EIP.
type eipState struct {
	id, ip, status, instance, typ, privateIP string
}

func (e eipState) String() string {
	if e.instance == "" {
		return fmt.Sprintf("EIP %s (%s) %s, associated with nothing", e.id, e.ip, e.status)
	}
	return fmt.Sprintf("EIP %s (%s) %s on %s %s (private %s)", e.id, e.ip, e.status, e.typ, e.instance, e.privateIP)
}

// describeEIP reads an EIP by allocation id, or by public address when
// allocID is "".
func (b *base) describeEIP(ctx context.Context, allocID, publicIP string) (eipState, error) {
	req := &vpc.DescribeEipAddressesRequest{RegionId: dara.String(b.api.Region)}
	what := allocID
	if allocID != "" {
		req.AllocationId = dara.String(allocID)
	} else {
		req.EipAddress = dara.String(publicIP)
		what = publicIP
	}
	var out *vpc.DescribeEipAddressesResponse
	err := b.call(ctx, "DescribeEipAddresses", func() error {
		var err error
		out, err = b.api.VPC.DescribeEipAddressesWithContext(ctx, req, b.api.Runtime())
		return err
	})
	if err != nil {
		return eipState{}, err
	}
	if out.Body == nil || out.Body.EipAddresses == nil || len(out.Body.EipAddresses.EipAddress) != 1 {
		return eipState{}, fmt.Errorf("%s: EIP %s not found in region %s", b.kind, what, b.api.Region)
	}
	e := out.Body.EipAddresses.EipAddress[0]
	return eipState{
		id: dara.StringValue(e.AllocationId), ip: dara.StringValue(e.IpAddress), status: dara.StringValue(e.Status),
		instance: dara.StringValue(e.InstanceId), typ: dara.StringValue(e.InstanceType), privateIP: dara.StringValue(e.PrivateIpAddress),
	}, nil
}

// associateEIP associates an EIP (asynchronous: Associating -> InUse).
func (b *base) associateEIP(ctx context.Context, allocID, instance, typ, privateIP string) error {
	req := &vpc.AssociateEipAddressRequest{
		RegionId: dara.String(b.api.Region), AllocationId: dara.String(allocID),
		InstanceId: dara.String(instance), InstanceType: dara.String(typ), ClientToken: dara.String(clientToken()),
	}
	if privateIP != "" {
		req.PrivateIpAddress = dara.String(privateIP)
	}
	b.log.Info("associating the EIP", "eip", allocID, "target", instance, "type", typ, "private_ip", privateIP)
	return b.call(ctx, "AssociateEipAddress", func() error {
		_, err := b.api.VPC.AssociateEipAddressWithContext(ctx, req, b.api.Runtime())
		return err
	})
}

// unassociateEIP unassociates an EIP from what it is associated with
// (asynchronous: Unassociating -> Available).
func (b *base) unassociateEIP(ctx context.Context, e eipState) error {
	req := &vpc.UnassociateEipAddressRequest{
		RegionId: dara.String(b.api.Region), AllocationId: dara.String(e.id),
		InstanceId: dara.String(e.instance), InstanceType: dara.String(e.typ), ClientToken: dara.String(clientToken()),
	}
	b.log.Info("unassociating the EIP", "eip", e.id, "from", e.instance, "type", e.typ)
	return b.call(ctx, "UnassociateEipAddress", func() error {
		_, err := b.api.VPC.UnassociateEipAddressWithContext(ctx, req, b.api.Runtime())
		return err
	})
}

// EIPMover moves a public elastic IP between the servers: Release
// unassociates it from the old primary, Acquire associates it with the new
// one (there is no atomic reassociation on Alibaba Cloud). There is no
// guest side: in the default NAT mode the guest never sees the EIP.
//
// # Options (besides the shared ones)
//
//	allocation_id       the EIP (eip-…); or
//	public_ip           its address, looked up once with DescribeEipAddresses
//	bind_to             instance (default): associate with the server's ECS
//	                    instance (InstanceType EcsInstance), found through
//	                    instance_id.<server> or its private IP; eni: with the
//	                    secondary ENI eni_id.<server> (InstanceType
//	                    NetworkInterface), required for every server
//	private_ip          the private address the EIP maps to (default: the
//	                    target's primary address); e.g. the address moved by
//	                    aliyun-secondary-ip, which must then be acquired first
//
// To give a HaVip a public entry, do not use this mover: bind the EIP to
// the HaVip once (option eip_allocation_id of aliyun-havip), and it follows
// the HaVip's master.
type EIPMover struct {
	*base
	allocID   string
	publicIP  string
	bindTo    string // instance | eni
	privateIP string
}

// NewEIP builds the aliyun-eip mover from cfg.Address.Options.
func NewEIP(cfg *config.Config, o Options) (*EIPMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindEIP)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindEIP, cfg, o, op, spec{perServer: []string{"instance_id", "eni_id"}})
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindEIP, err)
	}
	m := &EIPMover{base: b, allocID: op.get("allocation_id", ""), publicIP: op.get("public_ip", ""),
		bindTo: op.get("bind_to", "instance"), privateIP: op.get("private_ip", "")}
	switch {
	case m.allocID != "" && m.publicIP != "":
		return nil, fmt.Errorf("%s mover: give allocation_id or public_ip, not both", KindEIP)
	case m.allocID != "":
		if !strings.HasPrefix(m.allocID, "eip-") || strings.ContainsAny(m.allocID, " \t\n/,") {
			return nil, fmt.Errorf("%s mover: option allocation_id=%q: want an EIP id (eip-…)", KindEIP, m.allocID)
		}
	case m.publicIP != "":
		if a, err := netip.ParseAddr(m.publicIP); err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s mover: option public_ip=%q: want the EIP's IPv4 address", KindEIP, m.publicIP)
		}
	default:
		return nil, fmt.Errorf("%s mover: option allocation_id (eip-…) or public_ip is required", KindEIP)
	}
	if m.privateIP != "" {
		if a, err := netip.ParseAddr(m.privateIP); err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s mover: option private_ip=%q: want an IPv4 address", KindEIP, m.privateIP)
		}
	}
	switch m.bindTo {
	case "instance":
		if len(b.enis) > 0 {
			return nil, fmt.Errorf("%s mover: eni_id.<server> options need bind_to=eni", KindEIP)
		}
	case "eni":
		for _, s := range b.servers {
			if b.enis[s.cfg.Name] == "" {
				return nil, fmt.Errorf("%s mover: bind_to=eni needs option eni_id.%s (a secondary ENI: an EIP is bound to a primary ENI through its instance)", KindEIP, s.cfg.Name)
			}
		}
	default:
		return nil, fmt.Errorf("%s mover: option bind_to=%q: want instance or eni", KindEIP, m.bindTo)
	}
	if err := op.unknown(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindEIP, err)
	}
	m.log = m.log.With("eip", m.allocID+m.publicIP)
	return m, nil
}

// Kind implements address.Mover.
func (m *EIPMover) Kind() string { return KindEIP }

func (m *EIPMover) describe(ctx context.Context) (eipState, error) {
	m.mu.Lock()
	id := m.allocID
	m.mu.Unlock()
	e, err := m.describeEIP(ctx, id, m.publicIP)
	if err == nil && id == "" {
		m.mu.Lock()
		m.allocID = e.id
		m.mu.Unlock()
	}
	return e, err
}

// target is what the EIP is associated with to serve a server.
func (m *EIPMover) target(ctx context.Context, name string) (id, typ string, err error) {
	if m.bindTo == "eni" {
		id, err = m.eniOf(ctx, name)
		return id, eipTypeENI, err
	}
	id, err = m.instanceID(ctx, name)
	return id, eipTypeEcs, err
}

// holder maps the EIP's association to a server name ("" when it is
// associated with no configured server's target).
func (m *EIPMover) holder(ctx context.Context, e eipState) (string, error) {
	if e.instance == "" {
		return "", nil
	}
	switch {
	case m.bindTo == "eni" && e.typ == eipTypeENI:
		return m.serverOfENI(ctx, e.instance)
	case m.bindTo == "instance" && (e.typ == eipTypeEcs || e.typ == ""):
		return m.serverOf(ctx, e.instance)
	}
	return "", nil
}

// on tells whether the EIP is associated (InUse) with a server's target.
func (m *EIPMover) on(ctx context.Context, e eipState, name string) (bool, error) {
	id, typ, err := m.target(ctx, name)
	if err != nil {
		return false, err
	}
	return e.status == "InUse" && e.instance == id && (e.typ == typ || e.typ == "") &&
		(m.privateIP == "" || e.privateIP == m.privateIP), nil
}

// Status implements address.StatusChecker: every server's target
// resolves, and the EIP is InUse on the primary's.
func (m *EIPMover) Status(ctx context.Context, primary address.Target) error {
	for _, s := range m.servers {
		if _, _, err := m.target(ctx, s.cfg.Name); err != nil {
			return fmt.Errorf("%s status: %w", m.kind, err)
		}
	}
	e, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	ok, err := m.on(ctx, e, primary.Name)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	if !ok {
		return fmt.Errorf("%s status: %w: %s, not InUse on the primary %s", m.kind, ErrConflict, e, primary.Name)
	}
	return nil
}

// Holder implements address.Mover: the server whose target has the EIP
// (InUse or Associating), "" when it is associated with nothing.
func (m *EIPMover) Holder(ctx context.Context) (string, error) {
	e, err := m.describe(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if e.instance == "" || e.status == "Available" {
		return "", nil
	}
	name, err := m.holder(ctx, e)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if name == "" {
		return "", fmt.Errorf("%s holder: %w: %s, which is none of the configured servers", m.kind, ErrConflict, e)
	}
	return name, nil
}

// Release implements address.Mover: the EIP is unassociated from the old
// primary's target and Release waits until it is Available. Nothing is
// done when it is already Available or on the new primary (a re-run); an
// EIP on something else is ErrConflict. The API call does not need the old
// host, so a dead old primary is released as well.
func (m *EIPMover) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "release", "server", c.Old.Name)
	e, err := m.settled(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if e.status == "Available" {
		log.Info("EIP already associated with nothing")
		return nil
	}
	name, err := m.holder(ctx, e)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	switch name {
	case c.Old.Name:
	case c.New.Name:
		log.Info("EIP already on the new primary: nothing to release", "state", e.String())
		return nil
	default:
		return fmt.Errorf("%s release: %w: %s, not on the old primary %s", m.kind, ErrConflict, e, c.Old.Name)
	}
	if err := m.unassociateEIP(ctx, e); err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	err = m.wait(ctx, "EIP "+e.id+" Available", func(ctx context.Context) (bool, string, error) {
		var err error
		e, err = m.describe(ctx)
		return err == nil && e.status == "Available", e.status, err
	})
	if err != nil {
		return fmt.Errorf("%s release from %s: %w; %s", m.kind, c.Old.Name, err, m.where(ctx))
	}
	log.Info("EIP released", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// settled waits until the EIP is neither Associating nor Unassociating.
func (m *EIPMover) settled(ctx context.Context) (eipState, error) {
	var e eipState
	err := m.wait(ctx, "EIP settled", func(ctx context.Context) (bool, string, error) {
		var err error
		e, err = m.describe(ctx)
		return err == nil && e.status != "Associating" && e.status != "Unassociating", e.status, err
	})
	return e, err
}

// Acquire implements address.Mover: the EIP is associated with the new
// primary's target (unassociated first from another configured server's,
// when Release did not run) and Acquire waits until it is InUse there.
// When that fails in a planned switchover (Change.Online) it is associated
// back with the old primary's; in a failover the error says where it was
// left.
func (m *EIPMover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	if err := m.moveTo(ctx, c.New.Name); err != nil {
		err = fmt.Errorf("%s acquire on %s: %w", m.kind, c.New.Name, err)
		if !rollbackAllowed(c) {
			return fmt.Errorf("%w (no rollback in a failover: the old primary is presumed dead; %s)", err, m.where(ctx))
		}
		m.log.Warn("acquire failed in a switchover: associating the EIP with the old primary again", "server", c.Old.Name, "err", err)
		if rerr := m.moveTo(ctx, c.Old.Name); rerr != nil {
			return errors.Join(err, fmt.Errorf("%s rollback to %s failed: %w; %s", m.kind, c.Old.Name, rerr, m.where(ctx)))
		}
		return fmt.Errorf("%w (rolled back: the EIP is associated with %s again)", err, c.Old.Name)
	}
	m.log.Info("EIP acquired", "server", c.New.Name, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// moveTo makes the EIP InUse on a server's target, unassociating it from
// another configured server's first; it waits up to wait_timeout.
func (m *EIPMover) moveTo(ctx context.Context, name string) error {
	id, typ, err := m.target(ctx, name)
	if err != nil {
		return err
	}
	var unassociated, associated int
	return m.wait(ctx, fmt.Sprintf("EIP InUse on %s (%s)", name, id), func(ctx context.Context) (bool, string, error) {
		e, err := m.describe(ctx)
		if err != nil {
			return false, "", err
		}
		if ok, err := m.on(ctx, e, name); err != nil || ok {
			return ok, e.status, err
		}
		switch e.status {
		case "Associating", "Unassociating":
			return false, e.String(), nil
		case "Available":
			// Re-sent (at most 3 times) when an association did not take.
			if associated >= 3 {
				return false, e.String(), fmt.Errorf("%s: EIP %s is still Available after %d associations", m.kind, e.id, associated)
			}
			associated++
			err := m.associateEIP(ctx, e.id, id, typ, m.privateIP)
			if cloud.Code(err) == "IncorrectEipStatus" {
				return false, "changed meanwhile: " + cloud.Code(err), nil
			}
			return false, "associating", err
		}
		// InUse on something else.
		other, err := m.holder(ctx, e)
		if err != nil {
			return false, "", err
		}
		if other == "" {
			return false, e.String(), fmt.Errorf("%w: %s, which is none of the configured servers", ErrConflict, e)
		}
		if unassociated >= 3 {
			return false, e.String(), fmt.Errorf("%s: EIP %s is still on %s after %d unassociations", m.kind, e.id, other, unassociated)
		}
		unassociated++
		m.log.Warn("EIP still on another server: unassociating it first", "server", other, "state", e.String())
		err = m.unassociateEIP(ctx, e)
		if cloud.Code(err) == "IncorrectEipStatus" {
			return false, "changed meanwhile: " + cloud.Code(err), nil
		}
		return false, "unassociating from " + other, err
	})
}

// where says where the EIP is now, for error messages.
func (m *EIPMover) where(ctx context.Context) string {
	rctx, cancel := reportCtx(ctx)
	defer cancel()
	e, err := m.describe(rctx)
	if err != nil {
		return fmt.Sprintf("where the EIP is left is unknown: %v", err)
	}
	name, _ := m.holder(rctx, e)
	if name != "" {
		return fmt.Sprintf("%s is left on %s", e, name)
	}
	return e.String() + " is left there"
}
