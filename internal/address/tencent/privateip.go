package tencent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"

	"github.com/cloudmha/cloudmha/internal/address"
	cloud "github.com/cloudmha/cloudmha/internal/cloud/tencent"
	"github.com/cloudmha/cloudmha/internal/config"
)

// PrivateIPMover moves the clients' address, a secondary private IP, from
// the old primary's ENI to the new primary's with MigratePrivateIpAddress
// (one subnet; an asynchronous task polled with DescribeVpcTaskResult).
// See the package documentation.
type PrivateIPMover struct {
	*base
	ip string
}

// NewPrivateIP builds the tencent-private-ip mover from
// cfg.Address.Options.
func NewPrivateIP(cfg *config.Config, o Options) (*PrivateIPMover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%s mover: no configuration", KindPrivateIP)
	}
	op := &opts{m: cfg.Address.Options, used: map[string]bool{}}
	b, err := newBase(KindPrivateIP, cfg, o, op)
	if err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindPrivateIP, err)
	}
	m := &PrivateIPMover{base: b}
	v := op.get("vip", "")
	a, perr := netip.ParseAddr(v)
	if v == "" || perr != nil || !a.Is4() {
		return nil, fmt.Errorf("%s mover: option vip is required: the secondary private IPv4 address that moves (got %q)", KindPrivateIP, v)
	}
	m.ip = a.String()
	for _, s := range cfg.Servers {
		if serverIP(s) == m.ip {
			return nil, fmt.Errorf("%s mover: option vip=%s is server %s's own address", KindPrivateIP, m.ip, s.Name)
		}
	}
	if err := op.unknown(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", KindPrivateIP, err)
	}
	m.log = m.log.With("vip", m.ip)
	return m, nil
}

// Kind implements address.Mover.
func (m *PrivateIPMover) Kind() string { return KindPrivateIP }

// location is where the address is.
type location struct {
	found   bool
	nic     nic
	state   string // AVAILABLE, MIGRATING, …
	primary bool
}

// locate finds the ENI carrying the address.
func (m *PrivateIPMover) locate(ctx context.Context) (location, error) {
	enis, err := m.describeENIs(ctx, nil, map[string][]string{"address-ip": {m.ip}, "ip-exact-match": {"true"}})
	if err != nil {
		return location{}, err
	}
	var l location
	for _, e := range enis {
		ok, primary, state := hasIP(e, m.ip)
		if !ok {
			continue
		}
		if l.found {
			return location{}, fmt.Errorf("%s: %w: the address %s is on two ENIs (%s, %s)", m.kind, ErrConflict, m.ip, l.nic.id, str(e.NetworkInterfaceId))
		}
		l = location{found: true, nic: nicOf(e, m.ip), state: state, primary: primary}
	}
	if l.primary {
		return l, fmt.Errorf("%s: %w: %s is the primary IP of ENI %s; only a secondary private IP can be migrated", m.kind, ErrConflict, m.ip, l.nic.id)
	}
	return l, nil
}

// describe names the address's location for messages.
func (m *PrivateIPMover) describe(ctx context.Context, l location) string {
	if !l.found {
		return "on no ENI"
	}
	name, err := m.serverOf(ctx, l.nic.id, l.nic.instance)
	if err != nil || name == "" {
		name = "none of the configured servers"
	}
	s := fmt.Sprintf("on ENI %s (instance %s, %s)", l.nic.id, l.nic.instance, name)
	if l.state != "" && l.state != "AVAILABLE" {
		s += " " + l.state
	}
	return s
}

// where says where the address is now, for error messages.
func (m *PrivateIPMover) where(ctx context.Context) string {
	l, err := m.locate(ctx)
	if err != nil {
		return "the address's location is unknown (" + err.Error() + ")"
	}
	return "the address " + m.ip + " is " + m.describe(ctx, l)
}

