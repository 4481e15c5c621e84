package testbed

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

// TestVPCDataPlane: with the VPC data plane on, the VIP reaches a host only
// while the "cloud" assigns it there; moving it with `ip addr` alone (what
// a bare-metal VIP script does) leaves clients with nothing.
func TestVPCDataPlane(t *testing.T) {
	needRoot(t)
	b := upBed(t, Options{Hosts: 2})
	ctx := context.Background()
	t.Cleanup(func() { _ = b.Down(context.Background()) })
	db1, db2 := b.Host("db1"), b.Host("db2")
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
	garp := func(h *Host) {
		t.Helper()
		if out, err := b.Exec(ctx, h.NS, "arping", "-U", "-c", "1", "-I", "eth0", b.VIP); err != nil {
			t.Logf("arping on %s: %v %s", h.Name, err, out)
		}
	}

	if id, err := serverAtVIP(); err != nil || id != db1.ServerID {
		t.Fatalf("before the VPC: VIP reaches server %d (%v), want db1", id, err)
	}
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if _, err := serverAtVIP(); err == nil {
		t.Fatal("VIP reachable although the cloud assigned it to nobody")
	}
	if err := v.Assign(ctx, b.VIP, "db1"); err != nil {
		t.Fatal(err)
	}
	if id, err := serverAtVIP(); err != nil || id != db1.ServerID {
		t.Fatalf("assigned to db1: VIP reaches %d (%v)", id, err)
	}
	// The naive move: ip addr del/add and gratuitous ARP, no API call.
	if err := b.DelVIP(ctx, db1); err != nil {
		t.Fatal(err)
	}
	if err := b.AddVIP(ctx, db2); err != nil {
		t.Fatal(err)
	}
	garp(db2)
	if id, err := serverAtVIP(); err == nil {
		t.Fatalf("a move without the cloud API reached server %d", id)
	}
	// The cloud assigns it to db2: now it works.
	if err := v.Assign(ctx, b.VIP, "db2"); err != nil {
		t.Fatal(err)
	}
	garp(db2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		id, err := serverAtVIP()
		if err == nil && id == db2.ServerID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("assigned to db2: VIP reaches %d (%v)", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v.Owner(b.VIP) != "db2" {
		t.Errorf("owner %q", v.Owner(b.VIP))
	}
	if err := v.Assign(ctx, "198.18.0.250", "db1"); err == nil || !strings.Contains(err.Error(), "not a VPC-managed") {
		t.Errorf("assigning an unmanaged address: %v", err)
	}
}
