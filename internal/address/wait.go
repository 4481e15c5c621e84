package address

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrTimeout: an asynchronous cloud transition did not complete in time.
var ErrTimeout = errors.New("timed out waiting for the cloud")

// Poller waits for a cloud's asynchronous state on behalf of a mover.
type Poller struct {
	Kind     string        // the mover, prefixed to errors
	Timeout  time.Duration // how long Wait waits at most
	Interval time.Duration // between two checks
	Log      *slog.Logger
}

// Wait calls check every p.Interval until it reports done, an error, or
// p.Timeout passes (an error wrapping ErrTimeout that names what was
// awaited and the last state check reported).
func (p Poller) Wait(ctx context.Context, what string, check func(ctx context.Context) (done bool, state string, err error)) error {
	wctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	start := time.Now()
	var state string
	for {
		done, st, err := check(wctx)
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("%s: %w after %s: %s (last state %q)", p.Kind, ErrTimeout, p.Timeout, what, state)
			}
			return err
		}
		state = st
		if done {
			p.Log.Debug("wait done", "what", what, "state", st, "elapsed", time.Since(start).Round(time.Millisecond))
			return nil
		}
		select {
		case <-wctx.Done():
			// Both are ready when the caller's context ended: that is a
			// cancellation, not the cloud being slow.
			if ctx.Err() != nil {
				return fmt.Errorf("%s: waiting for %s: %w (last state %q)", p.Kind, what, ctx.Err(), state)
			}
			return fmt.Errorf("%s: %w after %s: %s (last state %q)", p.Kind, ErrTimeout, p.Timeout, what, state)
		case <-time.After(p.Interval):
		}
	}
}
