package vip

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/test/testbed"
)

func upBed(t *testing.T, prefix string) *testbed.Bed {
	t.Helper()
	if os.Getenv("CLOUDMHA_SKIP_TESTBED") != "" {
		t.Skip("CLOUDMHA_SKIP_TESTBED is set")
	}
	if os.Geteuid() != 0 {
		t.Skip("the test bed needs root (network namespaces)")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd not installed")
	}
	// Another package's bed may hold the machine-wide lock for a while.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := testbed.Up(ctx, testbed.Options{Hosts: 2, Prefix: prefix})
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Logf("test bed up in %s", b.BringUp.Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Down(ctx); err != nil {
			t.Errorf("test bed down: %v", err)
		}
	})
	return b
}

// serverID asks, from the client namespace, which server answers at addr.
func serverID(t *testing.T, b *testbed.Bed, addr string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := mysql.Open(ctx, mysql.ConnConfig{Addr: addr, User: b.User, Password: b.Password, Dial: b.Dialer(b.ClientNS)})
	if err != nil {
		t.Fatalf("connect to %s from the client namespace: %v", addr, err)
	}
	defer in.Close()
	var id int
	if err := in.DB().QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestVIPOnTestBed(t *testing.T) {
	b := upBed(t, "cmhav")
	path := filepath.Join(b.Opts.WorkDir, "mgr", "app1.cnf")
	if err := b.WriteMHAConfig(path, map[string]string{"vip": b.VIP, "vip_interface": "eth0", "vip_prefix": "24"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: path, GlobalPath: config.GlobalNone})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, Options{Dial: b.Dialer(b.ManagerNS), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db1, db2 := b.Host("db1"), b.Host("db2")
	target := func(h *testbed.Host, name string) address.Target {
		return address.Target{Name: name, Hostname: h.IP, IP: h.IP, Port: h.Port, SSHReachable: true}
	}
	t1, t2 := target(db1, "server1"), target(db2, "server2")
	vipAddr := b.VIP + ":3306"
	holder := func(want string) {
		t.Helper()
		start := time.Now()
		h, err := m.Holder(ctx)
		if err != nil || h != want {
			t.Fatalf("Holder = %q, %v; want %q", h, err, want)
		}
		t.Logf("Holder = %q in %s", h, time.Since(start).Round(time.Millisecond))
	}
	move := func(from, to address.Target) {
		t.Helper()
		c := address.Change{Old: from, New: to}
		start := time.Now()
		if err := m.Release(ctx, c); err != nil {
			t.Fatalf("Release(%s): %v", from.Name, err)
		}
		rel := time.Since(start)
		start = time.Now()
		if err := m.Acquire(ctx, c); err != nil {
			t.Fatalf("Acquire(%s): %v", to.Name, err)
		}
		t.Logf("MEASURED %s -> %s: Release %s, Acquire (incl. MySQL check through the VIP) %s",
			from.Name, to.Name, rel.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}

	holder("server1")
	if err := m.Status(ctx, t1); err != nil {
		t.Errorf("Status(server1): %v", err)
	}
	if err := m.Status(ctx, t2); err == nil {
		t.Error("Status(server2) passed while server1 holds the VIP")
	}
	if id := serverID(t, b, vipAddr); id != db1.ServerID {
		t.Fatalf("VIP reaches server_id %d, want %d", id, db1.ServerID)
	}
	// SSH marked unreachable while MySQL still answers at the VIP: refuse.
	dead := t1
	dead.SSHReachable = false
	if err := m.Release(ctx, address.Change{Old: dead, New: t2}); !errors.Is(err, ErrStillHeld) {
		t.Fatalf("Release of a live holder without SSH = %v, want ErrStillHeld", err)
	}

	move(t1, t2)
	holder("server2")
	if id := serverID(t, b, vipAddr); id != db2.ServerID {
		t.Fatalf("after the move the VIP reaches server_id %d, want %d", id, db2.ServerID)
	}
	// Release of a server that does not hold it is a no-op; Acquire twice too.
	if err := m.Release(ctx, address.Change{Old: t1, New: t2}); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if err := m.Acquire(ctx, address.Change{Old: t1, New: t2}); err != nil {
		t.Errorf("second Acquire: %v", err)
	}
	holder("server2")

	move(t2, t1)
	holder("server1")
	if id := serverID(t, b, vipAddr); id != db1.ServerID {
		t.Fatalf("after moving back the VIP reaches server_id %d, want %d", id, db1.ServerID)
	}

	// The fencing caveat: a holder cut off the network looks dead, Release
	// succeeds, and when it comes back two servers have the VIP.
	if err := b.LinkDown(db1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Release(ctx, address.Change{Old: dead, New: t2}); err != nil {
		t.Fatalf("Release of a cut-off holder: %v", err)
	}
	t.Logf("MEASURED Release of a cut-off holder (probe only): %s", time.Since(start).Round(time.Millisecond))
	if err := m.Acquire(ctx, address.Change{Old: dead, New: t2}); err != nil {
		t.Fatalf("Acquire(server2) with server1 cut off: %v", err)
	}
	if id := serverID(t, b, vipAddr); id != db2.ServerID {
		t.Fatalf("with server1 cut off the VIP reaches server_id %d, want %d", id, db2.ServerID)
	}
	if err := b.LinkUp(db1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Holder(ctx); !errors.Is(err, ErrMultipleHolders) {
		t.Errorf("Holder after the cut-off server came back = %v, want ErrMultipleHolders", err)
	}
	if err := m.Release(ctx, address.Change{Old: t1, New: t2}); err != nil {
		t.Fatalf("cleaning up server1: %v", err)
	}
	holder("server2")
	if got := strconv.Itoa(serverID(t, b, vipAddr)); got != strconv.Itoa(db2.ServerID) {
		t.Errorf("server_id %s", got)
	}
}
