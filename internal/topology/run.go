package topology

import (
	"context"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// CheckRepl takes a snapshot within budget and judges it. When the first
// verdict names errant GTIDs it reads the primary once more and judges
// again: the servers are read concurrently, so a replica read after the
// primary may already hold the primary's newest transactions, which would
// look errant against the older reading. A primary read after every replica
// holds everything they received from it.
func CheckRepl(ctx context.Context, cfg *config.Config, r Reader, budget time.Duration, o CheckOptions) (*Report, *Snapshot) {
	start := time.Now()
	snap := Take(ctx, cfg, r, budget)
	rep := Check(snap, cfg, o)
	if !hasCheck(rep, "replica.errant_gtid") {
		return rep, snap
	}
	ps := snap.Primaries()
	if len(ps) != 1 {
		return rep, snap
	}
	p := ps[0]
	rctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	st, err := r.Read(rctx, p.Server)
	if err != nil || st == nil || st.Status == nil {
		return rep, snap
	}
	p.State = st
	snap.Elapsed = time.Since(start)
	return Check(snap, cfg, o), snap
}

func hasCheck(r *Report, id string) bool {
	for _, f := range r.Failures() {
		if f.Check == id {
			return true
		}
	}
	return false
}
