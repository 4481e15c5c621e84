package tencent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/cloud/observe"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"
)

// DefaultCallTimeout bounds one API call (connect + answer).
const DefaultCallTimeout = 10 * time.Second

// Config says how to reach the API.
type Config struct {
	// Region is the region id (ap-guangzhou); required.
	Region string
	// Endpoint overrides the API host: host[:port] (HTTPS; plain HTTP for a
	// loopback IP) or a URL http(s)://host[:port]. "" is the SDK's
	// vpc.tencentcloudapi.com.
	Endpoint string
	// Credential overrides the credential chain (tests, or a caller with
	// its own provider).
	Credential common.CredentialIface
	// NoInstanceMetadata leaves the CVM role out of the chain (a host that
	// is not a CVM, tests).
	NoInstanceMetadata bool
	// MetadataEndpoint is the instance metadata base URL
	// (DefaultMetadataEndpoint).
	MetadataEndpoint string
	// CallTimeout bounds each HTTP request (DefaultCallTimeout; the SDK
	// counts whole seconds, rounded up).
	CallTimeout time.Duration
	// Proxy is an HTTP proxy URL for the API calls; "" means the
	// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). A loopback endpoint
	// is always reached directly.
	Proxy string
	// HTTPClient, when set, provides the transport of the API calls (it
	// then decides on proxies; Proxy is ignored).
	HTTPClient *http.Client
	// Observe, when set, sees every API request (for the metrics).
	Observe observe.Func
	// Logger receives the set-up and credential lines; nil discards.
	Logger *slog.Logger
}

// Client is the VPC client of one region.
type Client struct {
	VPC    *vpc.Client
	Region string
	// Endpoint is the override in use ("" for the public endpoint).
	Endpoint string
	cred     *lazyCredential
	log      *slog.Logger
}

