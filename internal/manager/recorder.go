package manager

import (
	"time"

	"github.com/cloudmha/cloudmha/internal/netprobe"
	"github.com/cloudmha/cloudmha/internal/topology"
)

// Recorder receives what a cluster's supervisor observes, for metrics. The
// manager never imports a metrics library: cmd/cloudmha plugs
// internal/metrics in here. Implementations must be safe for concurrent use
// and must not block.
type Recorder interface {
	ObserveSnapshot(snap *topology.Snapshot, primary string)
	SetRunning(bool)
	SetLeader(bool)
	SetState(state string)
	SetVerdict(verdict string)
	SetPaused(bool)
	SetBlocked(bool)
	ObserveProbe(latency time.Duration, ok, timeout bool)
	ObserveDetection(d time.Duration)
	// ObserveChange records a failover or switchover (kind) that ended with
	// outcome success, error or blocked.
	ObserveChange(kind, outcome string, d, writeBlock time.Duration)
	SetLastFailover(t time.Time)
	MoverOp(mover, op string, err error)
	APICall(mover, api string, err error)
	// ObserveNetworkResult records one round of replica → primary probes.
	ObserveNetworkResult(instance string, r netprobe.Result)
}

// nopRecorder records nothing.
type nopRecorder struct{}

func (nopRecorder) ObserveSnapshot(*topology.Snapshot, string)                 {}
func (nopRecorder) SetRunning(bool)                                            {}
func (nopRecorder) SetLeader(bool)                                             {}
func (nopRecorder) SetState(string)                                            {}
func (nopRecorder) SetVerdict(string)                                          {}
func (nopRecorder) SetPaused(bool)                                             {}
func (nopRecorder) SetBlocked(bool)                                            {}
func (nopRecorder) ObserveProbe(time.Duration, bool, bool)                     {}
func (nopRecorder) ObserveDetection(time.Duration)                             {}
func (nopRecorder) ObserveChange(string, string, time.Duration, time.Duration) {}
func (nopRecorder) SetLastFailover(time.Time)                                  {}
func (nopRecorder) MoverOp(string, string, error)                              {}
func (nopRecorder) APICall(string, string, error)                              {}
func (nopRecorder) ObserveNetworkResult(string, netprobe.Result)               {}
