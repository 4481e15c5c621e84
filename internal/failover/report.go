package failover

import (
	"fmt"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

// StepResult is how one step went.
type StepResult struct {
	Name    string        `json:"name"` // the step's key: "03-fence-old-server1"
	Kind    StepKind      `json:"kind"`
	Server  string        `json:"server,omitempty"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed"`
	Err     string        `json:"error,omitempty"`
	// Note says what the step found or why it did nothing ("skipped: no
	// address mover", "done before the restart").
	Note string `json:"note,omitempty"`
}

// Report is the outcome of a failover or switchover, for people (Text), for
// report_script and for the history.
type Report struct {
	ID         string       `json:"id"`
	Kind       string       `json:"kind"` // failover | switchover
	Cluster    string       `json:"cluster"`
	OldPrimary string       `json:"old_primary"`
	NewPrimary string       `json:"new_primary"`
	Started    time.Time    `json:"started"`
	Finished   time.Time    `json:"finished"`
	Steps      []StepResult `json:"steps"`
	// Lost are the transactions the old primary had (its last known GTID
	// set) that the new primary does not hold after catch-up and salvage.
	// MariaDB sets are binlog states: an entry d-s-n means "up to n".
	Lost mysql.GTIDSet `json:"-"`
	// LostText is Lost as text (for JSON).
	LostText string `json:"lost,omitempty"`
	// Salvaged counts the transactions recovered from the dead primary's
	// binary logs.
	Salvaged int `json:"salvaged,omitempty"`
	// WriteBlock is, for a switchover, the time from the first fencing
	// action (address release or read_only on the old primary) until the new
	// primary was writable and held the address.
	WriteBlock time.Duration `json:"write_block,omitempty"`
	Repointed  []string      `json:"repointed,omitempty"`
	// Failed lists servers left out (a repoint failed) and failed
	// optional steps.
	Failed []string `json:"failed,omitempty"`
	// Err is the error that stopped the run ("" on success).
	Err string `json:"error,omitempty"`
}

// OK reports whether the run completed.
func (r *Report) OK() bool { return r.Err == "" && !r.Finished.IsZero() }

// Text renders the report for people, in the spirit of MHA's final summary.
func (r *Report) Text() string {
	var b strings.Builder
	kind := titleKind(r.Kind)
	outcome := "completed successfully"
	switch {
	case r.Err != "":
		outcome = "FAILED"
	case len(r.Failed) > 0:
		outcome = "completed with problems"
	}
	fmt.Fprintf(&b, "----- %s Report -----\n\n", kind)
	fmt.Fprintf(&b, "%s: %s of %s to %s %s.\n", r.Cluster, kind, r.OldPrimary, r.NewPrimary, outcome)
	fmt.Fprintf(&b, "Run %s started %s, took %s.\n", r.ID, r.Started.Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Millisecond))
	if r.Kind == "switchover" && r.WriteBlock > 0 {
		fmt.Fprintf(&b, "Writes were blocked for %s.\n", r.WriteBlock.Round(time.Millisecond))
	}
	if len(r.Repointed) > 0 {
		fmt.Fprintf(&b, "Replicas now replicating from %s: %s.\n", r.NewPrimary, strings.Join(r.Repointed, ", "))
	}
	if r.Salvaged > 0 {
		fmt.Fprintf(&b, "Transactions recovered from %s's binary logs: %d.\n", r.OldPrimary, r.Salvaged)
	}
	if r.Lost.IsEmpty() {
		if r.Kind == "failover" {
			fmt.Fprintf(&b, "No transaction of %s's last known GTID set is missing on %s.\n", r.OldPrimary, r.NewPrimary)
		}
	} else {
		fmt.Fprintf(&b, "LOST: transactions of %s that %s does not have: %s\n", r.OldPrimary, r.NewPrimary, r.Lost)
	}
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, "Needs attention: %s\n", strings.Join(r.Failed, "; "))
	}
	if r.Err != "" {
		fmt.Fprintf(&b, "Error: %s\n", r.Err)
	}
	fmt.Fprintf(&b, "\nSteps:\n")
	for _, s := range r.Steps {
		status := "ok"
		if s.Err != "" {
			status = "FAILED: " + s.Err
		} else if s.Note != "" {
			status = s.Note
		}
		fmt.Fprintf(&b, "  %-34s %8s  %s\n", s.Name, s.Elapsed.Round(time.Millisecond), status)
	}
	return b.String()
}
