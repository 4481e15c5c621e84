// Package tencent is a local emulator of the Tencent Cloud VPC API
// (2017-03-12) that cloudmha's address movers use. The unmodified official
// Go SDK (github.com/tencentcloud/tencentcloud-sdk-go, vpc/v20170312)
// talks to it over plain HTTP on 127.0.0.1:
//
//	cpf := profile.NewClientProfile()
//	cpf.HttpProfile.Endpoint = srv.Endpoint() // 127.0.0.1:PORT
//	cpf.HttpProfile.Scheme = "HTTP"
//	c, _ := vpc.NewClient(common.NewCredential(id, key), tencent.DefaultRegion, cpf)
//
// # What is checked
//
// Every request must be signed, with TC3-HMAC-SHA256 (the SDK's default:
// the canonical request is rebuilt from the wire — method, "/", the query
// string as sent, the signed headers with lowercased and trimmed names and
// values, the SHA-256 of the body or of "UNSIGNED-PAYLOAD" — and the key
// is derived as HMAC(HMAC(HMAC("TC3"+key, date), "vpc"), "tc3_request")),
// or with the legacy HmacSHA1 / HmacSHA256 signature (Signature=
// parameter over METHOD+host+path+"?"+sorted raw k=v pairs, with a
// Nonce). Answers follow the vendor's codes, always as HTTP 200 with
// {"Response":{"Error":{"Code","Message"},"RequestId"}}:
//
//   - unknown SecretId: AuthFailure.SecretIdNotFound
//   - wrong key or badly canonicalised request: AuthFailure.SignatureFailure
//   - X-TC-Timestamp more than Options.MaxSkew (5 min) away, or a credential
//     scope date that is not the timestamp's: AuthFailure.SignatureExpire /
//     AuthFailure.SignatureFailure
//   - a malformed Authorization header: AuthFailure.InvalidAuthorization
//   - a session token that does not match the one registered with SetToken:
//     AuthFailure.TokenFailure
//   - a legacy-signature Nonce used twice by one SecretId within twice
//     MaxSkew: AuthFailure.InvalidAuthorization (the code is this
//     emulator's choice). TC3 has no nonce: the SDK re-sends an identical
//     signed request on network retries, and the service accepts it.
//   - X-TC-Region other than Options.Region: UnsupportedRegion; a missing
//     region: MissingParameter; X-TC-Version other than 2017-03-12:
//     NoSuchVersion; an unknown action: InvalidAction; an unknown request
//     parameter: UnknownParameter.
//
// # What is modelled
//
//   - Instances (AddInstance) with a primary ENI carrying the instance's
//     private IP; further ENIs (AddENI) with a primary and secondary private
//     IPs (AddPrivateIP). DescribeNetworkInterfaces (NetworkInterfaceIds or
//     Filters vpc-id, subnet-id, network-interface-id,
//     attachment.instance-id, address-ip with ip-exact-match — one address
//     without ip-exact-match matches by suffix, as documented — and
//     is-primary; Offset/Limit).
//   - HaVips (AddHaVip, CreateHaVip with ClientToken): DescribeHaVips
//     (HaVipIds or Filters havip-id, havip-name, vpc-id, subnet-id, vip,
//     havip-association.instance-id), AssociateHaVipInstance /
//     DisassociateHaVipInstance (the drift scope; synchronous here; at most
//     Options.MaxHaVipAssociations per HaVip).
//   - HaVip binding is ARP-driven, as on the platform: no API call binds a
//     HaVip. The data plane (a test, or the test bed after a host added the
//     address and sent gratuitous ARP) calls SetHaVipHolder; DescribeHaVips
//     then reports that ENI and instance (NetworkInterfaceId, InstanceId)
//     and State AVAILABLE (UNBIND when no one holds it). A claim from
//     outside the HaVip's subnet, or — when CheckAssociate is on — from an
//     instance or ENI outside the drift scope, is ignored (an error).
//     Disassociating the holder while CheckAssociate is on unbinds the
//     HaVip (this emulator's reading of "drift scope"; unverified).
//   - MigratePrivateIpAddress: an asynchronous task whose id is the
//     call's RequestId (as the vendor documents); DescribeVpcTaskResult
//     reports RUNNING, then SUCCESS (the address moved) or FAILED (it
//     stayed). The address is MIGRATING meanwhile; a second migration
//     touching the same ENIs or address gets
//     UnsupportedOperation.MutexOperationTaskRunning.
//
// Tasks complete after Options.Latency (SetLatency; SetResourceLatency for
// one address or ENI: a slow transition). Faults: InjectError (any code,
// optionally a non-200 HTTP status, as a gateway would answer), Throttle
// (RequestLimitExceeded), FailMigrations (the next migrations of an address
// end FAILED). ClientToken makes CreateHaVip idempotent (same token and
// parameters: the first answer; other parameters:
// UnsupportedOperation.IdempotentParameterMismatch). OnChange reports every
// state change. Error codes other than the signature ones follow the
// vendor's published lists but are not all verified against the live
// service. The logger never receives a key, a token or a signature.
package tencent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/cloudsim"
)

