// Package aws moves the clients' address on Amazon Web Services.
//
// Four movers are provided:
//
//   - aws-secondary-ip (SecondaryIP): a secondary private IPv4 address of
//     the subnet, moved between the servers' network interfaces (ENIs) with
//     AssignPrivateIpAddresses(AllowReassignment=true), which takes it from
//     the old ENI atomically. The guest operating system must also carry
//     the address: unless option guest=none, the mover runs `ip addr add`
//     on the new primary and `ip addr del` on the old one over SSH.
//   - aws-eip (EIP): an Elastic IP moved with
//     AssociateAddress(AllowReassociation=true) / DisassociateAddress.
//   - aws-route (Route): an overlay IP outside the VPC CIDR, reached
//     through a /32 route to the primary's ENI in every listed route table
//     (ReplaceRoute, or CreateRoute where there is none). This works
//     across availability zones, which a secondary IP (one subnet) does
//     not. The ENIs must have the source/destination check disabled, and
//     the guest carries the address (guest=ssh, as for the secondary IP).
//     Release deletes the routes that point at the old primary: see
//     Route.Release for why it does not leave them.
//   - route53 (Route53): an A record in a Route 53 hosted zone, UPSERTed to
//     the new primary's address; alone or as an extra layer over one of
//     the others. DNS is cached by resolvers and clients for up to the
//     TTL, so it cannot fence: see Route53.Release.
//
// The EC2 movers wait, with a deadline and backoff, until EC2's Describe
// calls show the move; the Route 53 mover polls GetChange until INSYNC and
// reads the record back. A failed Acquire is reported as a *MoveError
// naming where the address was left. The address is put back where it was
// only on a planned switchover (Change.Online: both primaries alive); in a
// failover the old primary is presumed dead and must not get the address
// back.
//
// Settings come from the address options (YAML address.options); every
// option is validated when the mover is built and errors name it. Common:
// region, endpoint (e.g. a moto server), wait_timeout, rollback,
// max_attempts. EC2 movers: eni_id.<server> and instance_id.<server> per
// server section (a server without them has its ENI found by its private
// IP: DescribeNetworkInterfaces, filter addresses.private-ip-address).
// aws-secondary-ip: vip, guest, interface, prefix, sudo. aws-eip:
// allocation_id or public_ip. aws-route: route_tables, cidr,
// source_dest_check, guest, interface, sudo. route53: hosted_zone_id, name,
// ttl, type, on_release, wait_insync, poll_interval, ip.<server>.
//
// Credentials come from the SDK's standard chain only (see package
// internal/cloud/aws) and are never logged; throttling is retried by the
// SDK's standard retryer.
package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/smithy-go"

	"github.com/cloudmha/cloudmha/internal/address"
	awscloud "github.com/cloudmha/cloudmha/internal/cloud/aws"
	"github.com/cloudmha/cloudmha/internal/cloud/observe"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// Mover kinds (address_mover / address.mover).
const (
	KindSecondaryIP = "aws-secondary-ip"
	KindEIP         = "aws-eip"
	KindRoute       = "aws-route"
	KindRoute53     = "route53"
)

// Errors a caller may want to tell apart.
var (
	// ErrTimeout: AWS did not show the expected state before the deadline.
	ErrTimeout = errors.New("timed out waiting for AWS")
	// ErrForeignHolder: the address is on an ENI, instance or IP that is
	// not one of the configured servers.
	ErrForeignHolder = errors.New("the address is held outside the cluster")
	// ErrMultipleHolders: more than one configured server holds the address.
	ErrMultipleHolders = errors.New("the address is on more than one server")
	// ErrRoutesDisagree: the route tables of an aws-route mover do not all
	// send the address to the same place.
	ErrRoutesDisagree = errors.New("the route tables disagree")
	// ErrNotFound: a server's ENI or instance, a route table, or a hosted
	// zone does not exist.
	ErrNotFound = errors.New("not found in AWS")
)

