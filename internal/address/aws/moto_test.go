package aws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/cloudmha/cloudmha/internal/address"
	awscloud "github.com/cloudmha/cloudmha/internal/cloud/aws"
	"github.com/cloudmha/cloudmha/internal/cloud/aws/awstest"
	"github.com/cloudmha/cloudmha/internal/config"
)

// secretMarker is the secret access key during the moto tests; it must
// never appear in logs or errors.
const secretMarker = "SECRETMARKER0123456789abcdefSECRETMARKER"

// moto is the package's moto_server, started by the first test that
// needs it and stopped by TestMain.
var moto awstest.Moto

func TestMain(m *testing.M) {
	code := m.Run()
	moto.Stop()
	os.Exit(code)
}

// startMoto returns the URL of the package's moto server, starting it on
// first use, or skips the test when moto_server is not available.
func startMoto(t *testing.T) string {
	t.Helper()
	return moto.URL(t)
}

// motoEnv points the SDK's standard chain at fake credentials (the secret
// is secretMarker) and returns the moto URL.
func motoEnv(t *testing.T) string {
	url := startMoto(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDCLOUDMHATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretMarker)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/cloudmha-test-config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cloudmha-test-credentials")
	return url
}

// checkNoSecrets fails when the secret access key appears in the logs or
// in one of errs.
func checkNoSecrets(t *testing.T, logs *syncBuffer, errs []error) {
	t.Helper()
	all := logs.String()
	for _, e := range errs {
		all += "\n" + e.Error()
	}
	if strings.Contains(all, secretMarker) || strings.Contains(all, secretMarker[:20]) {
		t.Fatal("the secret access key appears in logs or errors")
	}
	if len(all) < 100 {
		t.Fatalf("too little logged to be a meaningful check: %q", all)
	}
}

// lab is a VPC with three instances in moto.
type lab struct {
	url   string
	api   *ec2.Client
	net   int // the lab's VPC is 10.<net>.0.0/16
	vpc   string
	ips   [3]string
	enis  [3]string
	insts [3]string
}

// labs counts the labs built in this test process (test-only state).
var labs atomic.Int32

// newLab builds a lab in VPC 10.<n>.0.0/16, subnet 10.<n>.1.0/24, with n
// new for each lab of the process (-count > 1 included): moto numbers the
// instances' addresses from the subnet's start, and finding an ENI by its
// private IP on the shared server must never see another lab's.
func newLab(t *testing.T) *lab {
	n := int(labs.Add(1)) - 1
	if n > 255 {
		t.Skip("more than 256 labs in one test process")
	}
	url := motoEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := awscloud.NewEC2(ctx, awscloud.Options{Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{url: url, api: api, net: n}
	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: sdkaws.String(fmt.Sprintf("10.%d.0.0/16", n))})
	if err != nil {
		t.Fatal(err)
	}
	l.vpc = sdkaws.ToString(vpc.Vpc.VpcId)
	sub, err := api.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: sdkaws.String(fmt.Sprintf("10.%d.1.0/24", n))})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		out, err := api.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: sdkaws.String("ami-12c6146b"), MinCount: sdkaws.Int32(1), MaxCount: sdkaws.Int32(1),
			InstanceType: types.InstanceTypeT3Micro, SubnetId: sub.Subnet.SubnetId,
		})
		if err != nil {
			t.Fatal(err)
		}
		in := out.Instances[0]
		l.insts[i] = sdkaws.ToString(in.InstanceId)
		l.ips[i] = sdkaws.ToString(in.PrivateIpAddress)
		for _, ni := range in.NetworkInterfaces {
			if sdkaws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
				l.enis[i] = sdkaws.ToString(ni.NetworkInterfaceId)
			}
		}
		if l.enis[i] == "" || l.ips[i] == "" {
			t.Fatalf("instance %s: no primary ENI or IP", l.insts[i])
		}
	}
	return l
}

// addr is host address h of the lab's subnet.
func (l *lab) addr(h int) string { return fmt.Sprintf("10.%d.1.%d", l.net, h) }

