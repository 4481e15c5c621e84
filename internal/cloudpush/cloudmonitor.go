package cloudpush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/aliyun/credentials-go/credentials"

	"github.com/cloudmha/cloudmha/internal/cloud/aliyun"
	"github.com/cloudmha/cloudmha/internal/config"
)

// CloudMonitor API facts.
const (
	// CMSVersion is the CloudMonitor API version PutCustomMetric is
	// called with.
	CMSVersion = "2019-01-01"
	// MaxCMSMetrics is the most items one PutCustomMetric takes
	// (MetricList.N, N = 1..21).
	MaxCMSMetrics = 21
	// maxCMSDimension bounds a dimension key or value.
	maxCMSDimension = 64
)

// CloudMonitorOptions configures a CloudMonitor pusher.
type CloudMonitorOptions struct {
	// Region is the region id (cn-hangzhou); required.
	Region string
	// GroupID is the application group id the metrics belong to ("0" for
	// none); required.
	GroupID string
	// Endpoint overrides metrics.REGION.aliyuncs.com: host[:port]
	// (HTTPS; plain HTTP for a loopback emulator) or http(s)://host[:port].
	Endpoint string
	// Credential overrides the default credential chain (tests).
	Credential credentials.Credential
	// HTTPClient sends the requests; nil: one honouring the proxy
	// environment (see internal/cloud/aliyun).
	HTTPClient *http.Client
	// Logger receives the set-up line; nil discards.
	Logger *slog.Logger
}

// CloudMonitor pushes samples as CloudMonitor custom metrics
// (PutCustomMetric, raw data: Type 0, Values {"value": v}). Each sample
// becomes one point named as in Prometheus, in the configured application
// group, its labels the dimensions (cluster and instance first, then the
// others by name; empty ones left out; characters CloudMonitor refuses —
// anything but letters, digits, '.', '-', '_', '/', '\' — become '_', and
// keys and values are cut to 64 characters). Counters are sent as deltas
// (see the package documentation).
type CloudMonitor struct {
	api      *openapi.Client
	runtime  *dara.RuntimeOptions
	region   string
	groupID  string
	endpoint string // for messages

	mu sync.Mutex // one push at a time: they share the counters' state
	d  deltas
}

// NewCloudMonitor builds a CloudMonitor pusher on the official generic
// Darabonba OpenAPI client (the CloudMonitor SDK module is not used).
// Credentials, endpoint rules, proxies and timeouts are those of
// internal/cloud/aliyun, as for the Alibaba Cloud address movers; nothing
// is sent until the first Push.
func NewCloudMonitor(ctx context.Context, o CloudMonitorOptions) (*CloudMonitor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cloudmonitor pusher: %w", err)
	}
	if o.GroupID == "" {
		return nil, errors.New("cloudmonitor pusher: the application group id is required (\"0\" for none)")
	}
	cl, err := aliyun.New(aliyun.Config{Region: o.Region, Endpoint: o.Endpoint, Credential: o.Credential, HTTPClient: o.HTTPClient, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("cloudmonitor pusher: %w", err)
	}
	// The generic client shares the checked credential, HTTP client and
	// protocol of the product clients aliyun.New built.
	base := cl.VPC.Client
	endpoint := cl.Endpoint
	if endpoint == "" {
		endpoint = "metrics." + o.Region + ".aliyuncs.com"
	}
	api, err := openapi.NewClient(&openapi.Config{
		RegionId:   dara.String(o.Region),
		Credential: base.Credential,
		HttpClient: base.HttpClient,
		Endpoint:   dara.String(endpoint),
		Protocol:   base.Protocol,
	})
	if err != nil {
		return nil, fmt.Errorf("cloudmonitor pusher: OpenAPI client: %w", err)
	}
	if o.Logger != nil {
		o.Logger.Debug("cloudmonitor pusher ready", "region", o.Region, "endpoint", endpoint, "group_id", o.GroupID)
	}
	return &CloudMonitor{api: api, runtime: cl.Runtime(), region: o.Region, groupID: o.GroupID, endpoint: endpoint}, nil
}

