package aws

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

const secret = "CLOUDMHATESTSECRETMARKERabcdef0123456789"

func isolate(t *testing.T, region string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDCLOUDMHATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/cloudmha-test-config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cloudmha-test-credentials")
}

func TestValidate(t *testing.T) {
	for _, o := range []Options{{Endpoint: "127.0.0.1:5000"}, {Endpoint: "ftp://x"}, {MaxAttempts: -1}, {MaxBackoff: -time.Second}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	err := (Options{Endpoint: "http://user:" + secret + "@127.0.0.1:5000"}).Validate()
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("endpoint with a password: %v", err)
	}
	if err := (Options{Endpoint: "http://127.0.0.1:5000", Region: "eu-west-1"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestNoRegion(t *testing.T) {
	isolate(t, "")
	if _, err := NewEC2(context.Background(), Options{}); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("err = %v, want ErrNoRegion", err)
	}
}

// TestRetryThrottling: RequestLimitExceeded is retried up to MaxAttempts,
// then reported; the secret is in neither the logs nor the error.
func TestRetryThrottling(t *testing.T) {
	isolate(t, "eu-west-1")
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 3 {
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write([]byte(`<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><addressesSet/></DescribeAddressesResponse>`))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>`))
	}))
	defer srv.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := NewEC2(ctx, Options{Endpoint: srv.URL, MaxAttempts: 3, MaxBackoff: 20 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{}); err != nil {
		t.Fatalf("after two throttled attempts: %v", err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want 3", calls.Load())
	}
	calls.Store(-10)
	_, err = c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err == nil || !strings.Contains(err.Error(), "RequestLimitExceeded") {
		t.Fatalf("err = %v, want RequestLimitExceeded after 3 attempts", err)
	}
	if got := calls.Load(); got != -7 {
		t.Fatalf("%d calls, want 3", got+10)
	}
	if strings.Contains(logs.String()+err.Error(), secret) {
		t.Fatal("secret in logs or error")
	}
	if !strings.Contains(logs.String(), "eu-west-1") {
		t.Fatalf("logs: %s", logs.String())
	}
}

// TestRoute53: without any region the client signs for us-east-1 (Route 53
// is global); PriorRequestNotComplete and Throttling are retried; the
// secret is in neither the logs nor the error.
func TestRoute53(t *testing.T) {
	isolate(t, "")
	var calls atomic.Int32
	var scope atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope.Store(r.Header.Get("Authorization"))
		n := calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		switch {
		case n == 1:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>PriorRequestNotComplete</Code><Message>The request was rejected because Route 53 was still processing a prior request.</Message></Error><RequestId>r</RequestId></ErrorResponse>`))
		case n == 2 || n > 3:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>`))
		default:
			_, _ = w.Write([]byte(`<GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo><Id>/change/C1</Id><Status>INSYNC</Status><SubmittedAt>2025-01-01T00:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>`))
		}
	}))
	defer srv.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := NewRoute53(ctx, Options{Endpoint: srv.URL, MaxAttempts: 3, MaxBackoff: 20 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetChange(ctx, &route53.GetChangeInput{Id: sdkaws.String("/change/C1")})
	if err != nil {
		t.Fatalf("after PriorRequestNotComplete and Throttling: %v", err)
	}
	if out.ChangeInfo.Status != types.ChangeStatusInsync || calls.Load() != 3 {
		t.Fatalf("status %s after %d calls, want INSYNC after 3", out.ChangeInfo.Status, calls.Load())
	}
	if a, _ := scope.Load().(string); !strings.Contains(a, "/us-east-1/route53/aws4_request") {
		t.Fatalf("Authorization %q: want a us-east-1 route53 credential scope", a)
	}
	_, err = c.GetChange(ctx, &route53.GetChangeInput{Id: sdkaws.String("C1")})
	if err == nil || !strings.Contains(err.Error(), "Throttling") || calls.Load() != 6 {
		t.Fatalf("err = %v after %d calls, want Throttling after 3 more", err, calls.Load())
	}
	if strings.Contains(logs.String()+err.Error(), secret) {
		t.Fatal("secret in logs or error")
	}
	if !strings.Contains(logs.String(), "route53") {
		t.Fatalf("logs: %s", logs.String())
	}
	// The options are validated.
	if _, err := NewRoute53(ctx, Options{Region: "eu-west-1", Endpoint: "ftp://x"}); err == nil {
		t.Fatal("bad endpoint accepted")
	}
}
