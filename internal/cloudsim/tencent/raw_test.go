package tencent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawTC3 sends a hand-signed TC3 POST; mod may change the request after
// signing, or the signing inputs (date) before.
type rawOpts struct {
	ts      time.Time
	date    string // credential scope date ("" = the timestamp's)
	signed  string // SignedHeaders ("" = content-type;host;x-tc-action)
	body    string
	sent    string // body sent instead of body (tampering)
	action  string
	region  string
	headers map[string]string // set after signing
}

func rawTC3(t *testing.T, s *Server, o rawOpts) (int, map[string]string) {
	t.Helper()
	if o.ts.IsZero() {
		o.ts = time.Now()
	}
	if o.body == "" {
		o.body = "{}"
	}
	if o.action == "" {
		o.action = "DescribeHaVips"
	}
	if o.region == "" {
		o.region = DefaultRegion
	}
	if o.signed == "" {
		o.signed = "content-type;host;x-tc-action"
	}
	sent := o.body
	if o.sent != "" {
		sent = o.sent
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+s.Endpoint()+"/", strings.NewReader(sent))
	must(t, err)
	h := map[string]string{"content-type": "application/json; charset=utf-8", "host": req.Host, "x-tc-action": o.action}
	req.Header.Set("Content-Type", h["content-type"])
	req.Header.Set("X-TC-Action", o.action)
	req.Header.Set("X-TC-Version", Version)
	req.Header.Set("X-TC-Region", o.region)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(o.ts.Unix(), 10))
	signed := strings.Split(o.signed, ";")
	sts := TC3StringToSign(http.MethodPost, "", signed, func(n string) string { return h[n] }, sha256hex([]byte(o.body)), o.ts.Unix(), Service)
	date := o.date
	if date == "" {
		date = o.ts.UTC().Format("2006-01-02")
	}
	req.Header.Set("Authorization", AlgTC3+" Credential="+testID+"/"+date+"/"+Service+"/tc3_request, SignedHeaders="+o.signed+", Signature="+TC3Signature(testKey, date, Service, sts))
	for k, v := range o.headers {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// send returns the HTTP status and the error code ("" for success) and
// message.
func send(t *testing.T, req *http.Request) (int, map[string]string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var m struct {
		Response struct {
			Error     struct{ Code, Message string }
			RequestId string
		}
	}
	must(t, json.NewDecoder(resp.Body).Decode(&m))
	return resp.StatusCode, map[string]string{"Code": m.Response.Error.Code, "Message": m.Response.Error.Message, "RequestId": m.Response.RequestId}
}

func TestRawTC3(t *testing.T) {
	s := startSim(t, Options{})
	// A third signed header, a charset in the content type: both are part
	// of the canonical request.
	if st, b := rawTC3(t, s, rawOpts{}); st != 200 || b["Code"] != "" || b["RequestId"] == "" {
		t.Fatalf("hand-signed request: %d %v", st, b)
	}
	for name, tc := range map[string]struct {
		o    rawOpts
		want string
	}{
		"old timestamp":         {rawOpts{ts: time.Now().Add(-6 * time.Minute)}, "AuthFailure.SignatureExpire"},
		"future timestamp":      {rawOpts{ts: time.Now().Add(6 * time.Minute)}, "AuthFailure.SignatureExpire"},
		"scope date":            {rawOpts{date: "2001-01-01"}, "AuthFailure.SignatureFailure"},
		"unsorted headers":      {rawOpts{signed: "host;content-type"}, "AuthFailure.InvalidAuthorization"},
		"no content-type":       {rawOpts{signed: "host;x-tc-action"}, "AuthFailure.InvalidAuthorization"},
		"header changed":        {rawOpts{headers: map[string]string{"X-TC-Action": "DescribeNetworkInterfaces"}}, "AuthFailure.SignatureFailure"},
		"unknown parameter":     {rawOpts{body: `{"HaVipId":"havip-1"}`}, "UnknownParameter"},
		"not JSON":              {rawOpts{body: `[1]`}, "InvalidParameter"},
		"unknown action":        {rawOpts{action: "DeleteVpc"}, "InvalidAction"},
		"region":                {rawOpts{region: "ap-beijing"}, "UnsupportedRegion"},
		"bad authorization":     {rawOpts{headers: map[string]string{"Authorization": AlgTC3 + " Credential=x"}}, "AuthFailure.InvalidAuthorization"},
		"other algorithm":       {rawOpts{headers: map[string]string{"Authorization": "HMAC-SHA1 x"}}, "AuthFailure.InvalidAuthorization"},
		"no version":            {rawOpts{headers: map[string]string{"X-TC-Version": "2020-01-01"}}, "NoSuchVersion"},
		"limit above 100":       {rawOpts{body: `{"Limit":101}`}, "InvalidParameterValue.LimitExceeded"},
		"body tampered":         {rawOpts{body: `{"Limit":1}`, sent: `{"Limit":2}`}, "AuthFailure.SignatureFailure"},
		"unsigned payload flag": {rawOpts{headers: map[string]string{"X-TC-Content-SHA256": "UNSIGNED-PAYLOAD"}}, "AuthFailure.SignatureFailure"},
	} {
		st, b := rawTC3(t, s, tc.o)
		if st != 200 || b["Code"] != tc.want {
			t.Errorf("%s: %d %v, want %q", name, st, b, tc.want)
		}
	}
	// No signature at all.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+s.Endpoint()+"/", strings.NewReader("{}"))
	if _, b := send(t, req); b["Code"] != "AuthFailure.InvalidAuthorization" {
		t.Fatalf("unsigned: %v", b)
	}
}

// legacy builds a HmacSHA256 request (the SDK's legacy signature).
func legacy(t *testing.T, s *Server, nonce string, ts time.Time) *http.Request {
	t.Helper()
	p := url.Values{
		"Action": {"DescribeNetworkInterfaces"}, "Version": {Version}, "Region": {DefaultRegion},
		"Timestamp": {strconv.FormatInt(ts.Unix(), 10)}, "Nonce": {nonce}, "SecretId": {testID},
		"SignatureMethod": {AlgHmacSHA256}, "NetworkInterfaceIds.0": {"eni-a"},
	}
	host := s.Endpoint()
	p.Set("Signature", V1Signature(testKey, AlgHmacSHA256, V1StringToSign(http.MethodPost, host, "/", p)))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+host+"/", bytes.NewBufferString(p.Encode()))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestLegacyNonceAndClock(t *testing.T) {
	s := startSim(t, Options{})
	if _, b := send(t, legacy(t, s, "4242", time.Now())); b["Code"] != "" {
		t.Fatalf("legacy request: %v", b)
	}
	if _, b := send(t, legacy(t, s, "4242", time.Now())); b["Code"] != "AuthFailure.InvalidAuthorization" || !strings.Contains(b["Message"], "Nonce") {
		t.Fatalf("reused nonce: %v", b)
	}
	if _, b := send(t, legacy(t, s, "4243", time.Now().Add(-10*time.Minute))); b["Code"] != "AuthFailure.SignatureExpire" {
		t.Fatalf("old timestamp: %v", b)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	s := New(Options{})
	if _, err := s.Start("0.0.0.0:0"); err == nil {
		_ = s.Close()
		t.Fatal("listening on 0.0.0.0 accepted")
	}
}

func TestUnflatten(t *testing.T) {
	p := unflatten(url.Values{"Filters.0.Name": {"vip"}, "Filters.0.Values.0": {"a"}, "Filters.0.Values.1": {"b"}, "Limit": {"3"}, "Odd.1": {"x"}})
	b, _ := json.Marshal(p)
	want := `{"Filters":[{"Name":"vip","Values":["a","b"]}],"Limit":"3","Odd":{"1":"x"}}`
	if string(b) != want {
		t.Fatalf("unflatten = %s", b)
	}
}
