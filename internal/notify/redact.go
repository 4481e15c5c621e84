package notify

import (
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/cloudmha/cloudmha/internal/config"
)

// RedactURL returns raw without anything that may be a credential: the
// user information, the path (Slack's and Feishu's tokens are path
// segments) and the query (DingTalk's access_token, WeCom's key) are
// replaced by "…". What is left names the destination host.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[unparsable URL]"
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil {
		out = u.Scheme + "://…@" + u.Host
	}
	if u.Path != "" && u.Path != "/" || u.RawPath != "" {
		out += "/…"
	}
	if u.RawQuery != "" || u.ForceQuery {
		out += "?…"
	}
	return out
}

// Shortest strings removed from messages; shorter ones would remove
// ordinary words. Tokens taken from a URL's path ("/robot/send") or query
// must be longer still.
const (
	minSecretLen     = 4
	minURLQueryLen   = 8
	minURLSegmentLen = 16
)

// redactor removes known secret strings from messages.
type redactor struct {
	r *strings.Replacer
}

// newRedactor removes the given strings, and the credentials of the given
// URL: the whole URL, its user information, its query values and its long
// path segments (tokens), in raw and escaped forms.
func newRedactor(rawURL string, secrets ...string) redactor {
	all := slices.Clone(secrets)
	add := func(min int, ss ...string) {
		for _, s := range ss {
			if len(s) >= min {
				all = append(all, s)
			}
		}
	}
	if rawURL != "" {
		add(minSecretLen, rawURL)
		if u, err := url.Parse(rawURL); err == nil {
			if u.User != nil {
				add(minSecretLen, u.User.String(), u.User.Username())
				if p, ok := u.User.Password(); ok {
					// Also the Basic Authorization header value, which
					// a server may echo.
					add(minSecretLen, p, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+p)))
				}
			}
			add(minURLQueryLen, u.RawQuery)
			for _, vs := range u.Query() {
				add(minURLQueryLen, vs...)
			}
			for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
				add(minURLSegmentLen, seg)
				if d, err := url.PathUnescape(seg); err == nil {
					add(minURLSegmentLen, d)
				}
			}
		}
	}
	var keep []string
	for _, s := range all {
		if len(s) >= minSecretLen {
			keep = append(keep, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	// Longest first, so that a secret containing another goes whole.
	slices.SortFunc(keep, func(a, b string) int { return len(b) - len(a) })
	keep = slices.Compact(keep)
	var pairs []string
	for _, s := range keep {
		pairs = append(pairs, s, "[redacted]")
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

// notifierRedactor covers a configured notifier's URL and secret.
func notifierRedactor(n config.Notifier) redactor {
	return newRedactor(n.URL, n.Secret.Value())
}

func (r redactor) String(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// sanitize returns err with its message free of secrets. *url.Error, whose
// message carries the request URL, is rebuilt with the redacted URL so
// that the unwrapped chain is clean too; other causes are kept (for
// errors.Is) behind a redacted message.
func (r redactor) sanitize(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		clean := &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: r.sanitize(ue.Err)}
		return &redactedError{msg: r.String(clean.Error()), err: clean}
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		// The cause itself shows the secret: do not keep it reachable.
		return &redactedError{msg: red}
	}
	return err
}

// redactedError is an error whose message was cleaned.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
