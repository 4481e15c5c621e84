// Package notify sends cloudmha's alerts (detection, failover start and
// end, switchover, anti-flap blocks, mover failures, …) to people: a generic
// JSON webhook, DingTalk, Slack, WeCom and Feishu robots, and SMTP e-mail.
//
// Each channel is a Notifier whose Send delivers one Event once. A
// Dispatcher routes events to the notifiers of the contact groups that
// select them (by severity and kind), and delivers them in the background
// through a bounded queue per notifier, with per-attempt timeouts and
// retries with exponential backoff and jitter: Notify never blocks, so a
// slow or dead channel cannot delay a failover.
//
// No secret (a signing secret, a webhook token carried in the URL, an SMTP
// password) appears in an error or a log line: URLs are shown without
// their path, query and user information, and every known secret string is
// removed from messages.
package notify

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudmha/cloudmha/internal/config"
)

// Severity is how urgent an event is.
type Severity string

// Severities, most severe first (config.Severities).
const (
	SeverityCritical Severity = config.SeverityCritical
	SeverityWarning  Severity = config.SeverityWarning
	SeverityInfo     Severity = config.SeverityInfo
)

// Kind says what happened. The values are those of
// config.NotifyEventKinds, which contact groups select.
type Kind string

// Event kinds.
const (
	// KindDetection: the monitor confirmed the primary's failure.
	KindDetection Kind = "detection"
	// KindUnreachablePrimary: the primary stopped answering the monitor
	// (not yet confirmed dead).
	KindUnreachablePrimary Kind = "unreachable_primary"
	// KindFailoverStart and KindFailoverEnd bracket an automatic failover;
	// the end event's severity and fields say how it ended.
	KindFailoverStart Kind = "failover_start"
	KindFailoverEnd   Kind = "failover_end"
	// KindSwitchover: an online (planned) switchover ran.
	KindSwitchover Kind = "switchover"
	// KindAntiFlapBlock: a failover was refused by the anti-flap guard.
	KindAntiFlapBlock Kind = "antiflap_block"
	// KindMoverFailure: the address mover (VIP, cloud API, DNS) failed.
	KindMoverFailure Kind = "mover_failure"
	// KindTest: a test notification (cloudmha notify test).
	KindTest Kind = "test"
)

// DefaultSeverity is the severity Dispatcher.Notify gives an event of kind
// k that has none.
func DefaultSeverity(k Kind) Severity {
	switch k {
	case KindDetection, KindUnreachablePrimary, KindFailoverStart, KindAntiFlapBlock, KindMoverFailure:
		return SeverityCritical
	case KindFailoverEnd, KindSwitchover:
		return SeverityWarning
	}
	return SeverityInfo
}

// Event is one notification. It is also the generic webhook's JSON body.
type Event struct {
	// ID correlates the events of one failover or switchover (the run id
	// the failover executor logs); empty for events outside a run.
	ID       string            `json:"id,omitempty"`
	Cluster  string            `json:"cluster"`
	Kind     Kind              `json:"kind"`
	Severity Severity          `json:"severity"`
	Title    string            `json:"title"`
	Text     string            `json:"text,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
	Time     time.Time         `json:"time"`
}

// Notifier delivers events to one destination. Send makes one attempt; it
// returns an error wrapped with Permanent when retrying cannot help, and
// one carrying a server's Retry-After when the destination asked to wait
// (see RetryAfter). Implementations honour ctx's deadline.
type Notifier interface {
	Send(ctx context.Context, e Event) error
}

// subject is the one-line summary: "[CRITICAL] cluster: title".
func subject(e Event) string {
	s := "[" + strings.ToUpper(string(e.Severity)) + "] "
	if e.Cluster != "" {
		s += e.Cluster + ": "
	}
	return oneLine(s + e.Title)
}

// oneLine replaces line breaks (and other control characters) by spaces,
// for headers and titles.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// sortedFields returns the fields' keys in order.
func sortedFields(e Event) []string { return slices.Sorted(maps.Keys(e.Fields)) }

// details are the event's facts as label/value pairs, in display order.
func details(e Event) [][2]string {
	d := [][2]string{{"cluster", e.Cluster}, {"event", string(e.Kind)}, {"severity", string(e.Severity)},
		{"time", e.Time.Format(time.RFC3339)}}
	if e.ID != "" {
		d = append(d, [2]string{"run", e.ID})
	}
	for _, k := range sortedFields(e) {
		d = append(d, [2]string{k, e.Fields[k]})
	}
	return d
}

// plainText is the e-mail body.
func plainText(e Event) string {
	var b strings.Builder
	b.WriteString(subject(e))
	b.WriteString("\n\n")
	if e.Text != "" {
		b.WriteString(e.Text)
		b.WriteString("\n\n")
	}
	for _, kv := range details(e) {
		fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
	}
	b.WriteString("\n-- \ncloudmha\n")
	return b.String()
}

// markdown is the DingTalk, WeCom and Feishu body. WeCom's markdown has no
// lists, so facts are quoted lines, which all three render.
func markdown(e Event) string {
	var b strings.Builder
	b.WriteString("### ")
	b.WriteString(subject(e))
	b.WriteString("\n\n")
	if e.Text != "" {
		b.WriteString(e.Text)
		b.WriteString("\n\n")
	}
	for _, kv := range details(e) {
		fmt.Fprintf(&b, "> **%s**: %s\n\n", kv[0], oneLine(kv[1]))
	}
	// The footer lets a DingTalk robot with keyword security use
	// "cloudmha" as its keyword.
	b.WriteString("cloudmha")
	return b.String()
}

// truncate shortens s to at most max bytes on a rune boundary, marking the
// cut with "…".
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
