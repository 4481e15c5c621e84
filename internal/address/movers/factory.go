// Package movers builds the address mover a cluster's configuration asks
// for. It lives apart from package address because the providers
// (address/vip, address/script, …) import address for its types; a factory
// inside address would be an import cycle.
package movers

import (
	"fmt"
	"log/slog"

	"github.com/cloudmha/cloudmha/internal/address"
	aliyunmover "github.com/cloudmha/cloudmha/internal/address/aliyun"
	awsmover "github.com/cloudmha/cloudmha/internal/address/aws"
	"github.com/cloudmha/cloudmha/internal/address/script"
	"github.com/cloudmha/cloudmha/internal/address/vip"
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
}

// New returns the mover cfg.Address.Mover names, or nil, nil when none is
// configured ("" or "none"). A configuration with only
// master_ip_online_change_script gets the script mover, so that switchovers
// run it as MHA does. Kinds not implemented yet are an error.
func New(cfg *config.Config, o Options) (address.Mover, error) {
	if cfg == nil {
		return nil, fmt.Errorf("address mover: no configuration")
	}
	kind := cfg.Address.Mover
	switch kind {
	case config.MoverNone, "none":
		if kind == config.MoverNone && cfg.MasterIPOnlineChangeScript != "" {
			return script.New(cfg, o.Runner, o.Logger)
		}
		return nil, nil
	case config.MoverVIP:
		return vip.New(cfg, vip.Options{Dial: o.Dial, Logger: o.Logger})
	case aliyunmover.KindHaVip, aliyunmover.KindENI, "aliyun/havip", "aliyun/eni":
		return aliyunmover.New(cfg, aliyunmover.Options{Dial: o.Dial, Logger: o.Logger})
	case awsmover.KindSecondaryIP, awsmover.KindEIP:
		return awsmover.New(cfg, awsmover.Options{Dial: o.Dial, Logger: o.Logger})
	case config.MoverScript:
		if cfg.MasterIPFailoverScript == "" {
			return nil, fmt.Errorf("address mover script needs master_ip_failover_script")
		}
		return script.New(cfg, o.Runner, o.Logger)
	}
	return nil, fmt.Errorf("address mover %s is not available yet (available: %s, %s, %s, %s, %s, %s)", kind, config.MoverVIP, config.MoverScript,
		aliyunmover.KindHaVip, aliyunmover.KindENI, awsmover.KindSecondaryIP, awsmover.KindEIP)
}
