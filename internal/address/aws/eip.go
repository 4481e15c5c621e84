package aws

import (
	"context"
	"fmt"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

// EIP moves an Elastic IP between the servers (their ENI, or their
// instance when only instance_id is configured).
type EIP struct {
	*base
}

var (
	_ address.Mover         = (*EIP)(nil)
	_ address.StatusChecker = (*EIP)(nil)
)

// NewEIP builds the aws-eip mover. It validates the options and builds the
// EC2 client; ENIs are discovered on first use.
func NewEIP(cfg *config.Config, o Options) (address.Mover, error) {
	b, err := newBase(KindEIP, cfg, o)
	if err != nil {
		return nil, err
	}
	if b.set.allocID != "" {
		b.log = b.log.With("allocation_id", b.set.allocID)
	} else {
		b.log = b.log.With("public_ip", b.set.publicIP.String())
	}
	return &EIP{base: b}, nil
}

// Kind implements address.Mover.
func (m *EIP) Kind() string { return KindEIP }

// address returns the Elastic IP as EC2 describes it now.
func (m *EIP) address(ctx context.Context) (types.Address, error) {
	in := &ec2.DescribeAddressesInput{}
	what := m.set.allocID
	if what != "" {
		in.AllocationIds = []string{what}
	} else {
		what = m.set.publicIP.String()
		in.PublicIps = []string{what}
	}
	out, err := m.api.DescribeAddresses(ctx, in)
	if err != nil {
		return types.Address{}, fmt.Errorf("describe Elastic IP %s: %w", what, err)
	}
	if len(out.Addresses) != 1 {
		return types.Address{}, fmt.Errorf("elastic IP %s: %d addresses described: %w", what, len(out.Addresses), ErrNotFound)
	}
	return out.Addresses[0], nil
}

// holderOfAddr maps an address's association to a configured server.
func (m *EIP) holderOfAddr(ctx context.Context, a types.Address) (names, foreign []string, err error) {
	eni, inst := sdkaws.ToString(a.NetworkInterfaceId), sdkaws.ToString(a.InstanceId)
	if eni == "" && inst == "" {
		return nil, nil, nil
	}
	for _, s := range m.servers {
		if inst != "" && m.set.instance[s.Name] == inst {
			return []string{s.Name}, nil, nil
		}
	}
	if eni != "" {
		enis, err := m.allENIs(ctx)
		if err != nil {
			return nil, nil, err
		}
		for n, id := range enis {
			if id == eni {
				return []string{n}, nil, nil
			}
		}
	}
	id := eni
	if id == "" {
		id = inst
	}
	return nil, []string{id}, nil
}

// locate returns who holds the Elastic IP and its association id.
func (m *EIP) locate(ctx context.Context) (names, foreign []string, assoc string, err error) {
	a, err := m.address(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	names, foreign, err = m.holderOfAddr(ctx, a)
	return names, foreign, sdkaws.ToString(a.AssociationId), err
}

// Holder implements address.Mover.
func (m *EIP) Holder(ctx context.Context) (string, error) {
	names, foreign, _, err := m.locate(ctx)
	if err != nil {
		return "", fmt.Errorf("%s holder: %w", m.kind, err)
	}
	return holderOf(m.kind, names, foreign)
}

// Status implements address.StatusChecker.
func (m *EIP) Status(ctx context.Context, primary address.Target) error {
	h, err := m.Holder(ctx)
	return status(m.kind, h, err, primary)
}

// moveTo associates the Elastic IP with server name and waits until EC2
// shows it.
func (m *EIP) moveTo(ctx context.Context, name string) error {
	in := &ec2.AssociateAddressInput{AllowReassociation: sdkaws.Bool(true)}
	if m.set.allocID != "" {
		in.AllocationId = sdkaws.String(m.set.allocID)
	} else {
		a, err := m.address(ctx)
		if err != nil {
			return err
		}
		in.AllocationId = a.AllocationId
	}
	target := ""
	if inst := m.set.instance[name]; inst != "" && m.set.eni[name] == "" {
		in.InstanceId = sdkaws.String(inst)
		target = inst
	} else {
		eni, err := m.eniOf(ctx, name)
		if err != nil {
			return err
		}
		in.NetworkInterfaceId = sdkaws.String(eni)
		target = eni
	}
	if _, err := m.api.AssociateAddress(ctx, in); err != nil {
		return fmt.Errorf("associate with %s (%s): %w", name, target, err)
	}
	return m.wait(ctx, fmt.Sprintf("Elastic IP on %s (%s)", name, target), func(ctx context.Context) (bool, string, error) {
		names, foreign, _, err := m.locate(ctx)
		if err != nil {
			return false, "", err
		}
		return len(names) == 1 && names[0] == name && len(foreign) == 0, describeHolders(names, foreign), nil
	})
}

// Acquire implements address.Mover: the Elastic IP is associated with the
// new primary (reassociated from wherever it is). On failure see
// core.acquireFailed: it is put back only on a switchover.
func (m *EIP) Acquire(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "acquire", "server", c.New.Name, "online", c.Online)
	if _, err := m.server(c.New.Name); err != nil {
		return fmt.Errorf("%s acquire: %w", m.kind, err)
	}
	before, foreign, _, err := m.locate(ctx)
	known := err == nil
	if !known {
		log.Warn("cannot tell where the Elastic IP is before moving it: no rollback possible", "err", err)
	}
	if known && len(foreign) == 0 && len(before) == 1 && before[0] == c.New.Name {
		log.Info("Elastic IP already on the new primary")
		return nil
	}
	if err := m.moveTo(ctx, c.New.Name); err != nil {
		undo := putBack("the Elastic IP", c.New.Name, known, before, foreign, func(ctx context.Context, prev string) (string, error) {
			return "", m.moveTo(ctx, prev)
		})
		return m.acquireFailed(ctx, c, err, undo, m.state)
	}
	log.Info("Elastic IP acquired", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// state says where the Elastic IP is, for a MoveError.
func (m *EIP) state(ctx context.Context) string {
	names, foreign, _, err := m.locate(ctx)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return describeHolders(names, foreign)
}

// Release implements address.Mover: when the Elastic IP is associated with
// the old primary it is disassociated; elsewhere or nowhere is success.
func (m *EIP) Release(ctx context.Context, c address.Change) error {
	start := time.Now()
	log := m.log.With("op", "release", "server", c.Old.Name)
	names, foreign, assoc, err := m.locate(ctx)
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	if len(names) != 1 || names[0] != c.Old.Name {
		log.Info("Elastic IP not on the old primary: nothing to release", "now", describeHolders(names, foreign))
		return nil
	}
	_, err = m.api.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: sdkaws.String(assoc)})
	if err != nil && apiCode(err) != "InvalidAssociationID.NotFound" {
		return fmt.Errorf("%s release: disassociate %s from %s: %w", m.kind, assoc, c.Old.Name, err)
	}
	err = m.wait(ctx, "Elastic IP gone from "+c.Old.Name, func(ctx context.Context) (bool, string, error) {
		names, foreign, _, err := m.locate(ctx)
		if err != nil {
			return false, "", err
		}
		return len(names) == 0 || names[0] != c.Old.Name, describeHolders(names, foreign), nil
	})
	if err != nil {
		return fmt.Errorf("%s release: %w", m.kind, err)
	}
	log.Info("Elastic IP released", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
