package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	tcsim "github.com/cloudmha/cloudmha/internal/cloudsim/tencent"
)

// TencentPlane is the platform side of the Tencent Cloud emulator on the
// bed: one CVM instance per host in one subnet, whose primary ENI is the
// host's eth0 (its MAC and private IP), and the VPC data plane following
// the emulator's HaVip. Binding a HaVip is ARP-driven on the platform: no
// API call binds one. A host that has the address on an interface and
// announces it with gratuitous ARP (seen on the wire: an ARP packet whose
// sender and target address are the HaVip's, counted at the host's switch
// port) claims the HaVip; the emulator accepts the claim unless the HaVip
// checks its drift scope and the host's instance is outside it. The VPC
// delivers the address only to the holder, and to nobody while the HaVip
// is unbound. Adding the address without announcing it claims nothing.
type TencentPlane struct {
	Sim      *tcsim.Server
	VPC      *VPC
	Instance map[string]string // host name -> instance id (ins-…)
	ENI      map[string]string // host name -> primary ENI id (eni-…)
	Host     map[string]string // instance or ENI id -> host name
	SubnetID string
	VpcID    string

	b      *Bed
	mu     sync.Mutex
	havip  string // the HaVip followed ("" before HaVip)
	closed bool   // Close ran: events no longer touch the VPC
	moves  []string
	cancel context.CancelFunc
	done   chan struct{}
}

// tencentGARPTable is the nftables table (bridge family, switch namespace)
// counting each host port's gratuitous ARP for the bed's VIP.
const tencentGARPTable = "cmha_tcgarp"

// NewTencentPlane registers the bed's hosts as instances (ins-<prefix>-<host>,
// primary ENI eni-<prefix>-<host> with the host's eth0 MAC and IP) in one
// subnet of sim and turns the VPC data plane on for the bed's VIP
// (delivered to nobody until HaVip).
func (b *Bed) NewTencentPlane(ctx context.Context, sim *tcsim.Server) (*TencentPlane, error) {
	p := &TencentPlane{Sim: sim, b: b, Instance: map[string]string{}, ENI: map[string]string{}, Host: map[string]string{},
		SubnetID: "subnet-" + b.Opts.Prefix, VpcID: "vpc-" + b.Opts.Prefix}
	for _, h := range b.Hosts {
		mac, err := b.hostMAC(ctx, h)
		if err != nil {
			return nil, err
		}
		id, eni := fmt.Sprintf("ins-%s-%s", b.Opts.Prefix, h.Name), fmt.Sprintf("eni-%s-%s", b.Opts.Prefix, h.Name)
		if err := sim.AddInstance(tcsim.Instance{ID: id, PrivateIP: h.IP, SubnetID: p.SubnetID, VpcID: p.VpcID,
			Zone: sim.Region() + "-3", ENIID: eni, MAC: mac}); err != nil {
			return nil, fmt.Errorf("testbed: tencent instance for %s: %w", h.Name, err)
		}
		p.Instance[h.Name], p.ENI[h.Name] = id, eni
		p.Host[id], p.Host[eni] = h.Name, h.Name
	}
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		return nil, err
	}
	p.VPC = v
	return p, nil
}

// hostMAC is the MAC address of h's interface.
func (b *Bed) hostMAC(ctx context.Context, h *Host) (string, error) {
	out, err := output(ctx, "ip", "-n", h.NS, "-o", "link", "show", "dev", h.Iface)
	if err != nil {
		return "", fmt.Errorf("testbed: MAC of %s: %w", h.Name, err)
	}
	f := strings.Fields(string(out))
	for i := range len(f) - 1 {
		if f[i] == "link/ether" {
			return strings.ToLower(f[i+1]), nil
		}
	}
	return "", fmt.Errorf("testbed: no MAC for %s in %q", h.Name, out)
}

// HaVip creates a HaVip for the bed's VIP in the plane's subnet, checking
// its drift scope, with the instance of the host holding the VIP now (db1
// after Up) as its only association and its holder, and starts following
// it: gratuitous ARP claims it, its holder events drive the VPC. One plane
// follows one HaVip.
func (p *TencentPlane) HaVip(ctx context.Context, id string) error {
	p.mu.Lock()
	if p.havip != "" {
		p.mu.Unlock()
		return fmt.Errorf("testbed: HaVip %s: the plane already follows %s", id, p.havip)
	}
	p.havip = id
	p.mu.Unlock()
	holder := p.vipHolders(ctx)
	if len(holder) != 1 {
		return fmt.Errorf("testbed: HaVip: the VIP is on %v, want exactly one host", holder)
	}
	h := holder[0]
	if err := p.Sim.AddHaVip(tcsim.HaVip{ID: id, Vip: p.b.VIP, Name: "cloudmha-" + p.b.Opts.Prefix, SubnetID: p.SubnetID, VpcID: p.VpcID,
		CheckAssociate: true, Associations: []tcsim.Association{{InstanceID: p.Instance[h], Type: tcsim.AssocCVM}},
		InstanceID: p.Instance[h], NetworkInterfaceID: p.ENI[h], FlushedTime: time.Now()}); err != nil {
		return fmt.Errorf("testbed: HaVip: %w", err)
	}
	if err := p.VPC.Assign(ctx, p.b.VIP, h); err != nil {
		return err
	}
	p.Sim.OnChange(func(e tcsim.Event) {
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed || e.ResourceID != id {
			return
		}
		switch e.Type {
		case tcsim.EventHaVipHolder:
			to := p.Host[e.NetworkInterfaceID]
			if err := p.VPC.Assign(context.Background(), p.b.VIP, to); err != nil {
				p.record(fmt.Sprintf("havip holder %s: VPC: %v", to, err))
				return
			}
			p.record("havip holder " + to)
		case tcsim.EventHaVipUnbound:
			if err := p.VPC.Assign(context.Background(), p.b.VIP, ""); err != nil {
				p.record(fmt.Sprintf("havip unbound: VPC: %v", err))
				return
			}
			p.record("havip unbound")
		case tcsim.EventHaVipAssociated, tcsim.EventHaVipDisassociated:
			p.record(strings.TrimPrefix(e.Type, "havip.") + " " + p.Host[e.InstanceID])
		}
	})
	if err := p.garpCounters(ctx); err != nil {
		return err
	}
	fctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.mu.Lock()
	p.cancel, p.done = cancel, done
	p.mu.Unlock()
	go p.follow(fctx, id, done)
	return nil
}

