package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloudmha/cloudmha/internal/remote"
	"github.com/cloudmha/cloudmha/internal/store"
	"github.com/cloudmha/cloudmha/internal/topology"
)

func newCheckReplCmd(g *globals) *cobra.Command {
	var (
		cf             confFlags
		asJSON         bool
		budget         time.Duration
		connectTimeout time.Duration
		maxLag         time.Duration
	)
	cmd := &cobra.Command{
		Use:     "check-repl --conf=app1.cnf",
		Aliases: []string{"masterha_check_repl"},
		GroupID: "check",
		Short:   "Check replication health (MHA: masterha_check_repl)",
		Long: `Read every configured server at once and check what a failover depends on:
exactly one writable primary; every replica replicating from it with both
threads running and GTID auto-positioning; binary logs on candidates; equal
replication filters; consistent GTID mode; errant GTIDs (transactions written
on a replica), named; replication delay against --max-lag when
check_repl_delay=1; semi-sync set-up; the replication account and the
monitoring user's privileges; and settings that slow failure detection.

Exit status: 0 when healthy ("MySQL Replication Health is OK."), 1 otherwise,
with every problem and its fix printed (or in --json).`,
		Example: `  cloudmha check-repl --conf=/etc/masterha/app1.cnf
  masterha_check_repl --conf=/etc/masterha/app1.cnf
  cloudmha check-repl --conf=app1.yaml --json | jq .findings`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(g)
			if err != nil {
				return exitCode(1, err)
			}
			reader := topology.MySQLReader{ConnectTimeout: connectTimeout, ReadTimeout: budget}
			rep, _ := topology.CheckRepl(cmd.Context(), cfg, reader, budget, topology.CheckOptions{MaxLag: maxLag})
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := topology.WriteText(g.stdout, rep); err != nil {
				return err
			}
			if !rep.Healthy {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().DurationVar(&budget, "timeout", 5*time.Second, "total time allowed for reading all servers")
	cmd.Flags().DurationVar(&connectTimeout, "connect-timeout", time.Second, "time allowed to connect to one server")
	cmd.Flags().DurationVar(&maxLag, "max-lag", 10*time.Second, "replication delay above which a replica fails the check (check_repl_delay=1)")
	return cmd
}

func newCheckSSHCmd(g *globals) *cobra.Command {
	var (
		cf     confFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "check-ssh --conf=app1.cnf",
		Aliases: []string{"masterha_check_ssh"},
		GroupID: "check",
		Short:   "Check SSH from the manager to every server (MHA: masterha_check_ssh)",
		Long: `Connect over SSH (ssh_user, ssh_host/ssh_ip, ssh_port, ssh_options) to every
configured server at once, run a harmless command and report whether the host
can serve binlog salvage (mysqlbinlog or mariadb-binlog present).

Unlike MHA, cloudmha never needs SSH between database hosts, so only the
manager-to-host paths are checked. Servers with skip_init_ssh_check=1 are
skipped. Exit status 0 when every path works, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(g)
			if err != nil {
				return exitCode(1, err)
			}
			var names []string
			var targets []remote.Target
			for _, s := range cfg.Servers {
				if s.SkipInitSSHCheck {
					fmt.Fprintf(g.stdout, "%s: skipped (skip_init_ssh_check=1)\n", s.Name)
					continue
				}
				o, err := remote.ParseSSHOptions(s.SSHOptions)
				if err != nil {
					return exitCode(1, fmt.Errorf("server %s: %w", s.Name, err))
				}
				addr := s.SSHAddr()
				if o.Port != 0 {
					addr = withPort(addr, o.Port)
				}
				names = append(names, s.Name)
				targets = append(targets, remote.Target{Addr: addr, User: s.SSHUser, Options: o, Timeout: s.SSHConnectionTimeout})
			}
			results := remote.CheckAll(cmd.Context(), names, targets)
			failed := 0
			for _, r := range results {
				if !r.OK {
					failed++
				}
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					if r.OK {
						fmt.Fprintf(g.stdout, "[ok]   %s: ssh %s@%s in %.0f ms: %s\n", r.Server, r.User, r.Addr, r.Ms, r.Detail)
					} else {
						fmt.Fprintf(g.stdout, "[FAIL] %s: ssh %s@%s: %s\n", r.Server, r.User, r.Addr, r.Error)
					}
				}
				if failed == 0 {
					fmt.Fprintln(g.stdout, "All SSH connection tests passed successfully.")
				} else {
					fmt.Fprintf(g.stdout, "SSH connection tests failed on %d of %d servers.\n", failed, len(results))
				}
			}
			if failed > 0 {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var (
		cf confFlags
		af apiFlags
	)
	cmd := &cobra.Command{
		Use:     "status --conf=app1.cnf",
		Aliases: []string{"masterha_check_status"},
		GroupID: "check",
		Short:   "Tell whether a manager watches this cluster (MHA: masterha_check_status)",
		Long: `Read the manager's status file in manager_workdir and print its state the way
masterha_check_status does. The exit status is MHA's state number:
  0 PING_OK (running)   2 NOT_RUNNING   10 INITIALIZING_MONITOR
  20 PING_FAILING       21 PING_FAILED  31 CONFIG_ERROR   32 TIMESTAMP_OLD
  50 FAILOVER_RUNNING   51 FAILOVER_ERROR
and 1 when the configuration cannot be read.

With --api (or $CLOUDMHA_API) it asks a running manager instead, and also
prints every instance's role, replication threads and lag, and who holds the
address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if af.enabled() {
				return apiStatus(cmd.Context(), g, &af, &cf)
			}
			cfg, err := cf.load(g)
			if err != nil {
				return exitCode(1, err)
			}
			path := store.StatusPath(cfg.ManagerWorkdir, cfg.Name)
			state, s, err := store.Evaluate(path, time.Now(), cfg.PingInterval, nil)
			if err != nil {
				fmt.Fprintf(g.stdout, "%s master maybe down(%s). %v\n", cfg.Name, state, err)
				return exitCode(int(state), nil)
			}
			switch state {
			case store.NotRunning:
				fmt.Fprintf(g.stdout, "%s is stopped(%s).\n", cfg.Name, state)
			case store.Running:
				fmt.Fprintf(g.stdout, "%s (pid:%d) is running(%s), master:%s\n", cfg.Name, s.PID, state, s.Primary)
			default:
				fmt.Fprintf(g.stdout, "%s (pid:%d) is %s, master:%s\n", cfg.Name, s.PID, state, s.Primary)
			}
			return exitCode(int(state), nil)
		},
	}
	cf.registerOptional(cmd)
	af.register(cmd)
	return cmd
}

func withPort(hostport string, port int) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	return net.JoinHostPort(h, strconv.Itoa(port))
}
