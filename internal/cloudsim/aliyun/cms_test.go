package aliyun

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
)

// putV1 sends a V1-signed (HMAC-SHA1) PutCustomMetric with the given
// parameters as a form body.
func putV1(t *testing.T, s *Server, nonce string, params url.Values) (int, map[string]string) {
	t.Helper()
	p := url.Values{
		"Action": {"PutCustomMetric"}, "Version": {VersionCMS}, "Format": {"JSON"},
		"AccessKeyId": {testAK}, "SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"},
		"SignatureNonce": {nonce}, "Timestamp": {time.Now().UTC().Format("2006-01-02T15:04:05Z")},
	}
	for k, v := range params {
		p[k] = v
	}
	p.Set("Signature", V1Signature(testSecret, V1StringToSign(http.MethodPost, p)))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+s.Endpoint()+"/", strings.NewReader(p.Encode()))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(t, req)
}

func metricItem(n int, kv ...string) url.Values {
	p := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Set(fmt.Sprintf("MetricList.%d.%s", n, kv[i]), kv[i+1])
	}
	return p
}

func merge(vs ...url.Values) url.Values {
	out := url.Values{}
	for _, v := range vs {
		for k, x := range v {
			out[k] = x
		}
	}
	return out
}

func TestPutCustomMetricV1(t *testing.T) {
	s := startSim(t, Options{})
	good := func(n int) url.Values {
		return metricItem(n, "GroupId", "12345", "MetricName", "cloudmha_instance_up", "Type", "0",
			"Values", `{"value":1}`, "Dimensions", `{"instance":"db1","cluster":"app1"}`, "Time", "1800000000000")
	}
	st, b := putV1(t, s, "n1", merge(good(1), metricItem(2, "GroupId", "0", "MetricName", "agg", "Type", "1", "Period", "60",
		"Values", `{"Sum":3,"SampleCount":2}`, "Dimensions", `{"k":"`+strings.Repeat("v", 70)+`"}`, "Time", "2026-05-01T12:00:00Z")))
	if st != 200 || b["Code"] != "200" || b["RequestId"] == "" {
		t.Fatalf("PutCustomMetric: %d %v", st, b)
	}
	got := s.CustomMetrics()
	if len(got) != 2 {
		t.Fatalf("%d points", len(got))
	}
	m := got[0]
	if m.GroupID != "12345" || m.MetricName != "cloudmha_instance_up" || m.Type != 0 || m.Values["value"] != 1 ||
		!reflect.DeepEqual(m.DimensionKeys, []string{"instance", "cluster"}) || m.Dimensions["cluster"] != "app1" ||
		m.Time.UnixMilli() != 1800000000000 {
		t.Errorf("point %+v", m)
	}
	if a := got[1]; a.Type != 1 || a.Period != 60 || a.Values["Sum"] != 3 || len(a.Dimensions["k"]) != MaxDimensionLen ||
		!a.Time.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("aggregated point %+v", a)
	}
	// The copy is the caller's.
	got[0].Dimensions["cluster"] = "x"
	if s.CustomMetrics()[0].Dimensions["cluster"] != "app1" {
		t.Error("CustomMetrics returns shared maps")
	}

	tooMany := url.Values{}
	for i := 1; i <= MaxCustomMetricsPerCall+1; i++ {
		tooMany = merge(tooMany, good(i))
	}
	for i, tc := range []struct {
		params url.Values
		code   string
		msg    string
	}{
		{url.Values{}, "MissingParameter", `"MetricList"`},
		{tooMany, "InvalidParameter", "at most 21"},
		{merge(good(1), metricItem(2, "MetricName", "x")), "MissingParameter", `"MetricList.2.GroupId"`},
		{metricItem(1, "GroupId", "grp", "MetricName", "m", "Type", "0", "Values", `{"value":1}`, "Dimensions", "{}"), "InvalidParameter", "MetricList.1.GroupId"},
		{metricItem(1, "GroupId", "1", "MetricName", "m x", "Type", "0", "Values", `{"value":1}`, "Dimensions", "{}"), "InvalidParameter", "MetricList.1.MetricName"},
		{metricItem(1, "GroupId", "1", "MetricName", "m", "Type", "2", "Values", `{"value":1}`, "Dimensions", "{}"), "InvalidParameter", "MetricList.1.Type"},
		{metricItem(1, "GroupId", "1", "MetricName", "m", "Type", "1", "Values", `{"Sum":1}`, "Dimensions", "{}"), "InvalidParameter", "MetricList.1.Period"},
		{metricItem(1, "GroupId", "1", "MetricName", "m", "Type", "0", "Values", `{"v":1}`, "Dimensions", "{}"), "InvalidParameter", `the key "value"`},
		{metricItem(1, "GroupId", "1", "MetricName", "m", "Type", "0", "Values", `1`, "Dimensions", "{}"), "InvalidParameter", "MetricList.1.Values"},
		{metricItem(1, "GroupId", "1", "MetricName", "m", "Type", "0", "Values", `{"value":1}`, "Dimensions", `{"a":"b c"}`), "InvalidParameter", "MetricList.1.Dimensions"},
		{metricItem(1, "GroupId", "1", "MetricName", "m", "Type", "0", "Values", `{"value":1}`, "Dimensions", `["a"]`), "InvalidParameter", "MetricList.1.Dimensions"},
		{metricItem(1, "GroupId", "1", "MetricName", "m", "Type", "0", "Values", `{"value":1}`, "Dimensions", "{}", "Time", "yesterday"), "InvalidParameter", "MetricList.1.Time"},
		{merge(good(1), url.Values{"RegionId": {"us-east-1"}}), "InvalidRegionId.NotFound", "us-east-1"},
	} {
		st, b := putV1(t, s, fmt.Sprintf("bad-%d", i), tc.params)
		if st != 400 || b["Code"] != tc.code || !strings.Contains(b["Message"], tc.msg) || b["RequestId"] == "" || b["Recommend"] == "" {
			t.Errorf("case %d: %d %v; want 400 %s mentioning %s", i, st, b, tc.code, tc.msg)
		}
	}
	if n := len(s.CustomMetrics()); n != 2 {
		t.Errorf("%d points after refused calls: a refused call must store nothing", n)
	}
	// The older SDKs' form: one JSON array.
	st, b = putV1(t, s, "json", url.Values{"MetricList": {`[{"groupId":1,"GroupId":"5","MetricName":"m","Type":0,"Values":{"value":2},"Dimensions":{"a":"b"}}]`}})
	if st != 200 {
		t.Fatalf("JSON MetricList: %d %v", st, b)
	}
	if last := s.CustomMetrics()[2]; last.GroupID != "5" || last.Values["value"] != 2 || last.Dimensions["a"] != "b" {
		t.Errorf("JSON MetricList point %+v", last)
	}
	// A wrong version is refused like any other.
	if _, b := putV1(t, s, "ver", merge(good(1), url.Values{"Version": {VersionECS}})); b["Code"] != "InvalidVersion" {
		t.Errorf("wrong version: %v", b)
	}
}

