package tencent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/cloud/observe"
	cloud "github.com/cloudmha/cloudmha/internal/cloud/tencent"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// Mover kinds (address mover names).
const (
	KindHaVip     = "tencent-havip"
	KindPrivateIP = "tencent-private-ip"
)

// Defaults of the options.
const (
	DefaultWaitTimeout  = 60 * time.Second
	DefaultPollInterval = 500 * time.Millisecond
	DefaultCallTimeout  = 10 * time.Second
	DefaultRetries      = 6
	DefaultPrefix       = 32
	DefaultARPCount     = 3
)

// Errors a caller may want to tell apart.
var (
	// ErrTimeout: an asynchronous change did not complete in time (it is address.ErrTimeout,
	// shared with the other cloud movers).
	ErrTimeout = address.ErrTimeout
	// ErrAuth: the API refused the credentials, or there are none.
	ErrAuth = errors.New("the Tencent Cloud API refused the credentials")
	// ErrConflict: the resource is held by a server it should not be, or is
	// not set up as the mover needs.
	ErrConflict = errors.New("the resource is in an unexpected state")
	// ErrTaskFailed: an asynchronous VPC task ended FAILED.
	ErrTaskFailed = errors.New("the VPC task failed")
)

// Options are what the movers need from the outside world.
type Options struct {
	// Dial opens TCP connections for SSH; nil means net.Dialer.
	Dial remote.DialFunc
	// Logger receives what the mover does; nil discards.
	Logger *slog.Logger
	// HTTPClient provides the transport of the API requests; nil builds
	// one (proxy from the proxy option or the environment).
	HTTPClient *http.Client
	// Observe, when set, sees every API request (for the metrics).
	Observe observe.Func
}

// server is one configured server.
type server struct {
	cfg config.Server
	ssh remote.Target
}

// nic is a server's network interface, as the API describes it.
type nic struct {
	id       string
	instance string
	mac      string
	subnet   string
	ip       string // the server's private IP on it
}

// runFunc runs a shell command on a server's guest.
type runFunc func(ctx context.Context, s server, cmd string) (string, error)

// base holds what both movers share.
type base struct {
	kind    string
	api     *cloud.Client
	log     *slog.Logger
	servers []server
	guest   string // ssh | none
	waitTO  time.Duration
	poll    time.Duration
	retries int
	iface   string // auto (by MAC) or a device name
	prefix  int
	arping  string // arping command, or none
	arpN    int
	run     runFunc // the guest side (runSSH; tests replace it)

	mu      sync.Mutex
	eniOpts map[string]string // server name -> configured ENI id
	nics    map[string]nic    // server name -> resolved ENI
}

// parsed options; used marks the keys a mover understood.
type opts struct {
	m    map[string]string
	used map[string]bool
}

func (o *opts) get(k, def string) string {
	o.used[k] = true
	if v, ok := o.m[k]; ok && v != "" {
		return v
	}
	return def
}

func (o *opts) duration(k string, def time.Duration) (time.Duration, error) {
	v := o.get(k, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("option %s=%q: want a positive duration (e.g. 30s)", k, v)
	}
	return d, nil
}

func (o *opts) intIn(k string, def, lo, hi int) (int, error) {
	v := o.get(k, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("option %s=%q: want %d..%d", k, v, lo, hi)
	}
	return n, nil
}

func (o *opts) yesNo(k string, def bool) (bool, error) {
	switch v := strings.ToLower(o.get(k, "")); v {
	case "":
		return def, nil
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	default:
		return false, fmt.Errorf("option %s=%q: want yes or no", k, v)
	}
}

