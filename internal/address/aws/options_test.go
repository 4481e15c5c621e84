package aws

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

func testConfig(kind string, opts map[string]string) *config.Config {
	return &config.Config{
		Servers: []config.Server{{Name: "server1", IP: "10.0.1.10"}, {Name: "server2", Hostname: "db2.internal"}},
		Address: config.Address{Mover: kind, Options: opts},
	}
}

func TestParseSettings(t *testing.T) {
	s, err := parseSettings(KindSecondaryIP, testConfig(KindSecondaryIP, map[string]string{
		"vip": "10.0.1.100", "region": "eu-west-1", "eni_id.server2": "eni-0123456789abcdef0",
		"wait_timeout": "5s", "guest": "none", "interface": "ens5", "prefix": "24", "rollback": "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.vip.String() != "10.0.1.100" || s.region != "eu-west-1" || s.eni["server2"] != "eni-0123456789abcdef0" ||
		s.waitTimeout != 5*time.Second || s.guest != "none" || s.iface != "ens5" || s.prefix != 24 || s.rollback {
		t.Fatalf("settings %+v", s)
	}
	// Defaults, and the VIP from cfg.Address.VIP.
	cfg := testConfig(KindSecondaryIP, map[string]string{"instance_id.server2": "i-0123456789abcdef0"})
	cfg.Address.VIP = "10.0.1.101"
	s, err = parseSettings(KindSecondaryIP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.iface != DefaultInterface || s.prefix != 32 || s.guest != "ssh" || s.sudo != "auto" || !s.rollback || s.waitTimeout != DefaultWaitTimeout {
		t.Fatalf("defaults %+v", s)
	}
	s, err = parseSettings(KindEIP, testConfig(KindEIP, map[string]string{"allocation_id": "eipalloc-0123456789abcdef0", "eni_id.server2": "eni-01234567"}))
	if err != nil || s.allocID != "eipalloc-0123456789abcdef0" {
		t.Fatalf("eip: %+v, %v", s, err)
	}
}

func TestParseSettingsErrors(t *testing.T) {
	eni2 := "eni-0123456789abcdef0"
	for _, tc := range []struct {
		kind string
		opts map[string]string
		want string
	}{
		{KindSecondaryIP, map[string]string{"eni_id.server2": eni2}, "vip"},
		{KindSecondaryIP, map[string]string{"vip": "fe80::1", "eni_id.server2": eni2}, "IPv4"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100"}, "server2: give option eni_id.server2"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": "eni-zz"}, "want an ENI id"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server9": eni2}, `no server named "server9"`},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": eni2, "instance_id.server1": "i-x"}, "instance id"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": eni2, "guest": "telnet"}, "want ssh or none"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": eni2, "interface": "eth0; rm -rf /"}, "interface"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": eni2, "prefix": "33"}, "out of range"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": eni2, "wait_timeout": "-1s"}, "duration"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": eni2, "allocation_id": "eipalloc-01234567"}, "unknown option"},
		{KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": eni2, "secret_key": "x"}, "unknown option"},
		{KindEIP, map[string]string{"eni_id.server2": eni2}, "allocation_id"},
		{KindEIP, map[string]string{"allocation_id": "alloc-1", "eni_id.server2": eni2}, "allocation id"},
		{KindEIP, map[string]string{"allocation_id": "eipalloc-01234567", "eni_id.server2": eni2, "vip": "10.0.0.1"}, "unknown option"},
		{KindEIP, map[string]string{"allocation_id": "eipalloc-01234567", "eni_id.server2": eni2, "region": "eu west"}, "region"},
		{KindRoute, map[string]string{"cidr": "192.168.100.10/32", "eni_id.server2": eni2}, "option route_tables is required"},
		{KindRoute, map[string]string{"route_tables": "rtb-01234567", "eni_id.server2": eni2}, "option cidr is required"},
		{KindRoute, map[string]string{"route_tables": "rtb-01234567,igw-01234567", "cidr": "192.168.100.10", "eni_id.server2": eni2}, "option route_tables="},
		{KindRoute, map[string]string{"route_tables": "rtb-01234567,rtb-01234567", "cidr": "192.168.100.10", "eni_id.server2": eni2}, "listed twice"},
		{KindRoute, map[string]string{"route_tables": "rtb-01234567", "cidr": "192.168.100.0/24", "eni_id.server2": eni2}, "option cidr"},
		{KindRoute, map[string]string{"route_tables": "rtb-01234567", "cidr": "192.168.100.10", "eni_id.server2": eni2, "source_dest_check": "off"}, "option source_dest_check="},
		{KindRoute, map[string]string{"route_tables": "rtb-01234567", "cidr": "192.168.100.10", "eni_id.server2": eni2, "prefix": "24"}, "unknown option \"prefix\""},
		{KindRoute, map[string]string{"route_tables": "rtb-01234567", "cidr": "192.168.100.10"}, "eni_id.server2"},
		{KindRoute53, map[string]string{"name": "db.example.com", "ip.server2": "10.0.1.11"}, "option hosted_zone_id is required"},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "ip.server2": "10.0.1.11"}, "option name is required"},
		{KindRoute53, map[string]string{"hosted_zone_id": "zone 1", "name": "db.example.com", "ip.server2": "10.0.1.11"}, "option hosted_zone_id="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db", "ip.server2": "10.0.1.11"}, "option name="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db..example.com", "ip.server2": "10.0.1.11"}, "option name="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com"}, "ip.server2"},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.10"}, "both publish"},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "fe80::1"}, "option ip.server2="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.11", "ttl": "-1"}, "option ttl="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.11", "type": "CNAME"}, "option type="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.11", "on_release": "drop"}, "option on_release="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.11", "wait_insync": "maybe"}, "option wait_insync="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.11", "poll_interval": "1ms"}, "option poll_interval="},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.11", "eni_id.server2": eni2}, "unknown option"},
		{KindRoute53, map[string]string{"hosted_zone_id": "Z01234567", "name": "db.example.com", "ip.server2": "10.0.1.11", "guest": "ssh"}, "unknown option"},
	} {
		_, err := parseSettings(tc.kind, testConfig(tc.kind, tc.opts))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want it to mention %q", tc.kind, tc.opts, err, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/cloudmha-test-config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cloudmha-test-credentials")
	cfg := testConfig(KindEIP, map[string]string{"allocation_id": "eipalloc-01234567", "eni_id.server2": "eni-01234567", "endpoint": "ftp://x"})
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "endpoint") {
		t.Fatalf("bad endpoint: %v", err)
	}
	cfg.Address.Options["endpoint"] = "http://127.0.0.1:1"
	m, err := New(cfg, Options{})
	if err != nil || m.Kind() != KindEIP {
		t.Fatalf("New: %v, %v", m, err)
	}
	cfg.Address.Mover = "aws-nat"
	if _, err := New(cfg, Options{}); err == nil {
		t.Fatal("unknown kind accepted")
	}
	route := testConfig(KindRoute, map[string]string{"route_tables": "rtb-01234567", "cidr": "192.168.100.10/32", "eni_id.server2": "eni-01234567", "endpoint": "http://127.0.0.1:1"})
	if m, err := New(route, Options{}); err != nil || m.Kind() != KindRoute {
		t.Fatalf("New(aws-route): %v, %v", m, err)
	}
	dns := testConfig(KindRoute53, map[string]string{"hosted_zone_id": "Z0123456789", "name": "db.example.com", "ip.server2": "10.0.1.11", "endpoint": "http://127.0.0.1:1"})
	if m, err := New(dns, Options{}); err != nil || m.Kind() != KindRoute53 {
		t.Fatalf("New(route53): %v, %v", m, err)
	}
	// Route 53 is global: no region anywhere is not an error.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := New(dns, Options{}); err != nil {
		t.Fatalf("New(route53) without a region: %v", err)
	}
}

