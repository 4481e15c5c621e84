package remote

import (
	"net"
	"strconv"

	"github.com/cloudmha/cloudmha/internal/config"
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
