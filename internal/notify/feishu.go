package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// feishuRetryable lists the Feishu robot API codes worth retrying: 9499
// "too many requests", 11232 (message rate limit).
func feishuRetryable() []int { return []int{9499, 11232} }

// feishuMaxContent keeps a card under the robot's request size limit.
const feishuMaxContent = 20000

// Feishu posts interactive cards to a Feishu/Lark custom robot
// (https://open.feishu.cn/open-apis/bot/v2/hook/…). With a secret (签名校验)
// the body carries timestamp (seconds) and
// sign = base64(HMAC-SHA256(key = timestamp+"\n"+secret, message = "")).
type Feishu struct {
	url    string
	secret config.Secret
	http   httpPoster
}

// NewFeishu returns the Feishu robot channel.
func NewFeishu(n config.Notifier, o ChannelOptions) (*Feishu, error) {
	if err := checkHTTPURL(n); err != nil {
		return nil, err
	}
	return &Feishu{url: n.URL, secret: n.Secret, http: newHTTPPoster(n, o.withDefaults())}, nil
}

// FeishuSign returns the sign field for a timestamp in seconds.
func FeishuSign(secret string, timestamp int64) string {
	m := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

type feishuText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

type feishuMessage struct {
	Timestamp string `json:"timestamp,omitempty"`
	Sign      string `json:"sign,omitempty"`
	MsgType   string `json:"msg_type"`
	Card      struct {
		Config struct {
			WideScreenMode bool `json:"wide_screen_mode"`
		} `json:"config"`
		Header struct {
			Title    feishuText `json:"title"`
			Template string     `json:"template"`
		} `json:"header"`
		Elements []struct {
			Tag  string     `json:"tag"`
			Text feishuText `json:"text"`
		} `json:"elements"`
	} `json:"card"`
}

// feishuTemplate is the card header colour for a severity.
func feishuTemplate(s Severity) string {
	switch s {
	case SeverityCritical:
		return "red"
	case SeverityWarning:
		return "orange"
	}
	return "blue"
}

// larkMD is the card's body: lark_md has no headings or quotes, and the
// card header already shows the subject.
func larkMD(e Event) string {
	var b strings.Builder
	if e.Text != "" {
		b.WriteString(e.Text)
		b.WriteString("\n\n")
	}
	for _, kv := range details(e) {
		fmt.Fprintf(&b, "**%s**: %s\n", kv[0], oneLine(kv[1]))
	}
	b.WriteString("\ncloudmha")
	return b.String()
}

// Send posts the event as a card.
func (f *Feishu) Send(ctx context.Context, e Event) error {
	var m feishuMessage
	if f.secret.IsSet() {
		ts := f.http.now().Unix()
		m.Timestamp, m.Sign = strconv.FormatInt(ts, 10), FeishuSign(f.secret.Value(), ts)
	}
	m.MsgType = "interactive"
	m.Card.Config.WideScreenMode = true
	m.Card.Header.Title = feishuText{Tag: "plain_text", Content: subject(e)}
	m.Card.Header.Template = feishuTemplate(e.Severity)
	m.Card.Elements = append(m.Card.Elements, struct {
		Tag  string     `json:"tag"`
		Text feishuText `json:"text"`
	}{Tag: "div", Text: feishuText{Tag: "lark_md", Content: truncate(larkMD(e), feishuMaxContent)}})
	body, err := json.Marshal(m)
	if err != nil {
		return Permanent(fmt.Errorf("feishu: encode message: %w", err))
	}
	r, err := f.http.post(ctx, f.url, body, nil)
	if err != nil {
		return err
	}
	return f.http.robotError(f.url, r, feishuRetryable(), 10*time.Second)
}