// EC2API is the part of the EC2 client the movers use; *ec2.Client
// implements it. Tests may wrap it.
type EC2API interface {
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	AssignPrivateIpAddresses(ctx context.Context, in *ec2.AssignPrivateIpAddressesInput, optFns ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error)
	UnassignPrivateIpAddresses(ctx context.Context, in *ec2.UnassignPrivateIpAddressesInput, optFns ...func(*ec2.Options)) (*ec2.UnassignPrivateIpAddressesOutput, error)
	AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, optFns ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error)
	DisassociateAddress(ctx context.Context, in *ec2.DisassociateAddressInput, optFns ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error)
	DescribeAddresses(ctx context.Context, in *ec2.DescribeAddressesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, optFns ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error)
	ReplaceRoute(ctx context.Context, in *ec2.ReplaceRouteInput, optFns ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error)
	DeleteRoute(ctx context.Context, in *ec2.DeleteRouteInput, optFns ...func(*ec2.Options)) (*ec2.DeleteRouteOutput, error)
	DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)

// Route53API is the part of the Route 53 client the route53 mover uses;
// *route53.Client implements it. Tests may wrap it.
type Route53API interface {
	GetHostedZone(ctx context.Context, in *route53.GetHostedZoneInput, optFns ...func(*route53.Options)) (*route53.GetHostedZoneOutput, error)
	ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, optFns ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	GetChange(ctx context.Context, in *route53.GetChangeInput, optFns ...func(*route53.Options)) (*route53.GetChangeOutput, error)
	ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, optFns ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
}

var _ Route53API = (*route53.Client)(nil)

// Options configures a mover.
type Options struct {
	// Dial opens TCP connections for SSH (guest side); nil means net.Dialer.
	Dial remote.DialFunc
	// Logger receives what the mover does; nil discards.
	Logger *slog.Logger
	// HTTPClient sends the AWS requests; nil: the SDK's default client
	// (honours HTTPS_PROXY / NO_PROXY).
	HTTPClient *http.Client
	// EC2 replaces the client built from the standard chain (tests).
	EC2 EC2API
	// Route53 replaces the client built from the standard chain (tests).
	Route53 Route53API
	// WaitTimeout overrides option wait_timeout when > 0.
	WaitTimeout time.Duration
	// Observe, when set, sees every API request (for the metrics).
	Observe observe.Func
}

// New returns the mover for cfg.Address.Mover: KindSecondaryIP, KindEIP,
// KindRoute or KindRoute53.
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, errors.New("aws mover: no configuration")
	}
	switch cfg.Address.Mover {
	case KindSecondaryIP:
		return NewSecondaryIP(cfg, o)
	case KindEIP:
		return NewEIP(cfg, o)
	case KindRoute:
		return NewRoute(cfg, o)
	case KindRoute53:
		return NewRoute53(cfg, o)
	}
	return nil, fmt.Errorf("aws mover: unknown kind %q (known: %s, %s, %s, %s)", cfg.Address.Mover, KindSecondaryIP, KindEIP, KindRoute, KindRoute53)
}

// core is what every mover of the package shares: the settings, the
// servers, the logger and the SSH dialer of the guest side.
type core struct {
	kind    string
	log     *slog.Logger
	servers []config.Server
	set     settings
	dial    remote.DialFunc
}

func newCore(kind string, cfg *config.Config, o Options) (core, error) {
	set, err := parseSettings(kind, cfg)
	if err != nil {
		return core{}, err
	}
	if o.WaitTimeout > 0 {
		set.waitTimeout = o.WaitTimeout
	}
	c := core{kind: kind, log: o.Logger, servers: cfg.Servers, set: set, dial: o.Dial}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("mover", kind)
	if c.dial == nil {
		d := &net.Dialer{}
		c.dial = d.DialContext
	}
	return c, nil
}

// cloudOptions are the client options of the settings.
func (c *core) cloudOptions(o Options) awscloud.Options {
	return awscloud.Options{
		Region: c.set.region, Endpoint: c.set.endpoint, HTTPClient: o.HTTPClient,
		MaxAttempts: c.set.maxAttempts, Logger: c.log, Observe: o.Observe,
	}
}

func (c *core) server(name string) (config.Server, error) {
	for _, s := range c.servers {
		if s.Name == name {
			return s, nil
		}
	}
	return config.Server{}, fmt.Errorf("%s: server %q is not in the configuration", c.kind, name)
}

// base is what the EC2 movers share: the EC2 client and the servers'
// ENIs.
type base struct {
	core
	api EC2API

	mu   sync.Mutex
	enis map[string]string // server name -> ENI id, configured or discovered
}

