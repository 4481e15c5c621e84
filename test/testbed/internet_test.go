package testbed

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

func TestNATRules(t *testing.T) {
	a := netip.MustParseAddr
	got := natRules("cmha_eip", "eth0", "inet0", netip.MustParsePrefix("198.18.0.240/29"), []eipBinding{
		{a("198.18.0.209"), netip.Addr{}},
		{a("198.18.0.210"), a("198.18.0.100")},
		{a("198.18.0.208"), a("198.18.0.12")},
	})
	want := `table ip cmha_eip
delete table ip cmha_eip
table ip cmha_eip {
 chain prerouting {
  type filter hook prerouting priority raw; policy accept;
  iifname "inet0" ip daddr 198.18.0.208 ip daddr set 198.18.0.12 notrack accept
  iifname "inet0" ip daddr 198.18.0.209 drop
  iifname "inet0" ip daddr 198.18.0.210 ip daddr set 198.18.0.100 notrack accept
  iifname "inet0" drop
  iifname "eth0" ip daddr 198.18.0.240/29 ip saddr 198.18.0.12 ip saddr set 198.18.0.208 notrack accept
  iifname "eth0" ip daddr 198.18.0.240/29 ip saddr 198.18.0.100 ip saddr set 198.18.0.210 notrack accept
  iifname "eth0" ip daddr 198.18.0.240/29 drop
 }
}
`
	if got != want {
		t.Errorf("natRules:\n%s\nwant:\n%s", got, want)
	}
	// No EIP: the internet reaches nothing, the VPC reaches no internet.
	empty := natRules("t", "eth0", "inet0", netip.MustParsePrefix("198.18.0.240/29"), nil)
	if strings.Contains(empty, "set") || !strings.Contains(empty, `iifname "inet0" drop`) || !strings.Contains(empty, `iifname "eth0" ip daddr 198.18.0.240/29 drop`) {
		t.Errorf("natRules without EIPs:\n%s", empty)
	}
}

// TestInternetAddresses: the internet's addresses stay inside the bed's
// subnet and clear of every address the bed gives out.
func TestInternetAddresses(t *testing.T) {
	subnet := netip.MustParsePrefix(DefaultSubnet)
	o := Options{Hosts: maxHosts, Prefix: "x", WorkDir: "/var/tmp/x/y"}
	o.setDefaults()
	b := newBed(o, subnet)
	used := map[string]string{b.VIP: "VIP", b.ClientIP: "client", b.ManagerIP: "manager"}
	for _, h := range b.Hosts {
		used[h.IP] = h.Name
	}
	n := &Internet{b: b}
	mine := []string{hostIP(subnet, natOctet), hostIP(subnet, inetOctet), hostIP(subnet, inetGateOctet)}
	for i := range eipCount {
		mine = append(mine, n.PublicIP(i))
	}
	pool := netip.PrefixFrom(netip.MustParseAddr(hostIP(subnet, eipFirstOctet)), eipPrefixBits)
	link := netip.PrefixFrom(netip.MustParseAddr(hostIP(subnet, inetOctet)), inetPrefixBits)
	if pool.Masked() != pool || link.Masked() != link || pool.Overlaps(link) {
		t.Fatalf("pool %s and internet link %s must be aligned and disjoint", pool, link)
	}
	for _, a := range mine {
		ip := netip.MustParseAddr(a)
		if !subnet.Contains(ip) {
			t.Errorf("%s is outside the bed's subnet", a)
		}
		if who, ok := used[a]; ok {
			t.Errorf("%s is already the %s's", a, who)
		}
	}
	for a, who := range used {
		if ip := netip.MustParseAddr(a); pool.Contains(ip) || link.Contains(ip) {
			t.Errorf("the %s's %s lies in the internet's ranges", who, a)
		}
	}
}

