package movers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

// DefaultVerifyTimeout bounds each of the checks around a move: the new
// primary answering before it, the address answering after it.
const DefaultVerifyTimeout = 10 * time.Second

// verified wraps a mover whose clients use one IP address: before the
// address moves, the new primary itself must answer (MySQL handshake or
// TCP); after the move, a database must answer through the address. A
// move that does not verify is an error, never a silent success.
type verified struct {
	address.Mover
	addr    address.Addressed // the clients' IP, once the mover knows it
	mode    string            // address.CheckMySQL | CheckTCP | CheckNone
	timeout time.Duration
	dial    address.DialFunc
	log     *slog.Logger
}

func port(t address.Target) string {
	p := t.Port
	if p == 0 {
		p = config.DefaultPort
	}
	return strconv.Itoa(p)
}

func (v *verified) Acquire(ctx context.Context, c address.Change) error {
	if c.New.IP != "" {
		if err := address.WaitAnswer(ctx, v.dial, net.JoinHostPort(c.New.IP, port(c.New)), v.mode, v.timeout, v.log.With("check", "new primary before the move")); err != nil {
			return fmt.Errorf("%s: the new primary %s does not answer, the address was not moved: %w", v.Kind(), c.New.Name, err)
		}
	}
	if err := v.Mover.Acquire(ctx, c); err != nil {
		return err
	}
	ip := v.addr.ClientAddress()
	if ip == "" {
		v.log.Debug("the mover has no private client address to check through (e.g. a public EIP)", "new", c.New.Name)
		return nil
	}
	if err := address.WaitAnswer(ctx, v.dial, net.JoinHostPort(ip, port(c.New)), v.mode, v.timeout, v.log.With("check", "through the address after the move")); err != nil {
		return fmt.Errorf("%s: the address %s was moved to %s but no database answers through it: %w", v.Kind(), ip, c.New.Name, err)
	}
	return nil
}

// Status forwards to the wrapped mover's check, when it has one.
func (v *verified) Status(ctx context.Context, primary address.Target) error {
	return status(ctx, v.Mover, primary)
}

func status(ctx context.Context, m address.Mover, primary address.Target) error {
	if sc, ok := m.(address.StatusChecker); ok {
		return sc.Status(ctx, primary)
	}
	return nil
}

// layered is a main mover with a DNS layer on top (address.dns): the DNS
// record follows the primary too. It is released after the main address
// and moved after it; a DNS failure after the main address moved is
// tolerated (address.ProceedError, reported) because clients of the main
// address are already served, and DNS caches make the layer best-effort.
type layered struct {
	main, dns address.Mover
}

func (l *layered) Kind() string { return l.main.Kind() + "+" + l.dns.Kind() }

func (l *layered) Release(ctx context.Context, c address.Change) error {
	errMain := l.main.Release(ctx, c)
	errDNS := l.dns.Release(ctx, c)
	if errDNS != nil {
		errDNS = &address.ProceedError{Err: fmt.Errorf("DNS layer %s: release: %w", l.dns.Kind(), errDNS)}
	}
	if errMain != nil {
		return errors.Join(errMain, errDNS)
	}
	if errDNS != nil {
		return errDNS
	}
	return nil
}

func (l *layered) Acquire(ctx context.Context, c address.Change) error {
	if err := l.main.Acquire(ctx, c); err != nil {
		return err
	}
	if err := l.dns.Acquire(ctx, c); err != nil {
		return &address.ProceedError{Err: fmt.Errorf("the address moved to %s with %s, but the DNS layer %s failed (clients using the DNS name still get the old answer): %w",
			c.New.Name, l.main.Kind(), l.dns.Kind(), err)}
	}
	return nil
}

// Holder is the main mover's holder; the DNS layer is checked by Status.
func (l *layered) Holder(ctx context.Context) (string, error) { return l.main.Holder(ctx) }

// Status checks both layers.
func (l *layered) Status(ctx context.Context, primary address.Target) error {
	errMain := status(ctx, l.main, primary)
	errDNS := status(ctx, l.dns, primary)
	if errDNS != nil {
		errDNS = fmt.Errorf("DNS layer %s: %w", l.dns.Kind(), errDNS)
	}
	return errors.Join(errMain, errDNS)
}

func nopLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
