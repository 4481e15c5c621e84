package hooks

import (
	"context"
	"fmt"
)

// ShutdownOutcome is what shutdown_script reported.
type ShutdownOutcome int

// Shutdown outcomes (exit 0 and exit 10).
const (
	// PoweredOff: the host was powered off (exit 0); it is no longer SSH
	// reachable (MHA then skips binlog salvage).
	PoweredOff ShutdownOutcome = iota + 1
	// MySQLKilled: the host is reachable over SSH and mysqld was killed
	// (exit 10).
	MySQLKilled
)

func (o ShutdownOutcome) String() string {
	switch o {
	case PoweredOff:
		return "powered off"
	case MySQLKilled:
		return "SSH reachable, mysqld killed"
	}
	return "unknown"
}

// Shutdown runs shutdown_script with command stop or stopssh. Any exit
// other than 0 or 10 is an error: MHA aborts the failover.
func (r Runner) Shutdown(ctx context.Context, script, command string, h Host) (ShutdownOutcome, error) {
	_, err := r.Run(ctx, script, ShutdownArgs(command, h))
	switch {
	case err == nil:
		return PoweredOff, nil
	case IsProceed(err):
		return MySQLKilled, nil
	}
	return 0, fmt.Errorf("shutdown_script: %w", err)
}

// SecondaryVerdict is what secondary_check_script (masterha_secondary_check)
// concluded.
type SecondaryVerdict int

// Secondary check verdicts, by exit code.
const (
	// PrimaryUnreachable (exit 0): unreachable from every route: fail over.
	PrimaryUnreachable SecondaryVerdict = iota + 1
	// NetworkProblem (exit 2): a monitoring route itself is down: no
	// failover.
	NetworkProblem
	// PrimaryReachable (exit 3): another route reaches the primary: no
	// failover.
	PrimaryReachable
)

func (v SecondaryVerdict) String() string {
	switch v {
	case PrimaryUnreachable:
		return "unreachable from every route"
	case NetworkProblem:
		return "network problem on a monitoring route"
	case PrimaryReachable:
		return "reachable from another route"
	}
	return "unknown"
}

// SecondaryCheck runs secondary_check_script with MHA's appended arguments.
// Exit codes other than 0, 2 and 3 are errors (MHA: "unknown error", no
// failover).
func (r Runner) SecondaryCheck(ctx context.Context, script string, master Host, pingType string) (SecondaryVerdict, error) {
	_, err := r.Run(ctx, script, SecondaryCheckArgs(master, pingType))
	if err == nil {
		return PrimaryUnreachable, nil
	}
	if c, ok := ExitCode(err); ok {
		switch c {
		case 2:
			return NetworkProblem, nil
		case 3:
			return PrimaryReachable, nil
		}
	}
	return 0, fmt.Errorf("secondary_check_script: %w", err)
}

// SendReport runs report_script. MHA only logs its failure; so should the
// caller.
func (r Runner) SendReport(ctx context.Context, script string, rep Report) error {
	if _, err := r.Run(ctx, script, ReportArgs(rep)); err != nil {
		return fmt.Errorf("report_script: %w", err)
	}
	return nil
}
