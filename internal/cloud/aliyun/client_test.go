package aliyun

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	alidns "github.com/alibabacloud-go/alidns-20150109/v5/client"
	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v7/client"

	sim "github.com/cloudmha/cloudmha/internal/cloudsim/aliyun"
)

const (
	testAK     = "LTAI5tChainTestKey"
	testSecret = "chain-secret-DO-NOT-LOG-42"
)

// isolate clears every source of the credential chain but the ones a test
// sets, and keeps the chain off the network (no instance metadata).
func isolate(t *testing.T) {
	t.Helper()
	for _, k := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
		"ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
		"ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_ECS_METADATA", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, "")
	}
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("HOME", t.TempDir())
}

func emulator(t *testing.T, creds map[string]string) *sim.Server {
	t.Helper()
	s := sim.New(sim.Options{Credentials: creds, Latency: 10 * time.Millisecond})
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.AddHaVip(sim.HaVip{ID: "havip-1", IP: "198.18.0.200", VSwitchID: "vsw-1"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func describe(ctx context.Context, c *Clients) error {
	_, err := c.VPC.DescribeHaVipsWithContext(ctx, &vpc.DescribeHaVipsRequest{RegionId: dara.String(c.Region)}, c.Runtime())
	return err
}

func TestEnvironmentChainNeverLogsSecret(t *testing.T) {
	isolate(t)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", testAK)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", testSecret)
	s := emulator(t, map[string]string{testAK: testSecret})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: "http://" + s.Endpoint(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := describe(t.Context(), c); err != nil {
		t.Fatalf("call with environment credentials: %v", err)
	}
	log.Info("key in use", "access_key", c.AccessKeyHint())
	// A wrong secret: the error names the problem, not the secret.
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-"+testSecret)
	c2, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint(), Logger: log})
	if err == nil {
		err = describe(t.Context(), c2)
	}
	if !IsAuth(err) {
		t.Fatalf("wrong secret: err = %v, want an authentication error", err)
	}
	d := Describe(err)
	log.Error("call failed", "err", d)
	if !strings.Contains(d, "SignatureDoesNotMatch") || strings.Contains(d, testSecret) {
		t.Fatalf("Describe = %q", d)
	}
	if strings.Contains(logs.String(), testSecret) || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("secret leaked:\n%s\n%v", logs.String(), err)
	}
	if !strings.Contains(logs.String(), "LTAI5t…") {
		t.Fatalf("logs lack the key hint:\n%s", logs.String())
	}
}

func TestCredentialsURI(t *testing.T) {
	isolate(t)
	var served int
	cs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		_ = json.NewEncoder(w).Encode(map[string]string{
			"Code": "Success", "AccessKeyId": "STS.uriKey", "AccessKeySecret": "uri-secret",
			"SecurityToken": "token-1", "Expiration": time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z"),
		})
	}))
	defer cs.Close()
	t.Setenv("ALIBABA_CLOUD_CREDENTIALS_URI", cs.URL)
	s := emulator(t, map[string]string{"STS.uriKey": "uri-secret"})
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	if err := describe(t.Context(), c); err != nil {
		t.Fatalf("call with URI credentials: %v", err)
	}
	if served == 0 {
		t.Fatal("credentials URI not asked")
	}
}

