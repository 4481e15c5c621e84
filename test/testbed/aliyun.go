package testbed

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	alisim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
)

// AliyunPlane is the platform side of the Alibaba Cloud emulator on the
// bed: one instance per host in one vSwitch, and the VPC data plane
// following the emulator's state — a HaVip's master follows gratuitous
// ARP (a host that adds the address while associated becomes master, as
// on the platform) and reaches only the master; an ENI moves between the
// hosts' namespaces on attach and detach.
type AliyunPlane struct {
	Sim      *alisim.Server
	VPC      *VPC
	Instance map[string]string // host name -> instance id
	Host     map[string]string // instance id -> host name

	b      *Bed
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	moves  []string
}

// NewAliyunPlane registers the bed's hosts as instances (i-<prefix>-<host>)
// in sim and turns the VPC data plane on for the bed's VIP.
func (b *Bed) NewAliyunPlane(ctx context.Context, sim *alisim.Server) (*AliyunPlane, error) {
	p := &AliyunPlane{Sim: sim, b: b, Instance: map[string]string{}, Host: map[string]string{}, done: make(chan struct{})}
	for _, h := range b.Hosts {
		id := fmt.Sprintf("i-%s-%s", b.Opts.Prefix, h.Name)
		if err := sim.AddInstance(alisim.Instance{ID: id, PrivateIP: h.IP, ZoneID: "cn-hangzhou-h", VSwitchID: "vsw-" + b.Opts.Prefix, VpcID: "vpc-" + b.Opts.Prefix}); err != nil {
			return nil, fmt.Errorf("testbed: aliyun instance for %s: %w", h.Name, err)
		}
		p.Instance[h.Name], p.Host[id] = id, h.Name
	}
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		return nil, err
	}
	p.VPC = v
	close(p.done)
	return p, nil
}

// HaVip creates a HaVip for the bed's VIP, associated with and mastered by
// the host holding the VIP now (db1 after Up), and starts following it.
func (p *AliyunPlane) HaVip(ctx context.Context, id string) error {
	holder := p.vipHolders()
	if len(holder) != 1 {
		return fmt.Errorf("testbed: HaVip: the VIP is on %v, want exactly one host", holder)
	}
	inst := p.Instance[holder[0]]
	if err := p.Sim.AddHaVip(alisim.HaVip{ID: id, IP: p.b.VIP, VSwitchID: "vsw-" + p.b.Opts.Prefix, VpcID: "vpc-" + p.b.Opts.Prefix,
		Instances: []string{inst}, Master: inst}); err != nil {
		return fmt.Errorf("testbed: HaVip: %w", err)
	}
	if err := p.VPC.Assign(ctx, p.b.VIP, holder[0]); err != nil {
		return err
	}
	p.Sim.OnChange(func(e alisim.Event) {
		if e.Type == alisim.EventHaVipMaster && e.ResourceID == id {
			_ = p.VPC.Assign(context.Background(), p.b.VIP, p.Host[e.InstanceID])
			p.record("havip master " + p.Host[e.InstanceID])
		}
	})
	fctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		for fctx.Err() == nil {
			for _, h := range p.vipHolders() {
				if hv, ok := p.Sim.GetHaVip(id); ok && hv.Master != p.Instance[h] {
					_ = p.Sim.SetHaVipMaster(id, p.Instance[h])
				}
			}
			select {
			case <-fctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return nil
}

// ENI creates an ENI (number n, see Bed.NewENI) whose primary address is
// the bed's VIP, moves the VIP of the host holding it onto the ENI
// (attached there and configured as a guest does), and makes the ENI
// follow the emulator's attach and detach.
func (p *AliyunPlane) ENI(ctx context.Context, id string, n int) (*ENI, error) {
	holder := p.vipHolders()
	if len(holder) != 1 {
		return nil, fmt.Errorf("testbed: ENI: the VIP is on %v, want exactly one host", holder)
	}
	e, err := p.b.NewENI(ctx, id, n)
	if err != nil {
		return nil, err
	}
	if err := p.Sim.AddENI(alisim.ENI{ID: id, PrimaryIP: p.b.VIP, MAC: e.MAC, InstanceID: p.Instance[holder[0]],
		ZoneID: "cn-hangzhou-h", VSwitchID: "vsw-" + p.b.Opts.Prefix, VpcID: "vpc-" + p.b.Opts.Prefix}); err != nil {
		return nil, fmt.Errorf("testbed: ENI: %w", err)
	}
	h := p.b.Host(holder[0])
	if err := p.b.DelVIP(ctx, h); err != nil {
		return nil, err
	}
	if err := e.Attach(ctx, h.Name); err != nil {
		return nil, err
	}
	if out, err := p.b.Exec(ctx, h.NS, "sh", "-c", ENIGuestUp(e.Dev, p.b.VIP, p.b.subnet.String())); err != nil {
		return nil, fmt.Errorf("testbed: ENI guest side on %s: %w: %s", h.Name, err, out)
	}
	if err := p.VPC.BindENI(ctx, p.b.VIP, e); err != nil {
		return nil, err
	}
	p.Sim.OnChange(func(ev alisim.Event) {
		if ev.ResourceID != id {
			return
		}
		switch ev.Type {
		case alisim.EventENIAttached:
			_ = e.Attach(context.Background(), p.Host[ev.InstanceID])
			p.record("eni attached to " + p.Host[ev.InstanceID])
		case alisim.EventENIDetached:
			_ = e.Attach(context.Background(), "")
			p.record("eni detached")
		}
	})
	return e, nil
}

// ENIGuestUp is the shell a guest runs for a hot-plugged ENI: bring it up
// with its address and answer from that address through it (policy
// routing), since a VPC drops packets whose source address does not
// belong to the sending interface.
func ENIGuestUp(dev, ip, subnet string) string {
	return fmt.Sprintf("ip link set dev %[1]s up && ip addr replace %[2]s/32 dev %[1]s && "+
		"ip route replace %[3]s dev %[1]s src %[2]s table 199 && "+
		"{ ip rule show | grep -q 'from %[2]s lookup 199' || ip rule add from %[2]s lookup 199; }", dev, ip, subnet)
}

func (p *AliyunPlane) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.moves = append(p.moves, s)
}

// Moves lists what the data plane did, in order.
func (p *AliyunPlane) Moves() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.moves...)
}