// New builds the client. It does not call the API and does not resolve
// the credential chain (Credentials does, on first use).
func New(c Config) (*Client, error) {
	if c.Region == "" {
		return nil, errors.New("tencent: region is required (e.g. ap-guangzhou)")
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, scheme, loopback, err := parseEndpoint(c.Endpoint)
	if err != nil {
		return nil, err
	}
	var cred *lazyCredential
	if c.Credential != nil {
		cred = &lazyCredential{cred: c.Credential, source: SourceCaller}
	} else {
		cred = newChain(c.NoInstanceMetadata, c.MetadataEndpoint)
	}
	var tr http.RoundTripper
	if c.HTTPClient != nil {
		tr = c.HTTPClient.Transport
		if tr == nil {
			tr = http.DefaultTransport
		}
	} else {
		var proxy *url.URL
		if c.Proxy != "" {
			proxy, err = url.Parse(c.Proxy)
			if err != nil || proxy.Host == "" || proxy.Scheme == "" {
				return nil, fmt.Errorf("tencent: proxy %q is not a URL (want http://host:port)", redactURL(c.Proxy))
			}
		}
		tr = newTransport(c.CallTimeout, loopback, proxy)
	}
	tr = observe.Transport(tr, c.Observe)
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.ReqTimeout = int(math.Ceil(c.CallTimeout.Seconds()))
	cpf.Language = "en-US"
	cpf.DisableRegionBreaker = true
	cpf.NetworkFailureMaxRetries = 0
	cpf.RateLimitExceededMaxRetries = 0
	if host != "" {
		cpf.HttpProfile.Endpoint = host
		cpf.HttpProfile.Scheme = scheme
	}
	v, err := vpc.NewClient(cred, c.Region, cpf)
	if err != nil {
		return nil, fmt.Errorf("tencent: VPC client: %w", err)
	}
	v.WithHttpTransport(tr)
	log.Debug("tencent VPC client ready", "region", c.Region, "endpoint", host, "scheme", scheme)
	return &Client{VPC: v, Region: c.Region, Endpoint: host, cred: cred, log: log}, nil
}

// Credentials resolves the credential chain (once; temporary keys are
// renewed when they near expiry) and reports why no credentials are
// usable. Callers run it before API calls: the SDK itself cannot report a
// credential failure.
func (c *Client) Credentials(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cred, source, err := c.cred.resolve()
	if err != nil {
		return fmt.Errorf("tencent: no usable credentials (set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, plus TENCENTCLOUD_SESSION_TOKEN for temporary keys; or write ~/.tencentcloud/credentials or TENCENTCLOUD_CREDENTIALS_FILE; or bind a CAM role to the CVM): %s", describeChainErr(err))
	}
	if c.cred.firstUse() {
		c.log.Info("tencent credentials found", "source", source, "secret_id", hint(cred.GetSecretId()))
	}
	return nil
}

// describeChainErr is the chain's error without the SDK's prefix.
func describeChainErr(err error) string {
	var e *tcerr.TencentCloudSDKError
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// SecretIDHint is the first characters of the SecretId in use ("AKIDab…"),
// resolving the chain; never the key.
func (c *Client) SecretIDHint() string {
	cred, _, err := c.cred.resolve()
	if err != nil {
		return ""
	}
	return hint(cred.GetSecretId())
}

// CredentialSource names where the credentials came from (environment,
// profile file, CVM role, caller), "" before they were resolved.
func (c *Client) CredentialSource() string {
	c.cred.mu.Lock()
	defer c.cred.mu.Unlock()
	return c.cred.source
}

func hint(id string) string {
	if len(id) > 6 {
		return id[:6] + "…"
	}
	return id
}

// parseEndpoint returns the SDK's host[:port], the scheme, and whether the
// host is a loopback address.
func parseEndpoint(ep string) (host, scheme string, loopback bool, err error) {
	if ep == "" {
		return "", "HTTPS", false, nil
	}
	scheme = "HTTPS"
	host = ep
	if strings.Contains(ep, "://") {
		u, perr := url.Parse(ep)
		if perr != nil {
			return "", "", false, fmt.Errorf("tencent: endpoint %q: %w", ep, perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
			return "", "", false, fmt.Errorf("tencent: endpoint %q: want host[:port] or http(s)://host[:port]", ep)
		}
		host = u.Host
		scheme = strings.ToUpper(u.Scheme)
	} else if strings.ContainsAny(ep, "/?#@ ") {
		return "", "", false, fmt.Errorf("tencent: endpoint %q: want host[:port] or http(s)://host[:port]", ep)
	}
	h := host
	if hh, _, serr := net.SplitHostPort(host); serr == nil {
		h = hh
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() || h == "localhost" {
		loopback = true
	}
	if loopback && !strings.Contains(ep, "://") {
		scheme = "HTTP" // the emulator: 127.0.0.1:PORT
	}
	if scheme == "HTTP" && !loopback {
		return "", "", false, fmt.Errorf("tencent: endpoint %q: plain HTTP only for a loopback emulator", ep)
	}
	return host, scheme, loopback, nil
}

// redactURL drops a password from a proxy URL for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

func newTransport(timeout time.Duration, loopback bool, proxy *url.URL) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = timeout
	tr.IdleConnTimeout = 30 * time.Second
	switch {
	case loopback:
		tr.Proxy = nil
	case proxy != nil:
		tr.Proxy = http.ProxyURL(proxy)
	default:
		tr.Proxy = http.ProxyFromEnvironment
	}
	return tr
}

// APIError is what the API (or the SDK, for ClientError.* codes) said.
type APIError struct {
	Code      string
	Message   string
	RequestID string
}

// ErrorInfo extracts the error code, message and request id of an SDK
// error; ok is false for other errors.
func ErrorInfo(err error) (APIError, bool) {
	var e *tcerr.TencentCloudSDKError
	if !errors.As(err, &e) {
		return APIError{}, false
	}
	return APIError{Code: e.Code, Message: e.Message, RequestID: e.RequestId}, true
}

// Code is ErrorInfo's code, or "".
func Code(err error) string {
	ae, _ := ErrorInfo(err)
	return ae.Code
}

// IsThrottling tells whether err is the API's flow control
// (RequestLimitExceeded and its sub-codes).
func IsThrottling(err error) bool {
	c := Code(err)
	return c == "RequestLimitExceeded" || strings.HasPrefix(c, "RequestLimitExceeded.")
}

// IsRetryable tells whether a call that failed with err may succeed when
// repeated: throttling, internal errors, a call still being processed
// under the same ClientToken, and transport failures (the SDK's
// ClientError.NetworkError, a gateway's non-JSON answer) — not the
// caller's context ending.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	ae, ok := ErrorInfo(err)
	if !ok {
		var ne net.Error
		return errors.As(err, &ne)
	}
	switch {
	case IsThrottling(err), ae.Code == "InternalError", strings.HasPrefix(ae.Code, "InternalError."),
		ae.Code == "ResourceUnavailable.ServiceUnavailable", ae.Code == "UnsupportedOperation.IdempotentProcessing",
		ae.Code == "ClientError.ParseJsonError", ae.Code == "ClientError.IOError", ae.Code == "ClientError.HttpStatusCodeError":
		return true
	case ae.Code == "ClientError.NetworkError":
		return !strings.Contains(ae.Message, "context canceled") && !strings.Contains(ae.Message, "context deadline exceeded")
	}
	return false
}

// IsAuth tells whether err is an authentication failure: an unknown or
// disabled key, a bad signature, a clock too far off, a bad token, or no
// credentials at all.
func IsAuth(err error) bool {
	c := Code(err)
	return strings.HasPrefix(c, "AuthFailure") || c == "ClientError.CredentialError"
}

// Describe formats an SDK error in one line: code, request id and the
// message (shortened; a gateway's HTML page is cut). Messages never
// contain a key.
func Describe(err error) string {
	ae, ok := ErrorInfo(err)
	if !ok {
		return err.Error()
	}
	msg := strings.Join(strings.Fields(ae.Message), " ")
	if len(msg) > 240 {
		msg = msg[:240] + "…"
	}
	if ae.RequestID == "" {
		return fmt.Sprintf("%s: %s", ae.Code, msg)
	}
	return fmt.Sprintf("%s (request %s): %s", ae.Code, ae.RequestID, msg)
}
