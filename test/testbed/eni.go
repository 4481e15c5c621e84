package testbed

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// ENI is an elastic network interface as a real interface: a veth pair
// whose switch side is a port of the bed's bridge and whose other side —
// the ENI, with its own MAC — lives in the namespace of the host it is
// attached to, or in the switch namespace (down, reaching nothing) while it
// is detached. Moving a namespace's interface away drops its addresses and
// brings it down, as hot-unplugging a NIC does; the guest must bring it up
// and configure it after an attach, exactly as on a cloud instance. A cloud
// emulator calls Attach when its state says the ENI moved.
type ENI struct {
	b    *Bed
	ID   string // the cloud's id (eni-…), for messages
	Port string // switch-side veth (on br0)
	Dev  string // the ENI's interface name
	MAC  string

	mu     sync.Mutex
	holder string // host name; "" = detached
}

// NewENI creates a detached ENI. n (0–99) makes the interface names
// unique within the bed: the ENI is <n>eni on the host, its switch port
// e<n>eni. Bed.Close removes it with the switch namespace.
func (b *Bed) NewENI(ctx context.Context, id string, n int) (*ENI, error) {
	if n < 0 || n > 99 {
		return nil, fmt.Errorf("testbed: eni number %d out of range 0–99", n)
	}
	e := &ENI{b: b, ID: id, Port: fmt.Sprintf("e%deni", n), Dev: fmt.Sprintf("eni%d", n)}
	// A locally administered, bed-specific MAC.
	e.MAC = fmt.Sprintf("02:cd:%02x:00:00:%02x", len(b.Hosts), n)
	for _, args := range [][]string{
		{"-n", b.SwitchNS, "link", "add", e.Port, "type", "veth", "peer", "name", e.Dev},
		{"-n", b.SwitchNS, "link", "set", e.Dev, "address", e.MAC},
		{"-n", b.SwitchNS, "link", "set", e.Port, "master", "br0", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return nil, fmt.Errorf("testbed: create ENI %s: %w", id, err)
		}
	}
	return e, nil
}

// Attach moves the ENI into host's namespace ("" detaches it into the
// switch namespace). The interface arrives down and without address.
func (e *ENI) Attach(ctx context.Context, host string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if host == e.holder {
		return nil
	}
	from := e.b.SwitchNS
	if e.holder != "" {
		from = e.b.Host(e.holder).NS
	}
	to := e.b.SwitchNS
	if host != "" {
		h := e.b.Host(host)
		if h == nil {
			return fmt.Errorf("testbed: attach ENI %s to unknown host %q", e.ID, host)
		}
		to = h.NS
	}
	// Down and unaddressed first, as a hot-unplug leaves it.
	_ = run(ctx, "ip", "-n", from, "addr", "flush", "dev", e.Dev)
	_ = run(ctx, "ip", "-n", from, "link", "set", e.Dev, "down")
	if err := run(ctx, "ip", "-n", from, "link", "set", e.Dev, "netns", to); err != nil {
		return fmt.Errorf("testbed: move ENI %s from %s to %s: %w", e.ID, from, to, err)
	}
	e.holder = host
	return nil
}

// Holder returns the host the ENI is attached to ("" when detached).
func (e *ENI) Holder() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holder
}

// Up reports whether the ENI is up with addr in its holder's namespace.
func (e *ENI) Up(ctx context.Context, addr string) bool {
	h := e.Holder()
	if h == "" {
		return false
	}
	out, err := output(ctx, "ip", "-n", e.b.Host(h).NS, "-o", "-4", "addr", "show", "dev", e.Dev, "up")
	return err == nil && strings.Contains(string(out), " "+addr+"/")
}
