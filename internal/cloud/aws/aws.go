// Package aws builds Amazon Web Services SDK clients (aws-sdk-go-v2) for
// cloudmha's adapters.
//
// Credentials come only from the SDK's standard chain: environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_PROFILE), the shared config and credentials files, web identity,
// and the EC2 instance profile. They are never read from the cluster
// configuration and never logged: this package logs the region, the
// endpoint and the retry policy, nothing else.
//
// Requests go through the SDK's default HTTP transport unless a client is
// given, so HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured. Throttling
// (RequestLimitExceeded, Throttling, …) and transient errors are retried
// by the SDK's standard retryer with jittered exponential backoff; its
// client-side retry quota is disabled, because a failover must not give up
// on the retry it needs most after an earlier burst of errors.
package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/smithy-go/middleware"
	"github.com/cloudmha/cloudmha/internal/cloud/observe"
)

// Defaults of Options.
const (
	// DefaultMaxAttempts is how many times one API call is tried.
	DefaultMaxAttempts = 6
	// DefaultMaxBackoff caps the standard retryer's delay between attempts.
	DefaultMaxBackoff = 5 * time.Second
	// Route53Region is the region Route 53 clients sign with when none is
	// configured: Route 53 is a global service served from us-east-1.
	Route53Region = "us-east-1"
)

// ErrNoRegion is returned when no region was configured anywhere.
var ErrNoRegion = errors.New("no AWS region: set the region option, AWS_REGION, or region in the shared config file")

// Options configures the SDK clients.
type Options struct {
	// Region overrides the region of the standard chain (AWS_REGION,
	// AWS_DEFAULT_REGION, the profile's region).
	Region string
	// Endpoint overrides the service endpoint (BaseEndpoint), e.g. a moto
	// server in tests: "http://127.0.0.1:5000". Empty: the SDK's resolver
	// (which also honours AWS_ENDPOINT_URL_EC2).
	Endpoint string
	// HTTPClient sends the requests; nil: the SDK's default client, which
	// honours the proxy environment variables.
	HTTPClient *http.Client
	// Observe, when set, sees every API request (for the metrics).
	Observe observe.Func
	// MaxAttempts bounds the tries of one call; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// MaxBackoff caps the delay between tries; 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Logger receives one line per client built; nil discards.
	Logger *slog.Logger
}

// Validate checks the options without doing any I/O.
func (o Options) Validate() error {
	if o.Endpoint != "" {
		// The endpoint is not echoed before it is known to hold no
		// user information (a password would be a secret).
		u, err := url.Parse(o.Endpoint)
		if err != nil {
			return errors.New("aws endpoint: not a URL: want http(s)://host[:port]")
		}
		if u.User != nil {
			return fmt.Errorf("aws endpoint %s: must not contain user information", u.Redacted())
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("aws endpoint %q: want http(s)://host[:port]", o.Endpoint)
		}
	}
	if o.MaxAttempts < 0 || o.MaxAttempts > 50 {
		return fmt.Errorf("aws max attempts %d: want 0..50", o.MaxAttempts)
	}
	if o.MaxBackoff < 0 {
		return fmt.Errorf("aws max backoff %s: must not be negative", o.MaxBackoff)
	}
	return nil
}

// LoadConfig resolves the SDK configuration from the standard chain plus
// the options. It does not contact AWS: credentials are fetched lazily by
// the first request.
func LoadConfig(ctx context.Context, o Options) (sdkaws.Config, error) {
	if err := o.Validate(); err != nil {
		return sdkaws.Config{}, err
	}
	attempts := o.MaxAttempts
	if attempts == 0 {
		attempts = DefaultMaxAttempts
	}
	backoff := o.MaxBackoff
	if backoff == 0 {
		backoff = DefaultMaxBackoff
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() sdkaws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = attempts
				so.MaxBackoff = backoff
				so.RateLimiter = ratelimit.None
			})
		}),
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(o.HTTPClient))
	}
	if o.Observe != nil {
		// A middleware, not a wrapped HTTP client: the configuration
		// loader needs the SDK's own client for custom CA bundles.
		opts = append(opts, config.WithAPIOptions([]func(*middleware.Stack) error{observe.AWSMiddleware(o.Observe)}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's messages name files and profiles, not secrets.
		return sdkaws.Config{}, fmt.Errorf("aws: load configuration: %w", err)
	}
	if cfg.Region == "" {
		return sdkaws.Config{}, ErrNoRegion
	}
	return cfg, nil
}

// NewEC2 returns an EC2 client built from LoadConfig(o).
func NewEC2(ctx context.Context, o Options) (*ec2.Client, error) {
	cfg, err := LoadConfig(ctx, o)
	if err != nil {
		return nil, err
	}
	endpoint := o.Endpoint
	c := ec2.NewFromConfig(cfg, func(eo *ec2.Options) {
		if endpoint != "" {
			eo.BaseEndpoint = sdkaws.String(endpoint)
		}
	})
	logReady(o, "ec2", cfg.Region)
	return c, nil
}

// NewRoute53 returns a Route 53 client built from LoadConfig(o). Route 53
// is global: without a configured region it signs for Route53Region
// instead of failing with ErrNoRegion. Besides throttling, the retryer
// also retries PriorRequestNotComplete (a change to the same record set
// still being applied), which Route 53 asks callers to retry.
func NewRoute53(ctx context.Context, o Options) (*route53.Client, error) {
	cfg, err := LoadConfig(ctx, o)
	if errors.Is(err, ErrNoRegion) && o.Region == "" {
		o.Region = Route53Region
		cfg, err = LoadConfig(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	endpoint := o.Endpoint
	c := route53.NewFromConfig(cfg, func(ro *route53.Options) {
		if endpoint != "" {
			ro.BaseEndpoint = sdkaws.String(endpoint)
		}
		ro.Retryer = retry.AddWithErrorCodes(ro.Retryer, "PriorRequestNotComplete")
	})
	logReady(o, "route53", cfg.Region)
	return c, nil
}

// logReady logs that a client was built: region, endpoint and retry
// policy, never credentials.
func logReady(o Options, service, region string) {
	if o.Logger == nil {
		return
	}
	shown := o.Endpoint
	if shown == "" {
		shown = "default"
	}
	o.Logger.Debug("aws "+service+" client ready", "region", region, "endpoint", shown, "max_attempts", maxAttempts(o))
}

// maxAttempts is the effective MaxAttempts of o.
func maxAttempts(o Options) int {
	if o.MaxAttempts == 0 {
		return DefaultMaxAttempts
	}
	return o.MaxAttempts
}
