package aliyun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	alidns "github.com/alibabacloud-go/alidns-20150109/v5/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v7/client"
	"github.com/aliyun/credentials-go/credentials"
	"github.com/cloudmha/cloudmha/internal/cloud/observe"
)

// Defaults of Config.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 10 * time.Second
)

// Config says how to reach the APIs.
type Config struct {
	// Region is the region id (cn-hangzhou); required.
	Region string
	// Endpoint overrides the three products' endpoints: host[:port] (HTTPS) or
	// a URL http://host:port / https://host. Plain HTTP is refused unless
	// the host is a loopback IP (the emulator).
	Endpoint string
	// Credential overrides the default credential chain (tests, or a
	// caller with its own provider).
	Credential credentials.Credential
	// ConnectTimeout and ReadTimeout bound each HTTP request.
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// Proxy is an HTTP proxy URL for the API calls; "" means the
	// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). A loopback endpoint
	// is always reached directly.
	Proxy string
	// HTTPClient, when set, sends the requests (its Transport decides on
	// proxies, Proxy is ignored); otherwise a client honouring Proxy and
	// the environment is used.
	HTTPClient *http.Client
	// Observe, when set, sees every API request (for the metrics).
	Observe observe.Func
	// Logger receives the set-up line; nil discards.
	Logger *slog.Logger
}

// Clients are the SDK clients of one region.
type Clients struct {
	VPC *vpc.Client
	ECS *ecs.Client
	// DNS is the Alidns (2015-01-09) client. Alidns is not regional: its
	// public endpoint is the central alidns.aliyuncs.com whatever Region
	// says; Config.Endpoint overrides it like the others.
	DNS    *alidns.Client
	Region string
	// Endpoint is the override in use ("" for the public endpoints).
	Endpoint       string
	connectTimeout time.Duration
	readTimeout    time.Duration
}

// httpDoer adapts *http.Client to the SDK's HttpClient interface.
type httpDoer struct{ c *http.Client }

// Call implements the SDK's HttpClient: the SDK's own transport is ignored.
func (h httpDoer) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	return h.c.Do(req)
}

// New builds the clients. It does not call the APIs; credentials from the
// chain are resolved on first use.
func New(c Config) (*Clients, error) {
	if c.Region == "" {
		return nil, errors.New("aliyun: region is required")
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, protocol, loopback, err := parseEndpoint(c.Endpoint)
	if err != nil {
		return nil, err
	}
	cred := c.Credential
	source := "caller"
	if cred == nil {
		// nil config = the default chain (env, OIDC, CLI profile, file,
		// ECS RAM role, ALIBABA_CLOUD_CREDENTIALS_URI).
		cred, err = credentials.NewCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("aliyun: credential chain: %w", err)
		}
		source = "default chain"
	}
	hc := c.HTTPClient
	if hc == nil {
		var proxy *url.URL
		if c.Proxy != "" {
			proxy, err = url.Parse(c.Proxy)
			if err != nil || proxy.Host == "" {
				return nil, fmt.Errorf("aliyun: proxy %q is not a URL", redactURL(c.Proxy))
			}
		}
		hc = newHTTPClient(c.ConnectTimeout, c.ReadTimeout, loopback, proxy)
	}
	if c.Observe != nil {
		wrapped := *hc
		wrapped.Transport = observe.Transport(hc.Transport, c.Observe)
		hc = &wrapped
	}
	mk := func() *openapi.Config {
		oc := &openapi.Config{
			RegionId:       dara.String(c.Region),
			Credential:     cred,
			ConnectTimeout: dara.Int(int(c.ConnectTimeout / time.Millisecond)),
			ReadTimeout:    dara.Int(int(c.ReadTimeout / time.Millisecond)),
			HttpClient:     httpDoer{hc},
		}
		if host != "" {
			oc.Endpoint = dara.String(host)
			oc.Protocol = dara.String(protocol)
		}
		return oc
	}
	v, err := vpc.NewClient(mk())
	if err != nil {
		return nil, fmt.Errorf("aliyun: VPC client: %w", err)
	}
	e, err := ecs.NewClient(mk())
	if err != nil {
		return nil, fmt.Errorf("aliyun: ECS client: %w", err)
	}
	d, err := alidns.NewClient(mk())
	if err != nil {
		return nil, fmt.Errorf("aliyun: Alidns client: %w", err)
	}
	log.Debug("aliyun clients ready", "region", c.Region, "endpoint", host, "protocol", protocol, "credentials", source)
	return &Clients{VPC: v, ECS: e, DNS: d, Region: c.Region, Endpoint: host, connectTimeout: c.ConnectTimeout, readTimeout: c.ReadTimeout}, nil
}

