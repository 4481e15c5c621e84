package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// weComRetryable lists the WeCom robot API codes worth retrying: 45009
// "api freq out of limit" (20 messages a minute), -1 "system busy".
func weComRetryable() []int { return []int{45009, -1} }

// weComMaxContent is the markdown content's limit in bytes.
const weComMaxContent = 4096

// WeCom posts markdown messages to a WeCom (企业微信) group robot
// (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…). The key in the
// URL is the credential; WeCom robots have no signing secret.
type WeCom struct {
	url  string
	http httpPoster
}

// NewWeCom returns the WeCom robot channel.
func NewWeCom(n config.Notifier, o ChannelOptions) (*WeCom, error) {
	if err := checkHTTPURL(n); err != nil {
		return nil, err
	}
	return &WeCom{url: n.URL, http: newHTTPPoster(n, o.withDefaults())}, nil
}

type weComMessage struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Content string `json:"content"`
	} `json:"markdown"`
}

// Send posts the event as a markdown message.
func (w *WeCom) Send(ctx context.Context, e Event) error {
	var m weComMessage
	m.MsgType = "markdown"
	m.Markdown.Content = truncate(markdown(e), weComMaxContent)
	body, err := json.Marshal(m)
	if err != nil {
		return Permanent(fmt.Errorf("wecom: encode message: %w", err))
	}
	r, err := w.http.post(ctx, w.url, body, nil)
	if err != nil {
		return err
	}
	return w.http.robotError(w.url, r, weComRetryable(), time.Minute)
}
