// Package movers builds the address mover a cluster's configuration asks
// for. It lives apart from package address because the providers
// (address/vip, address/script, …) import address for its types; a factory
// inside address would be an import cycle.
package movers

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/address"
	aliyunmover "github.com/cloudmha/cloudmha/internal/address/aliyun"
	awsmover "github.com/cloudmha/cloudmha/internal/address/aws"
	"github.com/cloudmha/cloudmha/internal/address/rfc2136"
	"github.com/cloudmha/cloudmha/internal/address/script"
	tencentmover "github.com/cloudmha/cloudmha/internal/address/tencent"
	"github.com/cloudmha/cloudmha/internal/address/vip"
	"github.com/cloudmha/cloudmha/internal/cloud/observe"
	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/hooks"
	"github.com/cloudmha/cloudmha/internal/remote"
)

// Options are what movers need from the outside world.
type Options struct {
	// Dial opens TCP connections (SSH, checks through the address); nil
	// means net.Dialer.
	Dial remote.DialFunc
	// Logger receives the movers' logs; nil discards.
	Logger *slog.Logger
	// Runner runs MHA scripts for the script mover. Its Logger defaults
	// to Logger.
	Runner hooks.Runner
	// Observe, when set, sees every cloud API request of the cloud movers
	// (for the metrics).
	Observe observe.Func
}

// New returns the mover cfg.Address.Mover names, or nil, nil when none is
// configured ("" or "none"). A configuration with only
// master_ip_online_change_script gets the script mover, so that switchovers
// run it as MHA does. Kinds not implemented yet are an error.
//
// Around the provider: a mover whose clients use one IP address
// (address.Addressed) is wrapped so that the new primary is health-checked
// before the move and the address verified after it (options verify =
// mysql|tcp|none, verify_timeout, taken from the mover's options); and
// address.dns, when set, adds a DNS layer on top.
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("address mover: no configuration")
	}
	m, err := newWrapped(cfg, o)
	if err != nil || m == nil {
		return m, err
	}
	if l := cfg.Address.DNS; l != nil {
		lc := *cfg
		lc.Address = config.Address{Mover: l.Mover, Options: l.Options}
		dns, err := newWrapped(&lc, o)
		if err != nil {
			return nil, fmt.Errorf("address.dns (%s:%d): %w", l.File, l.Line, err)
		}
		m = &layered{main: m, dns: dns}
	}
	return m, nil
}

// newWrapped builds the provider of cfg.Address.Mover and, for a cloud
// mover with one client address, the verification around it.
func newWrapped(cfg *config.Config, o Options) (address.Mover, error) {
	kind := cfg.Address.Mover
	if kind == config.MoverVIP || kind == config.MoverScript || kind == config.MoverNone || kind == "none" ||
		slices.Contains(config.DNSMovers(), kind) {
		// vip verifies itself, a script is the user's, and a DNS mover
		// verifies by reading the record back (its own option verify).
		return newProvider(cfg, o)
	}
	vc := *cfg
	vc.Address.Options = map[string]string{}
	mode, timeout := address.CheckMySQL, DefaultVerifyTimeout
	for k, v := range cfg.Address.Options {
		switch k {
		case "verify":
			if !address.ValidCheckMode(v) {
				return nil, fmt.Errorf("address mover %s: option verify=%q: want mysql, tcp or none", kind, v)
			}
			mode = v
		case "verify_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("address mover %s: option verify_timeout=%q: want a positive duration such as 10s", kind, v)
			}
			timeout = d
		default:
			vc.Address.Options[k] = v
		}
	}
	m, err := newProvider(&vc, o)
	if err != nil || m == nil {
		return m, err
	}
	a, ok := m.(address.Addressed)
	if !ok || mode == address.CheckNone {
		return m, nil
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var dial address.DialFunc
	if o.Dial != nil {
		dial = address.DialFunc(o.Dial)
	}
	return &verified{Mover: m, addr: a, mode: mode, timeout: timeout, dial: dial,
		log: log.With("mover", m.Kind())}, nil
}

// newProvider builds the provider cfg.Address.Mover names.
func newProvider(cfg *config.Config, o Options) (address.Mover, error) {
	kind := cfg.Address.Mover
	switch kind {
	case config.MoverNone, "none":
		if kind == config.MoverNone && cfg.MasterIPOnlineChangeScript != "" {
			return script.New(cfg, o.Runner, o.Logger)
		}
		return nil, nil
	case config.MoverVIP:
		return vip.New(cfg, vip.Options{Dial: o.Dial, Logger: o.Logger})
	case aliyunmover.KindHaVip, aliyunmover.KindENI, aliyunmover.KindSecondaryIP, aliyunmover.KindEIP, aliyunmover.KindDNS,
		"aliyun/havip", "aliyun/eni", "aliyun/secondary-ip", "aliyun/eip", "aliyun/dns", "aliyun-dns":
		return aliyunmover.New(cfg, aliyunmover.Options{Dial: o.Dial, Logger: o.Logger, Observe: o.Observe})
	case awsmover.KindSecondaryIP, awsmover.KindEIP, awsmover.KindRoute, awsmover.KindRoute53:
		return awsmover.New(cfg, awsmover.Options{Dial: o.Dial, Logger: o.Logger, Observe: o.Observe})
	case tencentmover.KindHaVip, tencentmover.KindPrivateIP, "tencent/havip", "tencent/private-ip":
		return tencentmover.New(cfg, tencentmover.Options{Dial: o.Dial, Logger: o.Logger, Observe: o.Observe})
	case rfc2136.Kind:
		return rfc2136.New(cfg, rfc2136.Options{Dial: o.Dial, Logger: o.Logger})
	case config.MoverScript:
		if cfg.MasterIPFailoverScript == "" {
			return nil, fmt.Errorf("address mover script needs master_ip_failover_script")
		}
		return script.New(cfg, o.Runner, o.Logger)
	}
	return nil, fmt.Errorf("unknown address mover %s (available: %s)", kind, strings.Join(Kinds(), ", "))
}

// Kinds lists the address movers this build knows.
func Kinds() []string {
	return []string{config.MoverVIP, config.MoverScript,
		aliyunmover.KindHaVip, aliyunmover.KindENI, aliyunmover.KindSecondaryIP, aliyunmover.KindEIP, aliyunmover.KindDNS,
		awsmover.KindSecondaryIP, awsmover.KindEIP, awsmover.KindRoute, awsmover.KindRoute53,
		tencentmover.KindHaVip, tencentmover.KindPrivateIP, rfc2136.Kind}
}
