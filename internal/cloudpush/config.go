package cloudpush

import (
	"context"
	"fmt"

	"github.com/cloudmha/cloudmha/internal/config"
)

// FromConfig builds the pusher one metrics.push item describes. It checks
// the settings and reads no credential yet: the provider's chain is asked
// on the first push. The item's Metrics and Interval are for Run.
func FromConfig(ctx context.Context, mp config.MetricPush) (Pusher, error) {
	switch mp.Provider {
	case config.PushCloudWatch:
		p, err := NewCloudWatch(ctx, CloudWatchOptions{Region: mp.Region, Endpoint: mp.Endpoint, Namespace: mp.Namespace})
		if err != nil {
			return nil, fmt.Errorf("metrics push %s: %w", mp.Provider, err)
		}
		return p, nil
	case config.PushAliyunCMS:
		p, err := NewCloudMonitor(ctx, CloudMonitorOptions{Region: mp.Region, Endpoint: mp.Endpoint, GroupID: mp.GroupID})
		if err != nil {
			return nil, fmt.Errorf("metrics push %s: %w", mp.Provider, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("metrics push: unknown provider %q (want %s or %s)", mp.Provider, config.PushCloudWatch, config.PushAliyunCMS)
}
