package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/failover"
	"github.com/cloudmha/cloudmha/internal/manager"
	"github.com/cloudmha/cloudmha/internal/store"
)

func newManagerCmd(g *globals) *cobra.Command {
	var (
		confs       []string
		confDir     string
		globalConf  string
		ignoreLast  bool
		lastMinute  int
		checkOnly   bool
		hf          httpFlags
		ignoredBool bool
		ignoredStr  string
	)
	cmd := &cobra.Command{
		Use:     "manager --conf=app1.cnf [--conf=app2.cnf …]",
		Aliases: []string{"masterha_manager"},
		GroupID: "ha",
		Short:   "Watch clusters and fail over a dead primary (MHA: masterha_manager)",
		Long: `Watch one or many clusters in one process: probe each primary every
ping_interval, declare it dead only when its replicas agree (a primary that
only the manager lost is never failed over), fail over to the best replica
without losing acknowledged writes, move the address, and keep watching the
new topology (MHA exits after one failover; cloudmha does not).

Status, journal, history and reports are kept in manager_workdir; ` + "`cloudmha status`" + `
reads the status, ` + "`cloudmha stop`" + ` stops the manager, ` + "`cloudmha ack`" + ` lifts the
anti-flapping block after a failover. A manager restarted in the middle of a
failover resumes it from the journal.

With --http-listen (or metrics.listen in the configuration) the manager
serves Prometheus metrics at /metrics, a JSON API at /api/v1/ and a status
page at /. Notifications (notify: in the configuration) go out on
detection, failover start and end, switchovers, anti-flapping blocks and
address mover failures.`,
		Example: `  cloudmha manager --conf=/etc/masterha/app1.cnf
  masterha_manager --conf=/etc/masterha/app1.cnf --ignore_last_failover
  cloudmha manager --conf-dir=/etc/cloudmha/clusters --http-listen=10.0.0.5:9104 --api-token-file=/etc/cloudmha/api.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			paths, err := confPaths(confs, confDir)
			if err != nil {
				return exitCode(1, err)
			}
			var cfgs []*config.Config
			names := map[string]string{}
			for _, p := range paths {
				cfg, err := config.Load(config.LoadOptions{Path: p, GlobalPath: globalConf, Logger: g.logger()})
				if err != nil {
					return exitCode(1, fmt.Errorf("configuration: %w", err))
				}
				if prev, dup := names[cfg.Name]; dup {
					return exitCode(1, fmt.Errorf("two configurations name cluster %q: %s and %s", cfg.Name, prev, p))
				}
				names[cfg.Name] = p
				cfgs = append(cfgs, cfg)
			}
			if checkOnly {
				for _, cfg := range cfgs {
					c, err := manager.OpenCluster(cfg, manager.Deps{Logger: g.logger()})
					if err != nil {
						return exitCode(1, err)
					}
					c.Close()
					fmt.Fprintf(g.stdout, "%s: configuration and address mover OK\n", cfg.Name)
				}
				return nil
			}
			err = runManager(cmd.Context(), g, cfgs, manager.Options{
				Deps:               manager.Deps{Logger: g.logger()},
				IgnoreLastFailover: ignoreLast,
				BlockPeriod:        time.Duration(lastMinute) * time.Minute,
			}, &hf)
			if err != nil {
				return exitCode(1, err)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&confs, "conf", nil, "cluster configuration (MHA app.cnf or YAML); repeat for several clusters")
	cmd.Flags().StringVar(&confDir, "conf-dir", "", "directory of cluster configurations (*.cnf, *.yaml, *.yml)")
	cmd.Flags().StringVar(&globalConf, "global_conf", "", "MHA global defaults file (default /etc/masterha_default.cnf when it exists; \"none\" to skip)")
	cmd.Flags().BoolVar(&ignoreLast, "ignore_last_failover", false, "fail over even if the last failover was within --last_failover_minute")
	cmd.Flags().IntVar(&lastMinute, "last_failover_minute", 480, "anti-flapping block period after a failover, in minutes")
	cmd.Flags().BoolVar(&checkOnly, "check_only", false, "check the configuration and the address mover, then exit")
	hf.register(cmd)
	// Accepted for MHA compatibility; cloudmha behaves as if set sensibly.
	cmd.Flags().BoolVar(&ignoredBool, "wait_on_monitor_error", false, "accepted for MHA compatibility (cloudmha always retries)")
	cmd.Flags().BoolVar(&ignoredBool, "ignore_fail_on_start", false, "accepted for MHA compatibility")
	cmd.Flags().BoolVar(&ignoredBool, "remove_dead_master_conf", false, "accepted for MHA compatibility (cloudmha never edits the configuration)")
	cmd.Flags().BoolVar(&ignoredBool, "skip_ssh_check", false, "accepted for MHA compatibility")
	cmd.Flags().StringVar(&ignoredStr, "wait_on_failover_error", "", "accepted for MHA compatibility")
	for _, f := range []string{"wait_on_monitor_error", "ignore_fail_on_start", "remove_dead_master_conf", "skip_ssh_check", "wait_on_failover_error"} {
		_ = cmd.Flags().MarkHidden(f)
	}
	return cmd
}

func confPaths(confs []string, dir string) ([]string, error) {
	paths := append([]string(nil), confs...)
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("--conf-dir: %w", err)
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if !e.IsDir() && (ext == ".cnf" || ext == ".yaml" || ext == ".yml") {
				paths = append(paths, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(paths[len(confs):])
	if len(paths) == 0 {
		return nil, errors.New("no configuration: give --conf (repeatable) or --conf-dir")
	}
	return paths, nil
}

func newStopCmd(g *globals) *cobra.Command {
	var (
		cf      confFlags
		timeout time.Duration
		abort   bool
	)
	cmd := &cobra.Command{
		Use:     "stop --conf=app1.cnf",
		Aliases: []string{"masterha_stop"},
		GroupID: "ha",
		Short:   "Stop the manager watching this cluster (MHA: masterha_stop)",
		Long: `Send SIGTERM to the manager process that watches the cluster and wait until
it has exited. A manager in the middle of a failover finishes the current
step first; with --abort it is killed at once (a later manager resumes the
failover from the journal).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(g)
			if err != nil {
				return exitCode(1, err)
			}
			pid := store.HolderPID(filepath.Join(cfg.ManagerWorkdir, cfg.Name+".manager.lock"))
			if pid == 0 || !store.ProcessAlive(pid) {
				if s, err := store.ReadStatus(store.StatusPath(cfg.ManagerWorkdir, cfg.Name)); err == nil && store.ProcessAlive(s.PID) {
					pid = s.PID
				} else {
					fmt.Fprintf(g.stdout, "%s: no manager is running\n", cfg.Name)
					return exitCode(int(store.NotRunning), nil)
				}
			}
			sig := syscall.SIGTERM
			if abort {
				sig = syscall.SIGKILL
			}
			if err := syscall.Kill(pid, sig); err != nil {
				return exitCode(1, fmt.Errorf("signal manager pid %d: %w", pid, err))
			}
			deadline := time.Now().Add(timeout)
			for store.ProcessAlive(pid) {
				if time.Now().After(deadline) {
					return exitCode(1, fmt.Errorf("manager pid %d still runs after %s", pid, timeout))
				}
				time.Sleep(50 * time.Millisecond)
			}
			fmt.Fprintf(g.stdout, "Stopped %s successfully.\n", cfg.Name)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the manager to exit")
	cmd.Flags().BoolVar(&abort, "abort", false, "kill the manager at once (SIGKILL)")
	return cmd
}

func newAckCmd(g *globals) *cobra.Command {
	var (
		cf   confFlags
		af   apiFlags
		note string
	)
	cmd := &cobra.Command{
		Use:     "ack --conf=app1.cnf",
		GroupID: "ha",
		Short:   "Acknowledge the last failover so that automatic failover is allowed again",
		Long: `After a failover, automatic failover is blocked for --last_failover_minute
(480 by default, as in MHA) so that a flapping cluster is not failed over in a
loop. Once a person has looked at the last failover, ack lifts the block; the
failover's record stays in the history. With --api, the running manager
also marks the cluster's current alerts acknowledged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if af.enabled() {
				name, c, err := af.connect(g, &cf)
				if err != nil {
					return err
				}
				if err := c.Ack(cmd.Context(), name, who(), note); err != nil {
					return exitCode(1, fmt.Errorf("ack %s: %w", name, err))
				}
				fmt.Fprintf(g.stdout, "%s: acknowledged; automatic failover is allowed again\n", name)
				return nil
			}
			cfg, err := cf.load(g)
			if err != nil {
				return exitCode(1, err)
			}
			path := store.FailoverCompletePath(cfg.ManagerWorkdir, cfg.Name)
			at, ok := store.LastFailover(path)
			if !ok {
				fmt.Fprintf(g.stdout, "%s: no unacknowledged failover\n", cfg.Name)
				return nil
			}
			if err := store.Ack(path, who(), note, time.Now()); err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(g.stdout, "%s: failover of %s acknowledged; automatic failover is allowed again\n", cfg.Name, at.Format(time.RFC3339))
			return nil
		},
	}
	cf.registerOptional(cmd)
	af.register(cmd)
	cmd.Flags().StringVar(&note, "note", "", "a note kept with the acknowledgement")
	return cmd
}

// switchFlags are MHA's masterha_master_switch flags, shared by switch and
// failover.
type switchFlags struct {
	cf               confFlags
	newMaster        string
	newMasterPort    int
	interactive      int
	dryRun           bool
	asJSON           bool
	force            bool
	origIsNewSlave   bool
	runningUpdates   int
	runningSeconds   int
	secondsBehind    int
	skipLockAll      bool
	flushTables      int
	deadHost         string
	deadIP           string
	deadPort         int
	sshReachable     int
	skipSaveBinlog   bool
	waitGTIDInSync   int
	ignoreBinlogSrv  bool
	masterState      string
	origMasterIgnore string
}

func (f *switchFlags) registerCommon(cmd *cobra.Command) {
	f.cf.register(cmd)
	cmd.Flags().StringVar(&f.newMaster, "new_master_host", "", "server to promote (section name, hostname or IP); default: the best candidate")
	cmd.Flags().IntVar(&f.newMasterPort, "new_master_port", 0, "port of --new_master_host (MHA compatibility)")
	cmd.Flags().IntVar(&f.interactive, "interactive", 1, "1: show the plan and ask before acting; 0: act at once")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&f.force, "force", false, "accept a candidate with errant GTIDs")
}

func (f *switchFlags) registerAlive(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.origIsNewSlave, "orig_master_is_new_slave", false, "make the old primary a replica of the new one")
	cmd.Flags().IntVar(&f.runningUpdates, "running_updates_limit", 1, "refuse while a write on the old primary runs longer than this many seconds")
	cmd.Flags().IntVar(&f.secondsBehind, "seconds_behind_master", 1, "refuse while a replica lags more than this many seconds")
	cmd.Flags().IntVar(&f.runningSeconds, "running_seconds_limit", 10, "accepted for MHA compatibility")
	cmd.Flags().BoolVar(&f.skipLockAll, "skip_lock_all_tables", false, "accepted for MHA compatibility (cloudmha blocks writes with read_only)")
	cmd.Flags().IntVar(&f.flushTables, "flush_tables", 0, "accepted for MHA compatibility")
}

func (f *switchFlags) registerDead(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.deadHost, "dead_master_host", "", "the dead primary (section name, hostname or IP); default: the server the replicas follow")
	cmd.Flags().StringVar(&f.deadIP, "dead_master_ip", "", "accepted for MHA compatibility")
	cmd.Flags().IntVar(&f.deadPort, "dead_master_port", 0, "accepted for MHA compatibility")
	cmd.Flags().IntVar(&f.sshReachable, "ssh_reachable", 2, "is the dead host reachable over SSH: 1 yes, 0 no, 2 check")
	cmd.Flags().BoolVar(&f.skipSaveBinlog, "skip_save_master_binlog", false, "do not salvage the dead primary's binlog")
	cmd.Flags().IntVar(&f.waitGTIDInSync, "wait_until_gtid_in_sync", 1, "accepted for MHA compatibility (cloudmha always waits)")
	cmd.Flags().BoolVar(&f.ignoreBinlogSrv, "ignore_binlog_server_error", false, "accepted for MHA compatibility")
}

func (f *switchFlags) confirm(g *globals, in io.Reader) manager.Confirm {
	return func(plan string) bool {
		out := g.stdout
		if f.asJSON {
			out = g.stderr // stdout carries only the JSON report
		}
		fmt.Fprintln(out, plan)
		if f.dryRun {
			fmt.Fprintln(out, "--dry-run: nothing was changed.")
			return false
		}
		if f.interactive == 0 {
			return true
		}
		if fd, ok := in.(*os.File); !ok || !term.IsTerminal(int(fd.Fd())) {
			fmt.Fprintln(g.stdout, "Not a terminal and --interactive=1: refusing to act without confirmation (use --interactive=0).")
			return false
		}
		fmt.Fprint(g.stdout, "Proceed? (yes/NO): ")
		line, _ := bufio.NewReader(in).ReadString('\n')
		return strings.EqualFold(strings.TrimSpace(line), "yes")
	}
}

func (f *switchFlags) printReport(g *globals, rep *failover.Report, err error) error {
	if rep != nil {
		if f.asJSON {
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			fmt.Fprintln(g.stdout, rep.Text())
		}
	}
	if errors.Is(err, manager.ErrCancelled) {
		return exitCode(1, nil)
	}
	if err != nil {
		return exitCode(1, err)
	}
	return nil
}

func newSwitchCmd(g *globals) *cobra.Command {
	f := &switchFlags{}
	var af apiFlags
	cmd := &cobra.Command{
		Use:     "switch --conf=app1.cnf [--new_master_host=server2]",
		GroupID: "ha",
		Short:   "Switch the primary online (MHA: masterha_master_switch --master_state=alive)",
		Long: `Planned switchover of a healthy cluster: check replicas and running writes,
release the address, block writes on the old primary (read_only, then kill
client connections after a short grace), wait until the new primary holds
every transaction of the old one, promote it, repoint the replicas (and the
old primary with --orig_master_is_new_slave), move the address. The write
block is measured and printed.`,
		Example: `  cloudmha switch --conf=app1.cnf --new_master_host=server2 --orig_master_is_new_slave --interactive=0
  masterha_master_switch --master_state=alive --conf=app1.cnf --new_master_host=db2 --orig_master_is_new_slave --running_updates_limit=10000 --interactive=0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if af.enabled() {
				return apiSwitch(cmd.Context(), g, &af, f)
			}
			return runSwitch(cmd.Context(), g, f)
		},
	}
	f.registerCommon(cmd)
	f.registerAlive(cmd)
	af.register(cmd)
	// With --api the cluster may be named by --cluster instead.
	_ = cmd.Flags().SetAnnotation("conf", cobra.BashCompOneRequiredFlag, []string{"false"})
	return cmd
}

