package testbed

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckOverlap(t *testing.T) {
	subnet := netip.MustParsePrefix("198.18.0.0/24")
	route := func(typ, dst string) Route {
		p, err := parseDst(dst)
		if err != nil {
			t.Fatal(err)
		}
		return Route{Type: typ, Dst: p, Dev: "eth0"}
	}
	addr := func(s string) Addr { return Addr{Dev: "eth0", Prefix: netip.MustParsePrefix(s)} }
	uplink := []Route{route("unicast", "default"), route("unicast", "192.0.2.0/24"), route("local", "192.0.2.2"), route("local", "127.0.0.0/8")}
	uplinkAddrs := []Addr{addr("127.0.0.1/8"), addr("192.0.2.2/24")}

	cases := []struct {
		name    string
		routes  []Route
		addrs   []Addr
		wantErr string // substring; "" means accepted
	}{
		{"clean machine", uplink, uplinkAddrs, ""},
		{"our own blackhole", append(uplink, route("blackhole", "198.18.0.0/24")), uplinkAddrs, ""},
		{"default routes only", []Route{route("unicast", "default"), route("blackhole", "0.0.0.0/0")}, nil, ""},
		{"blackhole of a wider range", append(uplink, route("blackhole", "198.18.0.0/15")), uplinkAddrs, "route blackhole 198.18.0.0/15"},
		{"a route into the subnet", append(uplink, route("unicast", "198.18.0.64/26")), uplinkAddrs, "route unicast 198.18.0.64/26"},
		{"a covering route", append(uplink, route("unicast", "198.0.0.0/8")), uplinkAddrs, "198.0.0.0/8"},
		{"a host route", append(uplink, route("local", "198.18.0.7")), uplinkAddrs, "198.18.0.7/32"},
		{"neighbouring subnet", append(uplink, route("unicast", "198.18.1.0/24")), uplinkAddrs, ""},
		{"address inside", uplink, append(uplinkAddrs, addr("198.18.0.5/32")), "address 198.18.0.5/32"},
		{"address whose prefix covers", uplink, append(uplinkAddrs, addr("198.19.0.1/15")), "address 198.19.0.1/15"},
		{"address next door", uplink, append(uplinkAddrs, addr("198.18.1.1/24")), ""},
		{"ipv6 ignored", uplink, append(uplinkAddrs, addr("fd00::2/64")), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckOverlap(subnet, c.routes, c.addrs)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("accepted, want refusal mentioning %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %q does not mention %q", err, c.wantErr)
			}
		})
	}
	// The uplink's own subnet is refused by the overlap check alone.
	if err := CheckOverlap(netip.MustParsePrefix("192.0.2.0/24"), uplink, uplinkAddrs); err == nil {
		t.Fatal("192.0.2.0/24 overlapping the uplink was accepted")
	}
}

func TestValidateSubnet(t *testing.T) {
	ok := []string{"198.18.0.0/24", "198.18.7.0/24", "198.19.255.0/24"}
	bad := []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/24", "198.20.0.0/24",
		"198.18.0.0/16", "198.18.0.1/24", "fd00::/64", "nonsense", "198.17.255.0/24"}
	for _, s := range ok {
		if _, err := ValidateSubnet(s); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := ValidateSubnet(s); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
}

func TestParseRootState(t *testing.T) {
	routes, err := parseRoutesJSON([]byte(`[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},` +
		`{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]},` +
		`{"type":"blackhole","dst":"198.18.0.0/24","metric":4000,"flags":[]},` +
		`{"type":"local","dst":"192.0.2.2","dev":"eth0","table":"local","protocol":"kernel","scope":"host","prefsrc":"192.0.2.2","flags":[]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 4 || routes[0].Dst.Bits() != 0 || routes[2].Type != "blackhole" || routes[3].Dst.String() != "192.0.2.2/32" || routes[3].Table != "local" {
		t.Fatalf("routes: %+v", routes)
	}
	addrs, err := parseAddrsJSON([]byte(`[{"ifindex":4,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24},{"family":"inet6","local":"fd00::2","prefixlen":64}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].Prefix.String() != "192.0.2.2/24" {
		t.Fatalf("addrs: %+v", addrs)
	}
	if err := CheckOverlap(netip.MustParsePrefix("198.18.0.0/24"), routes, addrs); err != nil {
		t.Fatalf("live-like state refused: %v", err)
	}
}

func TestAllowedTarget(t *testing.T) {
	subnet := netip.MustParsePrefix("198.18.0.0/24")
	for _, a := range []string{"198.18.0.11:3306", "127.0.0.1:22", "[::1]:80"} {
		if err := allowedTarget(subnet, a); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, a := range []string{"192.0.2.1:3306", "198.18.1.1:3306", "example.com:80", "8.8.8.8:53"} {
		if err := allowedTarget(subnet, a); err == nil {
			t.Errorf("%s allowed", a)
		}
	}
}