// unknown reports the options no one read (typos), sorted.
func (o *opts) unknown() error {
	var bad []string
	for k := range o.m {
		if !o.used[k] && !strings.HasPrefix(k, "eni.") {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("unknown option(s) %s", strings.Join(bad, ", "))
	}
	return nil
}

// shellSafe rejects values that would need quoting in a shell command.
func shellSafe(k, v string) error {
	if v == "" || strings.ContainsAny(v, " \t\n'\"$;&|<>`\\*?[]{}()~#!") {
		return fmt.Errorf("option %s=%q is not a plain word", k, v)
	}
	return nil
}

// newBase reads the shared settings and builds the API client.
func newBase(kind string, cfg *config.Config, o Options, op *opts) (*base, error) {
	b := &base{kind: kind, log: o.Logger, eniOpts: map[string]string{}, nics: map[string]nic{}}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	region := op.get("region", "")
	if region == "" {
		return nil, errors.New("option region is required (e.g. ap-guangzhou)")
	}
	if err := shellSafe("region", region); err != nil {
		return nil, err
	}
	b.guest = op.get("guest", "ssh")
	if b.guest != "ssh" && b.guest != "none" {
		return nil, fmt.Errorf("option guest=%q: want ssh or none", b.guest)
	}
	var err error
	if b.waitTO, err = op.duration("wait_timeout", DefaultWaitTimeout); err != nil {
		return nil, err
	}
	if b.poll, err = op.duration("poll_interval", DefaultPollInterval); err != nil {
		return nil, err
	}
	callTO, err := op.duration("call_timeout", DefaultCallTimeout)
	if err != nil {
		return nil, err
	}
	if b.retries, err = op.intIn("retries", DefaultRetries, 1, 50); err != nil {
		return nil, err
	}
	if b.prefix, err = op.intIn("prefix", DefaultPrefix, 1, 32); err != nil {
		return nil, err
	}
	if b.arpN, err = op.intIn("arp_count", DefaultARPCount, 1, 100); err != nil {
		return nil, err
	}
	b.iface = op.get("interface", "auto")
	if err := shellSafe("interface", b.iface); err != nil || strings.Contains(b.iface, "/") {
		return nil, fmt.Errorf("option interface=%q: want auto or a device name", b.iface)
	}
	b.arping = op.get("arping", "arping")
	if err := shellSafe("arping", b.arping); err != nil {
		return nil, err
	}
	cvmRole, err := op.yesNo("cvm_role", true)
	if err != nil {
		return nil, err
	}
	dial := o.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	names := map[string]bool{}
	for _, s := range cfg.Servers {
		names[s.Name] = true
		t, err := remote.TargetFor(s, dial)
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", s.Name, err)
		}
		b.servers = append(b.servers, server{cfg: s, ssh: t})
		if id := op.m["eni."+s.Name]; id != "" {
			if !strings.HasPrefix(id, "eni-") || shellSafe("eni."+s.Name, id) != nil {
				return nil, fmt.Errorf("option eni.%s=%q is not an ENI id (eni-…)", s.Name, id)
			}
			b.eniOpts[s.Name] = id
		} else if ip := serverIP(s); ip == "" {
			return nil, fmt.Errorf("server %s: no IP address to find its ENI by (set its ip, or the option eni.%s)", s.Name, s.Name)
		}
	}
	if len(b.servers) == 0 {
		return nil, errors.New("the configuration has no servers")
	}
	for k := range op.m {
		if n, ok := strings.CutPrefix(k, "eni."); ok && !names[n] {
			return nil, fmt.Errorf("option %s: no server named %q", k, n)
		}
	}
	b.api, err = cloud.New(cloud.Config{
		Region: region, Endpoint: op.get("endpoint", ""), Proxy: op.get("proxy", ""),
		CallTimeout: callTO, HTTPClient: o.HTTPClient, Observe: o.Observe, Logger: b.log, NoInstanceMetadata: !cvmRole,
	})
	if err != nil {
		return nil, err
	}
	b.run = b.runSSH
	b.log = b.log.With("mover", kind)
	return b, nil
}

