package aliyun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/cloudmha/cloudmha/internal/address"
	cloud "github.com/cloudmha/cloudmha/internal/cloud/aliyun"
	"github.com/cloudmha/cloudmha/internal/cloud/observe"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// Mover kinds (address_mover=…).
const (
	KindHaVip       = "aliyun-havip"
	KindENI         = "aliyun-eni"
	KindSecondaryIP = "aliyun-secondary-ip"
	KindEIP         = "aliyun-eip"
	KindDNS         = "alidns"
)

// Defaults of the options.
const (
	DefaultWaitTimeout  = 60 * time.Second
	DefaultPollInterval = 500 * time.Millisecond
	DefaultCallTimeout  = 10 * time.Second
	DefaultRetries      = 6
)

// Errors a caller may want to tell apart.
var (
	// ErrTimeout: an asynchronous transition did not complete in time (it is address.ErrTimeout,
	// shared with the other cloud movers).
	ErrTimeout = address.ErrTimeout
	// ErrAuth: the API refused the credentials.
	ErrAuth = errors.New("the Alibaba Cloud API refused the credentials")
	// ErrConflict: the resource is held by a server it should not be.
	ErrConflict = errors.New("the resource is in an unexpected state")
)

// Options are what the movers need from the outside world.
type Options struct {
	// Dial opens TCP connections for SSH; nil means net.Dialer.
	Dial remote.DialFunc
	// Logger receives what the mover does; nil discards.
	Logger *slog.Logger
	// HTTPClient sends the API requests; nil builds one (proxy from the
	// environment or the proxy option).
	HTTPClient *http.Client
	// Observe, when set, sees every API request (for the metrics).
	Observe observe.Func
}

// server is one configured server.
type server struct {
	cfg config.Server
	ssh remote.Target
}

// base holds what the movers share.
type base struct {
	kind      string
	api       *cloud.Clients
	log       *slog.Logger
	servers   []server
	guest     string // ssh | none ("none" for movers without a guest side)
	waitTO    time.Duration
	poll      time.Duration
	retries   int
	mu        sync.Mutex
	instances map[string]string // server name -> instance id
	enis      map[string]string // server name -> ENI id (eni_id.<server> or discovered)
	clientIP  string            // the address clients use, once known
}

// noteClientIP records the address clients use (learnt from the API).
func (b *base) noteClientIP(ip string) {
	b.mu.Lock()
	b.clientIP = ip
	b.mu.Unlock()
}

// ClientAddress implements address.Addressed: the private address clients
// connect to ("" while unknown, and for movers of other addresses).
func (b *base) ClientAddress() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clientIP
}

// spec is what a mover kind asks of newBase.
type spec struct {
	// guest: the mover has a guest side (option guest=ssh|none).
	guest bool
	// perServer are the option prefixes taken as <prefix>.<server>
	// (instance_id, eni_id, ip); each must name a configured server.
	perServer []string
	// region is the default of option region ("" = required).
	region string
}

