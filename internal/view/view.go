// Package view is what a running manager shows of itself: each cluster's
// topology and state, its recent events, its current alerts and its
// failover history, and the actions an operator may take on it. The HTTP
// API and the status page (package api) serve a Backend; the manager
// implements it. The types are plain data, safe to encode as JSON.
package view

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Roles of an instance.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
	// RoleUnknown: the instance could not be read and no replica names it.
	RoleUnknown = "unknown"
)

// Cluster is one watched cluster as the manager sees it now.
type Cluster struct {
	Name string `json:"name"`
	// State is MHA's status word (store.State): PING_OK, PING_FAILING,
	// FAILOVER_RUNNING, FAILOVER_ERROR, …
	State string `json:"state"`
	// Verdict is the detector's judgement of the primary: healthy, suspect,
	// unreachable_primary, dead_primary ("" before the first probe).
	Verdict       string `json:"verdict,omitempty"`
	VerdictReason string `json:"verdict_reason,omitempty"`
	Primary       string `json:"primary"` // server name
	// Paused: automatic failover is suspended by an operator (the primary
	// is still watched and alerts still go out).
	Paused      bool      `json:"paused"`
	PausedBy    string    `json:"paused_by,omitempty"`
	PausedAt    time.Time `json:"paused_at,omitzero"`
	PauseReason string    `json:"pause_reason,omitempty"`
	// Blocked: the anti-flapping guard refuses an automatic failover until
	// an operator acknowledges the last one.
	Blocked      bool       `json:"blocked"`
	LastFailover time.Time  `json:"last_failover,omitzero"`
	Address      *Address   `json:"address,omitempty"`
	Instances    []Instance `json:"instances"`
	// ProbeLatency is the last probe of the primary; ProbeOK its outcome.
	ProbeLatencyMS float64   `json:"probe_latency_ms"`
	ProbeOK        bool      `json:"probe_ok"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Address is the cluster's client address and who holds it.
type Address struct {
	Mover  string `json:"mover"`            // vip, aliyun-havip, …
	Client string `json:"client,omitempty"` // the address clients use, when there is one
	// Holder is the server the manager last moved the address to (or found
	// holding it); "" when unknown.
	Holder string `json:"holder,omitempty"`
}

// Instance is one configured server.
type Instance struct {
	Name      string `json:"name"`
	Addr      string `json:"addr"` // host:port
	Zone      string `json:"zone,omitempty"`
	Role      string `json:"role"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"` // why it could not be read
	ReadOnly  bool   `json:"read_only"`
	// Source is the server it replicates from ("" for the primary).
	Source     string `json:"source,omitempty"`
	IORunning  bool   `json:"io_running"`
	SQLRunning bool   `json:"sql_running"`
	// LagSeconds is Seconds_Behind_Master; nil when unknown (NULL).
	LagSeconds *int64 `json:"lag_seconds,omitempty"`
	// ReplError is the last IO or SQL error of the replication threads.
	ReplError string `json:"repl_error,omitempty"`
	GTID      string `json:"gtid,omitempty"`
	// Errant lists GTIDs this replica has that the primary lacks.
	Errant   string `json:"errant,omitempty"`
	SemiSync bool   `json:"semi_sync"`
	Version  string `json:"version,omitempty"`
}

// Event is something that happened to a cluster: detection, failover start
// and end, switchover, anti-flap block, mover failure, pause, resume,
// acknowledgement, a primary followed after a change outside the manager.
type Event struct {
	Time time.Time `json:"time"`
	// ID correlates the events of one failover or switchover (the
	// correlation ID every log line of that run carries).
	ID       string            `json:"id,omitempty"`
	Cluster  string            `json:"cluster"`
	Kind     string            `json:"kind"`     // notify.Kind values and pause, resume, ack
	Severity string            `json:"severity"` // critical, warning, info
	Title    string            `json:"title"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// Alert is a condition that holds now and needs a person: the primary is
// unreachable or dead, a failover failed or is blocked, replication
// stopped or lags, a replica has errant GTIDs, automatic failover is
// paused.
type Alert struct {
	Cluster  string    `json:"cluster"`
	Name     string    `json:"name"` // PrimaryUnreachable, ReplicationStopped, …
	Severity string    `json:"severity"`
	Instance string    `json:"instance,omitempty"`
	Summary  string    `json:"summary"`
	Since    time.Time `json:"since"`
	// Acked: an operator acknowledged it (it stays listed while it holds).
	Acked bool `json:"acked"`
}

// SwitchRequest asks for an online switchover.
type SwitchRequest struct {
	// NewPrimary is the server to promote; "" lets the planner choose.
	NewPrimary string `json:"new_primary,omitempty"`
	// OrigMasterIsNewSlave repoints the old primary under the new one
	// (MHA's --orig_master_is_new_slave).
	OrigMasterIsNewSlave bool `json:"orig_master_is_new_slave,omitempty"`
	// DryRun plans and returns the plan without changing anything.
	DryRun bool `json:"dry_run,omitempty"`
	// By names who asked (for the event and the log).
	By string `json:"by,omitempty"`
}

// SwitchResult is the outcome of a switchover request.
type SwitchResult struct {
	Plan string `json:"plan"`
	// Report is the failover.Report as JSON; nil for a dry run.
	Report json.RawMessage `json:"report,omitempty"`
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
}

// Errors a Backend returns; the API maps them to HTTP status codes.
var (
	// ErrNotFound: no such cluster (404).
	ErrNotFound = errors.New("no such cluster")
	// ErrConflict: the action cannot run now, e.g. a failover or another
	// switchover is running (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is wrong, e.g. an unknown server (400).
	ErrInvalid = errors.New("invalid request")
)

// Backend is a running manager as the API sees it. Every method is safe for
// concurrent use.
type Backend interface {
	// Clusters lists the watched clusters, sorted by name.
	Clusters() []Cluster
	// Cluster returns one cluster, or ErrNotFound.
	Cluster(name string) (Cluster, error)
	// Events returns the most recent events of a cluster ("" = all
	// clusters), newest first, at most limit.
	Events(cluster string, limit int) ([]Event, error)
	// History returns the failover and switchover reports of a cluster
	// (failover.Report as JSON), newest first.
	History(cluster string) ([]json.RawMessage, error)
	// Alerts lists the alerts that hold now, most severe first.
	Alerts() []Alert
	// Switchover runs an online switchover and returns when it is done.
	Switchover(ctx context.Context, cluster string, r SwitchRequest) (SwitchResult, error)
	// Ack acknowledges the last failover (lifting the anti-flapping block)
	// and the cluster's current alerts.
	Ack(cluster, by, note string) error
	// Pause suspends automatic failover of a cluster; Resume lifts it.
	Pause(cluster, by, reason string) error
	Resume(cluster, by string) error
	// Ready reports whether the manager is up and watching (for /healthz).
	Ready() error
}
