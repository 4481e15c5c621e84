package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// dingTalkRetryable lists the DingTalk robot API codes worth retrying:
// 130101 "send too fast" (more than 20 messages a minute), -1 "system
// busy".
func dingTalkRetryable() []int { return []int{130101, -1} }

// dingTalkRateLimitWait is how long to wait after "send too fast".
const dingTalkRateLimitWait = time.Minute

// DingTalk posts markdown messages to a DingTalk custom robot
// (https://oapi.dingtalk.com/robot/send?access_token=…). With a secret
// (the robot's "加签" SEC… key) each request is signed: timestamp (ms) and
// sign = urlencode(base64(HMAC-SHA256(secret, timestamp+"\n"+secret)))
// are appended to the URL. Options: at_mobiles (phone numbers to @, which
// DingTalk turns into phone/SMS reminders), at_all.
type DingTalk struct {
	url       string
	secret    config.Secret
	atMobiles []string
	atAll     bool
	http      httpPoster
}

// NewDingTalk returns the DingTalk robot channel.
func NewDingTalk(n config.Notifier, o ChannelOptions) (*DingTalk, error) {
	if err := checkHTTPURL(n); err != nil {
		return nil, err
	}
	d := &DingTalk{url: n.URL, secret: n.Secret, http: newHTTPPoster(n, o.withDefaults())}
	if v, ok := n.Options["at_mobiles"]; ok {
		d.atMobiles = config.SplitNotifyList(v)
	}
	if v, ok := n.Options["at_all"]; ok {
		b, err := config.ParseNotifyBool(v)
		if err != nil {
			return nil, fmt.Errorf("dingtalk notifier %s: options.at_all: %w", n.Name, err)
		}
		d.atAll = b
	}
	return d, nil
}

// DingTalkSign returns the sign parameter (before URL encoding) for a
// timestamp in milliseconds.
func DingTalkSign(secret string, timestampMS int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestampMS, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

type dingTalkMessage struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"markdown"`
	At struct {
		AtMobiles []string `json:"atMobiles,omitempty"`
		IsAtAll   bool     `json:"isAtAll"`
	} `json:"at"`
}

// dingTalkMaxText keeps a message well under the robot's size limit.
const dingTalkMaxText = 15000

// Send posts the event as a markdown message.
func (d *DingTalk) Send(ctx context.Context, e Event) error {
	var m dingTalkMessage
	m.MsgType = "markdown"
	m.Markdown.Title = truncate(subject(e), 100)
	text := markdown(e)
	if len(d.atMobiles) > 0 {
		// A markdown message @-mentions only numbers that appear in it.
		text += "\n\n@" + strings.Join(d.atMobiles, " @")
	}
	m.Markdown.Text = truncate(text, dingTalkMaxText)
	m.At.AtMobiles, m.At.IsAtAll = d.atMobiles, d.atAll
	body, err := json.Marshal(m)
	if err != nil {
		return Permanent(fmt.Errorf("dingtalk: encode message: %w", err))
	}
	target := d.url
	if d.secret.IsSet() {
		ts := d.http.now().UnixMilli()
		sep := "&"
		if !strings.Contains(target, "?") {
			sep = "?"
		}
		target += sep + "timestamp=" + strconv.FormatInt(ts, 10) + "&sign=" + url.QueryEscape(DingTalkSign(d.secret.Value(), ts))
	}
	r, err := d.http.post(ctx, target, body, nil)
	if err != nil {
		return err
	}
	return d.http.robotError(target, r, dingTalkRetryable(), dingTalkRateLimitWait)
}
