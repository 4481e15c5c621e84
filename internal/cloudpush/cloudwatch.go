package cloudpush

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	awscloud "github.com/cloudmha/cloudmha/internal/cloud/aws"
	"github.com/cloudmha/cloudmha/internal/config"
)

// CloudWatch limits of PutMetricData.
const (
	// MaxCloudWatchDatums is the most metrics one PutMetricData takes.
	MaxCloudWatchDatums = 1000
	// MaxCloudWatchDimensions is the most dimensions one metric has.
	MaxCloudWatchDimensions = 30
	// maxCloudWatchBytes keeps a request under the API's 1 MB payload
	// limit, with room for the envelope and estimation errors.
	maxCloudWatchBytes = 900 << 10
	maxDimensionName   = 255
	maxDimensionValue  = 1024
)

// CloudWatchAPI is the part of the CloudWatch client the pusher uses.
type CloudWatchAPI interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// CloudWatchOptions configures a CloudWatch pusher.
type CloudWatchOptions struct {
	// Region overrides the AWS chain's region (AWS_REGION, the profile).
	Region string
	// Endpoint overrides the service endpoint: http(s)://host[:port]
	// (moto in tests, a VPC endpoint).
	Endpoint string
	// Namespace of the metrics; "" means "cloudmha".
	Namespace string
	// HTTPClient sends the requests; nil: the SDK's default client.
	HTTPClient *http.Client
	// Logger receives the set-up line (region, endpoint); nil discards.
	Logger *slog.Logger
	// API, when set, is used instead of a client built from the options
	// (tests).
	API CloudWatchAPI
}

// CloudWatch pushes samples with PutMetricData. Each sample becomes one
// metric named as in Prometheus, its labels the dimensions (cluster and
// instance first, then the others by name, at most 30, empty ones left
// out); counters are sent as deltas (see the package documentation), with
// unit Count.
type CloudWatch struct {
	api       CloudWatchAPI
	namespace string

	mu sync.Mutex // one push at a time: they share the counters' state
	d  deltas
}

// NewCloudWatch builds a CloudWatch pusher. Credentials come from the
// AWS SDK's standard chain, as for the AWS address movers; nothing is
// sent until the first Push.
//
// Requests use the AWS JSON 1.0 wire protocol, which CloudWatch accepts
// beside its default (Smithy RPC v2 CBOR) and which moto also speaks: the
// tested wire format is the one used in production.
func NewCloudWatch(ctx context.Context, o CloudWatchOptions) (*CloudWatch, error) {
	ns := o.Namespace
	if ns == "" {
		ns = config.DefaultPushNamespace
	}
	api := o.API
	if api == nil {
		cfg, err := awscloud.LoadConfig(ctx, awscloud.Options{Region: o.Region, Endpoint: o.Endpoint, HTTPClient: o.HTTPClient, Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("cloudwatch pusher: %w", err)
		}
		endpoint := o.Endpoint
		api = cloudwatch.NewFromConfig(cfg, func(co *cloudwatch.Options) {
			co.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
			if endpoint != "" {
				co.BaseEndpoint = sdkaws.String(endpoint)
			}
		})
		if o.Logger != nil {
			shown := endpoint
			if shown == "" {
				shown = "default"
			}
			o.Logger.Debug("cloudwatch pusher ready", "region", cfg.Region, "endpoint", shown, "namespace", ns)
		}
	}
	return &CloudWatch{api: api, namespace: ns}, nil
}

// Name implements Pusher.
func (c *CloudWatch) Name() string { return config.PushCloudWatch }

// Push implements Pusher: the samples go in as few PutMetricData calls as
// the API's limits allow (1000 metrics, 1 MB). Every batch is tried; the
// error names the batches that failed. A counter's delta is committed
// only when its batch was accepted, so a failed push is caught up by the
// next one.
func (c *CloudWatch) Push(ctx context.Context, s []Sample) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	send, commits := c.d.apply(s)
	type batch struct {
		data    []types.MetricDatum
		commits []pending
	}
	var batches []batch
	var cur batch
	size := 0
	for i, x := range send {
		d, n := cloudWatchDatum(x)
		if len(cur.data) == MaxCloudWatchDatums || (len(cur.data) > 0 && size+n > maxCloudWatchBytes) {
			batches = append(batches, cur)
			cur, size = batch{}, 0
		}
		cur.data = append(cur.data, d)
		cur.commits = append(cur.commits, commits[i])
		size += n
	}
	if len(cur.data) > 0 {
		batches = append(batches, cur)
	}
	var errs []error
	for i, b := range batches {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("cloudwatch PutMetricData: %d of %d batches not sent: %w", len(batches)-i, len(batches), err))
			break
		}
		_, err := c.api.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: sdkaws.String(c.namespace), MetricData: b.data})
		if err != nil {
			errs = append(errs, fmt.Errorf("cloudwatch PutMetricData (namespace %s, batch %d of %d, %d metrics): %w", c.namespace, i+1, len(batches), len(b.data), err))
			continue
		}
		c.d.commit(b.commits)
	}
	return joinErrors(errs)
}

// cloudWatchDatum converts a sample and estimates its size in a JSON
// request.
func cloudWatchDatum(x Sample) (types.MetricDatum, int) {
	d := types.MetricDatum{
		MetricName: sdkaws.String(x.Name),
		Value:      sdkaws.Float64(x.Value),
		Timestamp:  sdkaws.Time(x.Time),
		Unit:       cloudWatchUnit(x),
	}
	size := 120 + len(x.Name)
	for _, k := range orderedLabels(x.Labels) {
		if len(d.Dimensions) == MaxCloudWatchDimensions {
			break
		}
		name, value := truncate(k, maxDimensionName), truncate(x.Labels[k], maxDimensionValue)
		d.Dimensions = append(d.Dimensions, types.Dimension{Name: sdkaws.String(name), Value: sdkaws.String(value)})
		size += 30 + len(name) + len(value)
	}
	return d, size
}

// cloudWatchUnit derives a unit from the metric's name and kind.
func cloudWatchUnit(x Sample) types.StandardUnit {
	n := x.Name
	switch {
	case strings.HasSuffix(n, "_count") && x.Counter:
		return types.StandardUnitCount
	case strings.Contains(n, "timestamp"):
		return types.StandardUnitNone
	case strings.HasSuffix(n, "_seconds") || strings.HasSuffix(n, "_seconds_sum") || strings.Contains(n, "_seconds_behind"):
		return types.StandardUnitSeconds
	case strings.HasSuffix(n, "_bytes") || strings.Contains(n, "_bytes_behind"):
		return types.StandardUnitBytes
	case x.Counter:
		return types.StandardUnitCount
	}
	return types.StandardUnitNone
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
