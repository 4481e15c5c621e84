package aliyun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// rawV3 sends a hand-signed ACS3 request, to test nonce and time checks.
func rawV3(t *testing.T, s *Server, date time.Time, nonce string) (int, map[string]string) {
	t.Helper()
	q := url.Values{"RegionId": {DefaultRegion}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+s.Endpoint()+"/?"+q.Encode(), nil)
	must(t, err)
	sum := sha256.Sum256(nil)
	h := map[string]string{
		"x-acs-action": "DescribeHaVips", "x-acs-version": VersionVPC, "x-acs-date": date.UTC().Format("2006-01-02T15:04:05Z"),
		"x-acs-signature-nonce": nonce, "x-acs-content-sha256": hex.EncodeToString(sum[:]),
	}
	signed := []string{"host"}
	for k, val := range h {
		req.Header.Set(k, val)
		signed = append(signed, k)
	}
	sort.Strings(signed)
	sts := V3StringToSign(http.MethodPost, "/", q, signed, func(n string) string {
		if n == "host" {
			return req.Host
		}
		return h[n]
	}, h["x-acs-content-sha256"])
	req.Header.Set("Authorization", AlgACS3+" Credential="+testAK+",SignedHeaders="+strings.Join(signed, ";")+",Signature="+V3Signature(testSecret, sts))
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, map[string]string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var m map[string]any
	must(t, json.NewDecoder(resp.Body).Decode(&m))
	out := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return resp.StatusCode, out
}

func TestNonceAndClock(t *testing.T) {
	s := startSim(t, Options{})
	if st, b := rawV3(t, s, time.Now(), "nonce-1"); st != 200 {
		t.Fatalf("hand-signed request: %d %v", st, b)
	}
	st, b := rawV3(t, s, time.Now(), "nonce-1")
	if st != 400 || b["Code"] != "SignatureNonceUsed" {
		t.Fatalf("reused nonce: %d %v", st, b)
	}
	for _, k := range []string{"RequestId", "HostId", "Code", "Message", "Recommend"} {
		if b[k] == "" {
			t.Errorf("error answer lacks %s: %v", k, b)
		}
	}
	st, b = rawV3(t, s, time.Now().Add(-16*time.Minute), "nonce-2")
	if st != 400 || b["Code"] != "InvalidTimeStamp.Expired" {
		t.Fatalf("old date: %d %v", st, b)
	}
}

// v1Request builds a V1 RPC GET request; naive signs the way hand-written
// scripts do: sorted raw k=v, no per-component encoding.
func v1Request(t *testing.T, s *Server, nonce string, naive bool) *http.Request {
	p := url.Values{
		"Action": {"DescribeNetworkInterfaces"}, "Version": {VersionECS}, "Format": {"JSON"},
		"AccessKeyId": {testAK}, "SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"},
		"SignatureNonce": {nonce}, "Timestamp": {time.Now().UTC().Format("2006-01-02T15:04:05Z")},
		"RegionId": {DefaultRegion}, "NetworkInterfaceId.1": {"eni-1"},
	}
	var sts string
	if naive {
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+p.Get(k))
		}
		sts = "GET&%2F&" + url.QueryEscape(strings.Join(parts, "&"))
	} else {
		sts = V1StringToSign(http.MethodGet, p)
	}
	p.Set("Signature", V1Signature(testSecret, sts))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+s.Endpoint()+"/?"+p.Encode(), nil)
	must(t, err)
	return req
}

func TestV1Signature(t *testing.T) {
	s := startSim(t, Options{})
	if st, b := send(t, v1Request(t, s, "v1-a", false)); st != 200 {
		t.Fatalf("V1 request: %d %v", st, b)
	}
	st, b := send(t, v1Request(t, s, "v1-b", true))
	if st != 400 || b["Code"] != "SignatureDoesNotMatch" {
		t.Fatalf("naively signed V1 request: %d %v", st, b)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	s := New(Options{})
	if _, err := s.Start("0.0.0.0:0"); err == nil {
		_ = s.Close()
		t.Fatal("listening on 0.0.0.0 accepted")
	}
}
