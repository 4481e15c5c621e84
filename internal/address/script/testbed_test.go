package script

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// An unmodified MHA-style master_ip_failover script (Perl, ssh + ip addr)
// moves the bed's VIP when run by the script mover from the manager's
// namespace.
func TestMHAScriptOnTestBed(t *testing.T) {
	if os.Getenv("CLOUDMHA_SKIP_TESTBED") != "" {
		t.Skip("CLOUDMHA_SKIP_TESTBED is set")
	}
	if os.Geteuid() != 0 {
		t.Skip("the test bed needs root (network namespaces)")
	}
	for _, p := range []string{"mariadbd", "perl", "ssh"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := testbed.Up(ctx, testbed.Options{Hosts: 2, Prefix: "cmhas"})
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Down(ctx); err != nil {
			t.Errorf("test bed down: %v", err)
		}
	})

	scriptPath, err := filepath.Abs("testdata/master_ip_failover")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(b.Opts.WorkDir, "mgr", "app1.cnf")
	setting := scriptPath + " --vip=" + b.VIP + "/24 --iface=eth0 --key=" + b.SSHKey
	if err := b.WriteMHAConfig(path, map[string]string{"master_ip_failover_script": setting}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: path, GlobalPath: config.GlobalNone})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address.Mover != config.MoverScript {
		t.Fatalf("mover %q", cfg.Address.Mover)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	m, err := New(cfg, hooks.Runner{Timeout: 30 * time.Second, Wrap: []string{"ip", "netns", "exec", b.ManagerNS}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	db1, db2 := b.Host("db1"), b.Host("db2")
	t1 := address.Target{Name: "server1", Hostname: db1.IP, IP: db1.IP, Port: db1.Port, SSHReachable: true}
	t2 := address.Target{Name: "server2", Hostname: db2.IP, IP: db2.IP, Port: db2.Port, SSHReachable: true}
	serverID := func() int {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var id int
		for {
			in, err := mysql.Open(cctx, mysql.ConnConfig{Addr: b.VIP + ":3306", User: b.User, Password: b.Password, Dial: b.Dialer(b.ClientNS)})
			if err == nil {
				err = in.DB().QueryRowContext(cctx, "SELECT @@server_id").Scan(&id)
				in.Close()
				if err == nil {
					return id
				}
			}
			if cctx.Err() != nil {
				t.Fatalf("VIP from the client namespace: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if err := m.Status(ctx, t1); err != nil {
		t.Fatalf("Status(server1): %v\n%s", err, logs.String())
	}
	if err := m.Status(ctx, t2); err == nil {
		t.Error("Status(server2) passed while server1 holds the VIP")
	}
	for _, c := range []address.Change{{Old: t1, New: t2}, {Old: t2, New: t1}} {
		start := time.Now()
		if err := m.Release(ctx, c); err != nil {
			t.Fatalf("Release(%s): %v\n%s", c.Old.Name, err, logs.String())
		}
		rel := time.Since(start)
		start = time.Now()
		if err := m.Acquire(ctx, c); err != nil {
			t.Fatalf("Acquire(%s): %v\n%s", c.New.Name, err, logs.String())
		}
		t.Logf("MEASURED script mover %s -> %s: Release %s, Acquire %s", c.Old.Name, c.New.Name, rel.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		want := map[string]int{"server1": db1.ServerID, "server2": db2.ServerID}[c.New.Name]
		if id := serverID(); id != want {
			t.Fatalf("VIP reaches server_id %d, want %d", id, want)
		}
	}
	if err := m.Status(ctx, t1); err != nil {
		t.Errorf("Status(server1) after moving back: %v", err)
	}
	if t.Failed() {
		t.Log(logs.String())
	}
}
