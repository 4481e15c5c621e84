package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/address/movers"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
)

// Drop-in replacements for MHA's master_ip_failover_script and
// master_ip_online_change_script: Perl MHA (or anything speaking its script
// protocol) calls `cloudmha master-ip-failover --command=… --orig_master_host=…`
// and the configured address mover does the work.

// dropinEnv is set in the environment of the scripts a drop-in runs (script
// mover), so that a configuration whose master_ip_failover_script calls the
// drop-in again fails at once instead of recursing.
const dropinEnv = "CLOUDMHA_DROPIN"

// MHA's exit codes for master_ip_failover_script and
// master_ip_online_change_script.
const (
	dropinOK      = 0
	dropinFail    = 1
	dropinProceed = 10 // failed, but MHA proceeds
)

// dropinHost is one end of the move as MHA passes it.
type dropinHost struct {
	host, ip string
	port     int
	user     string
	password string
	sshUser  string
	sshHost  string
	sshIP    string
	sshPort  int
}

// dropinOpts are the drop-in's flags: MHA's script arguments plus the
// address configuration.
type dropinOpts struct {
	online bool // master_ip_online_change_script (else master_ip_failover_script)

	command        string
	sshUser        string // --ssh_user (failover script)
	orig, nw       dropinHost
	origIsNewSlave bool

	conf, globalConf string
	mover            string
	vip, vipIface    string
	vipPrefix        int
	moverOptions     []string
	sshOptions       string
}

// register declares the flags on cmd. Every argument MHA 0.58 passes is
// declared; unknown ones are ignored (see runDropin).
func (o *dropinOpts) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.command, "command", "", "MHA command: "+o.commands())
	host := func(prefix string, h *dropinHost) {
		f.StringVar(&h.host, prefix+"host", "", "hostname of the "+strings.TrimSuffix(prefix, "_")+" (MHA)")
		f.StringVar(&h.ip, prefix+"ip", "", "IP address of the "+strings.TrimSuffix(prefix, "_"))
		f.IntVar(&h.port, prefix+"port", 0, "MySQL port of the "+strings.TrimSuffix(prefix, "_"))
		f.StringVar(&h.user, prefix+"user", "", "MySQL user (passed by MHA; unused by most movers)")
		f.StringVar(&h.password, prefix+"password", "", "MySQL password (passed by MHA; never printed)")
		f.StringVar(&h.sshUser, prefix+"ssh_user", "", "SSH user of the "+strings.TrimSuffix(prefix, "_"))
		f.StringVar(&h.sshHost, prefix+"ssh_host", "", "SSH host, when it differs from the hostname")
		f.StringVar(&h.sshIP, prefix+"ssh_ip", "", "SSH address, when it differs from the IP")
		f.IntVar(&h.sshPort, prefix+"ssh_port", 0, "SSH port, when not 22")
	}
	host("orig_master_", &o.orig)
	host("new_master_", &o.nw)
	f.StringVar(&o.sshUser, "ssh_user", "", "SSH user (MHA: the old primary's for stop/stopssh/status, the new one's for start)")
	f.BoolVar(&o.origIsNewSlave, "orig_master_is_new_slave", false, "the old primary becomes a replica of the new one (online change)")

	f.StringVar(&o.conf, "conf", "", "cluster configuration (MHA app.cnf or cloudmha YAML): servers and the address: section; optional")
	f.StringVar(&o.globalConf, "global_conf", "", "MHA global defaults file, with an app.cnf --conf")
	f.StringVar(&o.mover, "mover", "", "address mover (vip, script or a cloud provider kind); overrides the configuration's address section")
	f.StringVar(&o.vip, "vip", "", "vip mover: the virtual IP")
	f.StringVar(&o.vipIface, "vip_interface", "", "vip mover: the network interface (eth0)")
	f.IntVar(&o.vipPrefix, "vip_prefix", 0, "vip mover: the prefix length (default 32 / 128)")
	f.StringArrayVar(&o.moverOptions, "mover-option", nil, "mover option key=value (address.options); repeatable")
	f.StringVar(&o.sshOptions, "ssh_options", "", "SSH options for the servers, e.g. \"-i KEY -o StrictHostKeyChecking=no\" (overrides the configuration's)")
	_ = cmd.MarkFlagFilename("conf", "cnf", "yaml", "yml")
}

func (o *dropinOpts) commands() string {
	if o.online {
		return "stop or start"
	}
	return "stop, stopssh, start or status"
}

func (o *dropinOpts) what() string {
	if o.online {
		return "master_ip_online_change_script"
	}
	return "master_ip_failover_script"
}