// openCluster loads the configuration and wires the cluster.
func (f *switchFlags) openCluster(g *globals) (*manager.Cluster, error) {
	cfg, err := f.cf.load(g)
	if err != nil {
		return nil, exitCode(1, err)
	}
	c, err := manager.OpenCluster(cfg, manager.Deps{Logger: g.logger()})
	if err != nil {
		return nil, exitCode(1, err)
	}
	return c, nil
}

func runSwitch(ctx context.Context, g *globals, f *switchFlags) error {
	c, err := f.openCluster(g)
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := c.Switchover(ctx, failover.SwitchOptions{
		NewPrimary:          f.newMaster,
		OrigIsNewReplica:    f.origIsNewSlave,
		RunningUpdatesLimit: time.Duration(f.runningUpdates) * time.Second,
		MaxLag:              time.Duration(f.secondsBehind) * time.Second,
		Force:               f.force,
	}, f.confirm(g, os.Stdin))
	return f.printReport(g, rep, err)
}

func newFailoverCmd(g *globals) *cobra.Command {
	f := &switchFlags{}
	cmd := &cobra.Command{
		Use:     "failover --conf=app1.cnf [--dead_master_host=server1]",
		GroupID: "ha",
		Short:   "Fail over a dead primary by hand (MHA: masterha_master_switch --master_state=dead)",
		Long: `Manual failover of a primary that is down: fence it, choose the new primary
(or take --new_master_host), catch it up from the most advanced replica,
salvage the dead primary's binlog when its host answers over SSH, promote,
repoint the replicas, move the address and report what, if anything, could
not be recovered. Refuses a primary that still answers and is writable.`,
		Example: `  cloudmha failover --conf=app1.cnf --dry-run
  masterha_master_switch --master_state=dead --conf=app1.cnf --dead_master_host=db1 --new_master_host=db2 --interactive=0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runFailover(cmd.Context(), g, f) },
	}
	f.registerCommon(cmd)
	f.registerDead(cmd)
	return cmd
}

func runFailover(ctx context.Context, g *globals, f *switchFlags) error {
	c, err := f.openCluster(g)
	if err != nil {
		return err
	}
	defer c.Close()
	cfg := c.Cfg
	o := failover.Options{NewPrimary: f.newMaster, Force: f.force, SkipSalvage: f.skipSaveBinlog}
	if f.deadHost != "" {
		s, ok := manager.ServerByName(cfg, f.deadHost)
		if !ok {
			return exitCode(1, fmt.Errorf("--dead_master_host=%s is not a server of %s", f.deadHost, cfg.Name))
		}
		o.Dead = s.Name
	}
	switch f.sshReachable {
	case 0:
		o.DeadSSHReachable = failover.No
	case 1:
		o.DeadSSHReachable = failover.Yes
	}
	rep, err := c.Failover(ctx, o, false, f.confirm(g, os.Stdin))
	return f.printReport(g, rep, err)
}

// newMasterSwitchCmd is masterha_master_switch: --master_state picks the
// switch (alive) or the failover (dead).
func newMasterSwitchCmd(g *globals) *cobra.Command {
	f := &switchFlags{}
	cmd := &cobra.Command{
		Use:    "master-switch --master_state=alive|dead --conf=app1.cnf …",
		Short:  "MHA's masterha_master_switch: switch (alive) or failover (dead)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch f.masterState {
			case "alive":
				return runSwitch(cmd.Context(), g, f)
			case "dead":
				return runFailover(cmd.Context(), g, f)
			}
			return exitCode(1, fmt.Errorf("--master_state must be alive or dead (got %q)", f.masterState))
		},
	}
	f.registerCommon(cmd)
	f.registerAlive(cmd)
	f.registerDead(cmd)
	cmd.Flags().StringVar(&f.masterState, "master_state", "", "alive: online switchover; dead: failover of a dead primary")
	cmd.Flags().StringVar(&f.origMasterIgnore, "orig_master_host", "", "accepted for MHA compatibility")
	return cmd
}
