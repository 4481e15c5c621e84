package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

// SecondaryIP moves a secondary private IP between the servers' ENIs.
type SecondaryIP struct {
	*base
}

var (
	_ address.Mover         = (*SecondaryIP)(nil)
	_ address.StatusChecker = (*SecondaryIP)(nil)
	_ address.Addressed     = (*SecondaryIP)(nil)
)

// NewSecondaryIP builds the aws-secondary-ip mover. It validates the
// options and builds the EC2 client; ENIs are discovered on first use.
func NewSecondaryIP(cfg *config.Config, o Options) (address.Mover, error) {
	b, err := newBase(KindSecondaryIP, cfg, o)
	if err != nil {
		return nil, err
	}
	b.log = b.log.With("vip", b.set.vip.String())
	return &SecondaryIP{base: b}, nil
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
// that, then the guest side is configured over SSH. On failure see
// core.acquireFailed: the VIP is put back only on a switchover.
func (m *SecondaryIP) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "acquire", "server", c.New.Name, "online", c.Online)
	eni, err := m.eniOf(ctx, c.New.Name)
	if err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	before, foreignBefore, err := m.locate(ctx)
	known := err == nil
	if !known {
		log.Warn("cannot tell where the VIP is before moving it: no rollback possible", "err", err)
	}
	fail := func(cause error) error {
		undo := putBack("the VIP", c.New.Name, known, before, foreignBefore, func(ctx context.Context, prev string) (string, error) {
			return m.moveBack(ctx, prev, c.New.Name)
		})
		return m.acquireFailed(ctx, c, cause, undo, m.state)
	}
	if known && len(foreignBefore) == 0 && slices.Equal(before, []string{c.New.Name}) {
		log.Info("VIP already on the new primary's ENI")
	} else if err := m.moveTo(ctx, c.New.Name, eni); err != nil {
		return fail(err)
	}
	moved := time.Since(start)
	if m.set.guest == "ssh" {
		if err := m.guest(ctx, c.New.Name, true); err != nil {
			return fail(fmt.Errorf("guest side: %w", err))
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

// moveBack is the rollback move: the VIP goes back to prev's ENI, is
// taken off target's, and the guest side follows.
func (m *SecondaryIP) moveBack(ctx context.Context, prev, target string) (string, error) {
	eni, err := m.eniOf(ctx, prev)
	if err == nil {
		err = m.moveTo(ctx, prev, eni)
	}
	if err != nil {
		return "", err
	}
	detail := " (" + eni + ")"
	// EC2 took it from the target when reassigning it back; make sure, in
	// case a Describe lagged (or an emulator keeps both).
	if teni, terr := m.eniOf(ctx, target); terr == nil {
		if uerr := m.unassign(ctx, teni); uerr != nil {
			detail += fmt.Sprintf("; unassign from %s (%s) failed: %v", target, teni, uerr)
		}
	}
	if m.set.guest == "ssh" {
		if gerr := m.guest(ctx, target, false); gerr != nil {
			detail += fmt.Sprintf("; guest del on %s failed: %v", target, gerr)
		}
		if gerr := m.guest(ctx, prev, true); gerr != nil {
			detail += fmt.Sprintf("; guest add on %s failed: %v", prev, gerr)
		}
	}
	return detail, nil
}

// state says where the VIP is, for a MoveError.
func (m *SecondaryIP) state(ctx context.Context) string {
	names, foreign, err := m.locate(ctx)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return describeHolders(names, foreign)
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

// ClientAddress implements address.Addressed: clients connect to the
// secondary IP, so the factory checks the new primary before the move and
// a database through the address after it (option verify).
func (m *SecondaryIP) ClientAddress() string { return m.set.vip.String() }
