package address

import "context"

// StatusChecker is implemented by movers that can check, before any
// failover, that they will be able to move the address (MHA runs
// master_ip_failover_script --command=status at start-up and refuses to
// monitor when it fails). primary is the current primary.
type StatusChecker interface {
	Status(ctx context.Context, primary Target) error
}
