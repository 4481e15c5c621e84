// Package address moves the clients' address (a VIP, a cloud IP, a DNS
// name, or whatever an MHA master_ip_failover script does) from the old
// primary to the new one. Providers live in sub-packages; the failover
// engine only sees the Mover interface.
package address

import (
	"context"
	"fmt"
)

// Target is one server as a mover needs to know it.
type Target struct {
	Name     string // section name in the configuration (server1)
	Hostname string // hostname as configured
	IP       string // address of the server itself (not the VIP)
	Port     int
	// SSHReachable is false when the failover found the host unreachable
	// over SSH: a mover must not wait on it (MHA: --command=stop vs stopssh).
	SSHReachable bool
}

// Change describes one move of the address.
type Change struct {
	Old Target // the primary losing the address (may be dead)
	New Target // the primary gaining it
	// Online is true for a planned switchover with both servers alive
	// (MHA's master_ip_online_change_script instead of master_ip_failover_script).
	Online bool
	// OldIsNewReplica is MHA's --orig_master_is_new_slave.
	OldIsNewReplica bool
}

// Mover moves the address. Release must make sure that, once it returns nil,
// the old primary no longer receives client traffic through the address (it
// is the first step of fencing). Acquire brings the address up on the new
// primary and verifies it. Holder names the server (Target.Name) currently
// holding the address, or "" when none does; providers that cannot tell
// return ErrHolderUnknown.
type Mover interface {
	Kind() string
	Release(ctx context.Context, c Change) error
	Acquire(ctx context.Context, c Change) error
	Holder(ctx context.Context) (string, error)
}

// ErrHolderUnknown is returned by Holder when the provider cannot tell.
var ErrHolderUnknown = fmt.Errorf("address holder cannot be determined by this mover")

// ProceedError is a failure after which the failover may go on (MHA's exit
// code 10 of master_ip_failover_script: "failed, but proceed").
type ProceedError struct{ Err error }

func (e *ProceedError) Error() string { return e.Err.Error() + " (tolerated: failover proceeds)" }
func (e *ProceedError) Unwrap() error { return e.Err }

// Addressed is implemented by movers whose clients connect to one IP
// address (a HaVip, a secondary IP, an ENI's address): the factory checks
// that the new primary answers before the move, and that a database answers
// through ClientAddress after it.
type Addressed interface {
	ClientAddress() string
}
