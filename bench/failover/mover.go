package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	alisim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
	tcsim "github.com/cloudmha/cloudmha/internal/cloudsim/tencent"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// Movers --mover accepts: the bare-metal VIP (the default), and cloud movers
// against a local emulator (Alibaba and Tencent: cloudsim with its default
// latencies; AWS: moto) with the bed's VPC data plane on, so the address
// only answers where the cloud put it. For the EIP movers the clients write
// from the bed's internet namespace through the EIP, which the NAT gateway
// maps where the cloud associates it.
var allMovers = []string{"vip", "aliyun-havip", "aliyun-eni", "aliyun-eip", "aws-secondary-ip", "aws-eip", "tencent-havip"}

// The benchmark's emulator credentials (the manager reads them from its
// environment through the official chain).
const benchAK, benchSecret = "LTAI-bench", "bench-secret-not-real"

// apiTimer sums how long the emulator took to answer, per request: the
// cloud API's share of the address move (the rest is waiting for
// asynchronous states, guest-side SSH and verification).
type apiTimer struct {
	h     http.Handler
	mu    sync.Mutex
	calls int
	total time.Duration
}

func (a *apiTimer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a.h.ServeHTTP(w, r)
	a.mu.Lock()
	a.calls++
	a.total += time.Since(start)
	a.mu.Unlock()
}

// reset starts counting afresh (after the manager's start-up checks).
func (a *apiTimer) reset() {
	a.mu.Lock()
	a.calls, a.total = 0, 0
	a.mu.Unlock()
}

func (a *apiTimer) read() (int, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, a.total
}

// moverSetup is what a mover needs on the bed for one run.
type moverSetup struct {
	conf  string
	timer *apiTimer // the cloud API requests (nil for vip)
	env   []string  // the manager's environment (credentials)
	// workload says where clients write from and to (zero: the VIP, from
	// the client namespace); via names that address in messages.
	workload testbed.WorkloadOptions
	via      string
	cleanup  func()
}

