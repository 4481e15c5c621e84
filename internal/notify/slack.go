package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// Slack posts to a Slack incoming webhook
// (https://hooks.slack.com/services/…): a text summary (used by
// notifications) and blocks (header, text, facts, context). The token is the
// URL's path; Slack webhooks take no secret.
type Slack struct {
	url  string
	http httpPoster
}

// NewSlack returns the Slack incoming-webhook channel.
func NewSlack(n config.Notifier, o ChannelOptions) (*Slack, error) {
	if err := checkHTTPURL(n); err != nil {
		return nil, err
	}
	return &Slack{url: n.URL, http: newHTTPPoster(n, o.withDefaults())}, nil
}

// Slack's limits: header text 150 characters, section text 3000, 10
// fields of 2000.
const (
	slackMaxHeader  = 150
	slackMaxSection = 3000
	slackMaxFields  = 10
	slackMaxField   = 2000
)

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackMessageFor builds the message.
func slackMessageFor(e Event) slackMessage {
	m := slackMessage{Text: slackEscape(subject(e))}
	m.Blocks = append(m.Blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(subject(e), slackMaxHeader)}})
	if e.Text != "" {
		m.Blocks = append(m.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(slackEscape(e.Text), slackMaxSection)}})
	}
	var fields []slackText
	for _, k := range sortedFields(e) {
		if len(fields) == slackMaxFields {
			break
		}
		fields = append(fields, slackText{Type: "mrkdwn", Text: truncate("*"+slackEscape(k)+"*\n"+slackEscape(e.Fields[k]), slackMaxField)})
	}
	if len(fields) > 0 {
		m.Blocks = append(m.Blocks, slackBlock{Type: "section", Fields: fields})
	}
	ctx := fmt.Sprintf("%s · %s · %s · %s", slackEscape(e.Cluster), e.Kind, e.Severity, e.Time.Format(time.RFC3339))
	if e.ID != "" {
		ctx += " · run " + slackEscape(e.ID)
	}
	m.Blocks = append(m.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: ctx}}})
	return m
}

// Send posts the event.
func (s *Slack) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(slackMessageFor(e))
	if err != nil {
		return Permanent(fmt.Errorf("slack: encode message: %w", err))
	}
	r, err := s.http.post(ctx, s.url, body, nil)
	if err != nil {
		return err
	}
	return s.http.statusError(s.url, r)
}
