package movers

import (
	"strings"
	"testing"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

func TestNew(t *testing.T) {
	servers := []config.Server{{Name: "server1", Hostname: "10.0.0.11", Port: 3306, SSHUser: "root"}}
	cases := []struct {
		name    string
		cfg     config.Config
		kind    string // "" = nil mover
		wantErr string
	}{
		{"none", config.Config{}, "", ""},
		{"none spelled out", config.Config{Address: config.Address{Mover: "none"}}, "", ""},
		{"vip", config.Config{Address: config.Address{Mover: "vip", VIP: "10.0.0.100", Interface: "eth0", Prefix: 24}}, "vip", ""},
		{"script", config.Config{MasterIPFailoverScript: "/bin/true", Address: config.Address{Mover: "script"}}, "script", ""},
		{"online change script only", config.Config{MasterIPOnlineChangeScript: "/bin/true"}, "script", ""},
		{"script without a script", config.Config{Address: config.Address{Mover: "script"}}, "", "needs master_ip_failover_script"},
		{"unknown kind", config.Config{Address: config.Address{Mover: "gcp-vip"}}, "", "unknown address mover gcp-vip (available: vip, script, aliyun-havip"},
		{"tencent kind validated at start", config.Config{Address: config.Address{Mover: "tencent-havip"}}, "", "region"},
		{"rfc2136 validated at start", config.Config{Address: config.Address{Mover: "rfc2136"}}, "", "server"},
		{"bad verify option", config.Config{Address: config.Address{Mover: "aws-eip", Options: map[string]string{"verify": "ping"}}}, "", "verify=\"ping\": want mysql, tcp or none"},
		{"cloud kind validated at start", config.Config{Address: config.Address{Mover: "aliyun-havip"}}, "", "option region is required"},
		{"aws kind validated at start", config.Config{Address: config.Address{Mover: "aws-eip"}}, "", "aws-eip"},
		{"bad vip", config.Config{Address: config.Address{Mover: "vip", VIP: "nope", Interface: "eth0"}}, "", "vip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Servers = servers
			m, err := New(&c.cfg, Options{})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.kind == "" {
				if m != nil {
					t.Fatalf("mover %v, want nil", m)
				}
				return
			}
			if m == nil || m.Kind() != c.kind {
				t.Fatalf("mover %v, want kind %s", m, c.kind)
			}
			if _, ok := m.(address.StatusChecker); !ok {
				t.Errorf("%s mover does not implement StatusChecker", c.kind)
			}
		})
	}
}
