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
	"github.com/cloudmha/cloudmha/test/testbed"
)

// Movers --mover accepts: the bare-metal VIP (the default), and cloud movers
// against the local emulator with its default latencies, with the bed's
// VPC data plane on, so the address only answers where the cloud put it.
var allMovers = []string{"vip", "aliyun-havip", "aliyun-eni"}

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

// cloudSetup prepares the bed for mover: for "vip", an MHA app.cnf; for a
// cloud mover, the emulator in the manager's namespace, the platform side
// on the bed and a YAML configuration. It returns the configuration, the
// API timer (nil for vip), the environment for the manager and a cleanup.
func cloudSetup(ctx context.Context, b *testbed.Bed, mover, dir string) (conf string, timer *apiTimer, env []string, cleanup func(), err error) {
	cleanup = func() {}
	if mover == "vip" {
		conf = filepath.Join(dir, "app1.cnf")
		err = b.WriteMHAConfig(conf, map[string]string{
			"manager_workdir": dir, "ping_interval": "1",
			"vip": b.VIP, "vip_interface": "eth0", "vip_prefix": "24",
		})
		return conf, nil, nil, cleanup, err
	}
	sim := alisim.New(alisim.Options{Credentials: map[string]string{benchAK: benchSecret}, MaxHaVipInstances: len(b.Hosts)})
	l, err := b.Listen(b.ManagerNS, "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, cleanup, err
	}
	timer = &apiTimer{h: sim}
	srv := &http.Server{Handler: timer, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	plane, err := b.NewAliyunPlane(ctx, sim)
	if err != nil {
		_ = srv.Close()
		return "", nil, nil, cleanup, err
	}
	cleanup = func() { _ = plane.Close(); _ = srv.Close() }
	var options string
	switch mover {
	case "aliyun-havip":
		err = plane.HaVip(ctx, "havip-bench")
		options = fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", havip_id: havip-bench, interface: eth0, prefix: "24"}`, l.Addr())
	case "aliyun-eni":
		_, err = plane.ENI(ctx, "eni-bench", 1)
		options = fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", eni_id: eni-bench}`, l.Addr())
	default:
		err = fmt.Errorf("unknown mover %q (want %s)", mover, strings.Join(allMovers, ", "))
	}
	if err != nil {
		cleanup()
		return "", nil, nil, func() {}, err
	}
	conf = filepath.Join(dir, "app1.yaml")
	if err := b.WriteYAMLConfig(conf, dir, mover, options); err != nil {
		cleanup()
		return "", nil, nil, func() {}, err
	}
	env = []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=" + benchAK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + benchSecret}
	return conf, timer, env, cleanup, nil
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
