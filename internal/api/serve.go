package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ShutdownTimeout is how long Serve waits, once its context ends, for
// requests in flight (a switchover may be one) before closing connections.
const ShutdownTimeout = 30 * time.Second

// Serve listens on addr (TLS 1.2+ when certFile and keyFile are set) and
// serves h until ctx ends, then shuts down gracefully. It returns nil after
// a shutdown caused by ctx.
func Serve(ctx context.Context, addr string, h http.Handler, certFile, keyFile string) error {
	// Load the certificate before listening: a bad one fails at once.
	tlsConf, err := tlsConfig(certFile, keyFile)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", addr, err)
	}
	return serve(ctx, l, h, tlsConf)
}

// ServeListener is Serve on a listener the caller opened (e.g. inside a
// network namespace, or on port 0 in a test). It closes l.
func ServeListener(ctx context.Context, l net.Listener, h http.Handler, certFile, keyFile string) error {
	tlsConf, err := tlsConfig(certFile, keyFile)
	if err != nil {
		l.Close()
		return err
	}
	return serve(ctx, l, h, tlsConf)
}

func tlsConfig(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("api: TLS needs both a certificate and a key file (--tls-cert and --tls-key)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("api: loading the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}

func serve(ctx context.Context, l net.Listener, h http.Handler, tlsConf *tls.Config) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: a switchover answers when it is done.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		TLSConfig:      tlsConf,
		ErrorLog:       slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			// Certificates come from TLSConfig; ServeTLS adds HTTP/2.
			errc <- srv.ServeTLS(l, "", "")
			return
		}
		errc <- srv.Serve(l)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serving on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("api: graceful shutdown on %s: %w", l.Addr(), err), srv.Close())
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("api: serving on %s: %w", l.Addr(), serr))
	}
	return err
}
