package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	tcsim "github.com/cloudmha/cloudmha/internal/cloudsim/tencent"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// TestFailoverTencentHaVip: the VIP is a Tencent Cloud HaVip. The manager
// talks to the local emulator with the official SDK (TC3-signed
// requests); the test bed's bridge behaves as the VPC: no API call binds a
// HaVip, a host claims it by adding the address and sending gratuitous ARP
// (counted on the wire), the claim is honoured only from the HaVip's drift
// scope (CheckAssociate), and the address reaches only the holder. The
// mover finds each server's ENI by its private IP and the guest interface
// by the ENI's MAC, as on a CVM.
func TestFailoverTencentHaVip(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	plane, endpoint := startTencentSim(t, b)
	const havip = "havip-e2e"
	if err := plane.HaVip(ctx, havip); err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "tencent-havip",
		fmt.Sprintf(`{region: %s, endpoint: "%s", havip_id: %s, prefix: "24", cvm_role: "no"}`, plane.Sim.Region(), endpoint, havip))

	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "state=0:PING_OK", 30*time.Second)
	if hv, _ := plane.Sim.GetHaVip(havip); len(hv.Associations) != 1 || hv.Associations[0].InstanceID != plane.Instance["db1"] {
		t.Fatalf("the HaVip's drift scope is %v, want only the primary db1's instance", hv.Associations)
	}
	w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 100, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	t.Cleanup(func() { w.Stop() })
	sc.s = startSampler(t, b)
	time.Sleep(2 * time.Second)
	if len(w.Progress().Acked) == 0 {
		t.Fatalf("no write got through the HaVip before the fault: %s", w.Progress().LastErrorText)
	}
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 40*time.Second)
	t.Logf("failover complete %s after the fault", time.Since(sc.faultAt).Round(time.Millisecond))
	sc.finish(t, np, others(b, "db1", np)...)
	hv, _ := plane.Sim.GetHaVip(havip)
	if hv.InstanceID != plane.Instance[hostOf(np)] || hv.NetworkInterfaceID != plane.ENI[hostOf(np)] || hv.State() != tcsim.StateAvailable {
		t.Errorf("HaVip held by %s/%s (%s), want %s's instance %s/%s", hv.InstanceID, hv.NetworkInterfaceID, hv.State(), np, plane.Instance[hostOf(np)], plane.ENI[hostOf(np)])
	}
	// Release took the old primary out of the drift scope (disassociate_old)
	// before the new primary claimed the HaVip, and it stays out: back
	// from the dead with the address configured, it must not claim it.
	moves := plane.Moves()
	out, in := slices.IndexFunc(moves, func(m string) bool { return strings.HasSuffix(m, " disassociated db1") }),
		slices.IndexFunc(moves, func(m string) bool { return strings.HasSuffix(m, " havip holder "+hostOf(np)) })
	if out < 0 || in < 0 || out > in {
		t.Errorf("the old primary did not leave the drift scope before %s claimed the HaVip: %v", np, moves)
	}
	if hv, _ := plane.Sim.GetHaVip(havip); slices.ContainsFunc(hv.Associations, func(a tcsim.Association) bool { return a.InstanceID == plane.Instance["db1"] }) {
		t.Errorf("the dead primary db1 is back in the HaVip's drift scope: %v", hv.Associations)
	}
	if plane.VPC.Owner(b.VIP) != hostOf(np) {
		t.Errorf("the VPC delivers the VIP to %q, want %s", plane.VPC.Owner(b.VIP), hostOf(np))
	}
	if n := plane.GARP(ctx)[hostOf(np)]; n == 0 {
		t.Errorf("%s never announced the VIP with gratuitous ARP", np)
	}
	t.Logf("data plane: %v", moves)
	assertNoSecret(t, tencentSecret, sc)
}

// The e2e tests' Tencent Cloud credentials (set in the manager's
// environment, as the credential chain reads them).
const tencentID, tencentSecret = "AKID-e2e-tencent", "tencent-secret-marker-5e9d"

// startTencentSim serves the Tencent Cloud emulator in the manager's
// namespace, with the bed's platform side (instances, VPC data plane), and
// puts the credentials in the environment. It returns the plane and the
// emulator's endpoint (host:port).
func startTencentSim(t *testing.T, b *testbed.Bed) (*testbed.TencentPlane, string) {
	t.Helper()
	sim := tcsim.New(tcsim.Options{Credentials: map[string]string{tencentID: tencentSecret}, MaxHaVipAssociations: 3})
	l, err := b.Listen(b.ManagerNS, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); _ = sim.Close() })
	plane, err := b.NewTencentPlane(context.Background(), sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := plane.Close(); err != nil {
			t.Errorf("tencent plane: %v", err)
		}
	})
	t.Setenv("TENCENTCLOUD_SECRET_ID", tencentID)
	t.Setenv("TENCENTCLOUD_SECRET_KEY", tencentSecret)
	return plane, l.Addr().String()
}
