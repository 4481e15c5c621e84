package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// ChannelOptions are what the channels share. The zero value is ready to
// use.
type ChannelOptions struct {
	// HTTPClient sends the HTTP channels' requests. Default: a client that
	// uses the environment's proxy settings and does not follow
	// redirects (a redirected webhook is an error, and the token in its
	// URL is not sent elsewhere). Per-attempt timeouts come from the
	// context, not from the client.
	HTTPClient *http.Client
	// Now returns the current time (signatures, e-mail Date). Default
	// time.Now.
	Now func() time.Time
	// TLSConfig is the base TLS configuration of SMTP connections (e.g.
	// RootCAs); ServerName is set from the URL. Default: system roots.
	TLSConfig *tls.Config
	// Hostname is the SMTP EHLO name and the domain of the default From
	// address and Message-ID. Default os.Hostname().
	Hostname string
}

func (o ChannelOptions) withDefaults() ChannelOptions {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		o.Hostname = h
	}
	return o
}

// New returns the Notifier for a configured notifier of any kind.
func New(n config.Notifier, o ChannelOptions) (Notifier, error) {
	switch n.Kind {
	case config.NotifyWebhook:
		return NewWebhook(n, o)
	case config.NotifyDingTalk:
		return NewDingTalk(n, o)
	case config.NotifySlack:
		return NewSlack(n, o)
	case config.NotifyWeCom:
		return NewWeCom(n, o)
	case config.NotifyFeishu:
		return NewFeishu(n, o)
	case config.NotifyEmail:
		return NewEmail(n, o)
	}
	return nil, fmt.Errorf("notifier %s: unknown kind %q", n.Name, n.Kind)
}

// checkHTTPURL validates an HTTP channel's URL without printing it.
func checkHTTPURL(n config.Notifier) error {
	if n.URL == "" {
		return fmt.Errorf("%s notifier %s: missing url", n.Kind, n.Name)
	}
	if u := RedactURL(n.URL); !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("%s notifier %s: url must be an http(s) URL (got %s)", n.Kind, n.Name, u)
	}
	return nil
}

// maxResponse is how much of a response body is read.
const maxResponse = 64 << 10

// httpPoster posts JSON to one endpoint.
type httpPoster struct {
	client *http.Client
	now    func() time.Time
	red    redactor
	kind   string
}

func newHTTPPoster(n config.Notifier, o ChannelOptions) httpPoster {
	return httpPoster{client: o.HTTPClient, now: o.Now, red: notifierRedactor(n), kind: n.Kind}
}

// response is an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to rawURL; err is a transport failure (retryable), never
// an HTTP status.
func (p httpPoster) post(ctx context.Context, rawURL string, body []byte, header http.Header) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return nil, &sendError{msg: "POST " + RedactURL(rawURL), err: p.red.sanitize(err), permanent: true}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "cloudmha-notify")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, &sendError{msg: "POST " + RedactURL(rawURL), err: p.red.sanitize(err)}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, &sendError{msg: "POST " + RedactURL(rawURL) + ": reading the response", err: p.red.sanitize(err)}
	}
	// Drain what is left so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// statusError classifies a non-2xx answer: 429 and 503 honour Retry-After;
// 408, 425, 429 and 5xx are retried; any other status is permanent.
func (p httpPoster) statusError(rawURL string, r *response) error {
	if r.status >= 200 && r.status < 300 {
		return nil
	}
	e := &sendError{msg: fmt.Sprintf("POST %s: HTTP %d%s", RedactURL(rawURL), r.status, p.snippet(r.body))}
	switch {
	case r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable:
		e.retryAfter = parseRetryAfter(r.header.Get("Retry-After"), p.now())
	case r.status == http.StatusRequestTimeout || r.status == http.StatusTooEarly || r.status >= 500:
	default:
		e.permanent = true
	}
	return e
}

// snippet is the start of a response body for an error message, without
// secrets.
func (p httpPoster) snippet(b []byte) string {
	s := strings.TrimSpace(oneLine(string(b)))
	if s == "" {
		return ""
	}
	return ": " + p.red.String(truncate(s, 200))
}

// robotResult is the JSON answer of the DingTalk, WeCom and Feishu robots.
type robotResult struct {
	ErrCode    *int   `json:"errcode"` // DingTalk, WeCom
	ErrMsg     string `json:"errmsg"`
	Code       *int   `json:"code"` // Feishu
	Msg        string `json:"msg"`
	StatusCode *int   `json:"StatusCode"` // Feishu, older answers
}

// robotError checks a robot's answer: the HTTP status and the API code in
// the body. retryable lists the API codes that mean "too many requests" or
// "busy", retried after retryAfter.
func (p httpPoster) robotError(rawURL string, r *response, retryable []int, retryAfter time.Duration) error {
	var res robotResult
	parsed := json.Unmarshal(r.body, &res) == nil
	code, msg := 0, ""
	switch {
	case res.ErrCode != nil:
		code, msg = *res.ErrCode, res.ErrMsg
	case res.Code != nil:
		code, msg = *res.Code, res.Msg
	case res.StatusCode != nil:
		code, msg = *res.StatusCode, res.Msg
	}
	if code != 0 {
		e := &sendError{msg: fmt.Sprintf("POST %s: %s API error %d: %s", RedactURL(rawURL), p.kind, code,
			p.red.String(truncate(oneLine(msg), 200))), permanent: true}
		for _, c := range retryable {
			if code == c {
				e.permanent, e.retryAfter = false, retryAfter
			}
		}
		return e
	}
	if err := p.statusError(rawURL, r); err != nil {
		return err
	}
	if !parsed {
		// The message may have been delivered: do not send it twice.
		return &sendError{msg: fmt.Sprintf("POST %s: unexpected %s answer%s", RedactURL(rawURL), p.kind, p.snippet(r.body)),
			permanent: true}
	}
	return nil
}
