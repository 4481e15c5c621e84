package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/cloudmha/cloudmha/internal/api"
	"github.com/cloudmha/cloudmha/internal/cloudpush"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/manager"
	"github.com/cloudmha/cloudmha/internal/metrics"
)

// tokenEnv holds the API token when no --api-token-file is given.
const tokenEnv = "CLOUDMHA_API_TOKEN"

// httpFlags are the manager's HTTP listener settings: metrics, API and
// status page.
type httpFlags struct {
	listen    string
	tokenFile string
	tlsCert   string
	tlsKey    string
}

func (f *httpFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.listen, "http-listen", "", "serve /metrics, the HTTP API and the status page on host:port (default: metrics.listen of the configurations)")
	cmd.Flags().StringVar(&f.tokenFile, "api-token-file", "", "file holding the API's bearer token (default: $"+tokenEnv+"); without a token the API is read-only")
	cmd.Flags().StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	cmd.Flags().StringVar(&f.tlsKey, "tls-key", "", "the certificate's private key (PEM)")
}

// address is the listener: the flag, else the clusters' metrics.listen,
// which must then agree.
func (f *httpFlags) address(cfgs []*config.Config) (string, error) {
	if f.listen != "" {
		return f.listen, nil
	}
	addr, from := "", ""
	for _, c := range cfgs {
		l := c.Metrics.Listen
		if l == "" {
			continue
		}
		if addr != "" && l != addr {
			return "", fmt.Errorf("clusters %s and %s set different metrics.listen (%s, %s): one manager serves one listener; set --http-listen", from, c.Name, addr, l)
		}
		addr, from = l, c.Name
	}
	return addr, nil
}

// token reads the API token; "" means none.
func (f *httpFlags) token() (string, error) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return "", errors.New("--tls-cert and --tls-key go together")
	}
	if f.tokenFile == "" {
		return strings.TrimSpace(os.Getenv(tokenEnv)), nil
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--api-token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("--api-token-file %s is empty", f.tokenFile)
	}
	return t, nil
}

// runManager runs the daemon with its metrics, HTTP listener and metric
// pushes. The listener failing to start is fatal (a DBA who asked for
// metrics wants to know); once serving, an error stops the manager too.
func runManager(ctx context.Context, g *globals, cfgs []*config.Config, o manager.Options, hf *httpFlags) error {
	log := g.logger()
	addr, err := hf.address(cfgs)
	if err != nil {
		return err
	}
	token, err := hf.token()
	if err != nil {
		return err
	}
	met := metrics.New(version)
	o.Recorder = func(cluster string) manager.Recorder { return met.Cluster(cluster) }
	m, err := manager.New(cfgs, o)
	if err != nil {
		return err
	}
	met.WatchNotifications(m.NotificationStats)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	if addr != "" {
		h := api.New(api.Options{Backend: m, Token: token, Metrics: met.Handler(), Logger: log.With("component", "api")})
		if token == "" {
			log.Warn("no API token (--api-token-file or $" + tokenEnv + "): the API is read-only; switchover, ack, pause and resume are refused")
		}
		wg.Go(func() {
			if err := api.Serve(ctx, addr, h, hf.tlsCert, hf.tlsKey); err != nil {
				log.Error("HTTP listener failed; stopping the manager", "addr", addr, "err", err)
				errc <- fmt.Errorf("HTTP listener %s: %w", addr, err)
				cancel()
			}
		})
		log.Info("serving metrics, API and status page", "addr", addr, "tls", hf.tlsCert != "", "token", token != "")
	}
	for _, cfg := range cfgs {
		for i, mp := range cfg.Metrics.Push {
			p, err := cloudpush.FromConfig(ctx, mp)
			if err != nil {
				cancel()
				wg.Wait()
				m.Close()
				return fmt.Errorf("cluster %s: metrics.push[%d]: %w", cfg.Name, i, err)
			}
			plog := log.With("cluster", cfg.Name, "component", "cloudpush", "provider", p.Name())
			g := cloudpush.ForCluster(met.Registry(), cfg.Name)
			wg.Go(func() { cloudpush.Run(ctx, plog, g, p, mp.Metrics, mp.Interval) })
		}
	}
	runErr := m.Run(ctx)
	cancel()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return runErr
}
