package vip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

func testConfig() *config.Config {
	return &config.Config{
		Address: config.Address{Mover: "vip", VIP: "198.18.0.100", Interface: "eth0", Prefix: 24},
		Servers: []config.Server{
			{Name: "server1", Hostname: "198.18.0.11", Port: 3306, SSHUser: "root", SSHOptions: "-i /nonexistent -o StrictHostKeyChecking=no"},
			{Name: "server2", Hostname: "198.18.0.12", Port: 3306, SSHUser: "admin", SSHOptions: "-p 2222"},
		},
	}
}

func TestNewOptions(t *testing.T) {
	m, err := New(testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.servers[1].ssh.Addr != "198.18.0.12:2222" || m.servers[0].ssh.Addr != "198.18.0.11:22" {
		t.Errorf("ssh addresses %s %s", m.servers[0].ssh.Addr, m.servers[1].ssh.Addr)
	}
	if got := m.sh(m.servers[1], "ip addr"); got != "sudo -n sh -c 'PATH=$PATH:/usr/sbin:/sbin; ip addr'" {
		t.Errorf("non-root command %q", got)
	}
	if got := m.sh(m.servers[0], "ip addr"); got != "PATH=$PATH:/usr/sbin:/sbin; ip addr" {
		t.Errorf("root command %q", got)
	}
	for _, bad := range []config.Address{
		{VIP: "x", Interface: "eth0"},
		{VIP: "10.0.0.1", Interface: "eth0; reboot"},
		{VIP: "10.0.0.1", Interface: "eth0", Prefix: 33},
		{VIP: "10.0.0.1", Interface: "eth0", Options: map[string]string{"colour": "blue"}},
		{VIP: "10.0.0.1", Interface: "eth0", Options: map[string]string{"arping": "arping; reboot"}},
	} {
		cfg := testConfig()
		cfg.Address = bad
		if _, err := New(cfg, Options{}); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
}

func TestParseAddrs(t *testing.T) {
	m, err := New(testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := `2: eth0    inet 198.18.0.11/24 brd 198.18.0.255 scope global eth0\       valid_lft forever preferred_lft forever
2: eth0    inet 198.18.0.100/24 scope global secondary eth0\       valid_lft forever preferred_lft forever
2: eth0    inet 198.18.0.101/32 scope global eth0\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::1/64 scope link \       valid_lft forever preferred_lft forever
`
	got := m.parseAddrs(out)
	if len(got) != 1 || got[0] != netip.MustParsePrefix("198.18.0.100/24") {
		t.Errorf("parseAddrs = %v", got)
	}
	if got := m.parseAddrs(""); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

// serve answers every connection with greeting.
func serve(t *testing.T, greeting []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write(greeting)
			time.Sleep(50 * time.Millisecond)
			c.Close()
		}
	}()
	return l.Addr().String()
}

func packet(payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), 0}, payload...)
}

func TestHandshake(t *testing.T) {
	m, err := New(testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := m.handshake(ctx, serve(t, packet(append([]byte{10}, "10.11.9-MariaDB\x00\x01\x00\x00\x00"...))))
	if err != nil || v != "10.11.9-MariaDB" {
		t.Errorf("handshake = %q, %v", v, err)
	}
	if _, err := m.handshake(ctx, serve(t, []byte("SSH-2.0-OpenSSH_9.6\r\n"))); err == nil {
		t.Error("an SSH banner passed as MySQL")
	}
	if _, err := m.handshake(ctx, serve(t, packet([]byte("\xffj\x04Host '1.2.3.4' is not allowed")))); err != nil {
		t.Errorf("error packet: %v", err)
	}
}

// With the old primary unreachable over SSH, Release looks at the VIP.
func TestReleaseUnreachable(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		dial    func(ctx context.Context, network, addr string) (net.Conn, error)
		wantErr error
	}{
		{"nothing answers", func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, nil},
		{"MySQL answers", func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", serve(t, packet(append([]byte{10}, "8.0.36\x00"...))))
		}, ErrStillHeld},
		{"refused", func(ctx context.Context, _, _ string) (net.Conn, error) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}, ErrStillHeld},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(testConfig(), Options{Dial: c.dial, ProbeTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			err = m.Release(ctx, address.Change{Old: address.Target{Name: "server1", Port: 3306}, New: address.Target{Name: "server2"}})
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Errorf("Release = %v, want %v", err, c.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "fence") {
				t.Errorf("error does not say what to do: %v", err)
			}
		})
	}
}