// migrate moves the address from one ENI to another and waits until the
// task succeeded and the address is usable on the destination.
func (m *PrivateIPMover) migrate(ctx context.Context, from, to nic) error {
	log := m.log.With("from", from.id, "to", to.id)
	wctx, cancel := context.WithTimeout(ctx, m.waitTO)
	defer cancel()
	var task string
	for task == "" {
		err := m.call(wctx, "MigratePrivateIpAddress", func() error {
			req := vpc.NewMigratePrivateIpAddressRequest()
			req.SourceNetworkInterfaceId, req.DestinationNetworkInterfaceId, req.PrivateIpAddress = common.StringPtr(from.id), common.StringPtr(to.id), common.StringPtr(m.ip)
			resp, err := m.api.VPC.MigratePrivateIpAddressWithContext(wctx, req)
			if err == nil && resp.Response != nil {
				task = str(resp.Response.RequestId)
			}
			return err
		})
		if err == nil {
			if task == "" {
				return fmt.Errorf("%s: MigratePrivateIpAddress gave no RequestId to follow the task by", m.kind)
			}
			break
		}
		// A retried call after a lost answer, or another task on the ENIs:
		// look where the address is.
		code := cloud.Code(err)
		if code != "UnsupportedOperation.MutexOperationTaskRunning" && code != "ResourceNotFound" {
			return err
		}
		l, lerr := m.locate(wctx)
		if lerr != nil {
			return errors.Join(err, lerr)
		}
		if l.found && l.nic.id == to.id {
			log.Info("the address is on the destination already (an earlier call went through)")
			return m.waitOn(ctx, to)
		}
		if code == "ResourceNotFound" {
			return err
		}
		log.Info("another task runs on the ENIs: retrying the migration", "err", cloud.Describe(err))
		select {
		case <-wctx.Done():
			return fmt.Errorf("%s: %w after %s: migrating %s from %s to %s (a task kept running on the ENIs)", m.kind, ErrTimeout, m.waitTO, m.ip, from.id, to.id)
		case <-time.After(m.poll):
		}
	}
	log.Info("migration started", "task", task)
	err := m.wait(ctx, "task "+task+" (migrating "+m.ip+" to "+to.id+")", func(ctx context.Context) (bool, string, error) {
		var st, out string
		err := m.call(ctx, "DescribeVpcTaskResult", func() error {
			req := vpc.NewDescribeVpcTaskResultRequest()
			req.TaskId = common.StringPtr(task)
			resp, err := m.api.VPC.DescribeVpcTaskResultWithContext(ctx, req)
			if err == nil && resp.Response != nil {
				st, out = str(resp.Response.Status), str(resp.Response.Output)
			}
			return err
		})
		if err != nil {
			return false, st, err
		}
		if st == "FAILED" {
			return false, st, fmt.Errorf("%s: %w: task %s migrating %s from %s to %s: %s", m.kind, ErrTaskFailed, task, m.ip, from.id, to.id, out)
		}
		return st == "SUCCESS", st, nil
	})
	if err != nil {
		return err
	}
	return m.waitOn(ctx, to)
}

// waitOn waits until the address is usable (not MIGRATING) on an ENI.
func (m *PrivateIPMover) waitOn(ctx context.Context, to nic) error {
	return m.wait(ctx, m.ip+" usable on "+to.id, func(ctx context.Context) (bool, string, error) {
		l, err := m.locate(ctx)
		if err != nil {
			return false, "", err
		}
		return l.found && l.nic.id == to.id && l.state != "MIGRATING", l.nic.id + " " + l.state, nil
	})
}