// Runtime returns per-call runtime options: no SDK retries (callers retry
// with their own backoff and deadline) and the configured timeouts.
func (c *Clients) Runtime() *dara.RuntimeOptions {
	return &dara.RuntimeOptions{
		ConnectTimeout: dara.Int(int(c.connectTimeout / time.Millisecond)),
		ReadTimeout:    dara.Int(int(c.readTimeout / time.Millisecond)),
		Autoretry:      dara.Bool(false),
	}
}

// parseEndpoint returns the SDK's host[:port], the protocol, and whether
// the host is a loopback IP.
func parseEndpoint(ep string) (host, protocol string, loopback bool, err error) {
	if ep == "" {
		return "", "HTTPS", false, nil
	}
	protocol = "HTTPS"
	host = ep
	if strings.Contains(ep, "://") {
		u, perr := url.Parse(ep)
		if perr != nil {
			return "", "", false, fmt.Errorf("aliyun: endpoint %q: %w", ep, perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return "", "", false, fmt.Errorf("aliyun: endpoint %q: want host[:port] or http(s)://host[:port]", ep)
		}
		host = u.Host
		protocol = strings.ToUpper(u.Scheme)
	}
	h := host
	if hh, _, serr := net.SplitHostPort(host); serr == nil {
		h = hh
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() || h == "localhost" {
		loopback = true
	}
	if loopback && !strings.Contains(ep, "://") {
		protocol = "HTTP" // the emulator: 127.0.0.1:PORT
	}
	if protocol == "HTTP" && !loopback {
		return "", "", false, fmt.Errorf("aliyun: endpoint %q: plain HTTP only for a loopback emulator", ep)
	}
	return host, protocol, loopback, nil
}

// redactURL drops a password from a proxy URL for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

func newHTTPClient(connect, read time.Duration, loopback bool, proxy *url.URL) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	tr.DialContext = d.DialContext
	tr.ResponseHeaderTimeout = read
	switch {
	case loopback:
		tr.Proxy = nil
	case proxy != nil:
		tr.Proxy = http.ProxyURL(proxy)
	default:
		tr.Proxy = http.ProxyFromEnvironment
	}
	return &http.Client{Transport: tr, Timeout: connect + read}
}

// APIError is what the API answered, extracted from an SDK error.
type APIError struct {
	Code       string
	StatusCode int
	RequestID  string
}

// ErrorInfo extracts the API's error code, HTTP status and request id
// from an SDK error (*tea.SDKError and the openapi error types, read by
// reflection so that either SDK generation works); ok is false for errors
// that did not come from the API (network, context).
func ErrorInfo(err error) (APIError, bool) {
	for ; err != nil; err = errors.Unwrap(err) {
		v := reflect.ValueOf(err)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			continue
		}
		s := v.Elem()
		code := strField(s, "Code")
		if code == "" {
			continue
		}
		ae := APIError{Code: code, RequestID: strField(s, "RequestId")}
		if ae.RequestID == "" {
			// *tea.SDKError keeps the answer's body in Data.
			var body struct{ RequestId string }
			if json.Unmarshal([]byte(strField(s, "Data")), &body) == nil {
				ae.RequestID = body.RequestId
			}
		}
		if f := s.FieldByName("StatusCode"); f.IsValid() && f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.Int {
			ae.StatusCode = int(f.Elem().Int())
		}
		return ae, true
	}
	return APIError{}, false
}

