package address

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
)

// DialFunc opens a network connection (net.Dialer.DialContext's shape).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Check modes: how a mover proves that a database answers at an address.
const (
	CheckMySQL = "mysql" // read the server's MySQL handshake (default)
	CheckTCP   = "tcp"   // a TCP connect is enough
	CheckNone  = "none"  // do not check
)

// ErrNoAnswer: no MySQL (or TCP) answer at the address within the deadline.
var ErrNoAnswer = errors.New("no database answers at the address")

// ValidCheckMode reports whether mode is one of the check modes.
func ValidCheckMode(mode string) bool {
	return mode == CheckMySQL || mode == CheckTCP || mode == CheckNone
}

// WaitAnswer waits, up to timeout, until a database answers at addr
// (host:port): a MySQL handshake, or a TCP connect with mode tcp. It is
// both the health check of a new primary before the address moves to it
// and the verification through the address afterwards (seed 000 §6.2).
// dial nil means net.Dialer.
func WaitAnswer(ctx context.Context, dial DialFunc, addr, mode string, timeout time.Duration, log *slog.Logger) error {
	if mode == CheckNone {
		return nil
	}
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	// Short first attempts: a SYN sent before the network learnt the
	// address's new place is lost, and the kernel retransmits only after
	// 1 s; a fresh connection gets through at once.
	attemptTO := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(vctx, attemptTO)
		if attemptTO < 2*time.Second {
			attemptTO *= 2
		}
		var banner string
		var err error
		if mode == CheckTCP {
			var conn net.Conn
			if conn, err = dial(actx, "tcp", addr); err == nil {
				_ = conn.Close()
				banner = "(tcp)"
			}
		} else {
			banner, err = Handshake(actx, dial, addr)
		}
		acancel()
		if err == nil {
			log.Info("database answers", "addr", addr, "server_version", banner, "attempts", attempt)
			return nil
		}
		last = err
		select {
		case <-vctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %s within %s (%d attempts): %v", ErrNoAnswer, addr, timeout, attempt, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Handshake connects to addr and reads the server's first packet: a MySQL
// handshake (protocol 10) gives the server version; an error packet (e.g.
// "host is not allowed to connect") still proves a live server.
func Handshake(ctx context.Context, dial DialFunc, addr string) (string, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return "", fmt.Errorf("read handshake: %w", err)
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if n < 1 || n > 1<<16 {
		return "", fmt.Errorf("not a MySQL handshake (packet length %d)", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return "", fmt.Errorf("read handshake: %w", err)
	}
	switch body[0] {
	case 10:
		v := body[1:]
		if i := strings.IndexByte(string(v), 0); i >= 0 {
			v = v[:i]
		}
		return string(v), nil
	case 0xff:
		return "(error packet: server alive)", nil
	}
	return "", fmt.Errorf("not a MySQL handshake (protocol %d)", body[0])
}
