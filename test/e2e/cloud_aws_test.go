package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// startMoto runs moto_server on the manager namespace's loopback with the
// bed's platform side (an instance per host, the data plane following
// EC2's state), serves the plane there as the EC2 endpoint the manager
// must use (it applies each change to the data plane before answering),
// and puts the credentials in the environment. It skips the test when moto
// is not installed. It returns the plane and the endpoint (http://…).
func startMoto(t *testing.T, b *testbed.Bed) (*testbed.AWSPlane, string) {
	t.Helper()
	ctx := context.Background()
	m, err := b.StartMoto(ctx, filepath.Join(t.TempDir(), "moto.log"))
	if errors.Is(err, testbed.ErrNoMoto) {
		t.Skip("moto_server (AWS emulator) is not installed on this machine: skipping the AWS end-to-end test")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	plane, err := b.NewAWSPlane(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plane.Close() })
	l, err := b.Listen(b.ManagerNS, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: plane, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", awsSecret)
	t.Setenv("AWS_REGION", "us-east-1")
	return plane, "http://" + l.Addr().String()
}

// awsSecret is the e2e tests' AWS secret key: moto accepts any, and the
// tests check it never appears in the manager's logs and files.
const awsSecret = "e2e-secret-marker-9f3a"

// TestFailoverAWSSecondaryIP: the VIP is an EC2 secondary private IP. The
// test bed's bridge behaves as a VPC (an address reaches only the host EC2
// assigns it to) driven by moto's state, so only a real API call moves the
// address; the manager fails over a killed primary with aws-secondary-ip.
func TestFailoverAWSSecondaryIP(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	plane, endpoint := startMoto(t, b)
	ctx := context.Background()
	if err := plane.SecondaryIP(ctx); err != nil {
		t.Fatal(err)
	}

	// The manager's configuration, in YAML (cloud settings live there).
	conf, dir := writeCloudYAML(t, b, "aws-secondary-ip",
		fmt.Sprintf(`{vip: %s, region: us-east-1, endpoint: "%s", interface: eth0, prefix: "24"}`, b.VIP, endpoint))

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
	sc.faultAt = time.Now()
	if err := b.Kill(b.Host("db1")); err != nil {
		t.Fatal(err)
	}
	np := sc.waitFailover(t, 40*time.Second)
	sc.finish(t, np, others(b, "db1", np)...)
	if got := plane.VPC.Owner(b.VIP); got != hostOf(np) {
		t.Errorf("EC2 assigns the VIP to %q, want %s", got, hostOf(np))
	}
	t.Logf("data plane: %v", plane.Moves())
	assertNoSecret(t, awsSecret, sc)
}

// writeCloudYAML writes the manager's YAML configuration for the bed with
// the given address mover and its options (a YAML flow mapping): cloud
// movers take settings that only the YAML format carries.
func writeCloudYAML(t *testing.T, b *testbed.Bed, mover, options string) (conf, dir string) {
	t.Helper()
	dir = t.TempDir()
	conf = filepath.Join(dir, "app1.yaml")
	if err := b.WriteYAMLConfig(conf, dir, mover, options); err != nil {
		t.Fatal(err)
	}
	return conf, dir
}