// config returns a configuration of the three servers: server1 found by
// its IP, server2 by eni_id, server3 by instance_id.
func (l *lab) config(kind string, opts map[string]string) *config.Config {
	o := map[string]string{"endpoint": l.url, "eni_id.server2": l.enis[1], "instance_id.server3": l.insts[2]}
	for k, v := range opts {
		o[k] = v
	}
	return &config.Config{
		Servers: []config.Server{{Name: "server1", IP: l.ips[0]}, {Name: "server2", IP: l.ips[1]}, {Name: "server3", IP: l.ips[2]}},
		Address: config.Address{Mover: kind, Options: o},
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hideVIP is an EC2API whose DescribeNetworkInterfaces never shows the VIP
// on one ENI: the waited state never appears.
type hideVIP struct {
	EC2API
	eni, vip string
}

func (h hideVIP) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, o ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	out, err := h.EC2API.DescribeNetworkInterfaces(ctx, in, o...)
	if err != nil {
		return nil, err
	}
	for i, ni := range out.NetworkInterfaces {
		if sdkaws.ToString(ni.NetworkInterfaceId) != h.eni {
			continue
		}
		var keep []types.NetworkInterfacePrivateIpAddress
		for _, a := range ni.PrivateIpAddresses {
			if sdkaws.ToString(a.PrivateIpAddress) != h.vip {
				keep = append(keep, a)
			}
		}
		out.NetworkInterfaces[i].PrivateIpAddresses = keep
	}
	return out, nil
}

func TestMoto(t *testing.T) {
	l := newLab(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []error
	keep := func(err error) error {
		if err != nil {
			errs = append(errs, err)
		}
		return err
	}
	target := func(n string) address.Target { return address.Target{Name: n, SSHReachable: true} }
	vip := l.addr(200)

	holder := func(t *testing.T, m address.Mover, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h, err := m.Holder(ctx)
		if keep(err) != nil || h != want {
			t.Fatalf("Holder = %q, %v; want %q", h, err, want)
		}
		if sc, ok := m.(address.StatusChecker); ok && want != "" {
			if err := sc.Status(ctx, target(want)); keep(err) != nil {
				t.Fatalf("Status(%s): %v", want, err)
			}
		}
	}
	timed := func(t *testing.T, what string, f func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		if err := keep(f(ctx)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
	}

	t.Run("SecondaryIP", func(t *testing.T) {
		m, err := NewSecondaryIP(l.config(KindSecondaryIP, map[string]string{"vip": vip, "guest": "none"}), Options{Logger: log})
		if keep(err) != nil {
			t.Fatal(err)
		}
		holder(t, m, "")
		timed(t, "acquire none->server1", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{New: target("server1")})
		})
		holder(t, m, "server1")
		timed(t, "release server1", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: target("server1"), New: target("server2")})
		})
		holder(t, m, "")
		timed(t, "acquire server2", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: target("server1"), New: target("server2")})
		})
		holder(t, m, "server2")
		// Back to A without a Release: the reassignment moves it.
		timed(t, "acquire server2->server1 (reassignment)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: target("server2"), New: target("server1")})
		})
		holder(t, m, "server1")
		timed(t, "acquire server1->server3 (instance_id)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: target("server1"), New: target("server3")})
		})
		holder(t, m, "server3")
		// Idempotent re-runs.
		for range 2 {
			timed(t, "acquire server3 again", func(ctx context.Context) error {
				return m.Acquire(ctx, address.Change{Old: target("server1"), New: target("server3")})
			})
			holder(t, m, "server3")
			timed(t, "release server1 (not holding)", func(ctx context.Context) error {
				return m.Release(ctx, address.Change{Old: target("server1"), New: target("server3")})
			})
			holder(t, m, "server3")
		}
		// Status against the wrong primary fails.
		ctx := context.Background()
		if err := m.(address.StatusChecker).Status(ctx, target("server1")); err == nil {
			t.Fatal("Status(server1) succeeded while server3 holds the VIP")
		} else {
			errs = append(errs, err)
		}
	})

	t.Run("EIP", func(t *testing.T) {
		ctx := context.Background()
		a, err := l.api.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
		if err != nil {
			t.Fatal(err)
		}
		var obsMu sync.Mutex
		calls := map[string]int{}
		observeCall := func(api string, err error) {
			obsMu.Lock()
			defer obsMu.Unlock()
			calls[fmt.Sprintf("%s/%t", api, err == nil)]++
		}
		m, err := NewEIP(l.config(KindEIP, map[string]string{"allocation_id": sdkaws.ToString(a.AllocationId)}), Options{Logger: log, Observe: observeCall})
		if keep(err) != nil {
			t.Fatal(err)
		}
		holder(t, m, "")
		timed(t, "eip acquire server1", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{New: target("server1")})
		})
		obsMu.Lock()
		if calls["AssociateAddress/true"] != 1 {
			t.Errorf("observed API calls %v, want one AssociateAddress", calls)
		}
		obsMu.Unlock()
		holder(t, m, "server1")
		timed(t, "eip acquire server1->server2 (reassociation)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: target("server1"), New: target("server2")})
		})
		holder(t, m, "server2")
		timed(t, "eip acquire server2->server3 (instance)", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: target("server2"), New: target("server3")})
		})
		holder(t, m, "server3")
		timed(t, "eip acquire server3 again", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: target("server2"), New: target("server3")})
		})
		timed(t, "eip release server1 (not holding)", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: target("server1"), New: target("server3")})
		})
		holder(t, m, "server3")
		timed(t, "eip release server3", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: target("server3"), New: target("server1")})
		})
		holder(t, m, "")
		timed(t, "eip release server3 again", func(ctx context.Context) error {
			return m.Release(ctx, address.Change{Old: target("server3"), New: target("server1")})
		})
		timed(t, "eip acquire server1 after release", func(ctx context.Context) error {
			return m.Acquire(ctx, address.Change{Old: target("server3"), New: target("server1")})
		})
		holder(t, m, "server1")
	})

	t.Run("InvalidENI", func(t *testing.T) {
		cfg := l.config(KindSecondaryIP, map[string]string{"vip": l.addr(201), "guest": "none", "eni_id.server2": "eni-0123456789abcdef0"})
		m, err := NewSecondaryIP(cfg, Options{Logger: log, WaitTimeout: time.Second})
		if keep(err) != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = keep(m.Acquire(ctx, address.Change{New: target("server2")}))
		if err == nil || !strings.Contains(err.Error(), "eni-0123456789abcdef0") || !strings.Contains(err.Error(), "InvalidNetworkInterfaceID") {
			t.Fatalf("Acquire with a bad ENI: %v; want an error naming the ENI and InvalidNetworkInterfaceID", err)
		}
		t.Logf("error: %v", err)
		if _, err := m.Holder(ctx); keep(err) == nil {
			t.Fatal("Holder with a bad ENI succeeded")
		}
		err = keep(m.Release(ctx, address.Change{Old: target("server2")}))
		var pe *address.ProceedError
		if !errors.As(err, &pe) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Release of a missing ENI: %v; want a ProceedError wrapping ErrNotFound", err)
		}
	})

	t.Run("TimeoutRollback", func(t *testing.T) {
		vip2 := l.addr(202)
		cfg := l.config(KindSecondaryIP, map[string]string{"vip": vip2, "guest": "none"})
		real, err := NewSecondaryIP(cfg, Options{Logger: log})
		if keep(err) != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := keep(real.Acquire(ctx, address.Change{New: target("server1")})); err != nil {
			t.Fatal(err)
		}
		m, err := NewSecondaryIP(cfg, Options{Logger: log, EC2: hideVIP{EC2API: l.api, eni: l.enis[1], vip: vip2}, WaitTimeout: 300 * time.Millisecond})
		if keep(err) != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = keep(m.Acquire(ctx, address.Change{Old: target("server1"), New: target("server2"), Online: true}))
		var me *MoveError
		if !errors.Is(err, ErrTimeout) || !errors.As(err, &me) {
			t.Fatalf("Acquire with a state that never shows: %v; want a MoveError wrapping ErrTimeout", err)
		}
		t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		if !strings.HasPrefix(me.Rollback, "put back on server1") || me.State != "on server server1" {
			t.Fatalf("rollback %q, state %q; want put back on server1, on server server1", me.Rollback, me.State)
		}
		holder(t, real, "server1")
	})

	// A failed Acquire puts the address back only on a switchover
	// (Online); in a failover it stays where the failure left it, and the
	// MoveError says where that is.
	rollbackCases := func(t *testing.T, what string, build func(api EC2API, rollback string) (address.Mover, error)) {
		t.Helper()
		real, err := build(l.api, "true")
		if keep(err) != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// On server1, then released by the failover (moto keeps a
		// reassigned secondary IP on both ENIs: start from none).
		if err := keep(real.Acquire(ctx, address.Change{New: target("server1")})); err != nil {
			t.Fatal(err)
		}
		if err := keep(real.Release(ctx, address.Change{Old: target("server1"), New: target("server2")})); err != nil {
			t.Fatal(err)
		}
		la := &lostAnswer{EC2API: l.api}
		m, err := build(la, "true")
		if keep(err) != nil {
			t.Fatal(err)
		}

		la.lose.Store(1)
		err = keep(m.Acquire(ctx, address.Change{Old: address.Target{Name: "server1"}, New: target("server2")}))
		var me *MoveError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("%s failover: %v; want a MoveError with the injected failure", what, err)
		}
		t.Logf("%s failover: %v", what, err)
		if !strings.HasPrefix(me.Rollback, "not attempted: failover") || me.State != "on server server2" {
			t.Fatalf("%s failover: rollback %q, state %q; want not attempted, on server server2", what, me.Rollback, me.State)
		}
		if n := la.calls.Load(); n != 1 {
			t.Fatalf("%s failover: %d move calls, want 1 (no rollback)", what, n)
		}
		holder(t, real, "server2")

		la.lose.Store(1)
		la.calls.Store(0)
		err = keep(m.Acquire(ctx, address.Change{Old: target("server2"), New: target("server3"), Online: true}))
		if !errors.As(err, &me) {
			t.Fatalf("%s switchover: %v; want a MoveError", what, err)
		}
		t.Logf("%s switchover: %v", what, err)
		if !strings.HasPrefix(me.Rollback, "put back on server2") || me.State != "on server server2" {
			t.Fatalf("%s switchover: rollback %q, state %q; want put back on server2, on server server2", what, me.Rollback, me.State)
		}
		if n := la.calls.Load(); n != 2 {
			t.Fatalf("%s switchover: %d move calls, want 2 (move, rollback)", what, n)
		}
		holder(t, real, "server2")

		// rollback=false: not even on a switchover.
		la.lose.Store(1)
		m2, err := build(la, "false")
		if keep(err) != nil {
			t.Fatal(err)
		}
		err = keep(m2.Acquire(ctx, address.Change{Old: target("server2"), New: target("server3"), Online: true}))
		// (moto: "on server server2 and server server3", see above)
		if !errors.As(err, &me) || me.Rollback != "not attempted: option rollback=false" || !strings.Contains(me.State, "server server3") {
			t.Fatalf("%s switchover, rollback=false: %v", what, err)
		}
	}

	t.Run("RollbackSecondaryIP", func(t *testing.T) {
		rollbackCases(t, "secondary IP", func(api EC2API, rollback string) (address.Mover, error) {
			return NewSecondaryIP(l.config(KindSecondaryIP, map[string]string{"vip": l.addr(203), "guest": "none", "rollback": rollback}), Options{Logger: log, EC2: api})
		})
	})

	t.Run("RollbackEIP", func(t *testing.T) {
		a, err := l.api.AllocateAddress(context.Background(), &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
		if err != nil {
			t.Fatal(err)
		}
		rollbackCases(t, "Elastic IP", func(api EC2API, rollback string) (address.Mover, error) {
			return NewEIP(l.config(KindEIP, map[string]string{"allocation_id": sdkaws.ToString(a.AllocationId), "rollback": rollback}), Options{Logger: log, EC2: api})
		})
	})

	t.Run("NoSecretsInLogs", func(t *testing.T) { checkNoSecrets(t, logs, errs) })
}