func strField(s reflect.Value, name string) string {
	f := s.FieldByName(name)
	if f.IsValid() && f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.String {
		return f.Elem().String()
	}
	return ""
}

// Code is ErrorInfo's code, or "".
func Code(err error) string {
	ae, _ := ErrorInfo(err)
	return ae.Code
}

// IsThrottling tells whether err is the API's flow control
// (Throttling, Throttling.User, Throttling.Api, …).
func IsThrottling(err error) bool {
	return strings.HasPrefix(Code(err), "Throttling")
}

// transientCodes are error codes after which the same call may succeed:
// the service was busy, or another operation on the resource was still
// running (OperationConflict, TaskConflict, LastTokenProcessing).
var transientCodes = map[string]bool{
	"ServiceUnavailable": true, "InternalError": true, "UnknownError": true, "UnKnownError": true,
	"SystemBusy": true, "ServiceBusy": true, "OperationConflict": true, "TaskConflict": true,
	"LastTokenProcessing": true, "Operation.Conflict": true,
}

// IsRetryable tells whether a call that failed with err may succeed when
// repeated: throttling, 5xx answers, the transient codes above, and
// transport errors (not the caller's context ending). A repeated call is a
// new SDK request, so it is signed again with a fresh nonce.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	ae, ok := ErrorInfo(err)
	if !ok {
		var ne net.Error
		return errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "EOF")
	}
	return strings.HasPrefix(ae.Code, "Throttling") || ae.StatusCode >= 500 || transientCodes[ae.Code]
}

// IsAuth tells whether err is an authentication failure: a wrong or
// unknown key, a bad signature, or a clock too far off.
func IsAuth(err error) bool {
	switch c := Code(err); {
	case c == "SignatureDoesNotMatch", c == "IncompleteSignature", strings.HasPrefix(c, "InvalidAccessKeyId"),
		c == "InvalidSecurityToken.Expired", c == "InvalidSecurityToken.Malformed", strings.HasPrefix(c, "InvalidTimeStamp"),
		c == "Forbidden.AccessKeyDisabled":
		return true
	}
	return false
}

// Describe formats an SDK error in one line without the SDK's multi-line
// dump: code, status, request id and the API's message. The message can
// include a string to sign, never a secret.
func Describe(err error) string {
	ae, ok := ErrorInfo(err)
	if !ok {
		return err.Error()
	}
	msg := ""
	if s := reflect.ValueOf(err); s.Kind() == reflect.Pointer && !s.IsNil() && s.Elem().Kind() == reflect.Struct {
		msg = strField(s.Elem(), "Message")
	}
	if i := strings.Index(msg, " server string to sign is:"); i >= 0 {
		msg = msg[:i]
	}
	// The SDK decorates the API's message: "code: 403, <message> request
	// id: <id>"; keep the message.
	if rest, ok := strings.CutPrefix(msg, "code: "); ok {
		if _, m, ok := strings.Cut(rest, ", "); ok {
			msg = m
		}
	}
	if i := strings.LastIndex(msg, " request id: "); i >= 0 {
		msg = msg[:i]
	}
	return fmt.Sprintf("%s (HTTP %d, request %s): %s", ae.Code, ae.StatusCode, ae.RequestID, strings.TrimSpace(msg))
}

// AccessKeyHint returns the first characters of the access key id in use,
// for logs ("LTAI5t…"), resolving the credential chain; it never returns
// the secret.
func (c *Clients) AccessKeyHint() string {
	cred := c.VPC.Credential
	if cred == nil {
		return ""
	}
	m, err := cred.GetCredential()
	if err != nil || m == nil || m.AccessKeyId == nil {
		return ""
	}
	id := *m.AccessKeyId
	if len(id) > 6 {
		id = id[:6] + "…"
	}
	return id
}
