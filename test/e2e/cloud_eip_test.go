package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	alisim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
	"github.com/cloudmha/cloudmha/internal/mysql"
	"github.com/cloudmha/cloudmha/test/testbed"
)

// TestFailoverAliyunEIP: the clients are on the internet and reach the
// primary through an Alibaba Cloud EIP associated with its ECS instance.
// The bed's internet namespace reaches the VPC only through the NAT
// gateway, which maps the EIP to the private address the emulator
// associates it with, and only once the association is InUse: the address
// moves only because the manager called UnassociateEipAddress and
// AssociateEipAddress (aliyun-eip) and waited for their asynchronous
// states.
func TestFailoverAliyunEIP(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	plane, endpoint := startAliyunSim(t, b)
	inet, err := b.Internet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inet.Close() })
	const eip = "eip-e2e"
	public := inet.PublicIP(0)
	if err := plane.EIP(ctx, inet, alisim.EIP{AllocationID: eip, IP: public, InstanceID: plane.Instance["db1"], InstanceType: alisim.EIPTypeEcs}); err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "aliyun-eip", fmt.Sprintf(`{region: cn-hangzhou, endpoint: "%s", allocation_id: %s}`, endpoint, eip))
	sc, s := startEIPScenario(t, b, inet, public, hostByIP(b), true, conf, dir)
	np := sc.waitFailover(t, 40*time.Second)
	finishEIP(t, sc, s, inet, public, b.Host(hostOf(np)).IP, np, others(b, "db1", np)...)
	if e, _ := plane.Sim.GetEIP(eip); e.InstanceID != plane.Instance[hostOf(np)] || e.Status != alisim.StatusInUse {
		t.Errorf("the emulator has the EIP %s on %q, want InUse on %s's instance", e.Status, e.InstanceID, np)
	}
	// The EIP left the dead primary before it came to the new one.
	moves := plane.Moves()
	out, in := slices.Index(moves, "eip unassociated db1"), slices.Index(moves, "eip associated "+hostOf(np))
	if out < 0 || in < 0 || out > in {
		t.Errorf("the EIP was not unassociated from db1 before it was associated with %s: %v", np, moves)
	}
	t.Logf("data plane: %v", moves)
	assertNoSecret(t, aliyunSecret, sc)
}

// TestFailoverAliyunHaVipEIP: the internet's entry is an EIP bound once to
// a HaVip (aliyun-havip with eip_allocation_id, the documented way to give
// a HaVip a public address). The NAT gateway maps the EIP to the HaVip's
// address, which the VPC delivers to the HaVip's master only: the EIP
// follows the failover with no EIP call at all.
func TestFailoverAliyunHaVipEIP(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	plane, endpoint := startAliyunSim(t, b)
	const havip, eip = "havip-e2e", "eip-e2e"
	if err := plane.HaVip(ctx, havip); err != nil {
		t.Fatal(err)
	}
	inet, err := b.Internet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inet.Close() })
	public := inet.PublicIP(1)
	if err := plane.EIP(ctx, inet, alisim.EIP{AllocationID: eip, IP: public, InstanceID: havip, InstanceType: alisim.EIPTypeHaVip}); err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "aliyun-havip", fmt.Sprintf(
		`{region: cn-hangzhou, endpoint: "%s", havip_id: %s, interface: eth0, prefix: "24", eip_allocation_id: %s}`, endpoint, havip, eip))
	behind := func(target string) string {
		if target == b.VIP {
			return plane.VPC.Owner(b.VIP)
		}
		return ""
	}
	sc, s := startEIPScenario(t, b, inet, public, behind, false, conf, dir)
	np := sc.waitFailover(t, 40*time.Second)
	finishEIP(t, sc, s, inet, public, b.VIP, np, others(b, "db1", np)...)
	if hv, _ := plane.Sim.GetHaVip(havip); hv.Master != plane.Instance[hostOf(np)] {
		t.Errorf("HaVip master %s, want %s's instance", hv.Master, np)
	}
	if e, _ := plane.Sim.GetEIP(eip); e.InstanceID != havip || e.Status != alisim.StatusInUse {
		t.Errorf("the EIP is %s on %q, want InUse on the HaVip", e.Status, e.InstanceID)
	}
	moves := plane.Moves()
	if slices.ContainsFunc(moves, func(m string) bool { return strings.Contains(m, "eip") || strings.Contains(m, "associating") }) {
		t.Errorf("the EIP moved although it is bound to the HaVip: %v", moves)
	}
	t.Logf("data plane: %v", moves)
	assertNoSecret(t, aliyunSecret, sc)
}

