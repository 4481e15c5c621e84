package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cloudmha/cloudmha/internal/view"
)

// maxAnswerBytes bounds what the client reads of an answer.
const maxAnswerBytes = 32 << 20

// Client talks to a manager's API (for the CLI).
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the API at baseURL (e.g.
// "https://10.0.0.5:8080"). token "" sends no Authorization header;
// httpClient nil uses http.DefaultClient.
func NewClient(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: strings.TrimSpace(token), hc: httpClient}
}

// Error is an error answer of the API: the HTTP status and the server's
// message. errors.Is matches view.ErrNotFound (404), view.ErrConflict
// (409) and view.ErrInvalid (400).
type Error struct {
	Status  int
	Message string
	// Result is the switchover's result when the server sent one with the
	// error (the plan and the report of a run that failed).
	Result *view.SwitchResult
}

func (e *Error) Error() string {
	return fmt.Sprintf("api: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is maps the status back to the view errors.
func (e *Error) Is(target error) bool {
	switch target {
	case view.ErrNotFound:
		return e.Status == http.StatusNotFound
	case view.ErrConflict:
		return e.Status == http.StatusConflict
	case view.ErrInvalid:
		return e.Status == http.StatusBadRequest
	}
	return false
}

// Health asks /healthz; nil means the manager is up and watching.
func (c *Client) Health(ctx context.Context) error {
	var h Health
	return c.do(ctx, http.MethodGet, "/healthz", nil, &h)
}

// Clusters lists the watched clusters.
func (c *Client) Clusters(ctx context.Context) ([]view.Cluster, error) {
	var out []view.Cluster
	err := c.do(ctx, http.MethodGet, "/api/v1/clusters", nil, &out)
	return out, err
}

// Cluster returns one cluster with every instance's state.
func (c *Client) Cluster(ctx context.Context, name string) (view.Cluster, error) {
	var out view.Cluster
	err := c.do(ctx, http.MethodGet, clusterPath(name, ""), nil, &out)
	return out, err
}

// Events returns recent events, newest first; cluster "" means all, limit
// <= 0 the server's default (100).
func (c *Client) Events(ctx context.Context, cluster string, limit int) ([]view.Event, error) {
	q := url.Values{}
	if cluster != "" {
		q.Set("cluster", cluster)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	p := "/api/v1/events"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out []view.Event
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out, err
}

// History returns a cluster's failover and switchover reports
// (failover.Report as JSON), newest first.
func (c *Client) History(ctx context.Context, cluster string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := c.do(ctx, http.MethodGet, clusterPath(cluster, "history"), nil, &out)
	return out, err
}

// Alerts lists the alerts that hold now.
func (c *Client) Alerts(ctx context.Context) ([]view.Alert, error) {
	var out []view.Alert
	err := c.do(ctx, http.MethodGet, "/api/v1/alerts", nil, &out)
	return out, err
}

// Switchover runs an online switchover and waits for its end. On failure the
// error is an *Error whose Result, when the run got that far, holds the
// plan and the report; they are returned as the result too.
func (c *Client) Switchover(ctx context.Context, cluster string, r view.SwitchRequest) (view.SwitchResult, error) {
	var out view.SwitchResult
	err := c.do(ctx, http.MethodPost, clusterPath(cluster, "switchover"), r, &out)
	var ae *Error
	if errors.As(err, &ae) && ae.Result != nil {
		out = *ae.Result
	}
	return out, err
}

// Ack acknowledges the last failover (lifting the anti-flapping block) and
// the cluster's current alerts.
func (c *Client) Ack(ctx context.Context, cluster, by, note string) error {
	return c.do(ctx, http.MethodPost, clusterPath(cluster, "ack"), ackBody{By: by, Note: note}, nil)
}

// Pause suspends automatic failover of a cluster.
func (c *Client) Pause(ctx context.Context, cluster, by, reason string) error {
	return c.do(ctx, http.MethodPost, clusterPath(cluster, "pause"), pauseBody{By: by, Reason: reason}, nil)
}

// Resume lifts a pause.
func (c *Client) Resume(ctx context.Context, cluster, by string) error {
	return c.do(ctx, http.MethodPost, clusterPath(cluster, "resume"), resumeBody{By: by}, nil)
}

func clusterPath(name, sub string) string {
	p := "/api/v1/clusters/" + url.PathEscape(name)
	if sub != "" {
		p += "/" + sub
	}
	return p
}

// do sends a request and decodes a 2xx answer into out (when non-nil);
// other answers become an *Error. Errors never contain the token.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: %s %s: encoding the request: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("api: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp.StatusCode, data, path)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// answerError builds the *Error of a non-2xx answer, keeping the server's
// message (or the start of a non-JSON body, e.g. from a proxy).
func answerError(status int, data []byte, path string) error {
	e := &Error{Status: status}
	// A SwitchResult is a superset of the {"error": "..."} answer.
	var b view.SwitchResult
	if json.Unmarshal(data, &b) == nil && b.Error != "" {
		e.Message = b.Error
		if (b.Plan != "" || b.Report != nil) && strings.HasSuffix(path, "/switchover") {
			e.Result = &b
		}
		return e
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	return e
}