func TestParseSettingsRoute(t *testing.T) {
	s, err := parseSettings(KindRoute, testConfig(KindRoute, map[string]string{
		"route_tables": "rtb-01234567, rtb-0123456789abcdef0", "cidr": "192.168.100.10", "eni_id.server2": "eni-01234567",
		"source_dest_check": "ignore", "interface": "lo",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.routeTables, []string{"rtb-01234567", "rtb-0123456789abcdef0"}) || s.cidr.String() != "192.168.100.10/32" ||
		s.vip.String() != "192.168.100.10" || s.prefix != 32 || s.sourceDestCheck || s.iface != "lo" || s.guest != "ssh" || !s.rollback ||
		s.waitTimeout != DefaultWaitTimeout {
		t.Fatalf("settings %+v", s)
	}
	// The overlay address from address vip; defaults.
	cfg := testConfig(KindRoute, map[string]string{"route_tables": "rtb-01234567", "eni_id.server2": "eni-01234567"})
	cfg.Address.VIP = "192.168.100.11"
	s, err = parseSettings(KindRoute, cfg)
	if err != nil || s.cidr.String() != "192.168.100.11/32" || !s.sourceDestCheck || s.iface != DefaultInterface {
		t.Fatalf("vip fallback: %+v, %v", s, err)
	}
}

func TestParseSettingsRoute53(t *testing.T) {
	s, err := parseSettings(KindRoute53, testConfig(KindRoute53, map[string]string{
		"hosted_zone_id": "/hostedzone/Z0123456789ABC", "name": "Primary.DB.example.com", "ip.server2": "10.0.1.11",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.zoneID != "Z0123456789ABC" || s.name != "primary.db.example.com." || s.ttl != DefaultTTL || s.recordType != "A" ||
		s.onRelease != "keep" || !s.waitInsync || s.pollInterval != DefaultPollInterval || s.waitTimeout != DefaultRoute53WaitTimeout ||
		s.ip["server1"].String() != "10.0.1.10" || s.ip["server2"].String() != "10.0.1.11" {
		t.Fatalf("defaults %+v", s)
	}
	s, err = parseSettings(KindRoute53, testConfig(KindRoute53, map[string]string{
		"hosted_zone_id": "Z0123456789ABC", "name": "db.example.com.", "ip.server2": "10.0.1.11", "ttl": "5", "type": "a",
		"on_release": "delete", "wait_insync": "no", "poll_interval": "100ms", "wait_timeout": "10s",
	}))
	if err != nil || s.ttl != 5 || s.onRelease != "delete" || s.waitInsync || s.pollInterval != 100*time.Millisecond || s.waitTimeout != 10*time.Second {
		t.Fatalf("settings %+v, %v", s, err)
	}
}

func TestGuestCommand(t *testing.T) {
	s, err := parseSettings(KindSecondaryIP, testConfig(KindSecondaryIP, map[string]string{"vip": "10.0.1.100", "eni_id.server2": "eni-01234567"}))
	if err != nil {
		t.Fatal(err)
	}
	m := &SecondaryIP{base: &base{core: core{set: s}}}
	add := m.guestCommand(true, "root")
	if !strings.Contains(add, "ip addr add 10.0.1.100/32 dev eth0") || strings.Contains(add, "sudo") {
		t.Fatalf("add: %s", add)
	}
	del := m.guestCommand(false, "ec2-user")
	if !strings.HasPrefix(del, "sudo -n sh -c ") || !strings.Contains(del, "ip addr del 10.0.1.100/32 dev eth0") {
		t.Fatalf("del: %s", del)
	}
}
