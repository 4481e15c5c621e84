package remote

import (
	"net"
	"strconv"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
)

// TargetFor is how the address movers reach server s over SSH: its
// ssh_host/ssh_ip/ssh_port, a Port in ssh_options winning over them (as
// ssh(1) does), port 22 when none is set, user root when ssh_user is
// empty, and its ssh_connection_timeout.
func TargetFor(s config.Server, dial DialFunc) (Target, error) {
	o, err := ParseSSHOptions(s.SSHOptions)
	if err != nil {
		return Target{}, err
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
	return Target{Addr: net.JoinHostPort(host, port), User: user, Options: o, Timeout: s.SSHConnectionTimeout, Dial: dial}, nil
}

// AdminShell wraps cmd for a remote shell that changes the host's network
// (ip, arping): a PATH that has them (non-login SSH sessions often lack
// /usr/sbin), and `sudo -n sh -c` when sudo is true (an ssh_user other
// than root).
func AdminShell(cmd string, sudo bool) string {
	cmd = "PATH=$PATH:/usr/sbin:/sbin; " + cmd
	if sudo {
		return "sudo -n sh -c " + hooks.ShellQuote(cmd)
	}
	return cmd
}
