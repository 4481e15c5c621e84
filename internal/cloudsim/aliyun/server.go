// Package aliyun is a local emulator of the Alibaba Cloud ECS (2014-05-26),
// VPC (2016-04-28) and Alidns (2015-01-09) OpenAPIs that cloudmha's address
// movers use, and of CloudMonitor's (2019-01-01) custom metrics. The
// unmodified official Darabonba SDK clients talk to it over plain HTTP on
// 127.0.0.1; one port serves every product (the Alidns SDK's central
// endpoint is replaced by openapi.Config.Endpoint like the others'):
//
//	cfg := &openapi.Config{Endpoint: tea.String("127.0.0.1:PORT"), Protocol: tea.String("HTTP"),
//		AccessKeyId: …, AccessKeySecret: …, RegionId: tea.String("cn-hangzhou")}
//
// # What is checked
//
// Every request must be signed: ACS3-HMAC-SHA256 (the SDKs' default; the
// canonical request is rebuilt from the wire and compared) or the legacy
// RPC HMAC-SHA1 signature (Signature= parameter, RFC 3986 encoding applied
// twice). Unknown AccessKeyId -> 404 InvalidAccessKeyId.NotFound; wrong
// secret or a badly canonicalised request -> 400 SignatureDoesNotMatch; a
// reused nonce -> 400 SignatureNonceUsed; a timestamp more than
// Options.MaxSkew (15 min) away -> 400 InvalidTimeStamp.Expired. Errors have
// Alibaba's JSON shape {RequestId, HostId, Code, Message, Recommend}.
//
// # What is modelled
//
//   - Instances (seeded with AddInstance): id, private IP, zone, vSwitch.
//     DescribeInstances (InstanceIds / PrivateIpAddresses filters).
//   - vSwitches (AddVSwitch): their CIDR bounds secondary private IPs.
//   - ENIs (AddENI; Type Secondary by default, or Primary for an
//     instance's own, which cannot be detached): DescribeNetworkInterfaces
//     (NetworkInterfaceId.N, InstanceId, Type, Status, VSwitchId,
//     PrivateIpAddress.N filters; PrivateIpSets with the EIP mapped to each
//     address), DetachNetworkInterface (InUse -> Detaching -> Available),
//     AttachNetworkInterface (Available -> Attaching -> InUse). The ENI and
//     the instance must be in one zone.
//   - Secondary private IPs: AssignPrivateIpAddresses (NetworkInterfaceId,
//     PrivateIpAddress.N; the address must be in the ENI's vSwitch CIDR
//     when the vSwitch was added, and used by nothing else in the VPC —
//     there is no atomic reassignment: an address held by another ENI is
//     403 InvalidPrivateIpAddress.Duplicated) and
//     UnassignPrivateIpAddresses (403 InvalidIp.IpUnassigned for an address
//     the ENI does not list). Both are asynchronous: the address is
//     reserved (or still held) at once and appears in (or leaves)
//     PrivateIpSets after the latency. The ENI must be Available or InUse.
//   - HaVips (AddHaVip, CreateHaVip): DescribeHaVips (Filter HaVipId, VpcId,
//     VSwitchId, Status; AssociatedEipAddresses), AssociateHaVip
//     (Associating -> InUse; the instance or ENI must be in the HaVip's
//     vSwitch; at most Options.MaxHaVipInstances), UnassociateHaVip
//     (Unassociating -> InUse/Available; the master needs Force=True).
//   - HaVip mastership is ARP-driven, as on the real platform: no API call
//     makes an instance the master. The data plane (the test bed, after a
//     host added the address and sent gratuitous ARP) calls SetHaVipMaster;
//     MasterInstanceId is the last associated instance that claimed the
//     address, and becomes empty when that instance is unassociated. A
//     claim by an instance that is not associated is ignored (the vSwitch
//     drops it), as on the platform.
//   - EIPs (AddEIP): DescribeEipAddresses (AllocationId and EipAddress as
//     comma-separated lists, AssociatedInstanceId, AssociatedInstanceType,
//     Status), AssociateEipAddress (InstanceType EcsInstance,
//     NetworkInterface — a secondary ENI — or HaVip; optional
//     PrivateIpAddress among the target's addresses; Available ->
//     Associating -> InUse; anything but Available is 400
//     IncorrectEipStatus; one EIP per private address),
//     UnassociateEipAddress (InUse -> Unassociating -> Available; a
//     mismatching InstanceId is 400 InvalidInstanceId.MisMatch).
//   - Alidns (AddDomain, AddDNSRecord): DescribeDomainRecords (DomainName;
//     RRKeyWord and ValueKeyWord match fuzzily, case-insensitively, as the
//     service does — callers must filter for the exact name; Type,
//     TypeKeyWord, Line, Status exactly; KeyWord with SearchMode LIKE or
//     EXACT; PageSize up to 500), AddDomainRecord, UpdateDomainRecord (an
//     update that changes neither RR, Type, Value nor Line is 400
//     DomainRecordDuplicate), DeleteDomainRecord, DescribeDomainRecordInfo.
//     TTL must be Options.MinTTL (600, the free edition) .. 86400. Unknown
//     record ids are DomainRecordNotBelongToUser; locked records
//     DomainRecordLocked; a CNAME beside other records DomainRecordConflict.
//     Record changes are synchronous.
//   - Security groups (AddSecurityGroup): AuthorizeSecurityGroup and
//     RevokeSecurityGroup with Permissions.N.{IpProtocol, PortRange,
//     SourceCidrIp|SourceGroupId, Policy, Priority, Description} (or the
//     legacy top-level fields; revoke also by SecurityGroupRuleId.N);
//     authorizing an existing rule succeeds without a duplicate, revoking an
//     absent one succeeds; DescribeSecurityGroupAttribute lists
//     Permissions.Permission.
//   - CloudMonitor (2019-01-01) custom metrics: PutCustomMetric
//     (MetricList.N.{GroupId, MetricName, Type, Values, Dimensions, Period,
//     Time}, N up to 21, or one JSON array in MetricList) is validated
//     whole — GroupId numeric, Type 0 with Values {"value": v} or Type 1
//     with Period 60/300, Dimensions a JSON object of 1–64 character keys
//     and values from [A-Za-z0-9._/\-] (longer ones cut), Time in
//     milliseconds or UTC — and stored all or nothing; CustomMetrics
//     returns the points. The error codes are guesses (MissingParameter,
//     InvalidParameter); the service's HTTP-200 answers with a Code other
//     than "200" are not emulated.
//
// Transitions complete after Options.Latency (SetLatency, SetResourceLatency
// change it at run time). ClientToken makes calls idempotent (the same
// token and parameters return the first answer; other parameters return
// IdempotentParameterMismatch). Faults: InjectError (any code and status,
// e.g. Throttle for Throttling.User; Fault.Applied makes it a lost answer:
// the call takes effect, the caller sees the error), StickDetaching (an ENI that never
// leaves Detaching), HoldTransitions (any resource's pending transitions
// wait until released). OnChange reports every state change: HaVip and
// ENI changes, secondary IP assign/unassign (eni.ip.*), EIP association
// (eip.*), DNS record changes (dns.*) and security group rules (sg.*).
//
// An STS security token (x-acs-security-token) is accepted without
// verification. Error codes other than the signature ones follow the
// vendor's naming but are not all verified against the live service
// (InvalidPrivateIpAddress.Duplicated, InvalidAssociation.Duplicated,
// InvalidInstanceId.MisMatch and InvalidTTL.Range are guesses).
package aliyun

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/cloudsim"
)

