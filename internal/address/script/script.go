// Package script is the address mover that runs an existing MHA
// master_ip_failover_script (and master_ip_online_change_script for planned
// switchovers) with MHA 0.58's arguments and exit codes.
package script

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
)

// Kind is the mover's name in the configuration (address_mover=script).
const Kind = "script"

// Mover calls the configured scripts. Either script may be empty: as in
// MHA, that step is then skipped with a warning.
type Mover struct {
	failover string // master_ip_failover_script
	online   string // master_ip_online_change_script
	servers  []config.Server
	run      hooks.Runner
	log      *slog.Logger
}

var (
	_ address.Mover         = (*Mover)(nil)
	_ address.StatusChecker = (*Mover)(nil)
)

// New builds the mover from cfg. The runner's Logger defaults to logger.
func New(cfg *config.Config, run hooks.Runner, logger *slog.Logger) (*Mover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("script mover: no configuration")
	}
	if cfg.MasterIPFailoverScript == "" && cfg.MasterIPOnlineChangeScript == "" {
		return nil, fmt.Errorf("script mover: neither master_ip_failover_script nor master_ip_online_change_script is set")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if run.Logger == nil {
		run.Logger = logger
	}
	return &Mover{
		failover: cfg.MasterIPFailoverScript,
		online:   cfg.MasterIPOnlineChangeScript,
		servers:  cfg.Servers,
		run:      run,
		log:      logger.With("mover", Kind),
	}, nil
}

// Kind implements address.Mover.
func (m *Mover) Kind() string { return Kind }

// host completes a Target with what the scripts are told about a server:
// its MySQL user and password and its SSH settings.
func (m *Mover) host(t address.Target) (hooks.Host, error) {
	for _, s := range m.servers {
		if s.Name == t.Name {
			h := hooks.HostFromServer(s)
			if t.Hostname != "" {
				h.Hostname = t.Hostname
			}
			if t.IP != "" {
				h.IP = t.IP
			}
			if t.Port != 0 {
				h.Port = t.Port
			}
			return h, nil
		}
	}
	return hooks.Host{}, fmt.Errorf("script mover: server %q is not in the configuration", t.Name)
}

func (m *Mover) hosts(c address.Change) (orig, nw hooks.Host, err error) {
	if orig, err = m.host(c.Old); err != nil {
		return
	}
	nw, err = m.host(c.New)
	return
}

// Release implements address.Mover: master_ip_failover_script
// --command=stopssh (old primary reachable over SSH) or --command=stop, or
// for an online change master_ip_online_change_script --command=stop.
// Exit 10 returns an *address.ProceedError.
func (m *Mover) Release(ctx context.Context, c address.Change) error {
	orig, nw, err := m.hosts(c)
	if err != nil {
		return err
	}
	if c.Online {
		if m.online == "" {
			m.log.Warn("master_ip_online_change_script is not set: writes on the old primary are not disabled by a script", "old", c.Old.Name)
			return nil
		}
		return m.call(ctx, "master_ip_online_change_script --command=stop", m.online, hooks.OnlineChangeArgs(hooks.CommandStop, orig, nw, c.OldIsNewReplica))
	}
	if m.failover == "" {
		m.log.Warn("master_ip_failover_script is not set: not invalidating the old primary's address", "old", c.Old.Name)
		return nil
	}
	cmd := hooks.CommandStop
	if c.Old.SSHReachable {
		cmd = hooks.CommandStopSSH
	}
	return m.call(ctx, "master_ip_failover_script --command="+cmd, m.failover, hooks.IPFailoverArgs(cmd, orig, hooks.Host{}))
}

// Acquire implements address.Mover: master_ip_failover_script
// --command=start, or master_ip_online_change_script --command=start for an
// online change. Exit 10 returns an *address.ProceedError.
func (m *Mover) Acquire(ctx context.Context, c address.Change) error {
	orig, nw, err := m.hosts(c)
	if err != nil {
		return err
	}
	if c.Online {
		if m.online == "" {
			m.log.Warn("master_ip_online_change_script is not set: nothing enables writes through the address", "new", c.New.Name)
			return nil
		}
		return m.call(ctx, "master_ip_online_change_script --command=start", m.online, hooks.OnlineChangeArgs(hooks.CommandStart, orig, nw, c.OldIsNewReplica))
	}
	if m.failover == "" {
		m.log.Warn("master_ip_failover_script is not set: not taking over the address", "new", c.New.Name)
		return nil
	}
	return m.call(ctx, "master_ip_failover_script --command=start", m.failover, hooks.IPFailoverArgs(hooks.CommandStart, orig, nw))
}

// Holder implements address.Mover: a script cannot tell.
func (m *Mover) Holder(context.Context) (string, error) {
	return "", address.ErrHolderUnknown
}

// Status runs master_ip_failover_script --command=status for the current
// primary, which must exit 0 (MHA checks it when the monitor starts). It is
// a no-op when only the online change script is configured.
func (m *Mover) Status(ctx context.Context, primary address.Target) error {
	if m.failover == "" {
		return nil
	}
	h, err := m.host(primary)
	if err != nil {
		return err
	}
	if _, err := m.run.Run(ctx, m.failover, hooks.IPFailoverArgs(hooks.CommandStatus, h, hooks.Host{})); err != nil {
		return fmt.Errorf("master_ip_failover_script --command=status: %w", err)
	}
	return nil
}

// call runs a script and maps MHA's exit codes: 0 success, 10 failed but
// proceed, anything else aborts.
func (m *Mover) call(ctx context.Context, what, script string, args []string) error {
	_, err := m.run.Run(ctx, script, args)
	switch {
	case err == nil:
		return nil
	case hooks.IsProceed(err):
		m.log.Warn("script failed with exit code 10: proceeding", "script", what)
		return &address.ProceedError{Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}
