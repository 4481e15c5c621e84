// Package observe reports each cloud API request a mover makes (its action
// and outcome) to a callback, for the metrics: it wraps the HTTP transport
// the official SDKs send through, so every request, retries included, is
// seen once.
package observe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Func receives one API request: its action ("AssociateHaVip",
// "AssignPrivateIpAddresses", …) and nil or why it failed (a transport
// error or an HTTP status of 400 and above). It must not block.
type Func func(api string, err error)

// Action names the API of a request to Alibaba Cloud (x-acs-action header
// of ACS3, Action parameter of V1 RPC), Tencent Cloud (X-TC-Action) or AWS
// (the SDK's operation name in the request's context); "unknown" otherwise.
func Action(r *http.Request) string {
	if a := header(r, "x-acs-action"); a != "" {
		return a
	}
	if a := header(r, "X-TC-Action"); a != "" {
		return a
	}
	if a := awsmiddleware.GetOperationName(r.Context()); a != "" {
		return a
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if a := formAction(r); a != "" {
		return a
	}
	return "unknown"
}

// header reads a header whatever its case: SDKs may set keys that are not
// in canonical form (the Alibaba SDK writes "x-acs-action"), which
// Header.Get does not find.
func header(r *http.Request, name string) string {
	if v := r.Header.Get(name); v != "" {
		return v
	}
	for k, vs := range r.Header {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// formAction reads Action from a small form-encoded body (V1 RPC calls
// sent as POST) and puts the body back for the transport.
func formAction(r *http.Request) string {
	if r.Body == nil || r.Body == http.NoBody || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ""
	}
	const limit = 64 << 10
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil || len(b) > limit {
		return ""
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return ""
	}
	return v.Get("Action")
}

// Transport wraps rt (nil: http.DefaultTransport) so that f sees every
// request; f nil returns rt unchanged.
func Transport(rt http.RoundTripper, f Func) http.RoundTripper {
	if f == nil {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return transport{rt: rt, f: f}
}

type transport struct {
	rt http.RoundTripper
	f  Func
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	api := Action(r)
	resp, err := t.rt.RoundTrip(r)
	t.f(api, outcome(resp, err))
	return resp, err
}

// AWSMiddleware is an aws-sdk-go-v2 API option that calls f after each
// attempt of each operation (retries included, as for Transport).
func AWSMiddleware(f Func) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("cloudmhaObserve",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				f(awsmiddleware.GetOperationName(ctx), err)
				return out, md, err
			}), middleware.After)
	}
}

func outcome(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