// newMasterIPFailoverCmd is `cloudmha master-ip-failover`, a drop-in
// master_ip_failover_script.
func newMasterIPFailoverCmd(g *globals) *cobra.Command {
	o := &dropinOpts{}
	cmd := &cobra.Command{
		Use:   "master-ip-failover --command=stop|stopssh|start|status --orig_master_host=H … [--conf=FILE | --mover=KIND …]",
		Short: "Drop-in MHA master_ip_failover_script: move the address with a cloudmha mover",
		Long: `Replace MHA's master_ip_failover_script with one line in app.cnf:

  master_ip_failover_script=/usr/local/bin/cloudmha master-ip-failover --conf=/etc/masterha/app1.yaml

MHA calls it with its usual arguments; cloudmha's address mover (vip, or a
cloud mover such as an Alibaba Cloud ENI/HaVip or an AWS secondary IP) does
the work:
  --command=stop     release the address from the old primary, which is NOT
                     reachable over SSH (the mover must not wait on it)
  --command=stopssh  release it from the old primary, reachable over SSH
  --command=start    acquire it on --new_master_host
  --command=status   check that the mover works (exit 0 when it does)

The address comes from --conf (a cloudmha YAML's address: section, or an
app.cnf's address_mover/vip keys), or from flags (--mover, --vip,
--vip_interface, --vip_prefix, --mover-option key=value) which override it.
Without --conf the servers are MHA's --orig_master_* and --new_master_* hosts.
With --conf, MHA's hosts are matched to its servers by hostname or IP.

Exit codes are MHA's: 0 done, 10 failed but the failover may proceed, 1 failed.
Single-dash long options (-command=stop) and unknown options are accepted.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDropin(cmd, g, o, args)
		},
	}
	o.register(cmd)
	return cmd
}

// newMasterIPOnlineChangeCmd is `cloudmha master-ip-online-change`, a
// drop-in master_ip_online_change_script.
func newMasterIPOnlineChangeCmd(g *globals) *cobra.Command {
	o := &dropinOpts{online: true}
	cmd := &cobra.Command{
		Use:   "master-ip-online-change --command=stop|start --orig_master_host=H --new_master_host=H … [--conf=FILE | --mover=KIND …]",
		Short: "Drop-in MHA master_ip_online_change_script (masterha_master_switch --master_state=alive)",
		Long: `Replace MHA's master_ip_online_change_script with one line in app.cnf:

  master_ip_online_change_script=/usr/local/bin/cloudmha master-ip-online-change --conf=/etc/masterha/app1.yaml

  --command=stop   release the address from the old primary (both are alive)
  --command=start  acquire it on the new primary

--orig_master_is_new_slave is passed on to the mover. Configuration, host
matching and exit codes are those of "cloudmha master-ip-failover".`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDropin(cmd, g, o, args)
		},
	}
	o.register(cmd)
	return cmd
}

// perlStyleArgs turns Perl Getopt::Long's single-dash long options
// (-command=stop, -orig_master_host h) into pflag's --command=stop. A lone
// "-h" stays a shorthand.
func perlStyleArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			if name, _, _ := strings.Cut(a[1:], "="); len(name) > 1 {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// runDropin parses MHA's arguments, runs the mover and maps the outcome to
// MHA's exit codes.
func runDropin(cmd *cobra.Command, g *globals, o *dropinOpts, args []string) error {
	f := cmd.Flags()
	_ = cmd.InheritedFlags() // merges --log-level and --log-format into f
	f.ParseErrorsAllowlist.UnknownFlags = true
	if err := f.Parse(perlStyleArgs(args)); err != nil {
		return exitCode(dropinFail, fmt.Errorf("%s: %w", cmd.Name(), err))
	}
	if help, _ := f.GetBool("help"); help {
		return cmd.Help()
	}
	if !f.Changed("log-level") {
		g.logLevel = "info" // MHA copies the script's output into its log
	}
	log := g.logger().With("script", o.what())
	if n := f.NArg(); n > 0 {
		// Values of unknown options, most likely; not printed (one may be
		// a password).
		log.Debug("ignoring arguments that are not options", "count", n)
	}
	code, err := dropin(cmd.Context(), g, log, o, f.Changed("ssh_options"))
	if err != nil {
		return exitCode(code, fmt.Errorf("%s --command=%s: %w", o.what(), o.command, err))
	}
	return nil
}

// dropin does the work; it returns MHA's exit code and, for a non-zero
// code, the reason.
func dropin(ctx context.Context, g *globals, log *slog.Logger, o *dropinOpts, sshOptsSet bool) (int, error) {
	stdout := g.stdout
	if ctx == nil {
		ctx = context.Background()
	}
	switch {
	case o.command == "":
		return dropinFail, fmt.Errorf("--command is required (%s)", o.commands())
	case o.online && o.command != hooks.CommandStop && o.command != hooks.CommandStart,
		!o.online && o.command != hooks.CommandStop && o.command != hooks.CommandStopSSH && o.command != hooks.CommandStart && o.command != hooks.CommandStatus:
		return dropinFail, fmt.Errorf("unknown command %q (want %s)", o.command, o.commands())
	}
	if o.orig.host == "" && o.orig.ip == "" {
		return dropinFail, errors.New("--orig_master_host is required")
	}
	needNew := o.command == hooks.CommandStart || o.online
	if needNew && o.nw.host == "" && o.nw.ip == "" {
		return dropinFail, errors.New("--new_master_host is required")
	}
	if os.Getenv(dropinEnv) != "" {
		return dropinFail, fmt.Errorf("called from a script that cloudmha %s runs itself (%s is set): the configuration's address mover must not be a script calling this command; set address_mover (or --mover)", dropinCmdName(o), dropinEnv)
	}

	cfg, err := o.config(log, sshOptsSet)
	if err != nil {
		return dropinFail, err
	}
	oldSrv, err := matchServer(cfg, o.orig)
	if err != nil {
		return dropinFail, fmt.Errorf("orig_master: %w", err)
	}
	c := address.Change{
		Online:          o.online,
		OldIsNewReplica: o.origIsNewSlave,
		Old:             target(oldSrv, o.orig, o.command == hooks.CommandStopSSH || o.online),
	}
	if o.nw.host != "" || o.nw.ip != "" {
		newSrv, err := matchServer(cfg, o.nw)
		if err != nil {
			return dropinFail, fmt.Errorf("new_master: %w", err)
		}
		c.New = target(newSrv, o.nw, true)
	} else if cfg.Address.Mover == config.MoverScript {
		// The script mover looks both ends up; MHA passes no new primary
		// to stop/stopssh/status and the script is not told about it.
		c.New = c.Old
	}

	m, err := g.newMover(cfg, movers.Options{
		Logger: log,
		Runner: hooks.Runner{Logger: log, Env: []string{dropinEnv + "=1"}},
	})
	if err != nil {
		return dropinFail, err
	}
	if m == nil {
		return dropinFail, errors.New("no address mover is configured: set --mover (vip, …) or address_mover / address.mover in --conf")
	}

	switch o.command {
	case hooks.CommandStatus:
		sc, ok := m.(address.StatusChecker)
		if !ok {
			fmt.Fprintf(stdout, "Checking the status of the %s address mover: it has no status check. OK.\n", m.Kind())
			return dropinOK, nil
		}
		if err := sc.Status(ctx, c.Old); err != nil {
			return dropinFail, err
		}
		fmt.Fprintf(stdout, "Checking the status of the %s address mover on %s: OK.\n", m.Kind(), c.Old.Name)
		return dropinOK, nil
	case hooks.CommandStop, hooks.CommandStopSSH:
		fmt.Fprintf(stdout, "Releasing the address (%s) from the old primary %s (reachable over SSH: %t).\n", m.Kind(), c.Old.Name, c.Old.SSHReachable)
		err = m.Release(ctx, c)
	default: // start
		fmt.Fprintf(stdout, "Acquiring the address (%s) on the new primary %s.\n", m.Kind(), c.New.Name)
		err = m.Acquire(ctx, c)
	}
	var pe *address.ProceedError
	switch {
	case err == nil:
		fmt.Fprintln(stdout, "OK.")
		return dropinOK, nil
	case errors.As(err, &pe):
		return dropinProceed, err
	}
	return dropinFail, err
}

func dropinCmdName(o *dropinOpts) string {
	if o.online {
		return "master-ip-online-change"
	}
	return "master-ip-failover"
}

// target is the mover's view of one end: the configured server's name and
// what MHA said about it.
func target(s config.Server, h dropinHost, sshReachable bool) address.Target {
	t := address.Target{Name: s.Name, Hostname: s.Hostname, IP: s.IP, Port: s.Port, SSHReachable: sshReachable}
	if h.host != "" {
		t.Hostname = h.host
	}
	if h.ip != "" {
		t.IP = h.ip
	}
	if h.port != 0 {
		t.Port = h.port
	}
	return t
}

// matchServer finds MHA's host among the configured servers: by hostname or
// IP (either way round), else by section name.
func matchServer(cfg *config.Config, h dropinHost) (config.Server, error) {
	keys := []string{h.host, h.ip}
	for _, k := range keys {
		if k == "" {
			continue
		}
		for _, s := range cfg.Servers {
			if k == s.Hostname || k == s.IP {
				return s, nil
			}
		}
	}
	for _, s := range cfg.Servers {
		if h.host != "" && h.host == s.Name {
			return s, nil
		}
	}
	names := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		names = append(names, s.Name+"="+s.Host())
	}
	return config.Server{}, fmt.Errorf("host %s (ip %s) is not a server of the configuration (servers: %s)", h.host, h.ip, strings.Join(names, ", "))
}

// config returns the configuration the mover is built from: --conf with the
// address flags on top, or a minimal one made of MHA's two hosts.
func (o *dropinOpts) config(log *slog.Logger, sshOptsSet bool) (*config.Config, error) {
	addr, err := o.addressFlags()
	if err != nil {
		return nil, err
	}
	if o.conf != "" {
		cfg, err := config.Load(config.LoadOptions{Path: o.conf, GlobalPath: o.globalConf, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
		if addr != nil {
			cfg.Address = *addr
		}
		if sshOptsSet {
			for i := range cfg.Servers {
				cfg.Servers[i].SSHOptions = o.sshOptions
			}
		}
		if err := checkNotSelf(cfg, o); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	if addr == nil {
		return nil, errors.New("no address configuration: pass --conf=FILE (cloudmha YAML with address:, or app.cnf) or --mover=KIND (e.g. --mover=vip --vip=IP --vip_interface=eth0)")
	}
	cfg := &config.Config{Name: "master-ip-failover", Address: *addr}
	cfg.Servers = append(cfg.Servers, o.server(o.orig, o.orig.sshUser))
	if o.nw.host != "" || o.nw.ip != "" {
		if s := o.server(o.nw, o.nw.sshUser); s.Name != cfg.Servers[0].Name {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
	if addr.Mover == config.MoverScript {
		return nil, errors.New("--mover=script needs --conf with master_ip_failover_script")
	}
	return cfg, nil
}

// server is a standalone server made from MHA's arguments: its name and
// hostname are MHA's host.
func (o *dropinOpts) server(h dropinHost, sshUser string) config.Server {
	name := h.host
	if name == "" {
		name = h.ip
	}
	if sshUser == "" {
		sshUser = o.sshUser
	}
	if sshUser == "" {
		sshUser = config.DefaultUser
	}
	port := h.port
	if port == 0 {
		port = config.DefaultPort
	}
	user := h.user
	if user == "" {
		user = config.DefaultUser
	}
	return config.Server{
		Name: name, Hostname: name, IP: h.ip, Port: port,
		SSHHost: h.sshHost, SSHIP: h.sshIP, SSHPort: h.sshPort, SSHUser: sshUser,
		SSHOptions:           o.sshOptions,
		SSHConnectionTimeout: config.DefaultSSHConnectionTimeout,
		User:                 user, Password: config.NewSecret(h.password),
	}
}

// addressFlags is the address section given by flags, or nil when --mover
// is not set.
func (o *dropinOpts) addressFlags() (*config.Address, error) {
	if o.mover == "" {
		if o.vip != "" || o.vipIface != "" || o.vipPrefix != 0 || len(o.moverOptions) > 0 {
			return nil, errors.New("--vip, --vip_interface, --vip_prefix and --mover-option need --mover")
		}
		return nil, nil
	}
	a := &config.Address{Mover: strings.ToLower(o.mover), VIP: o.vip, Interface: o.vipIface, Prefix: o.vipPrefix}
	if a.Mover == config.MoverVIP {
		if a.VIP == "" || a.Interface == "" {
			return nil, errors.New("--mover=vip needs --vip and --vip_interface")
		}
	}
	for _, kv := range o.moverOptions {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--mover-option %q: want key=value", kv)
		}
		if a.Options == nil {
			a.Options = map[string]string{}
		}
		a.Options[k] = v
	}
	return a, nil
}

// checkNotSelf refuses a configuration whose address mover is the script
// mover running this very command (an MHA app.cnf pointing
// master_ip_failover_script at cloudmha without address_mover).
func checkNotSelf(cfg *config.Config, o *dropinOpts) error {
	if cfg.Address.Mover != config.MoverScript {
		return nil
	}
	script := cfg.MasterIPFailoverScript
	if o.online {
		script = cfg.MasterIPOnlineChangeScript
	}
	for _, name := range []string{"master-ip-failover", "master-ip-online-change"} {
		if strings.Contains(script, name) {
			return fmt.Errorf("%s: the address mover is %q, i.e. %s, which is this command: set the real mover with --mover=KIND (and its flags) or use a cloudmha YAML --conf with address.mover", o.conf, config.MoverScript, o.what())
		}
	}
	return nil
}