// vipHolders lists the hosts with the VIP on any interface.
func (p *AliyunPlane) vipHolders() []string {
	var out []string
	for _, h := range p.b.Hosts {
		o, err := p.b.Exec(context.Background(), h.NS, "ip", "-o", "-4", "addr", "show")
		if err == nil && strings.Contains(string(o), " "+p.b.VIP+"/") {
			out = append(out, h.Name)
		}
	}
	return out
}

// Close stops following and removes the VPC data plane.
func (p *AliyunPlane) Close() error {
	if p.cancel != nil {
		p.cancel()
	}
	<-p.done
	return p.VPC.Close()
}

// EIP adds the EIP e to the emulator (e.IP an address of the internet's
// public pool, Internet.PublicIP; associated as e says, e.g. with db1's
// instance, which is InUse at once) and makes the internet's NAT gateway
// follow it: the public address reaches the private address the emulator
// maps it to while the association is InUse, and nothing otherwise — not
// yet while Associating (the gateway maps it when the emulator reports
// InUse), and no more from the moment UnassociateEipAddress is accepted
// (before the call answers). The second keeps the data plane from ever
// lagging the API: the emulator makes an asynchronous completion visible
// to Describe calls just before its event reaches the plane, so a plane
// that unmapped at Available could let a fast switchover reach the old
// primary after the mover saw Available. A mover still has to wait for
// Available: the emulator refuses to associate an EIP before.
func (p *AliyunPlane) EIP(ctx context.Context, inet *Internet, e alisim.EIP) error {
	if e.AllocationID == "" || e.IP == "" {
		return fmt.Errorf("testbed: aliyun EIP needs an allocation id and a public address")
	}
	if err := inet.AddEIP(ctx, e.IP); err != nil {
		return err
	}
	p.Sim.OnChange(func(ev alisim.Event) {
		if ev.ResourceID != e.AllocationID {
			return
		}
		to := ""
		switch ev.Type {
		case alisim.EventEIPAssociated:
			to = ev.IP
		case alisim.EventEIPUnassociating:
			// to stays "": the gateway drops the EIP from now on.
		default:
			p.record("eip " + strings.TrimPrefix(ev.Type, "eip.") + " " + p.b.hostOfIP(ev.IP))
			return
		}
		what := "eip " + strings.TrimPrefix(ev.Type, "eip.") + " " + p.b.hostOfIP(ev.IP)
		if err := inet.Bind(context.Background(), e.IP, to); err != nil {
			p.record(fmt.Sprintf("%s: NAT gateway: %v", what, err))
			return
		}
		p.record(what)
	})
	p.Sim.AddEIP(e)
	if got, ok := p.Sim.GetEIP(e.AllocationID); ok && got.Status == alisim.StatusInUse {
		if err := inet.Bind(ctx, e.IP, got.PrivateIP); err != nil {
			return err
		}
	}
	return nil
}
