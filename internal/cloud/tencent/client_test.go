package tencent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	vpc "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc/v20170312"

	sim "github.com/cloudmha/cloudmha/internal/cloudsim/tencent"
)

const (
	testID  = "AKIDchainTestSecretId"
	testKey = "chain-secret-DO-NOT-LOG-42"
)

// unsetenv removes a variable for the test's duration (t.Setenv cannot
// unset, and the SDK's EnvProvider refuses a set but empty variable).
func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "") // registers the restore
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}

// isolate clears every source of the chain but the ones a test sets.
func isolate(t *testing.T) {
	t.Helper()
	for _, k := range []string{"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", EnvSessionToken, "TENCENTCLOUD_CREDENTIALS_FILE",
		"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		unsetenv(t, k)
	}
	t.Setenv("HOME", t.TempDir())
}

func emulator(t *testing.T, creds map[string]string) *sim.Server {
	t.Helper()
	s := sim.New(sim.Options{Credentials: creds, Latency: 10 * time.Millisecond})
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.AddHaVip(sim.HaVip{ID: "havip-1", Vip: "198.18.0.200", SubnetID: "subnet-1", VpcID: "vpc-1"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func describe(ctx context.Context, c *Client) error {
	if err := c.Credentials(ctx); err != nil {
		return err
	}
	_, err := c.VPC.DescribeHaVipsWithContext(ctx, vpc.NewDescribeHaVipsRequest())
	return err
}

func TestEnvironmentChainNeverLogsSecret(t *testing.T) {
	isolate(t)
	t.Setenv("TENCENTCLOUD_SECRET_ID", testID)
	t.Setenv("TENCENTCLOUD_SECRET_KEY", testKey)
	s := emulator(t, map[string]string{testID: testKey})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: "http://" + s.Endpoint(), Logger: log, NoInstanceMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := describe(t.Context(), c); err != nil {
		t.Fatalf("call with environment credentials: %v", err)
	}
	if c.CredentialSource() != SourceEnv || c.SecretIDHint() != "AKIDch…" {
		t.Fatalf("source %q, hint %q", c.CredentialSource(), c.SecretIDHint())
	}
	// A wrong key: the error names the problem, not the key.
	t.Setenv("TENCENTCLOUD_SECRET_KEY", "wrong-"+testKey)
	c2, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), Logger: log, NoInstanceMetadata: true})
	if err == nil {
		err = describe(t.Context(), c2)
	}
	if !IsAuth(err) || IsRetryable(err) {
		t.Fatalf("wrong key: err = %v, want a non-retryable authentication error", err)
	}
	d := Describe(err)
	log.Error("call failed", "err", d)
	if !strings.HasPrefix(d, "AuthFailure.SignatureFailure (request ") || strings.Contains(d, testKey) {
		t.Fatalf("Describe = %q", d)
	}
	if strings.Contains(logs.String(), testKey) || strings.Contains(err.Error(), testKey) {
		t.Fatalf("secret leaked:\n%s\n%v", logs.String(), err)
	}
	if !strings.Contains(logs.String(), "source=environment") || !strings.Contains(logs.String(), "AKIDch…") {
		t.Fatalf("logs lack the source or the key hint:\n%s", logs.String())
	}
}

func TestSessionToken(t *testing.T) {
	isolate(t)
	t.Setenv("TENCENTCLOUD_SECRET_ID", "AKIDtmp")
	t.Setenv("TENCENTCLOUD_SECRET_KEY", "tmp-key")
	t.Setenv(EnvSessionToken, "token-2")
	s := emulator(t, map[string]string{"AKIDtmp": "tmp-key"})
	s.SetToken("AKIDtmp", "token-1")
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), NoInstanceMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := describe(t.Context(), c); Code(err) != "AuthFailure.TokenFailure" || !IsAuth(err) {
		t.Fatalf("wrong token: %v", err)
	}
	t.Setenv(EnvSessionToken, "token-1")
	c, _ = New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), NoInstanceMetadata: true})
	if err := describe(t.Context(), c); err != nil {
		t.Fatalf("right token: %v", err)
	}
}