// serverIP is the private IP a server's ENI is found by: its ip, else its
// hostname when that is an IPv4 address.
func serverIP(s config.Server) string {
	for _, c := range []string{s.IP, s.Hostname} {
		if a, err := netip.ParseAddr(c); err == nil && a.Is4() {
			return a.String()
		}
	}
	return ""
}

func (b *base) server(name string) (server, error) {
	for _, s := range b.servers {
		if s.cfg.Name == name {
			return s, nil
		}
	}
	return server{}, fmt.Errorf("%s: server %q is not in the configuration", b.kind, name)
}

// apiErr wraps an API error with the operation and a one-line
// description; authentication failures wrap ErrAuth.
func (b *base) apiErr(op string, err error) error {
	if cloud.IsAuth(err) {
		return fmt.Errorf("%s: %s: %w: %s; check the credential chain (TENCENTCLOUD_SECRET_ID/_SECRET_KEY, the profile file, the CVM role) and the clock", b.kind, op, ErrAuth, cloud.Describe(err))
	}
	if _, ok := cloud.ErrorInfo(err); ok {
		return fmt.Errorf("%s: %s: %w", b.kind, op, &apiError{err})
	}
	return fmt.Errorf("%s: %s: %w", b.kind, op, err)
}

// apiError shows an SDK error in one line (cloud.Describe) and unwraps to
// it.
type apiError struct{ err error }

func (e *apiError) Error() string { return cloud.Describe(e.err) }
func (e *apiError) Unwrap() error { return e.err }

