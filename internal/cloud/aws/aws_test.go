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

	"github.com/aws/aws-sdk-go-v2/service/ec2"
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
