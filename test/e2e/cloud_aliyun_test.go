package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
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
	plane, endpoint := startAliyunSim(t, b)
	const havip = "havip-e2e"
	if err := plane.HaVip(ctx, havip); err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "aliyun-havip",
		fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", havip_id: %s, interface: eth0, prefix: "24"}`, endpoint, havip))

	sc := &scenario{b: b, conf: conf, dir: dir}
	const listen = "127.0.0.1:19106"
	sc.m = startManager(t, b, conf, "--http-listen="+listen)
	sc.m.waitLog(t, "state=0:PING_OK", 30*time.Second)
	if hv, _ := plane.Sim.GetHaVip(havip); len(hv.Instances) != 3 {
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
	if hv, _ := plane.Sim.GetHaVip(havip); hv.Master != plane.Instance[hostOf(np)] {
		t.Errorf("HaVip master %s, want %s's instance", hv.Master, np)
	}
	if plane.VPC.Owner(b.VIP) != hostOf(np) {
		t.Errorf("the VPC delivers the VIP to %q, want %s", plane.VPC.Owner(b.VIP), hostOf(np))
	}
	// The cloud API requests and the mover's operations are counted.
	api := apiClient{base: "http://" + listen, hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: b.Dialer(b.ManagerNS)}}}
	var metrics string
	if code := api.do(t, "GET", "/metrics", false, nil, &metrics); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`cloudmha_mover_api_calls_total{api="AssociateHaVip",cluster="app1",mover="aliyun-havip",outcome="ok"}`,
		`cloudmha_mover_operations_total{cluster="app1",mover="aliyun-havip",op="acquire",outcome="ok"} 1`,
		`cloudmha_failovers_total{cluster="app1",outcome="success"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("mover metrics:\n%s", grepLines(metrics, "cloudmha_mover"))
	}
	if strings.Contains(metrics, aliyunSecret) {
		t.Error("the secret is in /metrics")
	}
	assertNoSecret(t, aliyunSecret, sc)
}

// The e2e tests' Alibaba Cloud credentials (set in the manager's
// environment, as the official chain reads them).
const aliyunAK, aliyunSecret = "LTAI-e2e-key", "aliyun-secret-marker-71c2"

// startAliyunSim serves the Alibaba Cloud emulator in the manager's
// namespace, with the bed's platform side (instances, VPC data plane), and
// puts the credentials in the environment. It returns the plane and the
// emulator's endpoint (host:port).
func startAliyunSim(t *testing.T, b *testbed.Bed) (*testbed.AliyunPlane, string) {
	t.Helper()
	sim := alisim.New(alisim.Options{Credentials: map[string]string{aliyunAK: aliyunSecret}, MaxHaVipInstances: 3})
	l, err := b.Listen(b.ManagerNS, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	plane, err := b.NewAliyunPlane(context.Background(), sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plane.Close() })
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", aliyunAK)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", aliyunSecret)
	return plane, l.Addr().String()
}

// TestFailoverAliyunENI: the clients' address is the primary IP of a
// secondary ENI that the manager detaches from the dead primary's instance
// and attaches to the new one (what seed 003's scripts do). The ENI is a
// real interface: the emulator's attach and detach move it between the
// hosts' namespaces, and the VPC delivers its address only through it, so
// the guest must bring the new NIC up (over SSH) for clients to get in.
func TestFailoverAliyunENI(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	plane, endpoint := startAliyunSim(t, b)
	eni, err := plane.ENI(ctx, "eni-e2e", 1)
	if err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "aliyun-eni",
		fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", eni_id: %s}`, endpoint, eni.ID))
	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "state=0:PING_OK", 30*time.Second)
	w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 100, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	sc.s = startSampler(t, b)
	time.Sleep(2 * time.Second)
	if len(w.Progress().Acked) == 0 {
		t.Fatalf("no write got through the ENI before the fault: %s", w.Progress().LastErrorText)
	}
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 60*time.Second)
	sc.finish(t, np, others(b, "db1", np)...)
	if e, _ := plane.Sim.GetENI(eni.ID); e.InstanceID != plane.Instance[hostOf(np)] || e.Status != "InUse" {
		t.Errorf("ENI on %s (%s), want %s's instance", e.InstanceID, e.Status, np)
	}
	if eni.Holder() != hostOf(np) || !eni.Up(ctx, b.VIP) {
		t.Errorf("the ENI interface is in %q's namespace (up with the address: %t), want %s", eni.Holder(), eni.Up(ctx, b.VIP), hostOf(np))
	}
	t.Logf("data plane: %v", plane.Moves())
	assertNoSecret(t, aliyunSecret, sc)
}