// call resolves the credentials, then runs f, retrying throttling,
// internal errors and transport failures with jittered exponential
// backoff (200 ms doubling to 5 s) up to b.retries attempts or the
// context's end.
func (b *base) call(ctx context.Context, op string, f func() error) error {
	if err := b.api.Credentials(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %s: %w", b.kind, op, ctx.Err())
		}
		return fmt.Errorf("%s: %s: %w: %w", b.kind, op, ErrAuth, err)
	}
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %s: %w (last error: %s)", b.kind, op, ctx.Err(), cloud.Describe(err))
		}
		if !cloud.IsRetryable(err) || attempt >= b.retries {
			return b.apiErr(op, err)
		}
		d := delay/2 + rand.N(delay/2+1)
		b.log.Warn("API call failed, retrying", "op", op, "attempt", attempt, "retry_in", d.Round(time.Millisecond), "err", cloud.Describe(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s: %w (last error: %s)", b.kind, op, ctx.Err(), cloud.Describe(err))
		case <-time.After(d):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// wait polls check every poll_interval until it reports done, an error,
// or wait_timeout passes (see address.Poller).
func (b *base) wait(ctx context.Context, what string, check func(ctx context.Context) (done bool, state string, err error)) error {
	return address.Poller{Kind: b.kind, Timeout: b.waitTO, Interval: b.poll, Log: b.log}.Wait(ctx, what, check)
}

// describeENIs runs DescribeNetworkInterfaces with ids or filters.
func (b *base) describeENIs(ctx context.Context, ids []string, filters map[string][]string) ([]*vpc.NetworkInterface, error) {
	var out []*vpc.NetworkInterface
	err := b.call(ctx, "DescribeNetworkInterfaces", func() error {
		req := vpc.NewDescribeNetworkInterfacesRequest()
		if len(ids) > 0 {
			req.NetworkInterfaceIds = common.StringPtrs(ids)
		}
		for _, k := range slices.Sorted(maps.Keys(filters)) {
			req.Filters = append(req.Filters, &vpc.Filter{Name: common.StringPtr(k), Values: common.StringPtrs(filters[k])})
		}
		req.Limit = common.Uint64Ptr(100)
		resp, err := b.api.VPC.DescribeNetworkInterfacesWithContext(ctx, req)
		if err != nil {
			return err
		}
		out = nil
		if resp.Response != nil {
			out = resp.Response.NetworkInterfaceSet
		}
		return nil
	})
	return out, err
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// hasIP tells whether an ENI carries ip (and whether as its primary IP,
// and its state).
func hasIP(n *vpc.NetworkInterface, ip string) (found, primary bool, state string) {
	for _, a := range n.PrivateIpAddressSet {
		if a != nil && str(a.PrivateIpAddress) == ip {
			return true, a.Primary != nil && *a.Primary, str(a.State)
		}
	}
	return false, false, ""
}

func nicOf(n *vpc.NetworkInterface, ip string) nic {
	r := nic{id: str(n.NetworkInterfaceId), mac: strings.ToLower(str(n.MacAddress)), subnet: str(n.SubnetId), ip: ip}
	if n.Attachment != nil {
		r.instance = str(n.Attachment.InstanceId)
	}
	return r
}

// serverNIC returns a server's ENI: the configured eni.<server>, else the
// ENI whose primary private IP is the server's IP. It is looked up once.
func (b *base) serverNIC(ctx context.Context, name string) (nic, error) {
	b.mu.Lock()
	n, ok := b.nics[name]
	id := b.eniOpts[name]
	b.mu.Unlock()
	if ok {
		return n, nil
	}
	s, err := b.server(name)
	if err != nil {
		return nic{}, err
	}
	ip := serverIP(s.cfg)
	if id != "" {
		enis, err := b.describeENIs(ctx, []string{id}, nil)
		if err != nil {
			return nic{}, err
		}
		if len(enis) != 1 {
			return nic{}, fmt.Errorf("%s: %w: ENI %s (option eni.%s) not found in region %s", b.kind, ErrConflict, id, name, b.api.Region)
		}
		n = nicOf(enis[0], ip)
	} else {
		enis, err := b.describeENIs(ctx, nil, map[string][]string{"address-ip": {ip}, "ip-exact-match": {"true"}})
		if err != nil {
			return nic{}, err
		}
		var found []*vpc.NetworkInterface
		for _, e := range enis {
			// The filter matches by suffix on some API versions: check.
			if ok, primary, _ := hasIP(e, ip); ok && primary {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			return nic{}, fmt.Errorf("%s: %w: server %s: %d ENIs have the primary private IP %s in region %s; set the option eni.%s", b.kind, ErrConflict, name, len(found), ip, b.api.Region, name)
		}
		n = nicOf(found[0], ip)
		b.log.Info("ENI found by private IP", "server", name, "ip", ip, "eni", n.id, "instance", n.instance)
	}
	b.mu.Lock()
	b.nics[name] = n
	b.mu.Unlock()
	return n, nil
}

// allNICs resolves every server's ENI.
func (b *base) allNICs(ctx context.Context) (map[string]nic, error) {
	out := map[string]nic{}
	for _, s := range b.servers {
		n, err := b.serverNIC(ctx, s.cfg.Name)
		if err != nil {
			return nil, err
		}
		out[s.cfg.Name] = n
	}
	return out, nil
}

// serverOf maps an ENI id (or, when eniID is empty or unknown, an instance
// id) back to a server name ("" when none).
func (b *base) serverOf(ctx context.Context, eniID, instanceID string) (string, error) {
	nics, err := b.allNICs(ctx)
	if err != nil {
		return "", err
	}
	for _, s := range b.servers {
		if n := nics[s.cfg.Name]; eniID != "" && n.id == eniID {
			return s.cfg.Name, nil
		}
	}
	for _, s := range b.servers {
		if n := nics[s.cfg.Name]; instanceID != "" && n.instance == instanceID {
			return s.cfg.Name, nil
		}
	}
	return "", nil
}

// device is the shell snippet that sets $d to the guest interface of n:
// the configured interface, or the one with n's MAC address.
func (b *base) device(n nic) string {
	if b.iface != "auto" {
		return "d=" + b.iface + "; "
	}
	return fmt.Sprintf("d=$(ip -o link | grep -i ' link/ether %s ' | cut -d: -f2 | cut -d@ -f1 | tr -d ' ' | head -n1); "+
		"[ -n \"$d\" ] || { echo 'no interface with MAC %s' >&2; exit 3; }; ", n.mac, n.mac)
}

// addCmd adds ip on n's interface (once) and announces it with
// gratuitous ARP (requests, then replies: some gear honours only one).
func (b *base) addCmd(n nic, ip string) string {
	cmd := b.device(n) + fmt.Sprintf("ip -o addr show dev \"$d\" | grep -q ' %[1]s/' || ip addr add %[1]s/%[2]d dev \"$d\"", ip, b.prefix)
	if b.arping != "none" {
		cmd += fmt.Sprintf("; if command -v %[1]s >/dev/null 2>&1; then nohup %[1]s -q -U -c %[2]d -I \"$d\" %[3]s >/dev/null 2>&1 </dev/null & nohup %[1]s -q -A -c %[2]d -I \"$d\" %[3]s >/dev/null 2>&1 </dev/null & fi; true", b.arping, b.arpN, ip)
	}
	return cmd
}

// delCmd removes ip from every interface that has it (whatever its
// prefix) and stops the announcements.
func (b *base) delCmd(ip string) string {
	return fmt.Sprintf("pkill -f 'arping.* %[1]s$' 2>/dev/null; ip -o -4 addr show | awk -v ip=%[1]s '{split($4, a, \"/\"); if (a[1] == ip) print $2, $4}' | "+
		"while read -r d c; do ip addr del \"$c\" dev \"$d\" || exit 1; done", ip)
}

// runSSH runs a shell command on a server over SSH (sudo -n when the SSH
// user is not root).
func (b *base) runSSH(ctx context.Context, s server, cmd string) (string, error) {
	cl, err := remote.Dial(ctx, s.ssh)
	if err != nil {
		return "", fmt.Errorf("%s: ssh %s: %w", b.kind, s.cfg.Name, err)
	}
	defer cl.Close()
	out, err := cl.Run(ctx, remote.AdminShell(cmd, s.ssh.User != "root"))
	if err != nil {
		return string(out), fmt.Errorf("%s: on %s: %w", b.kind, s.cfg.Name, err)
	}
	return string(out), nil
}

// guestAdd adds the address on a server's guest (guest=ssh).
func (b *base) guestAdd(ctx context.Context, name string, n nic, ip string) error {
	s, err := b.server(name)
	if err != nil {
		return err
	}
	if _, err := b.run(ctx, s, b.addCmd(n, ip)); err != nil {
		return fmt.Errorf("add %s on %s: %w", ip, name, err)
	}
	b.log.Info("address added on the guest", "server", name, "ip", ip)
	return nil
}

// guestDel removes the address from a server's guest (guest=ssh).
func (b *base) guestDel(ctx context.Context, name, ip string) error {
	s, err := b.server(name)
	if err != nil {
		return err
	}
	if _, err := b.run(ctx, s, b.delCmd(ip)); err != nil {
		return fmt.Errorf("remove %s from %s: %w", ip, name, err)
	}
	b.log.Info("address removed from the guest", "server", name, "ip", ip)
	return nil
}

// New returns the mover for cfg.Address.Mover (KindHaVip or
// KindPrivateIP), for the movers factory.
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, errors.New("tencent mover: no configuration")
	}
	switch cfg.Address.Mover {
	case KindHaVip, "tencent/havip":
		return NewHaVip(cfg, o)
	case KindPrivateIP, "tencent/private-ip":
		return NewPrivateIP(cfg, o)
	}
	return nil, fmt.Errorf("tencent mover: unknown kind %q (want %s or %s)", cfg.Address.Mover, KindHaVip, KindPrivateIP)
}

var (
	_ address.Mover         = (*HaVipMover)(nil)
	_ address.StatusChecker = (*HaVipMover)(nil)
	_ address.Mover         = (*PrivateIPMover)(nil)
	_ address.StatusChecker = (*PrivateIPMover)(nil)
)