// TestFailoverAWSEIP: the same through an EC2 Elastic IP (aws-eip) with
// moto, whose associations the NAT gateway follows (applied before each
// EC2 call answers: see testbed.AWSPlane).
func TestFailoverAWSEIP(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	plane, endpoint := startMoto(t, b)
	inet, err := b.Internet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inet.Close() })
	public := inet.PublicIP(0)
	alloc, err := plane.EIP(ctx, inet, public, "db1")
	if err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "aws-eip", fmt.Sprintf(`{region: us-east-1, endpoint: "%s", allocation_id: %s}`, endpoint, alloc))
	sc, s := startEIPScenario(t, b, inet, public, hostByIP(b), true, conf, dir)
	np := sc.waitFailover(t, 40*time.Second)
	finishEIP(t, sc, s, inet, public, b.Host(hostOf(np)).IP, np, others(b, "db1", np)...)
	t.Logf("data plane: %v", plane.Moves())
	assertNoSecret(t, awsSecret, sc)
}

// hostByIP resolves an EIP's private address to the host it belongs to.
func hostByIP(b *testbed.Bed) func(string) string {
	return func(ip string) string {
		for _, h := range b.Hosts {
			if h.IP == ip {
				return h.Name
			}
		}
		return ""
	}
}

// TestSwitchoverAWSEIP: planned switchovers there and back with clients
// writing from the internet through an Elastic IP. A switchover with
// aws-eip takes well under 100 ms from the release to the acquire, with
// the old primary alive: the EIP must reach nothing from the moment the
// release returns (the old primary is read-only by then, but the bed's
// client account may write regardless, as an administrator's would), or
// writes land on the old primary after the new one has synced (the
// benchmark lost such writes when the bed's data plane only polled moto).
func TestSwitchoverAWSEIP(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	ctx := context.Background()
	plane, endpoint := startMoto(t, b)
	inet, err := b.Internet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inet.Close() })
	public := inet.PublicIP(0)
	alloc, err := plane.EIP(ctx, inet, public, "db1")
	if err != nil {
		t.Fatal(err)
	}
	conf, dir := writeCloudYAML(t, b, "aws-eip", fmt.Sprintf(`{region: us-east-1, endpoint: "%s", allocation_id: %s}`, endpoint, alloc))
	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "state=0:PING_OK", 30*time.Second)
	w, err := b.StartWorkload(ctx, testbed.WorkloadOptions{Addr: public + ":3306", NS: inet.NS, Rate: 100, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	t.Cleanup(func() { w.Stop() })
	s := startEIPSampler(t, b, inet, public, hostByIP(b), true)
	sc.faultAt = time.Now()
	for _, to := range []string{"server2", "server1"} {
		time.Sleep(time.Second)
		r := cloudmha(t, b, "", "switch", "--conf="+conf, "--global_conf=none", "--new_master_host="+to,
			"--orig_master_is_new_slave", "--interactive=0", "--json")
		if r.code != 0 {
			t.Fatalf("switch to %s: exit %d\n%s\n%s", to, r.code, r.stdout, r.stderr)
		}
		if got := inet.Target(public); got != b.Host(hostOf(to)).IP {
			t.Fatalf("after the switch to %s the EIP maps to %q", to, got)
		}
	}
	finishEIP(t, sc, s, inet, public, b.Host("db1").IP, "server1", "db2", "db3")
	t.Logf("data plane: %v", plane.Moves())
	assertNoSecret(t, awsSecret, sc)
}

// startEIPScenario starts the manager for conf, waits until it watches the
// primary, starts a workload in the internet namespace writing through the
// EIP public and the EIP invariant sampler (behind resolves the EIP's
// private address to the host that receives it; strict: see eipSampler),
// checks writes get through to db1, and kills db1.
func startEIPScenario(t *testing.T, b *testbed.Bed, inet *testbed.Internet, public string, behind func(string) string, strict bool, conf, dir string) (*scenario, *eipSampler) {
	t.Helper()
	sc := &scenario{b: b, conf: conf, dir: dir}
	sc.m = startManager(t, b, conf)
	sc.m.waitLog(t, "state=0:PING_OK", 30*time.Second)
	w, err := b.StartWorkload(context.Background(), testbed.WorkloadOptions{
		Addr: public + ":3306", NS: inet.NS, Rate: 100, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc.w = w
	t.Cleanup(func() { w.Stop() })
	s := startEIPSampler(t, b, inet, public, behind, strict)
	time.Sleep(2 * time.Second)
	if len(w.Progress().Acked) == 0 {
		t.Fatalf("no write got through the EIP before the fault: %s", w.Progress().LastErrorText)
	}
	if id, err := serverThrough(b, inet, public); err != nil || id != b.Host("db1").ServerID {
		t.Fatalf("the EIP reaches server %d (%v), want db1", id, err)
	}
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	return sc, s
}

// finishEIP checks, once writes flow again through the EIP: no
// acknowledged write lost, the EIP never reached one host while another
// was writable, the gateway maps it to wantTarget and a fresh connection
// from the internet reaches the new primary, and every survivor
// replicates from the new primary with every acknowledged write.
func finishEIP(t *testing.T, sc *scenario, s *eipSampler, inet *testbed.Internet, public, wantTarget, newPrimary string, survivors ...string) {
	t.Helper()
	b := sc.b
	before := len(sc.w.Progress().Acked)
	deadline := time.Now().Add(20 * time.Second)
	for len(sc.w.Progress().Acked) < before+50 {
		if time.Now().After(deadline) {
			t.Fatalf("writes through the EIP did not resume: %d acked, last error %s", len(sc.w.Progress().Acked), sc.w.Progress().LastErrorText)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res := sc.w.Stop()
	s.check(t)
	np := b.Host(hostOf(newPrimary))
	if np == nil {
		t.Fatalf("new primary %q is no test bed host", newPrimary)
	}
	ctx := context.Background()
	missing, err := b.MissingWrites(ctx, np, res.Acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged writes lost on the new primary %s (first %v)", len(missing), np.Name, missing[:min(5, len(missing))])
	}
	if got := inet.Target(public); got != wantTarget {
		t.Errorf("the NAT gateway maps the EIP to %q, want %s (new primary %s)", got, wantTarget, np.Name)
	}
	if id, err := serverThrough(b, inet, public); err != nil || id != np.ServerID {
		t.Errorf("a new connection through the EIP reaches server %d (%v), want %s", id, err, np.Name)
	}
	for _, name := range survivors {
		h := b.Host(name)
		ok, err := b.ReplicationRunning(ctx, h)
		if err != nil || !ok {
			t.Errorf("%s does not replicate with both threads (%v)", name, err)
			continue
		}
		st, err := b.ReplicaStatus(ctx, h)
		if err != nil || st["Master_Host"] != np.IP {
			t.Errorf("%s replicates from %q, want %s (%v)", name, st["Master_Host"], np.IP, err)
		}
		if err := b.WaitReplicas(ctx, np, h); err != nil {
			t.Errorf("%s does not catch up with %s: %v", name, np.Name, err)
		}
		if missing, err := b.MissingWrites(ctx, h, res.Acked); err != nil || len(missing) > 0 {
			t.Errorf("%s lacks %d acknowledged writes (%v)", name, len(missing), err)
		}
	}
	t.Logf("acked %d writes through the EIP, %d uncertain, %d errors; longest gap without an acknowledged write %s; done %s after the fault; EIP targets seen: %v",
		len(res.Acked), len(res.Uncertain), res.Errors, res.MaxAckGap.Round(time.Millisecond), time.Since(sc.faultAt).Round(time.Millisecond), s.targets())
}

// serverThrough connects from the internet to the EIP and returns the
// server_id that answers.
func serverThrough(b *testbed.Bed, inet *testbed.Internet, public string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	in, err := mysql.Open(ctx, mysql.ConnConfig{Addr: public + ":3306", User: b.User, Password: b.Password,
		ConnectTimeout: time.Second, ReadTimeout: time.Second, Dial: mysql.DialFunc(b.Dialer(inet.NS)), MaxOpenConns: 1})
	if err != nil {
		return 0, err
	}
	defer in.Close()
	var id int
	err = in.DB().QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
	return id, err
}

// eipSampler checks, every 50 ms, "never two writable primaries behind the
// address" for an EIP: the host the EIP reaches is never writable while
// another one is. With strict (an EIP the mover releases through the API
// before the promotion), also: whenever a host is writable, the EIP
// reaches nothing or that host — still reaching the old primary once the
// new one is writable is a violation even while the old host is down, for
// a live one would take the internet's writes. (A HaVip cannot be taken
// from a dead master by API: it keeps reaching it until the new primary
// claims it, the fencing caveat of docs/cloud-aliyun.md.)
type eipSampler struct {
	strict  bool
	b       *testbed.Bed
	inet    *testbed.Internet
	public  string
	behind  func(target string) string // the host a private address reaches ("" none)
	mu      sync.Mutex
	bad     []string
	samples int
	seen    []string // distinct successive targets
	stop    chan struct{}
	done    chan struct{}
}

func startEIPSampler(t *testing.T, b *testbed.Bed, inet *testbed.Internet, public string, behind func(string) string, strict bool) *eipSampler {
	s := &eipSampler{b: b, inet: inet, public: public, behind: behind, strict: strict, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	t.Cleanup(s.Stop)
	return s
}

func (s *eipSampler) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		// The mapping may change during the sample: judge both ends.
		var ends [2]string
		var hosts [2]string
		ends[0] = s.inet.Target(s.public)
		hosts[0] = s.reach(ends[0])
		writable := s.writable()
		ends[1] = s.inet.Target(s.public)
		hosts[1] = s.reach(ends[1])
		s.mu.Lock()
		s.samples++
		for _, name := range hosts {
			if name == "" {
				name = "nothing"
			}
			if len(s.seen) == 0 || s.seen[len(s.seen)-1] != name {
				s.seen = append(s.seen, name)
			}
		}
		for _, behind := range hosts {
			if behind == "" || len(writable) == 0 {
				continue
			}
			if slices.Contains(writable, behind) && len(writable) > 1 ||
				s.strict && !slices.Contains(writable, behind) {
				s.bad = append(s.bad, fmt.Sprintf("%s: the EIP reaches %s while %v writable", time.Now().Format("15:04:05.000"), behind, writable))
			}
		}
		s.mu.Unlock()
	}
}

// reach is the host the private address target reaches ("" for none).
func (s *eipSampler) reach(target string) string {
	if target == "" {
		return ""
	}
	return s.behind(target)
}

// writable lists the hosts answering read_only=0 now.
func (s *eipSampler) writable() []string {
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	for _, h := range s.b.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			if v, err := s.b.SQL(ctx, h, "SELECT @@read_only"); err == nil && strings.TrimSpace(v) == "0" {
				mu.Lock()
				out = append(out, h.Name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(out)
	return out
}

// Stop ends sampling.
func (s *eipSampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// targets lists the hosts the EIP reached, in order.
func (s *eipSampler) targets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// check fails the test on any violation or when too few samples ran.
func (s *eipSampler) check(t *testing.T) {
	t.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples < 5 {
		t.Errorf("EIP invariant sampler took only %d samples", s.samples)
	}
	for _, v := range s.bad {
		t.Errorf("two writable primaries behind the EIP: %s", v)
	}
}