// Status implements address.StatusChecker: the credentials work, every
// server's ENI is found and in the address's subnet (MigratePrivateIpAddress
// stays within one subnet), and the address is a secondary IP of the
// primary's ENI.
func (m *PrivateIPMover) Status(ctx context.Context, primary address.Target) error {
	nics, err := m.allNICs(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	l, err := m.locate(ctx)
	if err != nil {
		return fmt.Errorf("%s status: %w", m.kind, err)
	}
	if !l.found {
		return fmt.Errorf("%s status: %w: the address %s is on no ENI in region %s (assign it as a secondary private IP of the primary's ENI)", m.kind, ErrConflict, m.ip, m.api.Region)
	}
	for _, s := range m.servers {
		if n := nics[s.cfg.Name]; n.subnet != l.nic.subnet {
			return fmt.Errorf("%s status: %w: server %s's ENI %s is in subnet %s, the address in subnet %s: it cannot be migrated there (set eni.%s)", m.kind, ErrConflict, s.cfg.Name, n.id, n.subnet, l.nic.subnet, s.cfg.Name)
		}
	}
	pn, ok := nics[primary.Name]
	if !ok {
		return fmt.Errorf("%s status: primary %q is not in the configuration", m.kind, primary.Name)
	}
	if l.nic.id != pn.id {
		return fmt.Errorf("%s status: %w: the address %s is %s, not on the primary %s's ENI %s", m.kind, ErrConflict, m.ip, m.describe(ctx, l), primary.Name, pn.id)
	}
	return nil
}

// Release implements address.Mover: with guest=ssh it removes the address
// from an old primary marked SSHReachable (failing to do so is an error),
// then migrates it from the old primary's ENI to the new primary's, so
// that the VPC stops delivering it to the old host even if that host
// comes back. Nothing is migrated when the address is on the new
// primary's ENI already (a re-run). When the migration fails during a
// planned switchover, the address is configured on the old primary again.
func (m *PrivateIPMover) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "release", "server", c.Old.Name)
	on, err := m.serverNIC(ctx, c.Old.Name)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if c.New.Name == "" || c.New.Name == c.Old.Name {
		// No new primary yet (Perl MHA's --command=stop|stopssh passes
		// none): there is no ENI to migrate to, and the API cannot take
		// a private IP from an ENI without giving it to another. Remove
		// it from the old guest; the migration happens in Acquire.
		if m.guest == "ssh" && c.Old.SSHReachable {
			if err := m.guestDel(ctx, c.Old.Name, m.ip); err != nil {
				return fmt.Errorf("%s release: could not remove the address (fence %s, then release it as unreachable): %w", m.kind, c.Old.Name, err)
			}
		}
		log.Warn("no new primary given: the address stays on the old primary's ENI until Acquire migrates it; fence the old primary (shutdown_script)", "eni", on.id)
		return nil
	}
	nn, err := m.serverNIC(ctx, c.New.Name)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	l, err := m.locate(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	switch {
	case !l.found:
		return fmt.Errorf("%s release: %w: the address %s is on no ENI in region %s", m.kind, ErrConflict, m.ip, m.api.Region)
	case l.nic.id != on.id && l.nic.id != nn.id:
		return fmt.Errorf("%s release: %w: the address %s is %s, not on the old primary %s's ENI %s", m.kind, ErrConflict, m.ip, m.describe(ctx, l), c.Old.Name, on.id)
	}
	removed := false
	if m.guest == "ssh" && c.Old.SSHReachable {
		if err := m.guestDel(ctx, c.Old.Name, m.ip); err != nil {
			return fmt.Errorf("%s release: could not remove the address (fence %s, then release it as unreachable): %w", m.kind, c.Old.Name, err)
		}
		removed = true
	}
	if l.nic.id == nn.id {
		log.Info("the address is on the new primary's ENI already", "eni", nn.id, "state", l.state)
		if err := m.waitOn(ctx, nn); err != nil {
			return fmt.Errorf("%s release: %w", m.kind, err)
		}
		return nil
	}
	if err := m.migrate(ctx, on, nn); err != nil {
		err = fmt.Errorf("%s release: %w", m.kind, err)
		if removed && c.Online {
			if rerr := m.guestAdd(ctx, c.Old.Name, on, m.ip); rerr != nil {
				return errors.Join(err, fmt.Errorf("restoring the address on %s failed: %w; %s", c.Old.Name, rerr, m.where(ctx)))
			}
			return fmt.Errorf("%w (the address is configured on %s again); %s", err, c.Old.Name, m.where(ctx))
		}
		if removed {
			return fmt.Errorf("%w; %s; removed from %s's guest", err, m.where(ctx), c.Old.Name)
		}
		return fmt.Errorf("%w; %s", err, m.where(ctx))
	}
	log.Info("address migrated away from the old primary", "from", on.id, "to", nn.id, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// Acquire implements address.Mover: it makes sure the address is on the
// new primary's ENI (migrating it from another configured server's ENI
// when Release did not), configures it on the guest with gratuitous ARP
// (guest=ssh), and checks it. When that fails during a planned switchover
// (c.Online) the address goes back to the old primary; in a failover it
// stays where it is, and the error says where.
func (m *PrivateIPMover) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "acquire", "server", c.New.Name)
	nn, err := m.serverNIC(ctx, c.New.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	added := false
	err = func() error {
		l, err := m.locate(ctx)
		if err != nil {
			return err
		}
		switch {
		case !l.found:
			return fmt.Errorf("%s: %w: the address %s is on no ENI in region %s", m.kind, ErrConflict, m.ip, m.api.Region)
		case l.nic.id != nn.id:
			name, err := m.serverOf(ctx, l.nic.id, l.nic.instance)
			if err != nil {
				return err
			}
			if name == "" {
				return fmt.Errorf("%s: %w: the address %s is %s", m.kind, ErrConflict, m.ip, m.describe(ctx, l))
			}
			log.Info("migrating the address to the new primary", "from_server", name, "from", l.nic.id)
			if err := m.migrate(ctx, l.nic, nn); err != nil {
				return err
			}
		default:
			if err := m.waitOn(ctx, nn); err != nil {
				return err
			}
		}
		if m.guest == "ssh" {
			added = true
			if err := m.guestAdd(ctx, c.New.Name, nn, m.ip); err != nil {
				return err
			}
		}
		l, err = m.locate(ctx)
		if err != nil {
			return err
		}
		if !l.found || l.nic.id != nn.id {
			return fmt.Errorf("%s: %w: after the move the address %s is %s", m.kind, ErrConflict, m.ip, m.describe(ctx, l))
		}
		return nil
	}()
	if err != nil {
		return m.fail(ctx, c, err, added)
	}
	log.Info("address acquired", "eni", nn.id, "instance", nn.instance, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// fail reports a failed Acquire, after moving the address back to the old
// primary in a planned switchover.
func (m *PrivateIPMover) fail(ctx context.Context, c address.Change, cause error, added bool) error {
	err := fmt.Errorf("%s acquire on %s: %w", m.kind, c.New.Name, cause)
	guestNote := func() string {
		if added {
			return "; it may be configured on " + c.New.Name + "'s guest"
		}
		return ""
	}
	if !c.Online || c.Old.Name == "" || c.Old.Name == c.New.Name || ctx.Err() != nil {
		return fmt.Errorf("%w; %s%s", err, m.where(ctx), guestNote())
	}
	m.log.Warn("acquire failed in a planned switchover: moving the address back to the old primary", "server", c.Old.Name, "err", cause)
	on, rerr := m.serverNIC(ctx, c.Old.Name)
	if rerr == nil && m.guest == "ssh" && added {
		if derr := m.guestDel(ctx, c.New.Name, m.ip); derr != nil {
			m.log.Warn("could not remove the address from the new primary", "server", c.New.Name, "err", derr)
		} else {
			added = false
		}
	}
	var l location
	if rerr == nil {
		l, rerr = m.locate(ctx)
	}
	if rerr == nil {
		switch {
		case !l.found:
			rerr = fmt.Errorf("%w: the address is on no ENI", ErrConflict)
		case l.nic.id != on.id:
			rerr = m.migrate(ctx, l.nic, on)
		}
	}
	if rerr == nil && m.guest == "ssh" {
		rerr = m.guestAdd(ctx, c.Old.Name, on, m.ip)
	}
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("%s rollback to %s failed: %w; %s%s", m.kind, c.Old.Name, rerr, m.where(ctx), guestNote()))
	}
	return fmt.Errorf("%w (rolled back: the address %s is on %s's ENI %s again)", err, m.ip, c.Old.Name, on.id)
}

// Holder implements address.Mover: the server whose ENI carries the
// address, "" when none does.
func (m *PrivateIPMover) Holder(ctx context.Context) (string, error) {
	l, err := m.locate(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if !l.found {
		return "", nil
	}
	name, err := m.serverOf(ctx, l.nic.id, l.nic.instance)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	if name == "" {
		return "", fmt.Errorf("%s holder: %w: the address %s is %s", m.kind, ErrConflict, m.ip, m.describe(ctx, l))
	}
	return name, nil
}
