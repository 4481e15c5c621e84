package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloudmha/cloudmha/test/testbed"
)

// sandboxConf is the MHA configuration the sandbox writes for its cluster.
func sandboxConf(b *testbed.Bed) string { return filepath.Join(b.Opts.WorkDir, "app1.cnf") }

func newSandboxCmd(g *globals) *cobra.Command {
	var (
		hosts    int
		prefix   string
		noSemi   bool
		subnet   string
		selfPath string
	)
	workDir := func() string { return filepath.Join("/var/tmp/cloudmha-testbed", prefix) }
	cmd := &cobra.Command{
		Use:     "sandbox up|down|status",
		GroupID: "sandbox",
		Short:   "Run a throw-away MariaDB cluster in network namespaces on this machine",
		Long: `Bring up a real primary/replica cluster on this machine to try cloudmha on:
each host is a network namespace with its own address in 198.18.0.0/24 (the
benchmarking range), its own mariadbd (GTID, semi-sync) and sshd, plus a VIP
on the primary. Nothing of it is reachable from outside the machine: the
bridge lives in its own namespace, namespaces have no default route, and a
blackhole route for the subnet stays in the host's routing table.

Needs root, mariadb-server and openssh-server. "up" writes an MHA app.cnf
for the cluster; run cloudmha from the manager namespace against it:
  ip netns exec cmha-mgr cloudmha check-repl --conf=/var/tmp/cloudmha-testbed/cmha/app1.cnf`,
	}
	cmd.PersistentFlags().StringVar(&prefix, "prefix", "cmha", "name prefix of the sandbox's namespaces")
	up := &cobra.Command{
		Use:   "up",
		Short: "Create the sandbox (replaces an earlier one of the same prefix)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			b, err := testbed.Up(cmd.Context(), testbed.Options{
				Hosts: hosts, Prefix: prefix, Subnet: subnet, SemiSync: !noSemi, Logger: g.logger(), WorkDir: workDir(),
			})
			if err != nil {
				return fmt.Errorf("sandbox up: %w", err)
			}
			took := time.Since(start)
			conf := sandboxConf(b)
			if err := b.WriteMHAConfig(conf, nil); err != nil {
				return fmt.Errorf("sandbox up: %w", err)
			}
			self := selfPath
			if self == "" {
				if self, err = os.Executable(); err != nil {
					self = "cloudmha"
				}
			}
			fmt.Fprintf(g.stdout, "sandbox %q is up in %.1f s\n\n", prefix, took.Seconds())
			printBed(g, b)
			fmt.Fprintf(g.stdout, `
MHA configuration: %[1]s
Next:
  ip netns exec %[2]s %[3]s check-repl --conf=%[1]s
  ip netns exec %[2]s %[3]s check-ssh  --conf=%[1]s
  ip netns exec %[4]s mariadb -h %[5]s -u %[6]s -p    # a client through the VIP; the password is in %[1]s
  %[3]s sandbox down --prefix=%[7]s
`, conf, b.ManagerNS, self, b.ClientNS, b.VIP, b.User, prefix)
			return nil
		},
	}
	up.Flags().IntVar(&hosts, "hosts", 3, "number of database hosts")
	up.Flags().BoolVar(&noSemi, "no-semi-sync", false, "use asynchronous replication")
	up.Flags().StringVar(&subnet, "subnet", "198.18.0.0/24", "subnet inside 198.18.0.0/15 (refused if the host uses it)")
	up.Flags().StringVar(&selfPath, "self", "", "path of cloudmha to print in the next steps")
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the sandbox and remove its namespaces",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := testbed.Load(workDir())
			if err != nil {
				b = &testbed.Bed{Opts: testbed.Options{Prefix: prefix, WorkDir: workDir()}}
			}
			if err := b.Down(cmd.Context()); err != nil {
				return fmt.Errorf("sandbox down: %w", err)
			}
			left, err := testbed.Leftovers(prefix)
			if err != nil {
				return fmt.Errorf("sandbox down: %w", err)
			}
			if len(left) > 0 {
				return fmt.Errorf("sandbox down: left behind: %v", left)
			}
			fmt.Fprintf(g.stdout, "sandbox %q is down\n", prefix)
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the sandbox's hosts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := testbed.Load(workDir())
			if err != nil {
				fmt.Fprintf(g.stdout, "sandbox %q is not up\n", prefix)
				return exitCode(2, nil)
			}
			printBed(g, b)
			fmt.Fprintf(g.stdout, "\nMHA configuration: %s\n", sandboxConf(b))
			return nil
		},
	}
	cmd.AddCommand(up, down, status)
	return cmd
}

func printBed(g *globals, b *testbed.Bed) {
	for _, h := range b.Hosts {
		role := "replica"
		if h.Name == b.Primary {
			role = "primary (VIP " + b.VIP + ")"
		}
		fmt.Fprintf(g.stdout, "  %-5s %-14s netns %-10s %s\n", h.Name, h.IP, h.NS, role)
	}
	fmt.Fprintf(g.stdout, "  client netns %s, manager netns %s\n", b.ClientNS, b.ManagerNS)
}
