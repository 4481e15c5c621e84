package testbed

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"

	tcsim "github.com/cloudmha/cloudmha/internal/cloudsim/tencent"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// TestTencentPlane: a HaVip follows gratuitous ARP only from its drift
// scope, never follows an address added without an announcement, and the
// VPC delivers the address to its holder only (to nobody once unbound).
func TestTencentPlane(t *testing.T) {
	needRoot(t)
	b := upBed(t, Options{Hosts: 2})
	ctx := context.Background()
	t.Cleanup(func() { _ = b.Down(context.Background()) })
	db1, db2 := b.Host("db1"), b.Host("db2")

	sim := tcsim.New(tcsim.Options{Credentials: map[string]string{"AKID-t": "key-t"}})
	if _, err := sim.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint, cpf.HttpProfile.Scheme = sim.Endpoint(), "HTTP"
	api, err := vpc.NewClient(common.NewCredential("AKID-t", "key-t"), sim.Region(), cpf)
	if err != nil {
		t.Fatal(err)
	}
	scope := func(assoc bool, host string) {
		t.Helper()
		set := []*vpc.HaVipAssociation{{HaVipId: common.StringPtr("havip-t"), InstanceId: common.StringPtr("ins-" + b.Opts.Prefix + "-" + host), InstanceType: common.StringPtr("CVM")}}
		if assoc {
			req := vpc.NewAssociateHaVipInstanceRequest()
			req.HaVipAssociationSet = set
			_, err = api.AssociateHaVipInstance(req)
		} else {
			req := vpc.NewDisassociateHaVipInstanceRequest()
			req.HaVipAssociationSet = set
			_, err = api.DisassociateHaVipInstance(req)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	p, err := b.NewTencentPlane(ctx, sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, h := range b.Hosts {
		mac, err := b.hostMAC(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := sim.GetENI(p.ENI[h.Name]); !ok || !e.Primary || e.InstanceID != p.Instance[h.Name] || e.PrimaryIP != h.IP || e.MAC != mac {
			t.Fatalf("%s's primary ENI: %+v, want %s's with %s and %s", h.Name, e, p.Instance[h.Name], h.IP, mac)
		}
	}
	if err := p.HaVip(ctx, "havip-t"); err != nil {
		t.Fatal(err)
	}
	if err := p.HaVip(ctx, "havip-u"); err == nil {
		t.Error("a second HaVip was accepted")
	}

	serverAtVIP := func() (int, error) {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		in, err := mysql.Open(c, mysql.ConnConfig{Addr: b.VIP + ":3306", User: b.User, Password: b.Password,
			ConnectTimeout: time.Second, ReadTimeout: time.Second, Dial: mysql.DialFunc(b.Dialer(b.ClientNS)), MaxOpenConns: 1})
		if err != nil {
			return 0, err
		}
		defer in.Close()
		var id int
		err = in.DB().QueryRowContext(c, "SELECT @@server_id").Scan(&id)
		return id, err
	}
	holder := func() string {
		hv, _ := sim.GetHaVip("havip-t")
		return p.Host[hv.NetworkInterfaceID]
	}
	// settle waits for an announcement by h to be counted, then one
	// more period of the plane's poll and more.
	settle := func(h *Host, before uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for p.GARP(ctx)[h.Name] <= before {
			if time.Now().After(deadline) {
				t.Fatalf("no gratuitous ARP from %s counted", h.Name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
	}
	garp := func(h *Host) {
		t.Helper()
		before := p.GARP(ctx)[h.Name]
		if out, err := b.Exec(ctx, h.NS, "arping", "-q", "-U", "-c", "1", "-I", "eth0", b.VIP); err != nil {
			t.Fatalf("arping on %s: %v %s", h.Name, err, out)
		}
		settle(h, before)
	}
	waitServer := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			id, err := serverAtVIP()
			if err == nil && id == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("VIP reaches server %d (%v), want %d", id, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if holder() != "db1" || p.VPC.Owner(b.VIP) != "db1" {
		t.Fatalf("new HaVip: held by %q, delivered to %q, want db1", holder(), p.VPC.Owner(b.VIP))
	}
	waitServer(db1.ServerID)

	// db2 is outside the drift scope: its claim is ignored.
	if err := b.DelVIP(ctx, db1); err != nil {
		t.Fatal(err)
	}
	if err := b.AddVIP(ctx, db2); err != nil {
		t.Fatal(err)
	}
	garp(db2)
	if holder() != "db1" || p.VPC.Owner(b.VIP) != "db1" {
		t.Fatalf("claim from outside the drift scope: held by %q, delivered to %q", holder(), p.VPC.Owner(b.VIP))
	}
	if m := strings.Join(p.Moves(), "\n"); !strings.Contains(m, "claim by db2 ignored") {
		t.Errorf("the refused claim is not in the plane's moves:\n%s", m)
	}
	// In the scope, the address is not claimed until announced again.
	scope(true, "db2")
	time.Sleep(500 * time.Millisecond)
	if holder() != "db1" {
		t.Fatalf("associating db2 moved the HaVip to %q without an announcement", holder())
	}
	garp(db2)
	if holder() != "db2" || p.VPC.Owner(b.VIP) != "db2" {
		t.Fatalf("announced from the drift scope: held by %q, delivered to %q, want db2", holder(), p.VPC.Owner(b.VIP))
	}
	waitServer(db2.ServerID)

	// An address added without an announcement claims nothing.
	if out, err := b.Exec(ctx, db1.NS, "ip", "addr", "add", b.VIP+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	if holder() != "db2" {
		t.Fatalf("an unannounced address moved the HaVip to %q", holder())
	}
	if err := b.DelVIP(ctx, db1); err != nil {
		t.Fatal(err)
	}

	// Out of the drift scope, the holder loses the HaVip: no one gets it.
	scope(false, "db2")
	if holder() != "" || p.VPC.Owner(b.VIP) != "" {
		t.Fatalf("holder disassociated: held by %q, delivered to %q, want no one", holder(), p.VPC.Owner(b.VIP))
	}
	if id, err := serverAtVIP(); err == nil {
		t.Fatalf("an unbound HaVip reaches server %d", id)
	}
	t.Logf("data plane: %v", p.Moves())
}
