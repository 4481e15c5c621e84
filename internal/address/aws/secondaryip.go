package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// SecondaryIP moves a secondary private IP between the servers' ENIs.
type SecondaryIP struct {
	*base
	dial remote.DialFunc
}

var (
	_ address.Mover         = (*SecondaryIP)(nil)
	_ address.StatusChecker = (*SecondaryIP)(nil)
)

// NewSecondaryIP builds the aws-secondary-ip mover. It validates the
// options and builds the EC2 client; ENIs are discovered on first use.
func NewSecondaryIP(cfg *config.Config, o Options) (address.Mover, error) {
	b, err := newBase(KindSecondaryIP, cfg, o)
	if err != nil {
		return nil, err
	}
	b.log = b.log.With("vip", b.set.vip.String())
	m := &SecondaryIP{base: b, dial: o.Dial}
	if m.dial == nil {
		d := &net.Dialer{}
		m.dial = d.DialContext
	}
	return m, nil
}

// Kind implements address.Mover.
func (m *SecondaryIP) Kind() string { return KindSecondaryIP }

// locate returns the servers whose ENI has the VIP and the ids of other
// ENIs that have it.
func (m *SecondaryIP) locate(ctx context.Context) (names, foreign []string, err error) {
	enis, err := m.allENIs(ctx)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]string, 0, len(enis))
	byID := map[string]string{}
	for n, id := range enis {
		ids = append(ids, id)
		byID[id] = n
	}
	slices.Sort(ids)
	vip := m.set.vip.String()
	out, err := m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids})
	if err != nil {
		return nil, nil, fmt.Errorf("describe the servers' network interfaces: %w", err)
	}
	for _, ni := range out.NetworkInterfaces {
		if hasIP(ni, vip) {
			names = append(names, byID[sdkaws.ToString(ni.NetworkInterfaceId)])
		}
	}
	// Interfaces outside the cluster (EC2 matches secondary addresses
	// with this filter; some emulators only primary ones).
	other, err := m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: sdkaws.String("addresses.private-ip-address"), Values: []string{vip}}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("find network interfaces with %s: %w", vip, err)
	}
	for _, ni := range other.NetworkInterfaces {
		id := sdkaws.ToString(ni.NetworkInterfaceId)
		if _, ours := byID[id]; !ours && hasIP(ni, vip) {
			foreign = append(foreign, id)
		}
	}
	slices.Sort(names)
	return names, foreign, nil
}

func hasIP(ni types.NetworkInterface, ip string) bool {
	if sdkaws.ToString(ni.PrivateIpAddress) == ip {
		return true
	}
	for _, a := range ni.PrivateIpAddresses {
		if sdkaws.ToString(a.PrivateIpAddress) == ip {
			return true
		}
	}
	return false
}

// Holder implements address.Mover: the server whose ENI has the VIP.
func (m *SecondaryIP) Holder(ctx context.Context) (string, error) {
	names, foreign, err := m.locate(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	return holderOf(m.kind, names, foreign)
}

// Status implements address.StatusChecker: every server's ENI resolves and
// the VIP is on the primary's only.
func (m *SecondaryIP) Status(ctx context.Context, primary address.Target) error {
	h, err := m.Holder(ctx)
	return status(m.kind, h, err, primary)
}

// unassign removes the VIP from an ENI; "not assigned" is success.
func (m *SecondaryIP) unassign(ctx context.Context, eni string) error {
	_, err := m.api.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: sdkaws.String(eni), PrivateIpAddresses: []string{m.set.vip.String()},
	})
	if err != nil && apiCode(err) == "InvalidParameterValue" && strings.Contains(strings.ToLower(err.Error()), "not assigned") {
		return nil
	}
	return err
}

