package movers

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
)

// fake is a mover that records its calls.
type fake struct {
	kind       string
	calls      *[]string
	acquireErr error
	releaseErr error
	statusErr  error
	addr       string
	onAcquire  func()
	holder     string
}

func (f *fake) Kind() string { return f.kind }
func (f *fake) Release(context.Context, address.Change) error {
	*f.calls = append(*f.calls, f.kind+".release")
	return f.releaseErr
}
func (f *fake) Acquire(context.Context, address.Change) error {
	*f.calls = append(*f.calls, f.kind+".acquire")
	if f.onAcquire != nil {
		f.onAcquire()
	}
	return f.acquireErr
}
func (f *fake) Holder(context.Context) (string, error) { return f.holder, nil }
func (f *fake) Status(context.Context, address.Target) error {
	*f.calls = append(*f.calls, f.kind+".status")
	return f.statusErr
}
func (f *fake) ClientAddress() string { return f.addr }

// mysqlLike listens on 127.0.0.1 and greets every connection with a MySQL
// handshake; it returns the port and a function that stops answering.
func mysqlLike(t *testing.T) (int, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	body := append([]byte{10}, "11.8.3-MariaDB\x00"...)
	pkt := append([]byte{byte(len(body)), 0, 0, 0}, body...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write(pkt)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, func() { ln.Close() }
}

func TestVerifiedChecksBeforeAndAfter(t *testing.T) {
	p, stop := mysqlLike(t)
	var calls []string
	f := &fake{kind: "cloud", calls: &calls, addr: "127.0.0.1"}
	v := &verified{Mover: f, addr: f, mode: address.CheckMySQL, timeout: 2 * time.Second, log: nopLog()}
	c := address.Change{New: address.Target{Name: "db2", IP: "127.0.0.1", Port: p}}
	if err := v.Acquire(context.Background(), c); err != nil {
		t.Fatalf("acquire with a live database: %v", err)
	}

	// The new primary does not answer: the address must not move.
	stop()
	calls = nil
	v.timeout = 300 * time.Millisecond
	err := v.Acquire(context.Background(), c)
	if err == nil || !errors.Is(err, address.ErrNoAnswer) || !strings.Contains(err.Error(), "was not moved") {
		t.Fatalf("acquire towards a dead primary: %v", err)
	}
	if len(calls) != 0 {
		t.Fatalf("the mover was called although the new primary does not answer: %v", calls)
	}

	// The primary answers but the address does not (the move did not
	// reach the network): an error naming the address.
	p2, _ := mysqlLike(t)
	dead, stopDead := mysqlLike(t)
	stopDead()
	f.addr = "127.0.0.2"
	c.New.Port = p2
	v.dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		if strings.HasPrefix(a, "127.0.0.2:") { // "through the address": nothing there
			a = "127.0.0.1:" + strconv.Itoa(dead)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	err = v.Acquire(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "was moved to db2 but no database answers through it") {
		t.Fatalf("unverified move: %v", err)
	}
}

func TestLayeredOrderAndTolerance(t *testing.T) {
	var calls []string
	main := &fake{kind: "aliyun-havip", calls: &calls, holder: "db1"}
	dns := &fake{kind: "rfc2136", calls: &calls}
	l := &layered{main: main, dns: dns}
	ctx := context.Background()
	if l.Kind() != "aliyun-havip+rfc2136" {
		t.Errorf("kind %s", l.Kind())
	}
	if err := l.Release(ctx, address.Change{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Acquire(ctx, address.Change{}); err != nil {
		t.Fatal(err)
	}
	want := "aliyun-havip.release rfc2136.release aliyun-havip.acquire rfc2136.acquire"
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("calls %q, want %q", got, want)
	}

	// A DNS failure after the main address moved is tolerated and says so.
	dns.acquireErr = errors.New("NOTAUTH")
	err := l.Acquire(ctx, address.Change{New: address.Target{Name: "db2"}})
	var pe *address.ProceedError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "moved to db2 with aliyun-havip, but the DNS layer rfc2136 failed") {
		t.Errorf("dns failure: %v", err)
	}
	// A main failure is not tolerated, and DNS is not touched.
	calls = nil
	main.acquireErr = errors.New("throttled")
	if err := l.Acquire(ctx, address.Change{}); err == nil || errors.As(err, &pe) || strings.Join(calls, " ") != "aliyun-havip.acquire" {
		t.Errorf("main failure: %v, calls %v", err, calls)
	}
	// Release: a main failure is an error even when DNS fails too; both
	// layers are released regardless.
	calls = nil
	main.releaseErr, dns.releaseErr = errors.New("api down"), errors.New("dns down")
	err = l.Release(ctx, address.Change{})
	if err == nil || !strings.Contains(err.Error(), "api down") || !strings.Contains(err.Error(), "dns down") || len(calls) != 2 {
		t.Errorf("release failures: %v, calls %v", err, calls)
	}
	// Status covers both.
	dns.statusErr = errors.New("record points at db3")
	if err := l.Status(ctx, address.Target{}); err == nil || !strings.Contains(err.Error(), "DNS layer rfc2136: record points at db3") {
		t.Errorf("status: %v", err)
	}
	if h, _ := l.Holder(ctx); h != "db1" {
		t.Errorf("holder %q", h)
	}
}
