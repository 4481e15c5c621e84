// Package aws moves the clients' address on Amazon EC2.
//
// Two movers are provided:
//
//   - aws-secondary-ip (SecondaryIP): a secondary private IPv4 address of
//     the subnet, moved between the servers' network interfaces (ENIs) with
//     AssignPrivateIpAddresses(AllowReassignment=true), which takes it from
//     the old ENI atomically. The guest operating system must also carry
//     the address: unless option guest=none, the mover runs `ip addr add`
//     on the new primary and `ip addr del` on the old one over SSH.
//   - aws-eip (EIP): an Elastic IP moved with
//     AssociateAddress(AllowReassociation=true) / DisassociateAddress.
//
// Both wait, with a deadline and backoff, until EC2's Describe calls show
// the move, and on a failed Acquire put the address back where it was and
// report the state left behind (*MoveError).
//
// Settings come from the address options (YAML address.options):
// region, endpoint (e.g. a moto server), vip / allocation_id / public_ip,
// eni_id.<server> and instance_id.<server> per server section, wait_timeout,
// rollback, max_attempts, and for the secondary IP guest, interface,
// prefix and sudo. A server without eni_id or instance_id has its ENI found
// by its private IP (DescribeNetworkInterfaces, filter
// addresses.private-ip-address). Credentials come from the SDK's standard
// chain only (see package internal/cloud/aws) and are never logged.
package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/cloudmha/cloudmha/internal/address"
	awscloud "github.com/cloudmha/cloudmha/internal/cloud/aws"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// Mover kinds (address_mover / address.mover).
const (
	KindSecondaryIP = "aws-secondary-ip"
	KindEIP         = "aws-eip"
)

// Errors a caller may want to tell apart.
var (
	// ErrTimeout: EC2 did not show the expected state before the deadline.
	ErrTimeout = errors.New("timed out waiting for EC2")
	// ErrForeignHolder: the address is on an ENI or instance that is not
	// one of the configured servers.
	ErrForeignHolder = errors.New("the address is held outside the cluster")
	// ErrMultipleHolders: more than one configured server holds the address.
	ErrMultipleHolders = errors.New("the address is on more than one server")
	// ErrNotFound: a server's ENI or instance does not exist.
	ErrNotFound = errors.New("not found in EC2")
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
}

var _ EC2API = (*ec2.Client)(nil)

// Options configures a mover.
type Options struct {
	// Dial opens TCP connections for SSH (guest side); nil means net.Dialer.
	Dial remote.DialFunc
	// Logger receives what the mover does; nil discards.
	Logger *slog.Logger
	// HTTPClient sends the EC2 requests; nil: the SDK's default client
	// (honours HTTPS_PROXY / NO_PROXY).
	HTTPClient *http.Client
	// EC2 replaces the client built from the standard chain (tests).
	EC2 EC2API
	// WaitTimeout overrides option wait_timeout when > 0.
	WaitTimeout time.Duration
}

// New returns the mover for cfg.Address.Mover (KindSecondaryIP or KindEIP).
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, errors.New("aws mover: no configuration")
	}
	switch cfg.Address.Mover {
	case KindSecondaryIP:
		return NewSecondaryIP(cfg, o)
	case KindEIP:
		return NewEIP(cfg, o)
	}
	return nil, fmt.Errorf("aws mover: unknown kind %q (known: %s, %s)", cfg.Address.Mover, KindSecondaryIP, KindEIP)
}

// base is what both movers share: settings, the EC2 client and the
// servers' ENIs.
type base struct {
	kind    string
	api     EC2API
	log     *slog.Logger
	servers []config.Server
	set     settings

	mu   sync.Mutex
	enis map[string]string // server name -> ENI id, configured or discovered
}

func newBase(kind string, cfg *config.Config, o Options) (*base, error) {
	set, err := parseSettings(kind, cfg)
	if err != nil {
		return nil, err
	}
	if o.WaitTimeout > 0 {
		set.waitTimeout = o.WaitTimeout
	}
	b := &base{kind: kind, api: o.EC2, log: o.Logger, servers: cfg.Servers, set: set, enis: map[string]string{}}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("mover", kind)
	for n, id := range set.eni {
		b.enis[n] = id
	}
	if b.api == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := awscloud.NewEC2(ctx, awscloud.Options{
			Region: set.region, Endpoint: set.endpoint, HTTPClient: o.HTTPClient,
			MaxAttempts: set.maxAttempts, Logger: b.log,
		})
		if err != nil {
			return nil, fmt.Errorf("%s mover: %w", kind, err)
		}
		b.api = c
	} else if err := (awscloud.Options{Endpoint: set.endpoint}).Validate(); err != nil {
		return nil, fmt.Errorf("%s mover: %w", kind, err)
	}
	return b, nil
}

func (b *base) server(name string) (config.Server, error) {
	for _, s := range b.servers {
		if s.Name == name {
			return s, nil
		}
	}
	return config.Server{}, fmt.Errorf("%s: server %q is not in the configuration", b.kind, name)
}

// apiCode returns the EC2 error code of err, or "".
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
func (b *base) wait(ctx context.Context, what string, check func(context.Context) (bool, string, error)) error {
	wctx, cancel := context.WithTimeout(ctx, b.set.waitTimeout)
	defer cancel()
	delay := 50 * time.Millisecond
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
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for %s: %w (last seen: %s)", what, ctx.Err(), last)
			}
			return fmt.Errorf("%w: %s not seen within %s after %d polls (last seen: %s)", ErrTimeout, what, b.set.waitTimeout, polls, last)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// MoveError reports a failed Acquire: what failed, what the rollback did,
// and where the address was left as EC2 last showed it.
type MoveError struct {
	Kind   string // mover kind
	Server string // the server that was to get the address
	Err    error  // the failure
	// Rollback says what was done about it: "not attempted: …",
	// "put back on …", or "failed: …".
	Rollback string
	// State is where the address is now, as last seen (or why unknown).
	State string
}

func (e *MoveError) Error() string {
	return fmt.Sprintf("%s acquire on %s: %v; rollback: %s; address now: %s", e.Kind, e.Server, e.Err, e.Rollback, e.State)
}

// Unwrap returns the failure.
func (e *MoveError) Unwrap() error { return e.Err }

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
