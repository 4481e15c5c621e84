package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloudmha/cloudmha/internal/config"
)

// Headers of the generic webhook.
const (
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of the
	// request body keyed with the notifier's secret (when one is set).
	HeaderSignature = "X-Cloudmha-Signature-256"
	// HeaderEvent carries the event kind.
	HeaderEvent = "X-Cloudmha-Event"
)

// Webhook POSTs each event as JSON (the Event type's encoding) to a URL.
// With a secret, HeaderSignature lets the receiver authenticate the body. A
// user:password@ in the URL is sent as HTTP Basic authentication (and, like
// any credential in the URL, never logged).
type Webhook struct {
	url    string
	secret config.Secret
	http   httpPoster
}

// NewWebhook returns the generic webhook channel.
func NewWebhook(n config.Notifier, o ChannelOptions) (*Webhook, error) {
	if err := checkHTTPURL(n); err != nil {
		return nil, err
	}
	return &Webhook{url: n.URL, secret: n.Secret, http: newHTTPPoster(n, o.withDefaults())}, nil
}

// Sign returns the HeaderSignature value of body for secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send posts the event.
func (w *Webhook) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return Permanent(fmt.Errorf("webhook: encode event: %w", err))
	}
	h := http.Header{}
	h.Set(HeaderEvent, string(e.Kind))
	if w.secret.IsSet() {
		h.Set(HeaderSignature, Sign([]byte(w.secret.Value()), body))
	}
	r, err := w.http.post(ctx, w.url, body, h)
	if err != nil {
		return err
	}
	return w.http.statusError(w.url, r)
}