// moveTo assigns the VIP to server name's ENI and waits until EC2 shows it
// there and on no other configured ENI. AWS moves it atomically; when the
// old ENI still lists it after the new one does (eventual consistency, or
// an emulator that does not move it), it is unassigned there explicitly.
func (m *SecondaryIP) moveTo(ctx context.Context, name, eni string) error {
	_, err := m.api.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: sdkaws.String(eni), PrivateIpAddresses: []string{m.set.vip.String()},
		AllowReassignment: sdkaws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("assign %s to %s: %w", m.set.vip, eni, err)
	}
	cleaned := map[string]bool{}
	return m.wait(ctx, fmt.Sprintf("%s only on %s (%s)", m.set.vip, name, eni), func(ctx context.Context) (bool, string, error) {
		names, foreign, err := m.locate(ctx)
		if err != nil {
			return false, "", err
		}
		seen := describeHolders(names, foreign)
		if !slices.Contains(names, name) {
			return false, seen, nil
		}
		for _, n := range names {
			if n == name || cleaned[n] {
				continue
			}
			id, err := m.eniOf(ctx, n)
			if err != nil {
				return false, seen, err
			}
			m.log.Warn("VIP still listed on another server's ENI after the reassignment: unassigning it there", "server", n, "eni", id)
			if err := m.unassign(ctx, id); err != nil {
				return false, seen, fmt.Errorf("unassign from %s (%s): %w", n, id, err)
			}
			cleaned[n] = true
		}
		return len(names) == 1 && len(foreign) == 0, seen, nil
	})
}

