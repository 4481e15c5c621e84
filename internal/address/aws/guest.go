package aws

import (
	"context"
	"fmt"

	"github.com/cloudmha/cloudmha/internal/remote"
)

// guestCommand is the shell command that adds or deletes the address (the
// secondary IP, or the route's overlay IP) on the guest's interface; an
// address already present (add) or absent (del) is success.
func (m *core) guestCommand(add bool, user string) string {
	p := fmt.Sprintf("%s/%d", m.set.vip, m.set.prefix)
	var cmd string
	if add {
		cmd = fmt.Sprintf("ip -o addr show dev %[2]s | grep -qF ' %[1]s ' || ip addr add %[1]s dev %[2]s", p, m.set.iface)
	} else {
		cmd = fmt.Sprintf("if ip -o addr show dev %[2]s | grep -qF ' %[1]s '; then ip addr del %[1]s dev %[2]s; fi", p, m.set.iface)
	}
	return remote.AdminShell(cmd, m.set.sudo == "yes" || m.set.sudo == "auto" && user != "root")
}

// guest adds (or deletes) the address on a server's interface over SSH.
func (m *core) guest(ctx context.Context, name string, add bool) error {
	srv, err := m.server(name)
	if err != nil {
		return err
	}
	t, err := remote.TargetFor(srv, m.dial)
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
