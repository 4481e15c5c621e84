package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloudmha/cloudmha/internal/api"
	"github.com/cloudmha/cloudmha/internal/store"
	"github.com/cloudmha/cloudmha/internal/view"
)

// apiEnv names the manager's API when --api is not given.
const apiEnv = "CLOUDMHA_API"

// apiFlags let status, switch, ack, pause and resume talk to a running
// manager's HTTP API instead of reading and writing manager_workdir.
type apiFlags struct {
	url       string
	tokenFile string
	caFile    string
	cluster   string
}

func (f *apiFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "api", "", "a running manager's API, e.g. https://10.0.0.5:9104 (default $"+apiEnv+"); then --conf is optional")
	cmd.Flags().StringVar(&f.tokenFile, "api-token-file", "", "file holding the API token (default $"+tokenEnv+")")
	cmd.Flags().StringVar(&f.caFile, "api-ca", "", "CA certificate (PEM) to verify the manager's TLS certificate")
	cmd.Flags().StringVar(&f.cluster, "cluster", "", "cluster name, with --api (default: the name from --conf)")
}

func (f *apiFlags) base() string {
	if f.url != "" {
		return f.url
	}
	return os.Getenv(apiEnv)
}

func (f *apiFlags) enabled() bool { return f.base() != "" }

func (f *apiFlags) client() (*api.Client, error) {
	token := strings.TrimSpace(os.Getenv(tokenEnv))
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--api-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	hc := &http.Client{Timeout: 10 * time.Minute} // a switchover answers when it is done
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--api-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--api-ca %s: no PEM certificate in it", f.caFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return api.NewClient(f.base(), token, hc), nil
}

// clusterName is --cluster, else the name of the --conf configuration.
func (f *apiFlags) clusterName(g *globals, cf *confFlags) (string, error) {
	if f.cluster != "" {
		return f.cluster, nil
	}
	if cf.conf == "" {
		return "", errors.New("with --api, name the cluster with --cluster or --conf")
	}
	cfg, err := cf.load(g)
	if err != nil {
		return "", err
	}
	return cfg.Name, nil
}

// connect names the cluster and builds the API client.
func (f *apiFlags) connect(g *globals, cf *confFlags) (string, *api.Client, error) {
	name, err := f.clusterName(g, cf)
	if err != nil {
		return "", nil, exitCode(1, err)
	}
	c, err := f.client()
	if err != nil {
		return "", nil, exitCode(1, err)
	}
	return name, c, nil
}

// who is the operator's name for the record.
func who() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return u
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "cli"
}