func TestProfileFile(t *testing.T) {
	isolate(t)
	f := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(f, []byte("[default]\nsecret_id = AKIDprofile\nsecret_key = profile-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TENCENTCLOUD_CREDENTIALS_FILE", f)
	s := emulator(t, map[string]string{"AKIDprofile": "profile-key"})
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), NoInstanceMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := describe(t.Context(), c); err != nil {
		t.Fatalf("profile credentials: %v", err)
	}
	if c.CredentialSource() != SourceProfile {
		t.Fatalf("source = %q", c.CredentialSource())
	}
	// ~/.tencentcloud/credentials is the default path.
	unsetenv(t, "TENCENTCLOUD_CREDENTIALS_FILE")
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, ".tencentcloud"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f, filepath.Join(home, ".tencentcloud", "credentials")); err != nil {
		t.Fatal(err)
	}
	c, _ = New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), NoInstanceMetadata: true})
	if err := describe(t.Context(), c); err != nil {
		t.Fatalf("default profile path: %v", err)
	}
}

// metadata serves a CVM role whose keys expire within the refresh margin,
// so that every use renews them: key n is AKIDrole<n>.
func metadata(t *testing.T, s *sim.Server, role string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	m := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case role == "":
			http.NotFound(w, r)
		case r.URL.Path == "/latest/meta-data/cam/security-credentials/":
			_, _ = w.Write([]byte(role))
		case r.URL.Path == "/latest/meta-data/cam/security-credentials/"+role:
			i := n.Add(1)
			id := "AKIDrole" + string(rune('0'+i))
			s.SetCredential(id, "role-key")
			s.SetToken(id, "role-token")
			_ = json.NewEncoder(w).Encode(map[string]any{"TmpSecretId": id, "TmpSecretKey": "role-key", "Token": "role-token",
				"ExpiredTime": time.Now().Add(4 * time.Minute).Unix(), "Code": "Success"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.Close)
	return m, &n
}

func TestCVMRole(t *testing.T) {
	isolate(t)
	s := emulator(t, map[string]string{})
	m, n := metadata(t, s, "db-ha-role")
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), MetadataEndpoint: m.URL + "/latest/meta-data/"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 0 {
		t.Fatal("New resolved the chain")
	}
	for range 2 {
		if err := describe(t.Context(), c); err != nil {
			t.Fatalf("CVM role credentials: %v", err)
		}
	}
	if c.CredentialSource() != SourceCVMRole || n.Load() < 2 {
		t.Fatalf("source %q, %d key fetches (keys near expiry must be renewed)", c.CredentialSource(), n.Load())
	}
	// The environment comes first.
	t.Setenv("TENCENTCLOUD_SECRET_ID", testID)
	t.Setenv("TENCENTCLOUD_SECRET_KEY", testKey)
	s.SetCredential(testID, testKey)
	c, _ = New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), MetadataEndpoint: m.URL + "/latest/meta-data/"})
	if err := describe(t.Context(), c); err != nil || c.CredentialSource() != SourceEnv {
		t.Fatalf("env before role: %v, %q", err, c.CredentialSource())
	}
}

func TestNoCredentials(t *testing.T) {
	isolate(t)
	s := emulator(t, map[string]string{testID: testKey})
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), NoInstanceMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	err = describe(t.Context(), c)
	if err == nil || !strings.Contains(err.Error(), "TENCENTCLOUD_SECRET_ID") || !strings.Contains(err.Error(), "no credential found") {
		t.Fatalf("no credentials: err = %v", err)
	}
	if s.Calls("DescribeHaVips") != 0 {
		t.Fatal("an unsigned call was sent")
	}
	m, _ := metadata(t, s, "")
	c, _ = New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), MetadataEndpoint: m.URL + "/latest/meta-data/"})
	if err := describe(t.Context(), c); err == nil || !strings.Contains(err.Error(), "no CAM role is bound") {
		t.Fatalf("no role: err = %v", err)
	}
	// An explicit credential skips the chain.
	c, _ = New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), Credential: common.NewCredential(testID, testKey)})
	if err := describe(t.Context(), c); err != nil || c.CredentialSource() != SourceCaller {
		t.Fatalf("caller credential: %v", err)
	}
}

