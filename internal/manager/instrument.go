package manager

import (
	"context"

	"github.com/cloudmha/cloudmha/internal/address"
)

// instrumentedMover reports each operation of the cluster's address mover
// to the metrics recorder. It keeps the Status check (the supervisor asks
// for it through address.StatusChecker).
type instrumentedMover struct {
	address.Mover
	rec Recorder
}

func (m instrumentedMover) Release(ctx context.Context, c address.Change) error {
	err := m.Mover.Release(ctx, c)
	m.rec.MoverOp(m.Kind(), "release", err)
	return err
}

func (m instrumentedMover) Acquire(ctx context.Context, c address.Change) error {
	err := m.Mover.Acquire(ctx, c)
	m.rec.MoverOp(m.Kind(), "acquire", err)
	return err
}

// Status implements address.StatusChecker when the wrapped mover does; a
// mover without it is reported as fine.
func (m instrumentedMover) Status(ctx context.Context, t address.Target) error {
	sc, ok := m.Mover.(address.StatusChecker)
	if !ok {
		return nil
	}
	err := sc.Status(ctx, t)
	m.rec.MoverOp(m.Kind(), "status", err)
	return err
}
