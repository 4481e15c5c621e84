package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ErrNoMoto: moto_server (the third-party AWS emulator) is not installed,
// and PyPI is out of reach on these machines; tests skip on it.
var ErrNoMoto = errors.New("testbed: moto_server (AWS emulator) is not installed")

// MotoPort is where moto listens, on the manager namespace's loopback.
const MotoPort = "4566"

// Moto is a moto_server on the manager namespace's loopback, where the
// manager under test reaches it at Endpoint.
type Moto struct {
	Endpoint string      // http://127.0.0.1:4566, seen from the manager namespace
	EC2      *ec2.Client // dials from the manager namespace

	hc   *http.Client // dials from the manager namespace
	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
}

// StartMoto runs moto_server in the manager namespace, its output in
// logPath, and waits until it answers (it takes ~2.5 s to start). The
// returned EC2 client uses the region us-east-1 and dummy credentials.
func (b *Bed) StartMoto(ctx context.Context, logPath string) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrNoMoto
	}
	if err := run(ctx, "ip", "-n", b.ManagerNS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("testbed: moto log: %w", err)
	}
	cmd := exec.Command("ip", "netns", "exec", b.ManagerNS, bin, "-H", "127.0.0.1", "-p", MotoPort)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("testbed: start moto_server: %w", err)
	}
	m := &Moto{Endpoint: "http://127.0.0.1:" + MotoPort, cmd: cmd, logf: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.done) }()
	m.hc = &http.Client{Transport: &http.Transport{DialContext: b.Dialer(b.ManagerNS)}, Timeout: 10 * time.Second}
	m.EC2 = ec2.New(ec2.Options{
		Region: "us-east-1", HTTPClient: m.hc, BaseEndpoint: aws.String(m.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := m.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
		if err == nil {
			return m, nil
		}
		select {
		case <-m.done:
			err = errors.New("moto_server exited")
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil || m.exited() {
			_ = m.Close()
			return nil, fmt.Errorf("testbed: moto did not answer (log %s): %w", logPath, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (m *Moto) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Close stops moto_server (its process group) and waits for it.
func (m *Moto) Close() error {
	if m.cmd.Process != nil && !m.exited() {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-m.done
	return m.logf.Close()
}

// AWSPlane is the platform side of moto on the bed: a VPC and a subnet
// (the bed's), one instance per host whose primary ENI has the host's
// address, and the data plane following EC2's state: the bed's VPC
// delivers the VIP only to the host whose ENI EC2 lists it on
// (SecondaryIP), and the internet's NAT gateway maps an Elastic IP to the
// private address EC2 associates it with (EIP).
//
// moto changes its state synchronously and tells nobody, so the plane is
// also the EC2 endpoint the manager under test must use: serve it
// (Bed.Listen in the manager namespace) and point the mover's endpoint
// option at it. It forwards every request to moto and, after a call that
// changes something, applies EC2's new state to the data plane before it
// answers — the data plane never lags what the API has said (a plane that
// only polled let a fast switchover reach the old primary after
// DisassociateAddress had returned). It also reads moto every 100 ms, for
// changes made around it.
type AWSPlane struct {
	Moto     *Moto
	VPC      *VPC
	VpcID    string
	SubnetID string
	Instance map[string]string // host name -> instance id (i-…)
	ENI      map[string]string // host name -> primary ENI id (eni-…)
	Host     map[string]string // instance or ENI id -> host name

	b      *Bed
	mu     sync.Mutex
	vip    bool              // following the VIP (SecondaryIP)
	inet   *Internet         // following Elastic IPs (EIP)
	eips   map[string]string // allocation id -> public address
	moves  []string
	cancel context.CancelFunc
	done   chan struct{}

	syncMu  sync.Mutex        // one sync at a time; guards the two below
	lastVIP string            // the VIP's owner as applied ("-": not yet)
	lastEIP map[string]string // allocation id -> private address as applied
}

// NewAWSPlane creates the cloud side in moto (a VPC 198.18.0.0/16 with
// the bed's subnet, an instance per host with the host's address) and
// turns the VPC data plane on for the bed's VIP, delivered to nobody until
// EC2 assigns it (SecondaryIP).
func (b *Bed) NewAWSPlane(ctx context.Context, m *Moto) (*AWSPlane, error) {
	cli := m.EC2
	p := &AWSPlane{Moto: m, b: b, Instance: map[string]string{}, ENI: map[string]string{}, Host: map[string]string{},
		eips: map[string]string{}, lastVIP: "-", lastEIP: map[string]string{}}
	vpcCIDR := netip.PrefixFrom(b.subnet.Addr(), 16).Masked()
	vpc, err := cli.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(vpcCIDR.String())})
	if err != nil {
		return nil, fmt.Errorf("testbed: moto VPC: %w", err)
	}
	p.VpcID = aws.ToString(vpc.Vpc.VpcId)
	sub, err := cli.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(b.subnet.String())})
	if err != nil {
		return nil, fmt.Errorf("testbed: moto subnet: %w", err)
	}
	p.SubnetID = aws.ToString(sub.Subnet.SubnetId)
	imgs, err := cli.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil || len(imgs.Images) == 0 {
		return nil, fmt.Errorf("testbed: moto has no images (%v)", err)
	}
	for _, h := range b.Hosts {
		r, err := cli.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			SubnetId: sub.Subnet.SubnetId, PrivateIpAddress: aws.String(h.IP), InstanceType: ec2types.InstanceTypeT3Micro})
		if err != nil {
			return nil, fmt.Errorf("testbed: moto instance for %s: %w", h.Name, err)
		}
		in := r.Instances[0]
		id, eni := aws.ToString(in.InstanceId), aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId)
		p.Instance[h.Name], p.ENI[h.Name] = id, eni
		p.Host[id], p.Host[eni] = h.Name, h.Name
	}
	v, err := b.VPC(ctx, b.VIP)
	if err != nil {
		return nil, err
	}
	p.VPC = v
	fctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.follow(fctx)
	return p, nil
}

