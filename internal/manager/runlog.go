package manager

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// runTag is a slog.Handler that adds the correlation ID of the failover or
// switchover in progress ("run") to every record of a cluster's logger:
// the detector's, the movers', the hooks' and the salvager's lines while a
// run is under way all carry it, so one grep finds the whole incident.
// A logger that already names a run (the executor's) is left as it is.
type runTag struct {
	h      slog.Handler
	id     *atomic.Pointer[string]
	hasRun bool
}

func newRunTag(h slog.Handler, id *atomic.Pointer[string]) slog.Handler {
	return runTag{h: h, id: id}
}

func (r runTag) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r runTag) Handle(ctx context.Context, rec slog.Record) error {
	if !r.hasRun {
		if id := r.id.Load(); id != nil && *id != "" {
			rec = rec.Clone()
			rec.AddAttrs(slog.String("run", *id))
		}
	}
	return r.h.Handle(ctx, rec)
}

func (r runTag) WithAttrs(as []slog.Attr) slog.Handler {
	has := r.hasRun
	for _, a := range as {
		if a.Key == "run" {
			has = true
		}
	}
	return runTag{h: r.h.WithAttrs(as), id: r.id, hasRun: has}
}

func (r runTag) WithGroup(name string) slog.Handler {
	return runTag{h: r.h.WithGroup(name), id: r.id, hasRun: r.hasRun}
}