// Name implements Pusher.
func (c *CloudMonitor) Name() string { return config.PushAliyunCMS }

// Push implements Pusher: PutCustomMetric calls of at most 21 points.
// Every batch is tried; a counter's delta is committed only when its batch
// was accepted.
func (c *CloudMonitor) Push(ctx context.Context, s []Sample) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	send, commits := c.d.apply(s)
	n := (len(send) + MaxCMSMetrics - 1) / MaxCMSMetrics
	var errs []error
	for i := 0; i < len(send); i += MaxCMSMetrics {
		j := min(i+MaxCMSMetrics, len(send))
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("cloudmonitor PutCustomMetric: %d of %d batches not sent: %w", n-i/MaxCMSMetrics, n, err))
			break
		}
		if err := c.put(ctx, send[i:j]); err != nil {
			errs = append(errs, &cmsError{what: fmt.Sprintf("cloudmonitor PutCustomMetric (%s, group %s, batch %d of %d, %d metrics)", c.endpoint, c.groupID, i/MaxCMSMetrics+1, n, j-i), err: err})
			continue
		}
		c.d.commit(commits[i:j])
	}
	return joinErrors(errs)
}

// put sends one PutCustomMetric.
func (c *CloudMonitor) put(ctx context.Context, s []Sample) error {
	list := make([]map[string]any, 0, len(s))
	for _, x := range s {
		values, err := json.Marshal(map[string]float64{"value": x.Value})
		if err != nil {
			return fmt.Errorf("encode the value of %s: %w", x.Name, err)
		}
		list = append(list, map[string]any{
			"GroupId":    c.groupID,
			"MetricName": x.Name,
			"Type":       "0",
			"Values":     string(values),
			"Dimensions": cmsDimensions(x.Labels),
			"Time":       strconv.FormatInt(x.Time.UnixMilli(), 10),
		})
	}
	req := &openapi.OpenApiRequest{Query: openapiutil.Query(map[string]any{"RegionId": c.region, "MetricList": list})}
	params := &openapi.Params{
		Action: dara.String("PutCustomMetric"), Version: dara.String(CMSVersion), Protocol: dara.String("HTTPS"),
		Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"), Style: dara.String("RPC"),
		ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
	}
	resp, err := c.api.CallApiWithCtx(ctx, params, req, c.runtime)
	if err != nil {
		return err
	}
	// The service may answer HTTP 200 with a failure in the body's Code.
	if body, ok := resp["body"].(map[string]any); ok {
		if code := fmt.Sprint(body["Code"]); body["Code"] != nil && code != "200" {
			return &cmsBodyError{Code: code, Message: fmt.Sprint(body["Message"]), RequestID: fmt.Sprint(body["RequestId"])}
		}
	}
	return nil
}

// cmsDimensions encodes labels as CloudMonitor's Dimensions: a JSON object
// in a fixed order (cluster, instance, then the others by name).
func cmsDimensions(labels map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range orderedLabels(labels) {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(cmsSafe(k))
		vb, _ := json.Marshal(cmsSafe(labels[k]))
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.String()
}

// cmsSafe replaces the characters CloudMonitor refuses in dimensions and
// cuts to 64 characters.
func cmsSafe(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/\\", c) >= 0) {
			out[i] = '_'
		}
	}
	if len(out) > maxCMSDimension {
		out = out[:maxCMSDimension]
	}
	return string(out)
}

// cmsError is a failed call: the SDK error, shown in one line without the
// SDK's dump (which can hold a string to sign, never a secret).
type cmsError struct {
	what string
	err  error
}

func (e *cmsError) Error() string { return e.what + ": " + aliyun.Describe(e.err) }
func (e *cmsError) Unwrap() error { return e.err }

// cmsBodyError is an HTTP 200 answer whose Code is not "200".
type cmsBodyError struct {
	Code, Message, RequestID string
}

func (e *cmsBodyError) Error() string {
	return fmt.Sprintf("%s (request %s): %s", e.Code, e.RequestID, e.Message)
}
