package manager

import (
	"context"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/netprobe"
	"github.com/cloudmha/cloudmha/internal/remote"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// netWatch measures the round trip from each replica's host to the
// primary's MySQL port (seed 000 §3.4: replica↔primary latency and loss),
// over SSH sessions it keeps open between rounds.
type netWatch struct {
	c     *Cluster
	rec   Recorder
	every time.Duration
	mu    sync.Mutex
	conns map[string]*remote.Client
}

// netProbeAttempts is how many TCP connects one round makes per replica.
const netProbeAttempts = 3

func (n *netWatch) run(ctx context.Context, current func() (*topology.Snapshot, string)) {
	defer n.close()
	t := time.NewTicker(n.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap, primary := current()
		if snap == nil || primary == "" {
			continue
		}
		var p config.Server
		var replicas []config.Server
		for _, nd := range snap.Nodes {
			switch {
			case nd.Server.Name == primary:
				p = nd.Server
			case nd.Reachable() && nd.Status().Replica != nil:
				replicas = append(replicas, nd.Server)
			}
		}
		if p.Name == "" {
			continue
		}
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(func() { n.probe(ctx, r, p) })
		}
		wg.Wait()
	}
}

func (n *netWatch) probe(ctx context.Context, from, to config.Server) {
	ctx, cancel := context.WithTimeout(ctx, n.every)
	defer cancel()
	cl, err := n.conn(ctx, from)
	if err != nil {
		n.c.log.Debug("network probe: ssh", "server", from.Name, "err", err)
		return
	}
	run := func(ctx context.Context, script string) (string, error) {
		out, err := cl.Run(ctx, script)
		return string(out), err
	}
	res, err := netprobe.Probe(ctx, run, to.Host(), to.Port, netProbeAttempts, time.Second)
	if err != nil {
		n.c.log.Debug("network probe failed", "server", from.Name, "primary", to.Name, "err", err)
		n.drop(from.Name)
		return
	}
	n.rec.ObserveNetworkResult(from.Name, res)
}

func (n *netWatch) conn(ctx context.Context, s config.Server) (*remote.Client, error) {
	n.mu.Lock()
	cl := n.conns[s.Name]
	n.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	t, err := remote.TargetFor(s, remote.DialFunc(n.c.deps.Dial))
	if err != nil {
		return nil, err
	}
	cl, err = remote.Dial(ctx, t)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.conns[s.Name]; old != nil {
		_ = cl.Close()
		return old, nil
	}
	n.conns[s.Name] = cl
	return cl, nil
}

func (n *netWatch) drop(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cl := n.conns[name]; cl != nil {
		_ = cl.Close()
		delete(n.conns, name)
	}
}

func (n *netWatch) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, cl := range n.conns {
		_ = cl.Close()
		delete(n.conns, k)
	}
}