// API versions served.
const (
	VersionECS = "2014-05-26"
	VersionVPC = "2016-04-28"
	// VersionDNS is Alidns, its own product: the SDK addresses it at the
	// central endpoint alidns.aliyuncs.com (no region in the host), or at
	// openapi.Config.Endpoint when set, so one emulator port serves all
	// three products; requests are told apart by x-acs-action/-version.
	VersionDNS = "2015-01-09"
)

// Defaults of Options.
const (
	DefaultRegion            = "cn-hangzhou"
	DefaultLatency           = 300 * time.Millisecond
	DefaultMaxSkew           = 15 * time.Minute
	DefaultMaxHaVipInstances = 2
	// DefaultMinTTL is the smallest DNS record TTL accepted (the free
	// Alidns edition's minimum; paid editions go down to 1 s).
	DefaultMinTTL = 600
)

// Options configures a Server.
type Options struct {
	// Credentials maps AccessKeyId to AccessKeySecret.
	Credentials map[string]string
	// Region is the only region served (RegionId must match when given).
	Region string
	// Latency is how long an asynchronous transition takes (default
	// 300 ms; a negative value means 0).
	Latency time.Duration
	// MaxSkew bounds the request timestamp's distance from now (15 min).
	MaxSkew time.Duration
	// MaxHaVipInstances bounds the instances associated with one HaVip.
	MaxHaVipInstances int
	// MinTTL is the smallest TTL Alidns accepts for a record (600, the
	// free edition's minimum; set it lower to emulate a paid edition).
	MinTTL int
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
	nonces    map[string]time.Time
	instances map[string]*Instance
	enis      map[string]*ENI
	havips    map[string]*HaVip
	eips      map[string]*EIP
	vswitches map[string]*VSwitch
	domains   map[string]bool
	records   map[string]*DNSRecord
	sgroups   map[string]*SecurityGroup
	ipOps     map[string]pendingIP        // secondary IP -> pending (un)assignment
	holding   map[string]bool             // HoldTransitions: resources held
	held      map[string][]func() []Event // completions queued while held
	tokens    map[string]tokenEntry
	faults    []*fault
	stuck     map[string]bool
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

	// customMetrics are the CloudMonitor points received (cms.go).
	customMetrics []CustomMetric
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
	if o.MaxHaVipInstances <= 0 {
		o.MaxHaVipInstances = DefaultMaxHaVipInstances
	}
	if o.MinTTL <= 0 {
		o.MinTTL = DefaultMinTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		opts: o, log: o.Logger,
		creds: map[string]string{}, nonces: map[string]time.Time{},
		instances: map[string]*Instance{}, enis: map[string]*ENI{}, havips: map[string]*HaVip{}, eips: map[string]*EIP{},
		vswitches: map[string]*VSwitch{}, domains: map[string]bool{}, records: map[string]*DNSRecord{},
		sgroups: map[string]*SecurityGroup{}, ipOps: map[string]pendingIP{}, holding: map[string]bool{}, held: map[string][]func() []Event{},
		tokens: map[string]tokenEntry{}, stuck: map[string]bool{}, latency: o.Latency,
		resLat: map[string]time.Duration{}, timers: map[*time.Timer]struct{}{}, calls: map[string]int{},
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
	return s.serve.Start("aliyun emulator", addr, s, s.log)
}

// Endpoint is the host:port to put in openapi.Config.Endpoint after Start.
func (s *Server) Endpoint() string { return s.serve.Endpoint() }

// Close stops serving and cancels pending transitions.
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

// SetCredential adds or replaces an access key.
func (s *Server) SetCredential(accessKeyID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[accessKeyID] = secret
}

func (s *Server) secret(ak string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.creds[ak]
	return v, ok
}

func (s *Server) now() time.Time { return s.opts.Now() }

// apiError is an error answer.
type apiError struct {
	Status    int
	Code      string
	Message   string
	Recommend string
}

func errBadRequest(code, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: msg}
}