// Acquire implements address.Mover: the VIP is assigned to the new
// primary's ENI (taking it from any other), EC2 is polled until it shows
// that, then the guest side is configured over SSH.
func (m *SecondaryIP) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "acquire", "server", c.New.Name)
	eni, err := m.eniOf(ctx, c.New.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	before, foreignBefore, err := m.locate(ctx)
	if err != nil {
		log.Warn("cannot tell where the VIP is before moving it: no rollback possible", "err", err)
	}
	if err == nil && len(foreignBefore) == 0 && slices.Equal(before, []string{c.New.Name}) {
		log.Info("VIP already on the new primary's ENI")
	} else if err := m.moveTo(ctx, c.New.Name, eni); err != nil {
		return m.rollback(ctx, c.New.Name, before, err)
	}
	moved := time.Since(start)
	if m.set.guest == "ssh" {
		if err := m.guest(ctx, c.New.Name, true); err != nil {
			return m.rollback(ctx, c.New.Name, before, fmt.Errorf("guest side: %w", err))
		}
		if c.Old.Name != "" && c.Old.Name != c.New.Name && c.Old.SSHReachable {
			if err := m.guest(ctx, c.Old.Name, false); err != nil {
				log.Warn("could not remove the VIP from the old primary's interface (EC2 no longer routes it there)", "old", c.Old.Name, "err", err)
			}
		}
	}
	log.Info("VIP acquired", "eni", eni, "ec2_elapsed", moved.Round(time.Millisecond), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// rollback puts the VIP back where it was before a failed Acquire (when it
// was on exactly one configured server) and reports the state left.
func (m *SecondaryIP) rollback(ctx context.Context, target string, before []string, cause error) error {
	e := &MoveError{Kind: m.kind, Server: target, Err: cause}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.set.waitTimeout+10*time.Second)
	defer cancel()
	switch {
	case !m.set.rollback:
		e.Rollback = "not attempted: option rollback=false"
	case len(before) != 1:
		e.Rollback = "not attempted: the VIP was " + describeHolders(before, nil) + " before"
	case before[0] == target:
		e.Rollback = "not needed: the VIP was already on " + target
	default:
		prev := before[0]
		eni, err := m.eniOf(rctx, prev)
		if err == nil {
			err = m.moveTo(rctx, prev, eni)
		}
		if err != nil {
			e.Rollback = fmt.Sprintf("failed to put it back on %s: %v", prev, err)
		} else {
			e.Rollback = "put back on " + prev + " (" + eni + ")"
			// EC2 took it from the target when reassigning it back; make
			// sure, in case a Describe lagged (or an emulator keeps both).
			if teni, terr := m.eniOf(rctx, target); terr == nil {
				if uerr := m.unassign(rctx, teni); uerr != nil {
					e.Rollback += fmt.Sprintf("; unassign from %s (%s) failed: %v", target, teni, uerr)
				}
			}
			if m.set.guest == "ssh" {
				if gerr := m.guest(rctx, target, false); gerr != nil {
					e.Rollback += fmt.Sprintf("; guest del on %s failed: %v", target, gerr)
				}
				if gerr := m.guest(rctx, prev, true); gerr != nil {
					e.Rollback += fmt.Sprintf("; guest add on %s failed: %v", prev, gerr)
				}
			}
		}
	}
	names, foreign, err := m.locate(rctx)
	if err != nil {
		e.State = "unknown: " + err.Error()
	} else {
		e.State = describeHolders(names, foreign)
	}
	m.log.Error("acquire failed", "server", target, "err", cause, "rollback", e.Rollback, "state", e.State)
	return e
}

// Release implements address.Mover: the VIP is unassigned from the old
// primary's ENI (not being there is success) and removed from its
// interface over SSH when reachable. An ENI that no longer exists cannot
// hold the VIP: that is an address.ProceedError.
func (m *SecondaryIP) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "release", "server", c.Old.Name)
	eni, err := m.eniOf(ctx, c.Old.Name)
	if errors.Is(err, ErrNotFound) {
		return &address.ProceedError{Err: fmt.Errorf("%s release: %w", m.kind, err)}
	}
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if err := m.unassign(ctx, eni); err != nil {
		if strings.HasPrefix(apiCode(err), "InvalidNetworkInterfaceID") {
			return &address.ProceedError{Err: fmt.Errorf("%s release: ENI %s of %s: %w: %w", m.kind, eni, c.Old.Name, ErrNotFound, err)}
		}
		return fmt.Errorf("%s release: unassign %s from %s (%s): %w", m.kind, m.set.vip, c.Old.Name, eni, err)
	}
	err = m.wait(ctx, fmt.Sprintf("%s gone from %s (%s)", m.set.vip, c.Old.Name, eni), func(ctx context.Context) (bool, string, error) {
		names, foreign, err := m.locate(ctx)
		if err != nil {
			return false, "", err
		}
		return !slices.Contains(names, c.Old.Name), describeHolders(names, foreign), nil
	})
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if m.set.guest == "ssh" && c.Old.SSHReachable {
		if err := m.guest(ctx, c.Old.Name, false); err != nil {
			log.Warn("could not remove the VIP from the old primary's interface (EC2 no longer routes it there)", "err", err)
		}
	}
	log.Info("VIP released", "eni", eni, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// guestCommand is the shell command that adds or deletes the VIP on the
// guest's interface; an address already present (add) or absent (del) is
// success.
func (m *SecondaryIP) guestCommand(add bool, user string) string {
	p := fmt.Sprintf("%s/%d", m.set.vip, m.set.prefix)
	var cmd string
	if add {
		cmd = fmt.Sprintf("ip -o addr show dev %[2]s | grep -qF ' %[1]s ' || ip addr add %[1]s dev %[2]s", p, m.set.iface)
	} else {
		cmd = fmt.Sprintf("if ip -o addr show dev %[2]s | grep -qF ' %[1]s '; then ip addr del %[1]s dev %[2]s; fi", p, m.set.iface)
	}
	cmd = "PATH=$PATH:/usr/sbin:/sbin; " + cmd
	if m.set.sudo == "yes" || m.set.sudo == "auto" && user != "root" {
		return "sudo -n sh -c " + hooks.ShellQuote(cmd)
	}
	return cmd
}

// guest adds (or deletes) the VIP on a server's interface over SSH.
func (m *SecondaryIP) guest(ctx context.Context, name string, add bool) error {
	srv, err := m.server(name)
	if err != nil {
		return err
	}
	t, err := sshTarget(srv, m.dial)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	cl, err := remote.Dial(ctx, t)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer cl.Close()
	if _, err := cl.Run(ctx, m.guestCommand(add, t.User)); err != nil {
		verb := "del"
		if add {
			verb = "add"
		}
		return fmt.Errorf("%s: ip addr %s %s/%d dev %s: %w", name, verb, m.set.vip, m.set.prefix, m.set.iface, err)
	}
	return nil
}

// sshTarget is how to reach a server over SSH, as configured.
func sshTarget(s config.Server, dial remote.DialFunc) (remote.Target, error) {
	o, err := remote.ParseSSHOptions(s.SSHOptions)
	if err != nil {
		return remote.Target{}, err
	}
	addr := s.SSHAddr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	switch {
	case o.Port != 0:
		port = strconv.Itoa(o.Port)
	case port == "" || port == "0":
		port = strconv.Itoa(config.DefaultSSHPort)
	}
	user := s.SSHUser
	if user == "" {
		user = "root"
	}
	return remote.Target{Addr: net.JoinHostPort(host, port), User: user, Options: o, Timeout: s.SSHConnectionTimeout, Dial: dial}, nil
}