// SecondaryIP makes the bed's VIP a secondary private IP of the ENI of the
// host holding it now (db1 after Up), and waits until the data plane
// delivers it there.
func (p *AWSPlane) SecondaryIP(ctx context.Context) error {
	holder := vipHolders(ctx, p.b)
	if len(holder) != 1 {
		return fmt.Errorf("testbed: secondary IP: the VIP is on %v, want exactly one host", holder)
	}
	if _, err := p.Moto.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(p.ENI[holder[0]]), PrivateIpAddresses: []string{p.b.VIP}}); err != nil {
		return fmt.Errorf("testbed: assign the VIP to %s's ENI: %w", holder[0], err)
	}
	p.mu.Lock()
	p.vip = true
	p.mu.Unlock()
	return p.waitFor(ctx, func() bool { return p.VPC.Owner(p.b.VIP) == holder[0] }, "the VPC delivers the VIP to "+holder[0])
}

// EIP allocates the Elastic IP public (an address of the internet's
// public pool) in moto, associates it with host's instance, and makes the
// internet's NAT gateway follow it; it returns the allocation id once the
// gateway maps it to host.
func (p *AWSPlane) EIP(ctx context.Context, inet *Internet, public, host string) (string, error) {
	h := p.b.Host(host)
	if h == nil {
		return "", fmt.Errorf("testbed: EIP for unknown host %q", host)
	}
	if err := inet.AddEIP(ctx, public); err != nil {
		return "", err
	}
	out, err := p.Moto.EC2.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc, Address: aws.String(public)})
	if err != nil {
		return "", fmt.Errorf("testbed: allocate the Elastic IP %s: %w", public, err)
	}
	id := aws.ToString(out.AllocationId)
	if _, err := p.Moto.EC2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(id), InstanceId: aws.String(p.Instance[host])}); err != nil {
		return "", fmt.Errorf("testbed: associate the Elastic IP %s with %s: %w", public, host, err)
	}
	p.mu.Lock()
	p.inet = inet
	p.eips[id] = public
	p.mu.Unlock()
	return id, p.waitFor(ctx, func() bool { return inet.Target(public) == h.IP }, "the NAT gateway maps "+public+" to "+host)
}

