package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	alisim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// TestFailoverAliyunHaVip: the VIP is an Alibaba Cloud HaVip. The manager
// talks to the local emulator with the official SDK (signed requests,
// asynchronous states); the test bed's bridge behaves as the VPC: the
// HaVip reaches only its master instance, and mastership follows gratuitous
// ARP only from instances associated with the HaVip, as on the platform.
func TestFailoverAliyunHaVip(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	const ak, secret = "LTAI-e2e-key", "aliyun-secret-marker-71c2"
	sim := alisim.New(alisim.Options{Credentials: map[string]string{ak: secret}, MaxHaVipInstances: 3})
	l, err := b.Listen(b.ManagerNS, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	// Cloud state: an instance per host in one vSwitch, a HaVip for the VIP
	// held by db1 (the bed put the address on db1 at bring-up).
	inst := map[string]string{} // instance id -> host
	hostInst := map[string]string{}
	for i, h := range b.Hosts {
		id := fmt.Sprintf("i-e2e%d", i+1)
		if err := sim.AddInstance(alisim.Instance{ID: id, PrivateIP: h.IP, ZoneID: "cn-hangzhou-h", VSwitchID: "vsw-e2e", VpcID: "vpc-e2e"}); err != nil {
			t.Fatal(err)
		}
		inst[id], hostInst[h.Name] = h.Name, id
	}
	const havip = "havip-e2e"
	if err := sim.AddHaVip(alisim.HaVip{ID: havip, IP: b.VIP, VSwitchID: "vsw-e2e", VpcID: "vpc-e2e", Instances: []string{hostInst["db1"]}, Master: hostInst["db1"]}); err != nil {
		t.Fatal(err)
	}
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.Assign(ctx, b.VIP, "db1"); err != nil {
		t.Fatal(err)
	}
	// The platform's side of the HaVip: mastership changes reach the data
	// plane; a host that adds the address (and announces it) claims it.
	sim.OnChange(func(e alisim.Event) {
		if e.Type == alisim.EventHaVipMaster && e.ResourceID == havip {
			_ = v.Assign(context.Background(), b.VIP, inst[e.InstanceID])
		}
	})
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for cctx.Err() == nil {
			for _, h := range b.Hosts {
				if contains(vipHoldersQuiet(b), h.Name) {
					if hv, ok := sim.GetHaVip(havip); ok && hv.Master != hostInst[h.Name] {
						_ = sim.SetHaVipMaster(havip, hostInst[h.Name])
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	conf, dir := writeCloudYAML(t, b, "aliyun-havip",
		fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", havip_id: %s, interface: eth0, prefix: "24"}`, l.Addr().String(), havip))
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ak)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)

	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "state=0:PING_OK", 30*time.Second)
	if hv, _ := sim.GetHaVip(havip); len(hv.Instances) != 3 {
		t.Fatalf("the manager did not associate every server's instance with the HaVip: %v", hv.Instances)
	}
	w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 100, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	sc.s = startSampler(t, b)
	time.Sleep(2 * time.Second)
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 40*time.Second)
	sc.finish(t, np, others(b, "db1", np)...)
	if hv, _ := sim.GetHaVip(havip); hv.Master != hostInst[hostOf(np)] {
		t.Errorf("HaVip master %s, want %s's instance", hv.Master, np)
	}
	if v.Owner(b.VIP) != hostOf(np) {
		t.Errorf("the VPC delivers the VIP to %q, want %s", v.Owner(b.VIP), hostOf(np))
	}
	if strings.Contains(sc.m.Log(), secret) {
		t.Errorf("the Alibaba Cloud secret appears in the manager's log")
	}
}

// vipHoldersQuiet is vipHolders without a test to fail (for goroutines).
func vipHoldersQuiet(b *testbed.Bed) []string {
	var out []string
	for _, h := range b.Hosts {
		o, err := execOutput("ip", "-n", h.NS, "-o", "-4", "addr", "show", "dev", "eth0")
		if err == nil && strings.Contains(o, " "+b.VIP+"/") {
			out = append(out, h.Name)
		}
	}
	return out
}