// cloudSetup prepares the bed for mover: for "vip", an MHA app.cnf; for a
// cloud mover, the emulator (served in the manager's namespace behind an
// API timer), the platform side on the bed and a YAML configuration.
func cloudSetup(ctx context.Context, b *testbed.Bed, mover, dir string) (*moverSetup, error) {
	s := &moverSetup{via: "the VIP", cleanup: func() {}}
	var err error
	switch mover {
	case "vip":
		s.conf = filepath.Join(dir, "app1.cnf")
		err = b.WriteMHAConfig(s.conf, map[string]string{
			"manager_workdir": dir, "ping_interval": "1",
			"vip": b.VIP, "vip_interface": "eth0", "vip_prefix": "24",
		})
		return s, err
	case "aliyun-havip", "aliyun-eni", "aliyun-eip":
		err = aliyunSetup(ctx, b, mover, dir, s)
	case "aws-secondary-ip", "aws-eip":
		err = awsSetup(ctx, b, mover, dir, s)
	case "tencent-havip":
		err = tencentSetup(ctx, b, dir, s)
	default:
		err = fmt.Errorf("unknown mover %q (want %s)", mover, strings.Join(allMovers, ", "))
	}
	if err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// serveTimed serves h in the manager's namespace on a loopback port behind
// an API timer; it returns the address (host:port) and adds the server's
// close to s.cleanup.
func serveTimed(b *testbed.Bed, h http.Handler, s *moverSetup) (string, error) {
	l, err := b.Listen(b.ManagerNS, "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.timer = &apiTimer{h: h}
	srv := &http.Server{Handler: s.timer, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.addCleanup(func() { _ = srv.Close() })
	return l.Addr().String(), nil
}

// addCleanup runs f before the cleanups added earlier.
func (s *moverSetup) addCleanup(f func()) {
	prev := s.cleanup
	s.cleanup = func() { f(); prev() }
}

// writeYAML writes the manager's YAML configuration for a cloud mover.
func (s *moverSetup) writeYAML(b *testbed.Bed, dir, mover, options string) error {
	s.conf = filepath.Join(dir, "app1.yaml")
	return b.WriteYAMLConfig(s.conf, dir, mover, options)
}

// throughEIP makes the workload write from the internet namespace through
// the EIP public.
func (s *moverSetup) throughEIP(inet *testbed.Internet, public string) {
	s.workload = testbed.WorkloadOptions{Addr: public + ":3306", NS: inet.NS}
	s.via = "the EIP " + public
}

func aliyunSetup(ctx context.Context, b *testbed.Bed, mover, dir string, s *moverSetup) error {
	sim := alisim.New(alisim.Options{Credentials: map[string]string{benchAK: benchSecret}, MaxHaVipInstances: len(b.Hosts)})
	endpoint, err := serveTimed(b, sim, s)
	if err != nil {
		return err
	}
	plane, err := b.NewAliyunPlane(ctx, sim)
	if err != nil {
		return err
	}
	s.addCleanup(func() { _ = plane.Close() })
	var options string
	switch mover {
	case "aliyun-havip":
		err = plane.HaVip(ctx, "havip-bench")
		options = fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", havip_id: havip-bench, interface: eth0, prefix: "24"}`, endpoint)
	case "aliyun-eni":
		_, err = plane.ENI(ctx, "eni-bench", 1)
		options = fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", eni_id: eni-bench}`, endpoint)
	case "aliyun-eip":
		var inet *testbed.Internet
		if inet, err = b.Internet(ctx); err != nil {
			return err
		}
		s.addCleanup(func() { _ = inet.Close() })
		public := inet.PublicIP(0)
		err = plane.EIP(ctx, inet, alisim.EIP{AllocationID: "eip-bench", IP: public, InstanceID: plane.Instance["db1"], InstanceType: alisim.EIPTypeEcs})
		options = fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", allocation_id: eip-bench}`, endpoint)
		s.throughEIP(inet, public)
	}
	if err != nil {
		return err
	}
	s.env = []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=" + benchAK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + benchSecret}
	return s.writeYAML(b, dir, mover, options)
}

// awsSetup runs moto in the manager's namespace; the manager reaches it
// through the bed's AWS plane (which applies each EC2 change to the data
// plane before it answers, so the API time includes that) behind the API
// timer. The plane's own polling of moto is not counted.
func awsSetup(ctx context.Context, b *testbed.Bed, mover, dir string, s *moverSetup) error {
	m, err := b.StartMoto(ctx, filepath.Join(dir, "moto.log"))
	if err != nil {
		return err
	}
	s.addCleanup(func() { _ = m.Close() })
	plane, err := b.NewAWSPlane(ctx, m)
	if err != nil {
		return err
	}
	s.addCleanup(func() { _ = plane.Close() })
	endpoint, err := serveTimed(b, plane, s)
	if err != nil {
		return err
	}
	var options string
	switch mover {
	case "aws-secondary-ip":
		err = plane.SecondaryIP(ctx)
		options = fmt.Sprintf(`{vip: %s, region: us-east-1, endpoint: "http://%s", interface: eth0, prefix: "24"}`, b.VIP, endpoint)
	case "aws-eip":
		var inet *testbed.Internet
		if inet, err = b.Internet(ctx); err != nil {
			return err
		}
		s.addCleanup(func() { _ = inet.Close() })
		public := inet.PublicIP(0)
		var alloc string
		alloc, err = plane.EIP(ctx, inet, public, "db1")
		options = fmt.Sprintf(`{region: us-east-1, endpoint: "http://%s", allocation_id: %s}`, endpoint, alloc)
		s.throughEIP(inet, public)
	}
	if err != nil {
		return err
	}
	s.env = []string{"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=" + benchSecret, "AWS_REGION=us-east-1"}
	return s.writeYAML(b, dir, mover, options)
}

func tencentSetup(ctx context.Context, b *testbed.Bed, dir string, s *moverSetup) error {
	sim := tcsim.New(tcsim.Options{Credentials: map[string]string{benchAK: benchSecret}, MaxHaVipAssociations: len(b.Hosts)})
	s.addCleanup(func() { _ = sim.Close() })
	endpoint, err := serveTimed(b, sim, s)
	if err != nil {
		return err
	}
	plane, err := b.NewTencentPlane(ctx, sim)
	if err != nil {
		return err
	}
	s.addCleanup(func() { _ = plane.Close() })
	if err := plane.HaVip(ctx, "havip-bench"); err != nil {
		return err
	}
	s.env = []string{"TENCENTCLOUD_SECRET_ID=" + benchAK, "TENCENTCLOUD_SECRET_KEY=" + benchSecret}
	return s.writeYAML(b, dir, "tencent-havip",
		fmt.Sprintf(`{region: %s, endpoint: "%s", havip_id: havip-bench, prefix: "24", cvm_role: "no"}`, sim.Region(), endpoint))
}

// addressSteps sums the release-address and acquire-address step times of
// a run (from the "step done" lines after since of the manager's or the
// switch command's log).
func addressSteps(lines []logLine, since time.Time) time.Duration {
	var d time.Duration
	for _, l := range lines {
		if l.Msg != "step done" || l.Time.Before(since.Truncate(time.Millisecond)) {
			continue
		}
		if s := l.str("step"); strings.Contains(s, "release-address") || strings.Contains(s, "acquire-address") {
			d += l.dur("elapsed")
		}
	}
	return d
}
