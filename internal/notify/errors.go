package notify

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sendError is a failed attempt: a message already free of secrets, the
// (sanitized) cause, and what the dispatcher should do about it.
type sendError struct {
	msg        string
	err        error
	permanent  bool
	retryAfter time.Duration
}

func (e *sendError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *sendError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (a rejected token, a bad
// request, a refused recipient).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &sendError{msg: "permanent failure", err: err, permanent: true}
}

// IsPermanent reports whether err, or an error it wraps, was marked
// permanent.
func IsPermanent(err error) bool {
	var se *sendError
	for e := err; errors.As(e, &se); e = se.err {
		if se.permanent {
			return true
		}
	}
	return false
}

// RetryAfter returns how long the destination asked to wait before the next
// attempt (HTTP 429/503 Retry-After, or a robot API's rate limit), if it did.
func RetryAfter(err error) (time.Duration, bool) {
	var se *sendError
	for e := err; errors.As(e, &se); e = se.err {
		if se.retryAfter > 0 {
			return se.retryAfter, true
		}
	}
	return 0, false
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