// TestFailoverCloudAPIFailsMidMove: the ENI is detached from the dead
// primary, then the cloud refuses to attach it to the new one (a RAM
// policy that lacks ecs:AttachNetworkInterface). The failover stops at the
// address step, and its report says exactly what state it left: the new
// primary promoted and writable, the ENI detached on no instance, nobody
// reachable through the address (never two writable primaries behind it).
// Once the permission is fixed, a restarted manager resumes the failover
// from the journal and the address comes up on the new primary.
func TestFailoverCloudAPIFailsMidMove(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	plane, endpoint := startAliyunSim(t, b)
	eni, err := plane.ENI(ctx, "eni-e2e", 1)
	if err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "aliyun-eni",
		fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", eni_id: %s}`, endpoint, eni.ID))
	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "state=0:PING_OK", 30*time.Second)
	w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Rate: 100, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	sc.s = startSampler(t, b)
	time.Sleep(time.Second)

	plane.Sim.InjectError(alisim.Fault{Action: "AttachNetworkInterface", Times: 1000, Status: http.StatusForbidden,
		Code: "Forbidden.RAM", Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM."})
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	sc.m.waitLog(t, "failover failed", 60*time.Second)
	report := reportOf(t, sc.m.Log())
	t.Logf("report of the stopped failover:\n%s", report)
	for _, want := range []string{
		"acquire-address",              // where it stopped
		"Forbidden.RAM",                // why
		"ENI eni-e2e is left detached", // the state it left
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not say %q", want)
		}
	}
	if e, _ := plane.Sim.GetENI(eni.ID); e.InstanceID != "" || e.Status != "Available" {
		t.Errorf("the emulator has the ENI %s on %q; the report says detached", e.Status, e.InstanceID)
	}
	if eni.Holder() != "" {
		t.Errorf("the ENI's interface is in %s's namespace; it should be detached", eni.Holder())
	}
	np := regexp.MustCompile(`new primary: (server\d)`).FindStringSubmatch(sc.m.Log())
	if np == nil {
		t.Fatalf("no new primary in the plan:\n%s", sc.m.Log())
	}

	// The DBA fixes the RAM policy and restarts the manager: it resumes.
	plane.Sim.ClearFaults()
	sc.m.Stop(t)
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "resumed an unfinished failover", 60*time.Second)
	sc.finish(t, np[1], others(b, "db1", np[1])...)
	if eni.Holder() != hostOf(np[1]) || !eni.Up(ctx, b.VIP) {
		t.Errorf("after the resume the ENI is in %q's namespace (up: %t), want %s", eni.Holder(), eni.Up(ctx, b.VIP), hostOf(np[1]))
	}
	assertNoSecret(t, aliyunSecret, sc)
}

// reportOf reads the failover report the manager's log names last.
func reportOf(t *testing.T, log string) string {
	t.Helper()
	m := regexp.MustCompile(`msg="report written".* path=(\S+)`).FindAllStringSubmatch(log, -1)
	if m == nil {
		t.Fatalf("the manager wrote no report:\n%s", log)
	}
	data, err := os.ReadFile(m[len(m)-1][1])
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