// apiStatus prints a cluster's state as `status` does, with its instances,
// and exits with MHA's state number.
func apiStatus(ctx context.Context, g *globals, af *apiFlags, cf *confFlags) error {
	name, c, err := af.connect(g, cf)
	if err != nil {
		return err
	}
	cl, err := c.Cluster(ctx, name)
	if err != nil {
		return exitCode(int(store.NotRunning), fmt.Errorf("%s: %w", name, err))
	}
	st, ok := store.StateByName(cl.State)
	if !ok {
		st = store.NotFound
	}
	fmt.Fprintf(g.stdout, "%s is %s (%s), master:%s", cl.Name, cl.State, orDash(cl.Verdict), cl.Primary)
	if cl.Paused {
		fmt.Fprintf(g.stdout, ", automatic failover PAUSED by %s", cl.PausedBy)
	}
	if cl.Blocked {
		fmt.Fprint(g.stdout, ", failover BLOCKED until acknowledged")
	}
	fmt.Fprintln(g.stdout)
	tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tADDR\tROLE\tREACHABLE\tREAD_ONLY\tSOURCE\tIO/SQL\tLAG")
	for _, in := range cl.Instances {
		lag := "-"
		if in.LagSeconds != nil {
			lag = fmt.Sprintf("%ds", *in.LagSeconds)
		}
		threads := "-"
		if in.Role == view.RoleReplica {
			threads = fmt.Sprintf("%s/%s", yesNo(in.IORunning), yesNo(in.SQLRunning))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Addr, in.Role, yesNo(in.Reachable), yesNo(in.ReadOnly), orDash(in.Source), threads, lag)
	}
	_ = tw.Flush()
	if a := cl.Address; a != nil {
		fmt.Fprintf(g.stdout, "address: %s %s held by %s\n", a.Mover, orDash(a.Client), orDash(a.Holder))
	}
	return exitCode(int(st), nil)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// apiSwitch asks the manager for a switchover and prints its outcome.
func apiSwitch(ctx context.Context, g *globals, af *apiFlags, f *switchFlags) error {
	name, c, err := af.connect(g, &f.cf)
	if err != nil {
		return err
	}
	res, err := c.Switchover(ctx, name, view.SwitchRequest{NewPrimary: f.newMaster, OrigMasterIsNewSlave: f.origIsNewSlave, DryRun: f.dryRun, By: who()})
	var ae *api.Error
	if errors.As(err, &ae) && ae.Result != nil {
		res, err = *ae.Result, fmt.Errorf("%s", ae.Message)
	}
	if res.Plan != "" {
		fmt.Fprintln(g.stdout, res.Plan)
	}
	if len(res.Report) > 0 && !f.asJSON {
		fmt.Fprintf(g.stdout, "report: %s\n", res.Report)
	} else if len(res.Report) > 0 {
		fmt.Fprintln(g.stdout, string(res.Report))
	}
	if err != nil {
		return exitCode(1, fmt.Errorf("switchover of %s: %w", name, err))
	}
	if !res.OK {
		return exitCode(1, fmt.Errorf("switchover of %s failed: %s", name, res.Error))
	}
	if f.dryRun {
		fmt.Fprintln(g.stdout, "dry run: nothing was changed")
	}
	return nil
}

// newPauseCmd and newResumeCmd suspend and lift automatic failover through
// a running manager's API.
func newPauseCmd(g *globals) *cobra.Command {
	var (
		af     apiFlags
		cf     confFlags
		reason string
	)
	cmd := &cobra.Command{
		Use:     "pause --api=URL --cluster=app1 --reason=…",
		GroupID: "ha",
		Short:   "Suspend automatic failover of a cluster (maintenance); the manager keeps watching and alerting",
		Long: `Pause automatic failover of one cluster through a running manager's API. The
manager keeps probing the primary, keeps the metrics and sends the alerts, but
a dead primary is not failed over: a "failover NOT started" notification goes
out instead. The pause survives a manager restart; resume lifts it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !af.enabled() {
				return exitCode(1, errors.New("pause needs a running manager's API: --api=URL or $"+apiEnv))
			}
			name, c, err := af.connect(g, &cf)
			if err != nil {
				return err
			}
			if err := c.Pause(cmd.Context(), name, who(), reason); err != nil {
				return exitCode(1, fmt.Errorf("pause %s: %w", name, err))
			}
			fmt.Fprintf(g.stdout, "%s: automatic failover paused\n", name)
			return nil
		},
	}
	af.register(cmd)
	cf.registerOptional(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the pause and sent in the notification)")
	return cmd
}

func newResumeCmd(g *globals) *cobra.Command {
	var (
		af apiFlags
		cf confFlags
	)
	cmd := &cobra.Command{
		Use:     "resume --api=URL --cluster=app1",
		GroupID: "ha",
		Short:   "Lift a pause of automatic failover",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !af.enabled() {
				return exitCode(1, errors.New("resume needs a running manager's API: --api=URL or $"+apiEnv))
			}
			name, c, err := af.connect(g, &cf)
			if err != nil {
				return err
			}
			if err := c.Resume(cmd.Context(), name, who()); err != nil {
				return exitCode(1, fmt.Errorf("resume %s: %w", name, err))
			}
			fmt.Fprintf(g.stdout, "%s: automatic failover resumed\n", name)
			return nil
		},
	}
	af.register(cmd)
	cf.registerOptional(cmd)
	return cmd
}
