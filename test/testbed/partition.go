package testbed

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Partition drops traffic in both directions between each pair of
// addresses on the bed's bridge (an nftables bridge-family table in the
// switch namespace), leaving every other path up: a manager-only
// partition, or replicas cut off from the primary while the manager still
// sees it. name must be unique among the bed's active partitions. The
// returned heal removes the rule; it is idempotent.
func (b *Bed) Partition(ctx context.Context, name string, pairs ...[2]string) (heal func() error, err error) {
	table := "cmha_part_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, strings.ToLower(name))
	nft := func(args ...string) error {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if out, err := b.Exec(c, b.SwitchNS, "nft", args...); err != nil {
			return fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := nft("add", "table", "bridge", table); err != nil {
		return nil, err
	}
	healed := false
	heal = func() error {
		if healed {
			return nil
		}
		healed = true
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := b.Exec(c, b.SwitchNS, "nft", "delete", "table", "bridge", table); err != nil {
			return fmt.Errorf("heal partition %s: %w: %s", name, err, out)
		}
		return nil
	}
	if err := nft("add", "chain", "bridge", table, "cut", "{ type filter hook forward priority 0; policy accept; }"); err != nil {
		_ = heal()
		return nil, err
	}
	for _, p := range pairs {
		for _, dir := range [][2]string{{p[0], p[1]}, {p[1], p[0]}} {
			if err := nft("add", "rule", "bridge", table, "cut", "ip", "saddr", dir[0], "ip", "daddr", dir[1], "drop"); err != nil {
				_ = heal()
				return nil, err
			}
		}
	}
	return heal, nil
}