// parsed options; used marks the keys a mover understood.
type opts struct {
	m         map[string]string
	used      map[string]bool
	perServer []string
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

func (o *opts) yesNo(k string, def bool) (bool, error) {
	switch v := o.get(k, ""); v {
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

// unknown reports options no one read (typos), sorted.
func (o *opts) unknown() error {
	var bad []string
	for k := range o.m {
		if o.used[k] {
			continue
		}
		if p, _, ok := strings.Cut(k, "."); ok && slices.Contains(o.perServer, p) {
			continue
		}
		bad = append(bad, k)
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("unknown option(s) %s", strings.Join(bad, ", "))
	}
	return nil
}

// id is option <prefix>.<server>, checked for being an id.
func (o *opts) id(prefix, server string) (string, error) {
	v := o.m[prefix+"."+server]
	if strings.ContainsAny(v, " \t\n/'\"$;&|<>`\\") {
		return "", fmt.Errorf("option %s.%s=%q is not an id", prefix, server, v)
	}
	return v, nil
}

// newBase reads the shared settings and builds the API clients.
func newBase(kind string, cfg *config.Config, o Options, op *opts, sp spec) (*base, error) {
	b := &base{kind: kind, log: o.Logger, instances: map[string]string{}, enis: map[string]string{}, guest: "none"}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if cfg == nil {
		return nil, errors.New("no configuration")
	}
	op.perServer = sp.perServer
	region := op.get("region", sp.region)
	if region == "" {
		return nil, errors.New("option region is required (e.g. cn-hangzhou)")
	}
	if strings.ContainsAny(region, " \t\n/") {
		return nil, fmt.Errorf("option region=%q: want a region id such as cn-hangzhou", region)
	}
	if sp.guest {
		b.guest = op.get("guest", "ssh")
		if b.guest != "ssh" && b.guest != "none" {
			return nil, fmt.Errorf("option guest=%q: want ssh or none", b.guest)
		}
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
	b.retries = DefaultRetries
	if v := op.get("retries", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			return nil, fmt.Errorf("option retries=%q: want 1..50", v)
		}
		b.retries = n
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
		for _, p := range []string{"instance_id", "eni_id"} {
			if !slices.Contains(sp.perServer, p) {
				continue
			}
			id, err := op.id(p, s.Name)
			if err != nil {
				return nil, err
			}
			if id != "" && p == "instance_id" {
				b.instances[s.Name] = id
			} else if id != "" {
				b.enis[s.Name] = id
			}
		}
	}
	if len(b.servers) == 0 {
		return nil, errors.New("no servers in the configuration")
	}
	for k := range op.m {
		if p, n, ok := strings.Cut(k, "."); ok && slices.Contains(sp.perServer, p) && !names[n] {
			return nil, fmt.Errorf("option %s: no server named %q", k, n)
		}
	}
	b.api, err = cloud.New(cloud.Config{
		Region: region, Endpoint: op.get("endpoint", ""), Proxy: op.get("proxy", ""),
		ConnectTimeout: min(callTO, 5*time.Second), ReadTimeout: callTO,
		HTTPClient: o.HTTPClient, Observe: o.Observe, Logger: b.log,
	})
	if err != nil {
		return nil, err
	}
	b.log = b.log.With("mover", kind)
	return b, nil
}

func (b *base) server(name string) (server, error) {
	for _, s := range b.servers {
		if s.cfg.Name == name {
			return s, nil
		}
	}
	return server{}, fmt.Errorf("%s: server %q is not in the configuration", b.kind, name)
}

// oneLine is an API error shown as cloud.Describe's one line (the SDK's
// own text is a multi-line dump); it unwraps to the SDK error, so that
// cloud.Code and errors.As still work.
type oneLine struct{ err error }

func (e *oneLine) Error() string { return cloud.Describe(e.err) }
func (e *oneLine) Unwrap() error { return e.err }

// apiErr wraps an API error with the operation and a one-line
// description; authentication failures wrap ErrAuth.
func (b *base) apiErr(op string, err error) error {
	if _, ok := cloud.ErrorInfo(err); !ok {
		return fmt.Errorf("%s: %s: %w", b.kind, op, err)
	}
	if cloud.IsAuth(err) {
		return fmt.Errorf("%s: %s: %w: %w; check the credential chain (ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET, credentials file, RAM role) and the clock", b.kind, op, ErrAuth, &oneLine{err})
	}
	return fmt.Errorf("%s: %s: %w", b.kind, op, &oneLine{err})
}

// call runs f, retrying throttling, 5xx answers and transport errors with
// jittered exponential backoff (200 ms doubling to 5 s) up to b.retries
// attempts or the context's end.
func (b *base) call(ctx context.Context, op string, f func() error) error {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		if !cloud.IsRetryable(err) || attempt >= b.retries {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %s: %w", b.kind, op, ctx.Err())
			}
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

// instanceID returns the instance id of a server: configured, or found by
// its private IP.
func (b *base) instanceID(ctx context.Context, name string) (string, error) {
	b.mu.Lock()
	id, ok := b.instances[name]
	b.mu.Unlock()
	if ok {
		return id, nil
	}
	s, err := b.server(name)
	if err != nil {
		return "", err
	}
	ip := s.cfg.IP
	if ip == "" {
		ip = s.cfg.Hostname
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return "", fmt.Errorf("%s: server %s: no instance_id.%s option and no IP address to look the instance up by", b.kind, name, name)
	}
	var out *ecs.DescribeInstancesResponse
	err = b.call(ctx, "DescribeInstances", func() error {
		var err error
		out, err = b.api.ECS.DescribeInstancesWithContext(ctx, &ecs.DescribeInstancesRequest{
			RegionId: dara.String(b.api.Region), PrivateIpAddresses: dara.String(`["` + ip + `"]`),
		}, b.api.Runtime())
		return err
	})
	if err != nil {
		return "", err
	}
	var found []string
	if out.Body != nil && out.Body.Instances != nil {
		for _, in := range out.Body.Instances.Instance {
			found = append(found, dara.StringValue(in.InstanceId))
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%s: server %s: %d instances have the private IP %s; set instance_id.%s", b.kind, name, len(found), ip, name)
	}
	b.mu.Lock()
	b.instances[name] = found[0]
	b.mu.Unlock()
	b.log.Info("instance found by private IP", "server", name, "ip", ip, "instance", found[0])
	return found[0], nil
}

// eniOf returns the ENI that carries a server's addresses: option
// eni_id.<server>, else its instance's primary ENI (found once with
// DescribeNetworkInterfaces InstanceId + Type=Primary).
func (b *base) eniOf(ctx context.Context, name string) (string, error) {
	b.mu.Lock()
	id, ok := b.enis[name]
	b.mu.Unlock()
	if ok {
		return id, nil
	}
	inst, err := b.instanceID(ctx, name)
	if err != nil {
		return "", err
	}
	var out *ecs.DescribeNetworkInterfacesResponse
	err = b.call(ctx, "DescribeNetworkInterfaces", func() error {
		var err error
		out, err = b.api.ECS.DescribeNetworkInterfacesWithContext(ctx, &ecs.DescribeNetworkInterfacesRequest{
			RegionId: dara.String(b.api.Region), InstanceId: dara.String(inst), Type: dara.String("Primary"),
		}, b.api.Runtime())
		return err
	})
	if err != nil {
		return "", err
	}
	var found []string
	if out.Body != nil && out.Body.NetworkInterfaceSets != nil {
		for _, n := range out.Body.NetworkInterfaceSets.NetworkInterfaceSet {
			found = append(found, dara.StringValue(n.NetworkInterfaceId))
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%s: server %s: instance %s has %d primary network interfaces; set eni_id.%s", b.kind, name, inst, len(found), name)
	}
	b.mu.Lock()
	b.enis[name] = found[0]
	b.mu.Unlock()
	b.log.Info("primary ENI found", "server", name, "instance", inst, "eni", found[0])
	return found[0], nil
}

// serverOfENI maps an ENI id back to a server name ("" when none).
func (b *base) serverOfENI(ctx context.Context, eniID string) (string, error) {
	for _, s := range b.servers {
		id, err := b.eniOf(ctx, s.cfg.Name)
		if err != nil {
			return "", err
		}
		if id == eniID {
			return s.cfg.Name, nil
		}
	}
	return "", nil
}

// serverOf maps an instance id back to a server name ("" when none).
func (b *base) serverOf(ctx context.Context, instance string) (string, error) {
	for _, s := range b.servers {
		id, err := b.instanceID(ctx, s.cfg.Name)
		if err != nil {
			return "", err
		}
		if id == instance {
			return s.cfg.Name, nil
		}
	}
	return "", nil
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

// clientToken is a ClientToken for one logical operation: the retries of
// one call share it (a lost answer is not a second change), the next
// operation gets another (a token is remembered by the service, so a
// fixed one would make a later, legitimate, change a no-op).
func clientToken() string {
	var b [12]byte
	for i := range b {
		b[i] = "0123456789abcdef"[rand.N(16)]
	}
	return "cloudmha-" + string(b[:])
}

// reportTimeout bounds the API calls that describe, for an error message,
// where an address was left.
const reportTimeout = 5 * time.Second

// reportCtx is a context for such calls: it keeps ctx's values but not
// its end, so that a move that failed on its deadline can still say where
// the address is.
func reportCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
}

// rollbackAllowed says whether a failed Acquire may put the address back
// on the old primary: only in a planned switchover (Online), where the old
// primary is alive; in a failover it is presumed dead and the address is
// left where it is, which the error reports.
func rollbackAllowed(c address.Change) bool {
	return c.Online && c.Old.Name != "" && c.Old.Name != c.New.Name
}

var (
	_ address.Mover         = (*HaVipMover)(nil)
	_ address.StatusChecker = (*HaVipMover)(nil)
	_ address.Mover         = (*ENIMover)(nil)
	_ address.StatusChecker = (*ENIMover)(nil)
	_ address.Mover         = (*SecondaryIPMover)(nil)
	_ address.StatusChecker = (*SecondaryIPMover)(nil)
	_ address.Mover         = (*EIPMover)(nil)
	_ address.StatusChecker = (*EIPMover)(nil)
	_ address.Mover         = (*DNSMover)(nil)
	_ address.StatusChecker = (*DNSMover)(nil)
)
