package testbed

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Listen opens a TCP listener inside namespace ns (the socket belongs to
// that namespace for its whole life), on addr, which must be a loopback
// or bed address. Tests serve an in-process emulator this way to a manager
// running in the manager namespace, where 127.0.0.1 is its own loopback.
func (b *Bed) Listen(ns, addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("testbed: listen %s: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !(ip.IsLoopback() || b.subnet.Contains(ip)) {
		return nil, fmt.Errorf("testbed: listen %s: only loopback or test-bed addresses", addr)
	}
	if ip.IsLoopback() {
		if err := run(context.Background(), "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	var l net.Listener
	err = inNetNS(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: listen %s in %s: %w", addr, ns, err)
	}
	return l, nil
}