func errNotFound(code, msg string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: code, Message: msg}
}

func errForbidden(code, msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: code, Message: msg}
}

func errAccessKeyNotFound() *apiError {
	return errNotFound("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
}

func errSignature(stringToSign string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "SignatureDoesNotMatch",
		Message: "Specified signature does not match our calculation. server string to sign is:" + stringToSign}
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
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.writeError(w, r, reqID, errBadRequest("InvalidRequest", "cannot read the body"))
		return
	}
	ai, ae := s.verify(r, body)
	if ae != nil {
		s.log.Info("request refused", "code", ae.Code, "status", ae.Status)
		s.writeError(w, r, reqID, ae)
		return
	}
	status, resp, ae := s.dispatch(ai, reqID)
	if ae != nil {
		s.log.Info("request failed", "action", ai.action, "code", ae.Code, "status", ae.Status)
		s.writeError(w, r, reqID, ae)
		return
	}
	s.log.Debug("request", "action", ai.action, "alg", ai.alg, "access_key_id", ai.accessKeyID)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", reqID)
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID string, ae *apiError) {
	rec := ae.Recommend
	if rec == "" {
		rec = "https://api.aliyun.com/troubleshoot?q=" + ae.Code
	}
	b, _ := json.Marshal(map[string]string{
		"RequestId": reqID, "HostId": r.Host, "Code": ae.Code, "Message": ae.Message, "Recommend": rec,
	})
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", reqID)
	w.WriteHeader(ae.Status)
	_, _ = w.Write(b)
}
