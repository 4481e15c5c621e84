package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/address/movers"
	"github.com/cloudmha/cloudmha/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// globals are the flags every subcommand shares.
type globals struct {
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
	// newMover builds address movers (movers.New; tests put a fake here).
	newMover func(*config.Config, movers.Options) (address.Mover, error)
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(g.logLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// confFlags are MHA's --conf and --global_conf.
type confFlags struct {
	conf       string
	globalConf string
}

func (c *confFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.conf, "conf", "", "cluster configuration: an MHA app.cnf or a cloudmha YAML file (required)")
	cmd.Flags().StringVar(&c.globalConf, "global_conf", "", "MHA global defaults file (default /etc/masterha_default.cnf when it exists; \"none\" to skip)")
	_ = cmd.MarkFlagRequired("conf")
	_ = cmd.MarkFlagFilename("conf", "cnf", "yaml", "yml")
	_ = cmd.MarkFlagFilename("global_conf", "cnf")
}

// registerOptional registers --conf without making it required (commands
// that can name the cluster another way, e.g. --api with --cluster).
func (c *confFlags) registerOptional(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.conf, "conf", "", "cluster configuration: an MHA app.cnf or a cloudmha YAML file")
	cmd.Flags().StringVar(&c.globalConf, "global_conf", "", "MHA global defaults file (default /etc/masterha_default.cnf when it exists; \"none\" to skip)")
	_ = cmd.MarkFlagFilename("conf", "cnf", "yaml", "yml")
	_ = cmd.MarkFlagFilename("global_conf", "cnf")
}

func (c *confFlags) load(g *globals) (*config.Config, error) {
	if c.conf == "" {
		return nil, errors.New("--conf is required")
	}
	cfg, err := config.Load(config.LoadOptions{Path: c.conf, GlobalPath: c.globalConf, Logger: g.logger()})
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// newRootCmdWith builds the command tree around g (tests set g's seams).
func newRootCmdWith(g *globals) *cobra.Command {
	if g.newMover == nil {
		g.newMover = movers.New
	}
	stdout, stderr := g.stdout, g.stderr
	root := &cobra.Command{
		Use:   "cloudmha",
		Short: "MySQL/MariaDB primary high availability for the cloud (an MHA successor)",
		Long: `cloudmha keeps a MySQL or MariaDB primary/replica cluster writable through
failures and moves the clients' address to the new primary.

It reads MHA's app.cnf as it is and answers to MHA's command names:
  masterha_check_repl   = cloudmha check-repl
  masterha_check_ssh    = cloudmha check-ssh
  masterha_check_status = cloudmha status
  masterha_manager      = cloudmha manager
  masterha_master_switch --master_state=alive|dead = cloudmha switch | failover
  masterha_stop         = cloudmha stop
Call them through symlinks (cloudmha install-aliases) or as
"cloudmha masterha_check_repl --conf=/etc/app1.cnf".`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddGroup(&cobra.Group{ID: "ha", Title: "High availability (MHA: masterha_manager, masterha_master_switch, masterha_stop):"},
		&cobra.Group{ID: "check", Title: "Checks (MHA: masterha_check_*):"},
		&cobra.Group{ID: "sandbox", Title: "Trying it out:"})
	root.AddCommand(
		newManagerCmd(g),
		newStopCmd(g),
		newSwitchCmd(g),
		newFailoverCmd(g),
		newAckCmd(g),
		newPauseCmd(g),
		newResumeCmd(g),
		newMasterSwitchCmd(g),
		newCheckReplCmd(g),
		newCheckSSHCmd(g),
		newStatusCmd(g),
		newSandboxCmd(g),
		newCloudsimCmd(g),
		newInstallAliasesCmd(g),
		newMasterIPFailoverCmd(g),
		newMasterIPOnlineChangeCmd(g),
	)
	return root
}

func newInstallAliasesCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "install-aliases",
		Short: "Create masterha_* symlinks to this binary",
		Long: `Create masterha_check_repl, masterha_check_ssh and masterha_check_status as
symlinks to this binary, so that runbooks and cron jobs written for MHA keep
working. Existing files of those names are left alone unless they already
point here.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this binary: %w", err)
			}
			for name := range mhaAliases {
				link := dir + "/" + name
				if cur, err := os.Readlink(link); err == nil && cur == self {
					continue
				}
				if err := os.Symlink(self, link); err != nil {
					return fmt.Errorf("create %s: %w", link, err)
				}
				fmt.Fprintf(g.stdout, "%s -> %s\n", link, self)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "/usr/local/bin", "directory for the symlinks")
	return cmd
}