// follow claims the HaVip for every host that announced the address
// (its gratuitous ARP counter grew) while having it configured, every
// 100 ms until ctx ends.
func (p *TencentPlane) follow(ctx context.Context, id string, done chan struct{}) {
	defer close(done)
	seen := map[string]uint64{}
	for ctx.Err() == nil {
		if counts, err := p.readGARP(ctx); err == nil {
			var announced []string
			for _, h := range p.b.Hosts {
				if counts[h.Name] > seen[h.Name] {
					announced = append(announced, h.Name)
				}
				seen[h.Name] = counts[h.Name]
			}
			if len(announced) > 0 {
				has := p.vipHolders(ctx)
				for _, h := range announced {
					if !slices.Contains(has, h) {
						continue // an announcement for an address the host no longer has
					}
					hv, _ := p.Sim.GetHaVip(id)
					if hv.NetworkInterfaceID == p.ENI[h] {
						continue
					}
					if err := p.Sim.SetHaVipHolder(id, p.ENI[h]); err != nil {
						p.record(fmt.Sprintf("claim by %s ignored: %v", h, err))
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// garpCounters sets up one counter per host port for ARP packets whose
// sender and target addresses are both the VIP (gratuitous ARP, request
// or reply), seen as they enter the switch: before the VPC's rules, so
// that a claim from a host the VPC does not deliver the address to counts
// too, as the platform sees it.
func (p *TencentPlane) garpCounters(ctx context.Context) error {
	var r strings.Builder
	fmt.Fprintf(&r, "table bridge %[1]s\ndelete table bridge %[1]s\ntable bridge %[1]s {\n", tencentGARPTable)
	for _, h := range p.b.Hosts {
		fmt.Fprintf(&r, " counter %s { }\n", h.Name)
	}
	r.WriteString(" chain garp {\n  type filter hook prerouting priority -300; policy accept;\n")
	for _, h := range p.b.Hosts {
		fmt.Fprintf(&r, "  arp saddr ip %[1]s arp daddr ip %[1]s iifname %[2]q counter name %[3]q\n", p.b.VIP, h.SwitchIface, h.Name)
	}
	r.WriteString(" }\n}\n")
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := commandIn(c, p.b.SwitchNS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(r.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: gratuitous ARP counters: %w: %s", err, out)
	}
	return nil
}

// readGARP returns the gratuitous ARP packets counted per host.
func (p *TencentPlane) readGARP(ctx context.Context) (map[string]uint64, error) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := commandIn(c, p.b.SwitchNS, "nft", "-j", "list", "counters", "table", "bridge", tencentGARPTable).Output()
	if err != nil {
		return nil, fmt.Errorf("testbed: read gratuitous ARP counters: %w", err)
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("testbed: gratuitous ARP counters: %w", err)
	}
	m := map[string]uint64{}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			m[o.Counter.Name] = o.Counter.Packets
		}
	}
	return m, nil
}

// GARP returns how many gratuitous ARP packets for the VIP each host sent
// since HaVip (nil before).
func (p *TencentPlane) GARP(ctx context.Context) map[string]uint64 {
	p.mu.Lock()
	following := p.havip != ""
	p.mu.Unlock()
	if !following {
		return nil
	}
	m, _ := p.readGARP(ctx)
	return m
}

func (p *TencentPlane) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.moves = append(p.moves, time.Now().Format("15:04:05.000")+" "+s)
}

// Moves lists what the data plane did (holder changes, refused claims,
// drift scope changes), in order.
func (p *TencentPlane) Moves() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.moves...)
}

// vipHolders lists the hosts with the VIP on any interface.
func (p *TencentPlane) vipHolders(ctx context.Context) []string {
	var out []string
	for _, h := range p.b.Hosts {
		o, err := p.b.Exec(ctx, h.NS, "ip", "-o", "-4", "addr", "show")
		if err == nil && strings.Contains(string(o), " "+p.b.VIP+"/") {
			out = append(out, h.Name)
		}
	}
	return out
}

// Close stops following and removes the counters and the VPC data plane.
func (p *TencentPlane) Close() error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.closed = true
	p.mu.Unlock()
	var errs []error
	if cancel != nil {
		cancel()
		<-done
		c, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := commandIn(c, p.b.SwitchNS, "nft", "delete", "table", "bridge", tencentGARPTable).CombinedOutput()
		ccancel()
		if err != nil && !strings.Contains(string(out), "No such file") {
			errs = append(errs, fmt.Errorf("testbed: remove gratuitous ARP counters: %w: %s", err, out))
		}
	}
	if p.VPC != nil {
		errs = append(errs, p.VPC.Close())
	}
	return errors.Join(errs...)
}