func TestRetryClassification(t *testing.T) {
	isolate(t)
	s := emulator(t, map[string]string{testID: testKey})
	c, _ := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), Credential: common.NewCredential(testID, testKey)})
	s.Throttle("DescribeHaVips", 1)
	if err := describe(t.Context(), c); !IsThrottling(err) || !IsRetryable(err) || IsAuth(err) {
		t.Fatalf("throttled: %v", err)
	}
	s.InjectError(sim.Fault{Action: "DescribeHaVips", Code: "InternalError", HTTPStatus: 502})
	if err := describe(t.Context(), c); !IsRetryable(err) || len(Describe(err)) > 300 {
		t.Fatalf("gateway error: %v / %s", err, Describe(err))
	}
	s.InjectError(sim.Fault{Action: "DescribeHaVips", Code: "ResourceNotFound"})
	if err := describe(t.Context(), c); IsRetryable(err) {
		t.Fatalf("not found is not retryable: %v", err)
	}
	// The emulator gone: a network error, retryable.
	_ = s.Close()
	if err := describe(t.Context(), c); Code(err) != "ClientError.NetworkError" || !IsRetryable(err) {
		t.Fatalf("closed emulator: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := describe(ctx, c); IsRetryable(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, host, scheme string
		loop, bad        bool
	}{
		{"", "", "HTTPS", false, false},
		{"127.0.0.1:8080", "127.0.0.1:8080", "HTTP", true, false},
		{"https://127.0.0.1:8080", "127.0.0.1:8080", "HTTPS", true, false},
		{"http://127.0.0.1:8080", "127.0.0.1:8080", "HTTP", true, false},
		{"vpc.ap-guangzhou.tencentcloudapi.com", "vpc.ap-guangzhou.tencentcloudapi.com", "HTTPS", false, false},
		{"https://vpc.tencentcloudapi.com", "vpc.tencentcloudapi.com", "HTTPS", false, false},
		{"http://vpc.tencentcloudapi.com", "", "", false, true},
		{"ftp://x", "", "", false, true},
		{"http://127.0.0.1:1/path", "", "", false, true},
		{"127.0.0.1:1/path", "", "", false, true},
	} {
		h, sc, l, err := parseEndpoint(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
			continue
		}
		if err != nil || h != tc.host || sc != tc.scheme || l != tc.loop {
			t.Errorf("%q -> %q %q %v %v", tc.in, h, sc, l, err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no region accepted")
	}
}

func TestProxyHonoured(t *testing.T) {
	p, _ := url.Parse("http://127.0.0.1:3128")
	req, _ := http.NewRequest(http.MethodPost, "https://vpc.tencentcloudapi.com/", nil)
	u, err := newTransport(time.Second, false, p).Proxy(req)
	if err != nil || u == nil || u.Host != "127.0.0.1:3128" {
		t.Fatalf("proxy = %v, %v", u, err)
	}
	if newTransport(time.Second, false, nil).Proxy == nil {
		t.Fatal("the environment's proxy is not consulted")
	}
	if newTransport(time.Second, true, p).Proxy != nil {
		t.Fatal("a loopback emulator is reached through the proxy")
	}
	if _, err := New(Config{Region: "ap-guangzhou", Proxy: "http://user:pw@"}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("bad proxy: %v", err)
	}
	// A proxy in the environment is used for the API, not for a loopback
	// emulator: calls through an unreachable proxy would fail.
	isolate(t)
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	s := emulator(t, map[string]string{testID: testKey})
	c, _ := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), Credential: common.NewCredential(testID, testKey)})
	if err := describe(t.Context(), c); err != nil {
		t.Fatalf("loopback emulator behind an environment proxy: %v", err)
	}
	// With an explicit proxy, requests go to the proxy: a local one
	// records them.
	var proxied atomic.Int32
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer px.Close()
	c, _ = New(Config{Region: sim.DefaultRegion, Endpoint: "vpc.example.invalid", Proxy: px.URL, Credential: common.NewCredential(testID, testKey), CallTimeout: 2 * time.Second})
	_ = describe(t.Context(), c)
	if proxied.Load() == 0 {
		t.Fatal("the proxy option was not used")
	}
}