func newBase(kind string, cfg *config.Config, o Options) (*base, error) {
	c, err := newCore(kind, cfg, o)
	if err != nil {
		return nil, err
	}
	b := &base{core: c, api: o.EC2, enis: map[string]string{}}
	for n, id := range c.set.eni {
		b.enis[n] = id
	}
	if b.api == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		api, err := awscloud.NewEC2(ctx, c.cloudOptions(o))
		if err != nil {
			return nil, fmt.Errorf("%s mover: %w", kind, err)
		}
		b.api = api
	} else if err := (awscloud.Options{Endpoint: c.set.endpoint}).Validate(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", kind, err)
	}
	return b, nil
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// eniOf returns the ENI of a server: configured, cached, the primary ENI
// (device index 0) of its configured instance, or the ENI carrying its
// private IP. A missing resource wraps ErrNotFound.
func (b *base) eniOf(ctx context.Context, name string) (string, error) {
	srv, err := b.server(name)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	id := b.enis[name]
	b.mu.Unlock()
	if id != "" {
		return id, nil
	}
	if inst := b.set.instance[name]; inst != "" {
		out, err := b.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst}})
		if err != nil {
			if strings.HasPrefix(apiCode(err), "InvalidInstanceID") {
				return "", fmt.Errorf("%s: server %s: instance %s: %w: %w", b.kind, name, inst, ErrNotFound, err)
			}
			return "", fmt.Errorf("%s: server %s: describe instance %s: %w", b.kind, name, inst, err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				for _, ni := range in.NetworkInterfaces {
					if ni.Attachment != nil && sdkaws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
						id = sdkaws.ToString(ni.NetworkInterfaceId)
					}
				}
			}
		}
		if id == "" {
			return "", fmt.Errorf("%s: server %s: instance %s has no primary network interface: %w", b.kind, name, inst, ErrNotFound)
		}
	} else {
		ip := srv.Host()
		out, err := b.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
			Filters: []types.Filter{{Name: sdkaws.String("addresses.private-ip-address"), Values: []string{ip}}},
		})
		if err != nil {
			return "", fmt.Errorf("%s: server %s: find the ENI of %s: %w", b.kind, name, ip, err)
		}
		var ids []string
		for _, ni := range out.NetworkInterfaces {
			ids = append(ids, sdkaws.ToString(ni.NetworkInterfaceId))
		}
		switch len(ids) {
		case 0:
			return "", fmt.Errorf("%s: server %s: no network interface has the private IP %s: %w", b.kind, name, ip, ErrNotFound)
		case 1:
			id = ids[0]
		default:
			return "", fmt.Errorf("%s: server %s: several network interfaces have the private IP %s (%s): set option eni_id.%s", b.kind, name, ip, strings.Join(ids, ", "), name)
		}
		b.log.Info("found the server's network interface by its private IP", "server", name, "ip", ip, "eni", id)
	}
	b.mu.Lock()
	b.enis[name] = id
	b.mu.Unlock()
	return id, nil
}