// lostAnswer is an EC2API whose move calls (AssignPrivateIpAddresses,
// AssociateAddress, CreateRoute, ReplaceRoute) are carried out and then,
// while lose > 0, reported as failed: an answer lost after EC2 acted.
// With failTable set, the route calls on that table fail without being
// carried out, every time.
type lostAnswer struct {
	EC2API
	lose      atomic.Int32
	calls     atomic.Int32
	failTable string
}

func injected(op string) error {
	return &smithy.GenericAPIError{Code: "InternalError", Message: "injected failure of " + op}
}

func (l *lostAnswer) lost(op string, err error) error {
	l.calls.Add(1)
	if err == nil && l.lose.Add(-1) >= 0 {
		return injected(op)
	}
	return err
}

func (l *lostAnswer) AssignPrivateIpAddresses(ctx context.Context, in *ec2.AssignPrivateIpAddressesInput, o ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error) {
	out, err := l.EC2API.AssignPrivateIpAddresses(ctx, in, o...)
	if err := l.lost("AssignPrivateIpAddresses", err); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *lostAnswer) AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, o ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	out, err := l.EC2API.AssociateAddress(ctx, in, o...)
	if err := l.lost("AssociateAddress", err); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *lostAnswer) CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, o ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	if sdkaws.ToString(in.RouteTableId) == l.failTable {
		l.calls.Add(1)
		return nil, injected("CreateRoute")
	}
	out, err := l.EC2API.CreateRoute(ctx, in, o...)
	if err := l.lost("CreateRoute", err); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *lostAnswer) ReplaceRoute(ctx context.Context, in *ec2.ReplaceRouteInput, o ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error) {
	if sdkaws.ToString(in.RouteTableId) == l.failTable {
		l.calls.Add(1)
		return nil, injected("ReplaceRoute")
	}
	out, err := l.EC2API.ReplaceRoute(ctx, in, o...)
	if err := l.lost("ReplaceRoute", err); err != nil {
		return nil, err
	}
	return out, nil
}