// API served.
const (
	Service = "vpc"
	Version = "2017-03-12"
)

// Defaults of Options.
const (
	DefaultRegion               = "ap-guangzhou"
	DefaultLatency              = 300 * time.Millisecond
	DefaultMaxSkew              = 5 * time.Minute
	DefaultMaxHaVipAssociations = 10
	DefaultMaxPrivateIPs        = 20
)

// Options configures a Server.
type Options struct {
	// Credentials maps SecretId to SecretKey.
	Credentials map[string]string
	// Region is the only region served (X-TC-Region must be it).
	Region string
	// Latency is how long an asynchronous task takes (default 300 ms; a
	// negative value means 0).
	Latency time.Duration
	// MaxSkew bounds the request timestamp's distance from now (5 min).
	MaxSkew time.Duration
	// MaxHaVipAssociations bounds a HaVip's drift scope (10).
	MaxHaVipAssociations int
	// MaxPrivateIPs bounds the private IPs of one ENI (20).
	MaxPrivateIPs int
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives one line per request (never a secret); nil discards.
	Logger *slog.Logger
}

// Server is the emulator. It is an http.Handler; Start serves it on a
// loopback port.
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	creds     map[string]string
	tokens    map[string]string // SecretId -> required X-TC-Token
	nonces    map[string]time.Time
	instances map[string]*Instance
	enis      map[string]*ENI
	havips    map[string]*HaVip
	tasks     map[string]*Task
	migrating map[string]string // address -> task id
	idem      map[string]idemEntry
	faults    []*fault
	failMig   map[string][]string // address -> outputs of the next failing migrations
	latency   time.Duration
	resLat    map[string]time.Duration
	timers    map[*time.Timer]struct{}
	calls     map[string]int
	seq       int64
	nextID    int
	closed    bool
	handlers  []func(Event)
	emitMu    sync.Mutex

	serve cloudsim.Loopback // Start's HTTP server
}

