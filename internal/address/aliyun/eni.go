package aliyun

import (
	"context"
	"errors"
	"fmt"
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
}

// NewENI builds the aliyun-eni mover from cfg.Address.Options.
func NewENI(cfg *config.Config, o Options) (*ENIMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindENI)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindENI, cfg, o, op)
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
// or times out and rollback=yes, the ENI is attached back to the old
// primary's instance and the error says so.
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

// rollbackTo re-attaches the ENI to the old primary after a failed
// attach, when enabled, and returns the attach error (joined with the
// rollback's).
func (m *ENIMover) rollbackTo(ctx context.Context, c address.Change, cause error) error {
	err := fmt.Errorf("%s acquire on %s: %w", m.kind, c.New.Name, cause)
	if !m.rollback || c.Old.Name == "" || c.Old.Name == c.New.Name {
		return err
	}
	oldID, ierr := m.instanceID(ctx, c.Old.Name)
	if ierr != nil {
		return errors.Join(err, fmt.Errorf("rollback: %w", ierr))
	}
	m.log.Warn("attach failed: attaching the ENI back to the old primary", "server", c.Old.Name, "instance", oldID, "err", cause)
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
		return errors.Join(err, fmt.Errorf("%s rollback to %s failed: %w", m.kind, c.Old.Name, derr))
	}
	return fmt.Errorf("%w (rolled back: the ENI is attached to %s again)", err, c.Old.Name)
}

// guestDown brings the ENI's interface down on a reachable server (best
// effort), found by MAC address.
func (m *ENIMover) guestDown(ctx context.Context, name string, e eni) {
	s, err := m.server(name)
	if err != nil || e.mac == "" {
		return
	}
	cmd := fmt.Sprintf("d=$(ip -o link | grep -i '%s' | cut -d: -f2 | tr -d ' '); [ -n \"$d\" ] && ip link set dev \"$d\" down; true", strings.ToLower(e.mac))
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
	cmd := fmt.Sprintf("d=$(ip -o link | grep -i '%s' | cut -d: -f2 | tr -d ' '); [ -n \"$d\" ] || exit 3; ip link set dev \"$d\" up; ip -o addr show dev \"$d\" | grep -q ' %s/' || ip addr add %s/32 dev \"$d\"", strings.ToLower(e.mac), e.ip, e.ip)
	return m.wait(ctx, "interface of ENI "+m.eniID+" up on "+name, func(ctx context.Context) (bool, string, error) {
		_, err := m.runSSH(ctx, s, cmd)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "up", nil
	})
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

// New returns the mover for cfg.Address.Mover (KindHaVip or KindENI), for
// the movers factory.
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, errors.New("aliyun mover: no configuration")
	}
	switch cfg.Address.Mover {
	case KindHaVip, "aliyun/havip":
		return NewHaVip(cfg, o)
	case KindENI, "aliyun/eni":
		return NewENI(cfg, o)
	}
	return nil, fmt.Errorf("aliyun mover: unknown kind %q (want %s or %s)", cfg.Address.Mover, KindHaVip, KindENI)
}