func TestNoCredentials(t *testing.T) {
	isolate(t)
	s := emulator(t, map[string]string{testAK: testSecret})
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint()})
	if err == nil {
		err = describe(t.Context(), c)
	}
	if err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("no credentials: err = %v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, host, proto string
		loop, bad       bool
	}{
		{"", "", "HTTPS", false, false},
		{"127.0.0.1:8080", "127.0.0.1:8080", "HTTP", true, false},
		{"https://127.0.0.1:8080", "127.0.0.1:8080", "HTTPS", true, false},
		{"http://127.0.0.1:8080", "127.0.0.1:8080", "HTTP", true, false},
		{"https://vpc.cn-hangzhou.aliyuncs.com", "vpc.cn-hangzhou.aliyuncs.com", "HTTPS", false, false},
		{"http://vpc.cn-hangzhou.aliyuncs.com", "", "", false, true},
		{"ftp://x", "", "", false, true},
		{"http://127.0.0.1:1/path", "", "", false, true},
	} {
		h, p, l, err := parseEndpoint(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
			continue
		}
		if err != nil || h != tc.host || p != tc.proto || l != tc.loop {
			t.Errorf("%q -> %q %q %v %v", tc.in, h, p, l, err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no region accepted")
	}
}

func TestProxyHonoured(t *testing.T) {
	p, _ := url.Parse("http://127.0.0.1:3128")
	c := newHTTPClient(time.Second, time.Second, false, p)
	req, _ := http.NewRequest(http.MethodPost, "https://vpc.cn-hangzhou.aliyuncs.com/", nil)
	u, err := c.Transport.(*http.Transport).Proxy(req)
	if err != nil || u == nil || u.Host != "127.0.0.1:3128" {
		t.Fatalf("proxy = %v, %v", u, err)
	}
	if newHTTPClient(time.Second, time.Second, false, nil).Transport.(*http.Transport).Proxy == nil {
		t.Fatal("the environment's proxy is not consulted")
	}
	if newHTTPClient(time.Second, time.Second, true, p).Transport.(*http.Transport).Proxy != nil {
		t.Fatal("a loopback emulator is reached through the proxy")
	}
	if _, err := New(Config{Region: "cn-hangzhou", Proxy: "http://user:pw@"}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("bad proxy: %v", err)
	}
}

func TestDNSClientThroughEndpoint(t *testing.T) {
	isolate(t)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", testAK)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", testSecret)
	s := emulator(t, map[string]string{testAK: testSecret})
	if err := s.AddDomain("example.com"); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.DNS.AddDomainRecordWithContext(t.Context(), &alidns.AddDomainRecordRequest{
		DomainName: dara.String("example.com"), RR: dara.String("db"), Type: dara.String("A"), Value: dara.String("198.18.0.11"),
	}, c.Runtime())
	if err != nil {
		t.Fatalf("Alidns through the endpoint override: %v", err)
	}
	if dara.StringValue(out.Body.RecordId) == "" || len(s.DNSRecords("example.com", "db")) != 1 {
		t.Fatal("record not added")
	}
	_, err = c.DNS.UpdateDomainRecordWithContext(t.Context(), &alidns.UpdateDomainRecordRequest{
		RecordId: out.Body.RecordId, RR: dara.String("db"), Type: dara.String("A"), Value: dara.String("198.18.0.11"),
	}, c.Runtime())
	if Code(err) != "DomainRecordDuplicate" || IsRetryable(err) {
		t.Fatalf("unchanged update: %v (retryable %v)", err, IsRetryable(err))
	}
}

func TestRetryableCodes(t *testing.T) {
	s := emulator(t, map[string]string{testAK: testSecret})
	isolate(t)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", testAK)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", testSecret)
	c, err := New(Config{Region: sim.DefaultRegion, Endpoint: s.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code   string
		status int
		retry  bool
	}{
		{"Throttling.User", 400, true}, {"OperationConflict", 400, true}, {"LastTokenProcessing", 400, true},
		{"UnKnownError", 400, true}, {"SystemBusy", 400, true}, {"Whatever", 503, true},
		{"IncorrectEipStatus", 400, false}, {"InvalidParameter", 400, false},
	} {
		s.InjectError(sim.Fault{Action: "DescribeHaVips", Code: tc.code, Status: tc.status})
		err := describe(t.Context(), c)
		if Code(err) != tc.code || IsRetryable(err) != tc.retry {
			t.Errorf("%s/%d: code %q retryable %v, want %v", tc.code, tc.status, Code(err), IsRetryable(err), tc.retry)
		}
	}
	if IsRetryable(context.Canceled) || IsRetryable(nil) {
		t.Error("context end or nil retryable")
	}
}