// allENIs resolves the ENI of every server.
func (b *base) allENIs(ctx context.Context) (map[string]string, error) {
	m := map[string]string{}
	var errs []error
	for _, s := range b.servers {
		id, err := b.eniOf(ctx, s.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m[s.Name] = id
	}
	return m, errors.Join(errs...)
}

// wait polls check until it reports done, with backoff (50 ms doubling up
// to 1 s), until the mover's wait timeout. Errors of check are retried;
// the last one is reported on timeout.
func (c *core) wait(ctx context.Context, what string, check func(context.Context) (bool, string, error)) error {
	return c.poll(ctx, what, 50*time.Millisecond, time.Second, check)
}

// poll is wait with a first delay growing (doubling) up to maxDelay.
func (c *core) poll(ctx context.Context, what string, delay, maxDelay time.Duration, check func(context.Context) (bool, string, error)) error {
	wctx, cancel := context.WithTimeout(ctx, c.set.waitTimeout)
	defer cancel()
	last := "nothing yet"
	for polls := 1; ; polls++ {
		done, seen, err := check(wctx)
		switch {
		case err != nil && wctx.Err() == nil:
			last = "error: " + err.Error()
		case err == nil:
			last = seen
		}
		if err == nil && done {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-wctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for %s: %w (last seen: %s)", what, ctx.Err(), last)
			}
			return fmt.Errorf("%w: %s not seen within %s after %d polls (last seen: %s)", ErrTimeout, what, c.set.waitTimeout, polls, last)
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}

// MoveError reports a failed Acquire: what failed, what the rollback did,
// and where the address was left as AWS last showed it.
type MoveError struct {
	Kind   string // mover kind
	Server string // the server that was to get the address
	Err    error  // the failure
	// Rollback says what was done about it: "not attempted: …" (always in
	// a failover), "not needed: …", "put back on …", or "failed …".
	Rollback string
	// State is where the address is now, as last seen (or why unknown).
	State string
}

func (e *MoveError) Error() string {
	return fmt.Sprintf("%s acquire on %s: %v; rollback: %s; address now: %s", e.Kind, e.Server, e.Err, e.Rollback, e.State)
}

// Unwrap returns the failure.
func (e *MoveError) Unwrap() error { return e.Err }

// undoFunc puts the address back where it was before a failed Acquire
// and says what it did ("put back on server1 …") or why it did nothing.
type undoFunc func(ctx context.Context) string

// acquireFailed ends every failed Acquire of the package's movers. On a
// planned switchover (c.Online: both primaries alive) it runs undo to put
// the address back where it was, unless option rollback=false. In a
// failover it never does: the old primary is presumed dead or fenced, and
// giving it the address back would send clients to it; the address stays
// where the failure left it. Either way it reads where the address is now
// with state and returns a *MoveError naming it.
func (c *core) acquireFailed(ctx context.Context, ch address.Change, cause error, undo undoFunc, state func(context.Context) string) error {
	e := &MoveError{Kind: c.kind, Server: ch.New.Name, Err: cause}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.set.waitTimeout+10*time.Second)
	defer cancel()
	switch {
	case !ch.Online:
		e.Rollback = "not attempted: failover (the old primary must not get the address back)"
	case !c.set.rollback:
		e.Rollback = "not attempted: option rollback=false"
	default:
		e.Rollback = undo(rctx)
	}
	e.State = state(rctx)
	c.log.Error("acquire failed", "server", ch.New.Name, "online", ch.Online, "err", cause, "rollback", e.Rollback, "state", e.State)
	return e
}

// putBack is the undo of a mover whose address was held by names (servers)
// and foreign (other holders) before the failed Acquire, as seen when
// known is true: when it was on exactly one other server, move puts it
// back there and returns details to report.
func putBack(what, target string, known bool, names, foreign []string, move func(ctx context.Context, prev string) (string, error)) undoFunc {
	return func(ctx context.Context) string {
		switch {
		case !known:
			return "not attempted: where " + what + " was before is unknown"
		case len(names) != 1 || len(foreign) > 0:
			return "not attempted: " + what + " was " + describeHolders(names, foreign) + " before"
		case names[0] == target:
			return "not needed: " + what + " was already on " + target
		}
		prev := names[0]
		detail, err := move(ctx, prev)
		if err != nil {
			return fmt.Sprintf("failed to put it back on %s: %v", prev, err)
		}
		return "put back on " + prev + detail
	}
}

// describeHolders turns holder names and foreign ids into a state text.
func describeHolders(names, foreign []string) string {
	var parts []string
	for _, n := range names {
		parts = append(parts, "server "+n)
	}
	for _, f := range foreign {
		parts = append(parts, "foreign "+f)
	}
	if len(parts) == 0 {
		return "on no server"
	}
	return "on " + strings.Join(parts, " and ")
}

// holderOf picks the single holder of names/foreign, as Holder returns it.
func holderOf(kind string, names, foreign []string) (string, error) {
	switch {
	case len(foreign) > 0:
		return "", fmt.Errorf("%s holder: %w: %s", kind, ErrForeignHolder, describeHolders(names, foreign))
	case len(names) > 1:
		return "", fmt.Errorf("%s holder: %w: %s", kind, ErrMultipleHolders, strings.Join(names, ", "))
	case len(names) == 1:
		return names[0], nil
	}
	return "", nil
}

// status checks that primary is the only holder.
func status(kind, h string, err error, primary address.Target) error {
	if err != nil {
		return fmt.Errorf("%s status: %w", kind, err)
	}
	if h != primary.Name {
		who := h
		if who == "" {
			who = "no server"
		}
		return fmt.Errorf("%s status: the address is held by %s, not by the primary %s", kind, who, primary.Name)
	}
	return nil
}

// problems is a list of independent failures reported together on one
// line; errors.Is and errors.As see each.
type problems []error

func (p problems) Error() string {
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (p problems) Unwrap() []error { return p }

// err returns nil for no problem, the problem itself for one.
func (p problems) err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return p
}