// New returns a server with no resources.
func New(o Options) *Server {
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Latency == 0 {
		o.Latency = DefaultLatency
	} else if o.Latency < 0 {
		o.Latency = 0
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = DefaultMaxSkew
	}
	if o.MaxHaVipAssociations <= 0 {
		o.MaxHaVipAssociations = DefaultMaxHaVipAssociations
	}
	if o.MaxPrivateIPs <= 0 {
		o.MaxPrivateIPs = DefaultMaxPrivateIPs
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		opts: o, log: o.Logger,
		creds: map[string]string{}, tokens: map[string]string{}, nonces: map[string]time.Time{},
		instances: map[string]*Instance{}, enis: map[string]*ENI{}, havips: map[string]*HaVip{},
		tasks: map[string]*Task{}, migrating: map[string]string{}, idem: map[string]idemEntry{},
		failMig: map[string][]string{}, latency: o.Latency, resLat: map[string]time.Duration{},
		timers: map[*time.Timer]struct{}{}, calls: map[string]int{},
	}
	for k, v := range o.Credentials {
		s.creds[k] = v
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Start serves on addr (default "127.0.0.1:0") and returns the base URL
// (http://127.0.0.1:PORT). Addresses that are not loopback are refused:
// the emulator must never be reachable from outside the machine.
func (s *Server) Start(addr string) (string, error) {
	return s.serve.Start("tencent emulator", addr, s, s.log)
}

// Endpoint is the host:port to put in HttpProfile.Endpoint after Start
// (with HttpProfile.Scheme = "HTTP").
func (s *Server) Endpoint() string { return s.serve.Endpoint() }

// Region is the region served.
func (s *Server) Region() string { return s.opts.Region }

// Close stops serving and cancels pending tasks (they stay RUNNING).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = map[*time.Timer]struct{}{}
	s.mu.Unlock()
	return s.serve.Stop()
}

// SetCredential adds or replaces a key pair.
func (s *Server) SetCredential(secretID, secretKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[secretID] = secretKey
}

// RemoveCredential deletes a key pair (a key disabled in the console).
func (s *Server) RemoveCredential(secretID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.creds, secretID)
	delete(s.tokens, secretID)
}

// SetToken makes requests signed by secretID valid only with this
// X-TC-Token (temporary credentials: a CAM role's); "" removes the
// requirement.
func (s *Server) SetToken(secretID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == "" {
		delete(s.tokens, secretID)
		return
	}
	s.tokens[secretID] = token
}

func (s *Server) secret(id string) (key, token string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok = s.creds[id]
	return key, s.tokens[id], ok
}

func (s *Server) now() time.Time { return s.opts.Now() }

// apiError is an error answer.
type apiError struct {
	Code    string
	Message string
	// HTTPStatus is 200 (the API's way) unless a fault emulates a
	// gateway failure (an HTML page with that status).
	HTTPStatus int
}

func newErr(code, msg string) *apiError { return &apiError{Code: code, Message: msg} }

func errMissing(name string) *apiError {
	return newErr("MissingParameter", "The request is missing a required parameter `"+name+"`.")
}

func errNotFound(what string) *apiError {
	return newErr("ResourceNotFound", "The resource is not found: "+what+".")
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		s.writeError(w, reqID, newErr("InvalidParameter", "Cannot read the request body."))
		return
	}
	req, ae := s.verify(r, body)
	if ae != nil {
		s.log.Info("request refused", "code", ae.Code, "remote", r.RemoteAddr)
		s.writeError(w, reqID, ae)
		return
	}
	resp, ae := s.dispatch(req, reqID)
	if ae != nil {
		s.log.Info("request failed", "action", req.action, "code", ae.Code, "secret_id", hint(req.secretID))
		s.writeError(w, reqID, ae)
		return
	}
	s.log.Debug("request", "action", req.action, "alg", req.alg, "secret_id", hint(req.secretID))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-TC-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

func (s *Server) writeError(w http.ResponseWriter, reqID string, ae *apiError) {
	if ae.HTTPStatus != 0 && ae.HTTPStatus != http.StatusOK {
		// A gateway in front of the API: not the API's JSON.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(ae.HTTPStatus)
		_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1>%s</body></html>\n", ae.HTTPStatus, http.StatusText(ae.HTTPStatus), html.EscapeString(ae.Code))
		return
	}
	b, _ := json.Marshal(map[string]any{"Response": map[string]any{
		"Error":     map[string]string{"Code": ae.Code, "Message": ae.Message},
		"RequestId": reqID,
	}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-TC-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// hint shortens a SecretId for logs ("AKIDab…").
func hint(id string) string {
	if len(id) > 6 {
		return id[:6] + "…"
	}
	return id
}
