package remote

import (
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

func TestTargetFor(t *testing.T) {
	cases := []struct {
		name       string
		s          config.Server
		addr, user string
	}{
		{"defaults", config.Server{Hostname: "db1"}, "db1:22", "root"},
		{"ssh_ip and port", config.Server{Hostname: "db1", SSHIP: "10.0.0.5", SSHPort: 2222, SSHUser: "mha"}, "10.0.0.5:2222", "mha"},
		{"ssh_options port wins", config.Server{Hostname: "db1", SSHPort: 2222, SSHOptions: "-p 2200"}, "db1:2200", "root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.s.SSHConnectionTimeout = 3 * time.Second
			got, err := TargetFor(c.s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Addr != c.addr || got.User != c.user || got.Timeout != 3*time.Second {
				t.Errorf("TargetFor = %s@%s (timeout %s), want %s@%s", got.User, got.Addr, got.Timeout, c.user, c.addr)
			}
		})
	}
	if _, err := TargetFor(config.Server{Hostname: "db1", SSHOptions: "-o Port=nope"}, nil); err == nil {
		t.Error("a bad ssh_options was accepted")
	}
}

func TestAdminShell(t *testing.T) {
	if got := AdminShell("ip addr add 10.0.0.9/32 dev eth0", false); got != "PATH=$PATH:/usr/sbin:/sbin; ip addr add 10.0.0.9/32 dev eth0" {
		t.Errorf("as root: %q", got)
	}
	if got := AdminShell("ip link set dev 'x' up", true); got != `sudo -n sh -c 'PATH=$PATH:/usr/sbin:/sbin; ip link set dev '\''x'\'' up'` {
		t.Errorf("with sudo: %q", got)
	}
}