// TestPutCustomMetricSDK calls the action through the generic Darabonba
// client with the default V3 (ACS3) signature, as cloudmha does.
func TestPutCustomMetricSDK(t *testing.T) {
	s := startSim(t, Options{})
	c, err := openapi.NewClient(sdkConfig(s, testAK, testSecret))
	must(t, err)
	list := []map[string]any{{"GroupId": "9", "MetricName": "cloudmha_manager_running", "Type": "0", "Values": `{"value":1}`,
		"Dimensions": `{"cluster":"app1"}`, "Time": "1800000000000"}}
	params := &openapi.Params{Action: str("PutCustomMetric"), Version: str(VersionCMS), Protocol: str("HTTPS"), Pathname: str("/"),
		Method: str("POST"), AuthType: str("AK"), Style: str("RPC"), ReqBodyType: str("formData"), BodyType: str("json")}
	resp, err := c.CallApi(params, &openapi.OpenApiRequest{Query: openapiutil.Query(map[string]any{"RegionId": DefaultRegion, "MetricList": list})}, &dara.RuntimeOptions{})
	must(t, err)
	if body, _ := resp["body"].(map[string]any); body["Code"] != "200" {
		t.Errorf("answer %v", resp)
	}
	got := s.CustomMetrics()
	if len(got) != 1 || got[0].MetricName != "cloudmha_manager_running" || got[0].Dimensions["cluster"] != "app1" {
		t.Errorf("stored %+v", got)
	}
	bad, err := openapi.NewClient(sdkConfig(s, testAK, "wrong"))
	must(t, err)
	_, err = bad.CallApi(params, &openapi.OpenApiRequest{Query: openapiutil.Query(map[string]any{"MetricList": list})}, &dara.RuntimeOptions{})
	if code(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}
}