func (p *AWSPlane) waitFor(ctx context.Context, cond func() bool, what string) error {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("testbed: %s: not within 10s (moves %v)", what, p.Moves())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: waiting until %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// follow applies EC2's state to the data plane every 100 ms until ctx ends.
func (p *AWSPlane) follow(ctx context.Context) {
	defer close(p.done)
	for ctx.Err() == nil {
		p.sync(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sync reads EC2's state from moto and applies what changed to the data
// plane.
func (p *AWSPlane) sync(ctx context.Context) {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	vip, inet := p.vip, p.inet
	eips := make(map[string]string, len(p.eips))
	for k, v := range p.eips {
		eips[k] = v
	}
	p.mu.Unlock()
	if vip {
		if owner, err := p.vipOwner(ctx); err == nil && owner != p.lastVIP {
			if err := p.VPC.Assign(ctx, p.b.VIP, owner); err != nil {
				p.record(fmt.Sprintf("VIP to %q: VPC: %v", owner, err))
			} else {
				p.lastVIP = owner
				p.record("VIP on " + name(owner))
			}
		}
	}
	if len(eips) == 0 {
		return
	}
	targets, err := p.eipTargets(ctx, eips)
	if err != nil {
		return
	}
	for id, public := range eips {
		to := targets[id]
		if last, ok := p.lastEIP[id]; ok && last == to {
			continue
		}
		if err := inet.Bind(ctx, public, to); err != nil {
			p.record(fmt.Sprintf("EIP %s to %q: NAT gateway: %v", public, to, err))
			continue
		}
		p.lastEIP[id] = to
		p.record(fmt.Sprintf("EIP %s on %s", public, name(p.b.hostOfIP(to))))
	}
}

// ServeHTTP forwards an EC2 request to moto; after an action that is not
// a Describe or Get, it applies EC2's state to the data plane before
// answering.
func (p *AWSPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "cannot read the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.Moto.Endpoint+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := p.Moto.hc.Do(out)
	if err != nil {
		http.Error(w, "moto: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "moto: "+err.Error(), http.StatusBadGateway)
		return
	}
	if changes(body) && resp.StatusCode < 300 {
		p.sync(r.Context())
	}
	for k, vs := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// changes tells whether an EC2 Query request (a form body) may change
// state: an action other than Describe… and Get….
func changes(form []byte) bool {
	v, err := url.ParseQuery(string(form))
	if err != nil {
		return true
	}
	a := v.Get("Action")
	return a != "" && !strings.HasPrefix(a, "Describe") && !strings.HasPrefix(a, "Get")
}

func name(host string) string {
	if host == "" {
		return "nothing"
	}
	return host
}

// vipOwner is the host whose ENI EC2 lists the VIP on ("" for none).
func (p *AWSPlane) vipOwner(ctx context.Context) (string, error) {
	out, err := p.Moto.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		return "", err
	}
	for _, n := range out.NetworkInterfaces {
		for _, a := range n.PrivateIpAddresses {
			if aws.ToString(a.PrivateIpAddress) == p.b.VIP {
				return p.Host[aws.ToString(n.NetworkInterfaceId)], nil
			}
		}
	}
	return "", nil
}

// eipTargets maps each followed allocation id to the private address EC2
// associates it with ("" when none).
func (p *AWSPlane) eipTargets(ctx context.Context, eips map[string]string) (map[string]string, error) {
	ids := make([]string, 0, len(eips))
	for id := range eips {
		ids = append(ids, id)
	}
	out, err := p.Moto.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: ids})
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, a := range out.Addresses {
		if aws.ToString(a.AssociationId) != "" || aws.ToString(a.NetworkInterfaceId) != "" {
			m[aws.ToString(a.AllocationId)] = aws.ToString(a.PrivateIpAddress)
		}
	}
	return m, nil
}

func (p *AWSPlane) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.moves = append(p.moves, time.Now().Format("15:04:05.000")+" "+s)
}

// Moves lists what the data plane did, in order.
func (p *AWSPlane) Moves() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.moves...)
}

// Close stops following and removes the VPC data plane (moto and the
// internet are closed by their owners).
func (p *AWSPlane) Close() error {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	if p.VPC != nil {
		return p.VPC.Close()
	}
	return nil
}

// vipHolders lists the hosts with the VIP on any interface.
func vipHolders(ctx context.Context, b *Bed) []string {
	var out []string
	for _, h := range b.Hosts {
		o, err := b.Exec(ctx, h.NS, "ip", "-o", "-4", "addr", "show")
		if err == nil && strings.Contains(string(o), " "+b.VIP+"/") {
			out = append(out, h.Name)
		}
	}
	return out
}
