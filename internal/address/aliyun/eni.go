package aliyun

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

// ENIMover moves the clients' address by moving a secondary ENI between
// instances. See the package documentation.
//
// An ENI stuck in Detaching (a hung guest) makes Release fail with
// ErrTimeout after one re-sent detach: the vendor's remedy is to stop the
// old instance, i.e. to fence it (shutdown_script).
type ENIMover struct {
	*base
	eniID    string
	rollback bool
	// policyTable is the routing table of the guest's policy routing for
	// the ENI's address (0: none, option policy_routing=no).
	policyTable int
}

// DefaultPolicyTable is the guest routing table the ENI's policy routing
// uses (option policy_table).
const DefaultPolicyTable = 1001

// NewENI builds the aliyun-eni mover from cfg.Address.Options.
func NewENI(cfg *config.Config, o Options) (*ENIMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindENI)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindENI, cfg, o, op, spec{guest: true, perServer: []string{"instance_id"}})
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindENI, err)
	}
	m := &ENIMover{base: b, eniID: op.get("eni_id", "")}
	if m.eniID == "" || strings.ContainsAny(m.eniID, " \t\n/") {
		return nil, fmt.Errorf("%s mover: option eni_id is required (eni-…)", KindENI)
	}
	if m.rollback, err = op.yesNo("rollback", true); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindENI, err)
	}
	pr, err := op.yesNo("policy_routing", true)
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindENI, err)
	}
	if pr {
		t := op.get("policy_table", strconv.Itoa(DefaultPolicyTable))
		if m.policyTable, err = strconv.Atoi(t); err != nil || m.policyTable < 1 || m.policyTable > 252 && m.policyTable < 256 || m.policyTable > 1<<31-1 {
			return nil, fmt.Errorf("%s mover: option policy_table=%q: want a routing table number (1–252 or 256 and above)", KindENI, t)
		}
	}
	if err := op.unknown(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindENI, err)
	}
	m.log = m.log.With("eni", m.eniID)
	return m, nil
}

// Kind implements address.Mover.
func (m *ENIMover) Kind() string { return KindENI }

// eni is what DescribeNetworkInterfaces says about the ENI.
type eni struct {
	status   string
	instance string
	ip       string
	mac      string
}

func (m *ENIMover) describe(ctx context.Context) (eni, error) {
	var out *ecs.DescribeNetworkInterfacesResponse
	err := m.call(ctx, "DescribeNetworkInterfaces", func() error {
		var err error
		out, err = m.api.ECS.DescribeNetworkInterfacesWithContext(ctx, &ecs.DescribeNetworkInterfacesRequest{
			RegionId: dara.String(m.api.Region), NetworkInterfaceId: []*string{dara.String(m.eniID)},
		}, m.api.Runtime())
		return err
	})
	if err != nil {
		return eni{}, err
	}
	if out.Body == nil || out.Body.NetworkInterfaceSets == nil || len(out.Body.NetworkInterfaceSets.NetworkInterfaceSet) != 1 {
		return eni{}, fmt.Errorf("%s: ENI %s not found in region %s", m.kind, m.eniID, m.api.Region)
	}
	n := out.Body.NetworkInterfaceSets.NetworkInterfaceSet[0]
	m.noteClientIP(dara.StringValue(n.PrivateIpAddress))
	return eni{status: dara.StringValue(n.Status), instance: dara.StringValue(n.InstanceId),
		ip: dara.StringValue(n.PrivateIpAddress), mac: dara.StringValue(n.MacAddress)}, nil
}

func (m *ENIMover) detach(ctx context.Context, instance string) error {
	return m.call(ctx, "DetachNetworkInterface", func() error {
		_, err := m.api.ECS.DetachNetworkInterfaceWithContext(ctx, &ecs.DetachNetworkInterfaceRequest{
			RegionId: dara.String(m.api.Region), InstanceId: dara.String(instance), NetworkInterfaceId: dara.String(m.eniID),
		}, m.api.Runtime())
		return err
	})
}

func (m *ENIMover) attach(ctx context.Context, instance string) error {
	return m.call(ctx, "AttachNetworkInterface", func() error {
		_, err := m.api.ECS.AttachNetworkInterfaceWithContext(ctx, &ecs.AttachNetworkInterfaceRequest{
			RegionId: dara.String(m.api.Region), InstanceId: dara.String(instance), NetworkInterfaceId: dara.String(m.eniID),
		}, m.api.Runtime())
		return err
	})
}

