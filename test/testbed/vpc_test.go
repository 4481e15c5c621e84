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

// TestENIDataPlane: an ENI's address reaches a host only through the ENI,
// only once the guest brought the interface up, and follows the interface
// when it moves; claiming the address on eth0 gets nothing.
func TestENIDataPlane(t *testing.T) {
	needRoot(t)
	b := upBed(t, Options{Hosts: 2})
	ctx := context.Background()
	t.Cleanup(func() { _ = b.Down(context.Background()) })
	db1, db2 := b.Host("db1"), b.Host("db2")
	serverAt := func() (int, error) {
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
	guestUp := func(h *Host, e *ENI) {
		t.Helper()
		for _, args := range [][]string{
			{"ip", "link", "set", "dev", e.Dev, "up"},
			{"ip", "addr", "add", b.VIP + "/32", "dev", e.Dev},
			{"ip", "route", "replace", "198.18.0.0/24", "dev", e.Dev, "src", b.VIP, "table", "199"},
			{"ip", "rule", "add", "from", b.VIP, "lookup", "199"},
		} {
			if out, err := b.Exec(ctx, h.NS, args[0], args[1:]...); err != nil {
				t.Fatalf("%v on %s: %v %s", args, h.Name, err, out)
			}
		}
	}
	if err := b.DelVIP(ctx, db1); err != nil {
		t.Fatal(err)
	}
	e, err := b.NewENI(ctx, "eni-t", 7)
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.BindENI(ctx, b.VIP, e); err != nil {
		t.Fatal(err)
	}
	// Claiming the address on eth0 without the ENI: nothing.
	if err := b.AddVIP(ctx, db2); err != nil {
		t.Fatal(err)
	}
	if id, err := serverAt(); err == nil {
		t.Fatalf("the ENI's address reached server %d through eth0", id)
	}
	if err := b.DelVIP(ctx, db2); err != nil {
		t.Fatal(err)
	}
	// Attached to db1: nothing until the guest brings it up.
	if err := e.Attach(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	if e.Up(ctx, b.VIP) {
		t.Fatal("a freshly attached ENI is up with an address")
	}
	guestUp(db1, e)
	if id, err := serverAt(); err != nil || id != db1.ServerID {
		t.Fatalf("ENI on db1: reached %d (%v)", id, err)
	}
	// Moved to db2: db1 loses it at once, db2 answers once up.
	if err := e.Attach(ctx, "db2"); err != nil {
		t.Fatal(err)
	}
	if e.Holder() != "db2" || e.Up(ctx, b.VIP) {
		t.Fatalf("after the move: holder %q, up %t", e.Holder(), e.Up(ctx, b.VIP))
	}
	guestUp(db2, e)
	deadline := time.Now().Add(5 * time.Second)
	for {
		id, err := serverAt()
		if err == nil && id == db2.ServerID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ENI on db2: reached %d (%v)", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := e.Attach(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if id, err := serverAt(); err == nil {
		t.Fatalf("a detached ENI's address reached server %d", id)
	}
}
