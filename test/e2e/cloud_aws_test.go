package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudmha/cloudmha/test/testbed"
)

const motoPort = "4566"

// startMoto runs moto_server on the manager namespace's loopback, where the
// manager under test reaches it, and returns an EC2 client that dials it
// from there too.
func startMoto(t *testing.T, b *testbed.Bed) *ec2.Client {
	t.Helper()
	if _, err := exec.LookPath("moto_server"); err != nil {
		t.Skip("moto_server (AWS emulator) is not installed on this machine: skipping the AWS end-to-end test")
	}
	ctx := context.Background()
	if out, err := b.Exec(ctx, b.ManagerNS, "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatalf("lo up in %s: %v %s", b.ManagerNS, err, out)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", b.ManagerNS, "moto_server", "-H", "127.0.0.1", "-p", motoPort)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = logf.Close()
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: b.Dialer(b.ManagerNS)}, Timeout: 10 * time.Second}
	cli := ec2.New(ec2.Options{
		Region: "us-east-1", HTTPClient: hc, BaseEndpoint: aws.String("http://127.0.0.1:" + motoPort),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := cli.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err == nil {
			return cli
		} else if time.Now().After(deadline) {
			t.Fatalf("moto did not answer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFailoverAWSSecondaryIP: the VIP is an EC2 secondary private IP. The
// test bed's bridge behaves as a VPC (an address reaches only the host EC2
// assigns it to) driven by moto's state, so only a real API call moves the
// address; the manager fails over a killed primary with aws-secondary-ip.
func TestFailoverAWSSecondaryIP(t *testing.T) {
	b := upBed(t, testbed.Options{Hosts: 3, SemiSync: true})
	cli := startMoto(t, b)
	ctx := context.Background()

	// The cloud side: one VPC and subnet, an instance per host with the
	// host's address, the VIP as a secondary IP of db1's ENI.
	vpc, err := cli.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("198.18.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cli.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("198.18.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := cli.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("moto has no images: %v", err)
	}
	eniHost := map[string]string{}
	var db1ENI string
	for _, h := range b.Hosts {
		r, err := cli.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			SubnetId: sub.Subnet.SubnetId, PrivateIpAddress: aws.String(h.IP), InstanceType: ec2types.InstanceTypeT3Micro})
		if err != nil {
			t.Fatalf("run instance for %s: %v", h.Name, err)
		}
		eni := aws.ToString(r.Instances[0].NetworkInterfaces[0].NetworkInterfaceId)
		eniHost[eni] = h.Name
		if h.Name == "db1" {
			db1ENI = eni
		}
	}
	if _, err := cli.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(db1ENI), PrivateIpAddresses: []string{b.VIP}}); err != nil {
		t.Fatal(err)
	}

	// The data plane follows EC2's state.
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	moves := make(chan string, 16)
	go func() {
		last := "-"
		for cctx.Err() == nil {
			out, err := cli.DescribeNetworkInterfaces(cctx, &ec2.DescribeNetworkInterfacesInput{})
			if err == nil {
				owner := ""
				for _, n := range out.NetworkInterfaces {
					for _, a := range n.PrivateIpAddresses {
						if aws.ToString(a.PrivateIpAddress) == b.VIP {
							owner = eniHost[aws.ToString(n.NetworkInterfaceId)]
						}
					}
				}
				if owner != last {
					if err := v.Assign(cctx, b.VIP, owner); err == nil {
						last = owner
						moves <- owner
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if first := <-moves; first != "db1" {
		t.Fatalf("EC2 puts the VIP on %q, want db1", first)
	}

	// The manager's configuration, in YAML (cloud settings live there).
	conf, dir := writeCloudYAML(t, b, "aws-secondary-ip",
		fmt.Sprintf(`{vip: %s, region: us-east-1, endpoint: "http://127.0.0.1:%s", interface: eth0, prefix: "24"}`, b.VIP, motoPort))
	const secret = "e2e-secret-marker-9f3a"
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", "us-east-1")

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
	if got := v.Owner(b.VIP); got != hostOf(np) {
		t.Errorf("EC2 assigns the VIP to %q, want %s", got, hostOf(np))
	}
	assertNoSecret(t, secret, sc)
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