// waitStatus waits until the ENI has the status (and, for InUse, the
// instance).
func (m *ENIMover) waitStatus(ctx context.Context, status, instance string) (eni, error) {
	var e eni
	err := m.wait(ctx, "ENI "+m.eniID+" "+status+" "+instance, func(ctx context.Context) (bool, string, error) {
		var err error
		e, err = m.describe(ctx)
		return err == nil && e.status == status && (instance == "" || e.instance == instance), e.status + " " + e.instance, err
	})
	return e, err
}

// Status implements address.StatusChecker: the ENI is InUse on the
// primary's instance.
func (m *ENIMover) Status(ctx context.Context, primary address.Target) error {
	want, err := m.instanceID(ctx, primary.Name)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	for _, s := range m.servers {
		if _, err := m.instanceID(ctx, s.cfg.Name); err != nil {
			return fmt.Errorf("%s status: %w", m.kind, err)
		}
	}
	e, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	if e.status != "InUse" || e.instance != want {
		return fmt.Errorf("%s status: %w: ENI %s is %s on %q, not InUse on the primary %s (%s)", m.kind, ErrConflict, m.eniID, e.status, e.instance, primary.Name, want)
	}
	return nil
}

// Release implements address.Mover: it detaches the ENI from the old
// primary's instance and waits until it is Available. Nothing is done
// when the ENI is already Available or attached to the new primary (a
// re-run). With guest=ssh the interface is brought down on a reachable
// old primary first (best effort).
func (m *ENIMover) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	oldID, err := m.instanceID(ctx, c.Old.Name)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	log := m.log.With("op", "release", "server", c.Old.Name, "instance", oldID)
	e, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	switch {
	case e.status == "Available":
		log.Info("ENI already detached")
		return nil
	case e.instance != oldID:
		if newID, err := m.instanceID(ctx, c.New.Name); err == nil && e.instance == newID {
			log.Info("ENI already on the new primary: nothing to release", "status", e.status)
			return nil
		}
		return fmt.Errorf("%s release: %w: ENI %s is %s on %s, not on the old primary %s (%s)", m.kind, ErrConflict, m.eniID, e.status, e.instance, c.Old.Name, oldID)
	case e.status == "Attaching":
		if _, err := m.waitStatus(ctx, "InUse", oldID); err != nil {
			return fmt.Errorf("%s release: %w", m.kind, err)
		}
		fallthrough
	case e.status == "InUse":
		if m.guest == "ssh" && c.Old.SSHReachable {
			m.guestDown(ctx, c.Old.Name, e)
		}
		if err := m.detach(ctx, oldID); err != nil {
			return fmt.Errorf("%s release: %w", m.kind, err)
		}
	}
	// Detaching: wait; re-send the detach once halfway (vendor advice for
	// a slow guest).
	half := m.waitTO / 2
	hctx, cancel := context.WithTimeout(ctx, half)
	_, err = m.waitStatus(hctx, "Available", "")
	cancel()
	if err != nil && ctx.Err() == nil {
		log.Warn("ENI still detaching: sending the detach again", "waited", half)
		if derr := m.detach(ctx, oldID); derr != nil {
			log.Warn("re-sent detach failed", "err", derr)
		}
		_, err = m.waitStatus(ctx, "Available", "")
	}
	if err != nil {
		return fmt.Errorf("%s release: ENI %s did not detach from %s (a hung guest: stop the old instance to fence it): %w", m.kind, m.eniID, c.Old.Name, err)
	}
	log.Info("ENI detached", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// Acquire implements address.Mover: it attaches the ENI to the new
// primary's instance and waits until it is InUse. When the attach fails
// or times out in a planned switchover (Change.Online) with rollback=yes,
// the ENI is attached back to the old primary's instance and the error
// says so; in a failover the old primary is presumed dead, nothing is
// undone, and the error says where the ENI was left.
func (m *ENIMover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	newID, err := m.instanceID(ctx, c.New.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	log := m.log.With("op", "acquire", "server", c.New.Name, "instance", newID)
	e, err := m.describe(ctx)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	switch {
	case e.instance == newID && (e.status == "InUse" || e.status == "Attaching"):
		log.Info("ENI already on the new primary", "status", e.status)
		if e, err = m.waitStatus(ctx, "InUse", newID); err != nil {
			return fmt.Errorf("%s acquire: %w", m.kind, err)
		}
	case e.status == "Detaching":
		if _, err := m.waitStatus(ctx, "Available", ""); err != nil {
			return fmt.Errorf("%s acquire: %w", m.kind, err)
		}
		fallthrough
	case e.status == "Available":
		if e, err = m.attachAndWait(ctx, newID); err != nil {
			return m.rollbackTo(ctx, c, err)
		}
	default:
		return fmt.Errorf("%s acquire: %w: ENI %s is %s on %s; release it first", m.kind, ErrConflict, m.eniID, e.status, e.instance)
	}
	if m.guest == "ssh" {
		if err := m.guestUp(ctx, c.New.Name, e); err != nil {
			return fmt.Errorf("%s acquire: %w", m.kind, err)
		}
	}
	log.Info("ENI attached", "ip", e.ip, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

func (m *ENIMover) attachAndWait(ctx context.Context, instance string) (eni, error) {
	if err := m.attach(ctx, instance); err != nil {
		return eni{}, err
	}
	return m.waitStatus(ctx, "InUse", instance)
}

// rollbackTo handles a failed attach. In a planned switchover (Online)
// with rollback=yes, the ENI is attached back to the old primary's
// instance and the error says so (joined with the rollback's error when
// that fails too). In a failover the old primary is presumed dead: nothing
// is undone, and the error says where the ENI was left.
func (m *ENIMover) rollbackTo(ctx context.Context, c address.Change, cause error) error {
	err := fmt.Errorf("%s acquire on %s: %w", m.kind, c.New.Name, cause)
	if !m.rollback || !rollbackAllowed(c) {
		why := "rollback=no"
		if m.rollback {
			why = "no rollback in a failover: the old primary is presumed dead"
		}
		return fmt.Errorf("%w (%s; %s)", err, why, m.where(ctx))
	}
	oldID, ierr := m.instanceID(ctx, c.Old.Name)
	if ierr != nil {
		return errors.Join(err, fmt.Errorf("rollback: %w; %s", ierr, m.where(ctx)))
	}
	m.log.Warn("attach failed in a switchover: attaching the ENI back to the old primary", "server", c.Old.Name, "instance", oldID, "err", cause)
	e, derr := m.describe(ctx)
	if derr == nil && e.status == "Attaching" || derr == nil && e.status == "InUse" && e.instance != oldID {
		// The failed attach may still complete: undo it first.
		if _, werr := m.waitStatus(ctx, "InUse", e.instance); werr == nil {
			if derr = m.detach(ctx, e.instance); derr == nil {
				_, derr = m.waitStatus(ctx, "Available", "")
			}
		}
	}
	if derr == nil {
		_, derr = m.attachAndWait(ctx, oldID)
	}
	if derr != nil {
		return errors.Join(err, fmt.Errorf("%s rollback to %s failed: %w; %s", m.kind, c.Old.Name, derr, m.where(ctx)))
	}
	if m.guest == "ssh" && c.Old.SSHReachable {
		if e, gerr := m.describe(ctx); gerr == nil {
			if gerr := m.guestUp(ctx, c.Old.Name, e); gerr != nil {
				m.log.Warn("rollback: the ENI is attached to the old primary again, but its interface could not be brought up", "server", c.Old.Name, "err", gerr)
			}
		}
	}
	return fmt.Errorf("%w (rolled back: the ENI is attached to %s again)", err, c.Old.Name)
}

// where says where the ENI is now, for error messages. It asks the API
// with a short deadline of its own, so that it answers after the caller's
// context has ended too.
func (m *ENIMover) where(ctx context.Context) string {
	rctx, cancel := reportCtx(ctx)
	defer cancel()
	e, err := m.describe(rctx)
	if err != nil {
		return fmt.Sprintf("where ENI %s is left is unknown: %v", m.eniID, err)
	}
	if e.status == "Available" || e.instance == "" {
		return fmt.Sprintf("ENI %s is left detached (%s, on no instance)", m.eniID, e.status)
	}
	name, _ := m.serverOf(rctx, e.instance)
	if name == "" {
		name = "no configured server"
	}
	return fmt.Sprintf("ENI %s is left %s on instance %s (%s)", m.eniID, e.status, e.instance, name)
}

// guestDown brings the ENI's interface down on a reachable server (best
// effort), found by MAC address.
func (m *ENIMover) guestDown(ctx context.Context, name string, e eni) {
	s, err := m.server(name)
	if err != nil || e.mac == "" {
		return
	}
	cmd := findNIC(e.mac) + "[ -n \"$d\" ] && ip link set dev \"$d\" down; true"
	if _, err := m.runSSH(ctx, s, cmd); err != nil {
		m.log.Warn("could not bring the ENI's interface down on the old primary", "server", name, "err", err)
	}
}

// guestUp waits (up to wait_timeout) for the ENI's interface to appear on
// the new primary and brings it up with its address.
func (m *ENIMover) guestUp(ctx context.Context, name string, e eni) error {
	s, err := m.server(name)
	if err != nil {
		return err
	}
	if e.mac == "" || e.ip == "" {
		return fmt.Errorf("ENI %s: no MAC or IP in DescribeNetworkInterfaces", m.eniID)
	}
	cmd := findNIC(e.mac) + fmt.Sprintf("[ -n \"$d\" ] || exit 3; ip link set dev \"$d\" up; ip -o addr show dev \"$d\" | grep -q ' %s/' || ip addr add %s/32 dev \"$d\"", e.ip, e.ip)
	if m.policyTable > 0 {
		cmd += policyRouting(e.ip, m.policyTable)
	}
	return m.wait(ctx, "interface of ENI "+m.eniID+" up on "+name, func(ctx context.Context) (bool, string, error) {
		_, err := m.runSSH(ctx, s, cmd)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "up", nil
	})
}

// findNIC is shell that sets $d to the name of the interface with MAC mac
// (empty when there is none yet).
func findNIC(mac string) string {
	return fmt.Sprintf("d=$(ip -o link | grep -i 'link/ether %s' | cut -d: -f2 | cut -d@ -f1 | tr -d ' '); ", strings.ToLower(mac))
}

// policyRouting is shell (run after findNIC) that makes the guest answer
// from the ENI's address through the ENI: a VPC drops packets whose source
// address does not belong to the NIC sending them, and without policy
// routing replies would leave through the primary NIC. Table table gets
// the primary NIC's connected subnets (and its default route, when there
// is one) through the ENI; a rule sends traffic from ip to it.
func policyRouting(ip string, table int) string {
	return fmt.Sprintf("; ip -o -4 route show scope link proto kernel | grep -v \" dev $d \" | while read net rest; do ip route replace \"$net\" dev \"$d\" src %[1]s table %[2]d; done"+
		"; gw=$(ip -4 route show default | grep -o 'via [0-9.]*' | head -1); [ -z \"$gw\" ] || ip route replace default $gw dev \"$d\" table %[2]d"+
		"; ip rule show | grep -q 'from %[1]s lookup %[2]d' || ip rule add from %[1]s lookup %[2]d", ip, table)
}

// Holder implements address.Mover: the server whose instance has the ENI
// (InUse or Attaching), "" when it is detached.
func (m *ENIMover) Holder(ctx context.Context) (string, error) {
	e, err := m.describe(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if e.instance == "" || e.status == "Available" {
		return "", nil
	}
	name, err := m.serverOf(ctx, e.instance)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if name == "" {
		return "", fmt.Errorf("%s holder: %w: ENI %s is on %s, which is none of the configured servers", m.kind, ErrConflict, m.eniID, e.instance)
	}
	return name, nil
}

// New returns the mover for cfg.Address.Mover (KindHaVip, KindENI,
// KindSecondaryIP, KindEIP or KindDNS, or their aliyun/… spellings), for
// the movers factory. Options are validated here; no API is called.
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, errors.New("aliyun mover: no configuration")
	}
	switch cfg.Address.Mover {
	case KindHaVip, "aliyun/havip":
		return NewHaVip(cfg, o)
	case KindENI, "aliyun/eni":
		return NewENI(cfg, o)
	case KindSecondaryIP, "aliyun/secondary-ip":
		return NewSecondaryIP(cfg, o)
	case KindEIP, "aliyun/eip":
		return NewEIP(cfg, o)
	case KindDNS, "aliyun/dns", "aliyun-dns":
		return NewDNS(cfg, o)
	}
	return nil, fmt.Errorf("aliyun mover: unknown kind %q (want %s, %s, %s, %s or %s)", cfg.Address.Mover, KindHaVip, KindENI, KindSecondaryIP, KindEIP, KindDNS)
}
