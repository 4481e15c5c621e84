package address

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestPollerWait(t *testing.T) {
	p := Poller{Kind: "test-mover", Timeout: 200 * time.Millisecond, Interval: 10 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	n := 0
	err := p.Wait(context.Background(), "the thing", func(context.Context) (bool, string, error) {
		n++
		return n == 3, "step", nil
	})
	if err != nil || n != 3 {
		t.Fatalf("done on the third check: err %v after %d checks", err, n)
	}
	err = p.Wait(context.Background(), "ENI eni-1 InUse", func(context.Context) (bool, string, error) { return false, "Attaching", nil })
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), `test-mover: timed out waiting for the cloud after 200ms: ENI eni-1 InUse (last state "Attaching")`) {
		t.Fatalf("timeout: %v", err)
	}
	boom := errors.New("API down")
	if err := p.Wait(context.Background(), "x", func(context.Context) (bool, string, error) { return false, "", boom }); !errors.Is(err, boom) {
		t.Fatalf("check error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx, "x", func(context.Context) (bool, string, error) { return false, "s", nil }); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled: %v", err)
	}
}