// TestInternetEIP: from the internet only an EIP reaches the VPC, and only
// the private address it is bound to; a host that claims the EIP itself
// gets nothing.
func TestInternetEIP(t *testing.T) {
	needRoot(t)
	b := upBed(t, Options{Hosts: 2})
	ctx := context.Background()
	t.Cleanup(func() { _ = b.Down(context.Background()) })
	db1, db2 := b.Host("db1"), b.Host("db2")
	inet, err := b.Internet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{inet.NS, inet.GatewayNS} {
		out, err := b.Exec(ctx, ns, "ip", "-4", "route", "show", "default")
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("%s has a default route: %q (%v)", ns, out, err)
		}
	}
	pub := inet.PublicIP(2)
	if err := inet.AddEIP(ctx, pub); err != nil {
		t.Fatal(err)
	}
	// at dials addr from the internet and says which server answered, and
	// from which address it sees the client.
	at := func(addr string) (id int, client string, err error) {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		in, err := mysql.Open(c, mysql.ConnConfig{Addr: addr + ":3306", User: b.User, Password: b.Password,
			ConnectTimeout: 700 * time.Millisecond, ReadTimeout: time.Second, Dial: mysql.DialFunc(b.Dialer(inet.NS)), MaxOpenConns: 1})
		if err != nil {
			return 0, "", err
		}
		defer in.Close()
		err = in.DB().QueryRowContext(c, "SELECT @@server_id, SUBSTRING_INDEX(USER(), '@', -1)").Scan(&id, &client)
		return id, client, err
	}
	if id, _, err := at(pub); err == nil {
		t.Fatalf("an EIP bound to nothing reached server %d", id)
	}
	if id, _, err := at(db1.IP); err == nil {
		t.Fatalf("the internet reached the private address of server %d", id)
	}
	// A host that configures the EIP itself and announces it: nothing.
	if out, err := b.Exec(ctx, db1.NS, "ip", "addr", "add", pub+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	_, _ = b.Exec(ctx, db1.NS, "arping", "-U", "-c", "1", "-I", "eth0", pub)
	if id, _, err := at(pub); err == nil {
		t.Fatalf("an EIP claimed with ip addr reached server %d", id)
	}
	if out, err := b.Exec(ctx, db1.NS, "ip", "addr", "del", pub+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("%v %s", err, out)
	}

	for _, h := range []*Host{db1, db2} {
		if err := inet.Bind(ctx, pub, h.IP); err != nil {
			t.Fatal(err)
		}
		id, client, err := at(pub)
		if err != nil || id != h.ServerID {
			t.Fatalf("EIP bound to %s reaches server %d (%v)", h.Name, id, err)
		}
		if client != inet.ClientIP {
			t.Errorf("%s sees the internet client as %q, want %s (one-to-one NAT keeps the source)", h.Name, client, inet.ClientIP)
		}
		if got := inet.Target(pub); got != h.IP {
			t.Errorf("Target = %q, want %s", got, h.IP)
		}
	}

	// Bound to the VIP: it reaches whoever the VPC delivers the VIP to.
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := b.DelVIP(ctx, db1); err != nil {
		t.Fatal(err)
	}
	if err := b.AddVIP(ctx, db2); err != nil {
		t.Fatal(err)
	}
	if err := v.Assign(ctx, b.VIP, "db2"); err != nil {
		t.Fatal(err)
	}
	if err := inet.Bind(ctx, pub, b.VIP); err != nil {
		t.Fatal(err)
	}
	if id, _, err := at(pub); err != nil || id != db2.ServerID {
		t.Fatalf("EIP bound to the VIP (VPC: db2) reaches server %d (%v)", id, err)
	}

	if err := inet.Bind(ctx, pub, ""); err != nil {
		t.Fatal(err)
	}
	if id, _, err := at(pub); err == nil {
		t.Fatalf("an unbound EIP still reaches server %d", id)
	}
	if err := inet.Bind(ctx, inet.PublicIP(3), db1.IP); err == nil {
		t.Errorf("Bind accepted an EIP that was never added")
	}
	if err := inet.Close(); err != nil {
		t.Fatal(err)
	}
	if ns := b.Namespaces(); strings.Contains(strings.Join(ns, " "), inet.NS) {
		t.Errorf("Namespaces still lists the closed internet: %v", ns)
	}
}
