// Package cloudsim holds what the local cloud emulators (aliyun/,
// tencent/) share; each emulator lives in its own sub-package.
package cloudsim

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Loopback serves an emulator's handler on a loopback address only: the
// emulator must never be reachable from outside the machine. The zero
// value is ready to Start.
type Loopback struct {
	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Start serves h on addr (default "127.0.0.1:0") and returns the base URL
// (http://127.0.0.1:PORT). Addresses that are not loopback are refused.
// name ("aliyun emulator") prefixes errors and log lines.
func (l *Loopback) Start(name, addr string, h http.Handler, log *slog.Logger) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s: listen address %q: %w", name, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%s: listen address %q is not a loopback IP", name, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: cannot listen: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	l.mu.Lock()
	l.ln, l.srv, l.done = ln, srv, done
	l.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" stopped", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Endpoint is the host:port served ("" before Start).
func (l *Loopback) Endpoint() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Stop stops serving and waits for the server to end (nil when it was
// never started).
func (l *Loopback) Stop() error {
	l.mu.Lock()
	srv, done := l.srv, l.done
	l.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	return err
}
