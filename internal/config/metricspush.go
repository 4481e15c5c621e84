package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Metric push providers (metrics.push[].provider).
const (
	PushCloudWatch = "cloudwatch"
	PushAliyunCMS  = "aliyun-cms"
)

// PushProviders returns the metric push providers, in the order error
// messages list them.
func PushProviders() []string { return []string{PushCloudWatch, PushAliyunCMS} }

// Metric push defaults and limits.
const (
	DefaultPushInterval = 60 * time.Second
	MinPushInterval     = 10 * time.Second
	MaxPushInterval     = time.Hour
	// DefaultPushNamespace is the CloudWatch namespace when none is set.
	DefaultPushNamespace = "cloudmha"
)

// MetricPush is one cloud monitoring service the manager pushes metrics to
// (YAML metrics.push[]; app.cnf has no equivalent). Credentials are never
// here: each provider uses its SDK's credential chain.
type MetricPush struct {
	// Provider is PushCloudWatch or PushAliyunCMS.
	Provider string
	// Region is the cloud region. Optional for cloudwatch (the AWS chain:
	// AWS_REGION, the profile), required for aliyun-cms.
	Region string
	// Namespace is the CloudWatch namespace (cloudwatch only; the parser
	// fills in DefaultPushNamespace).
	Namespace string
	// GroupID is the CloudMonitor application group id (aliyun-cms only,
	// required; "0" means no group).
	GroupID string
	// Interval is the time between pushes; the parser fills in
	// DefaultPushInterval; 0 in a Config built in code means the default.
	Interval time.Duration
	// Metrics lists the metric families pushed (names from
	// docs/metrics.md); empty means the default key metrics.
	Metrics []string
	// Endpoint overrides the service endpoint (a private endpoint, or a
	// local emulator in tests).
	Endpoint string
}

// metricPushKeys are the keys of a metrics.push item.
func metricPushKeys() []string {
	return []string{"provider", "region", "namespace", "group_id", "interval", "metrics", "endpoint"}
}

// MetricNames returns the name of every metric family cloudmha exports
// (the tables of docs/metrics.md; a test keeps the two in step): the names
// metrics.push[].metrics may list. A histogram is pushed as its _sum and
// _count.
func MetricNames() []string {
	return []string{
		// Instances.
		"cloudmha_instance_up", "cloudmha_instance_role", "cloudmha_instance_read_only",
		"cloudmha_instance_read_duration_seconds", "cloudmha_instance_threads_connected",
		"cloudmha_instance_max_connections", "cloudmha_instance_queries_total",
		"cloudmha_instance_slow_queries_total", "cloudmha_instance_innodb_deadlocks_total",
		"cloudmha_instance_binlog_bytes", "cloudmha_instance_data_bytes",
		"cloudmha_replication_io_running", "cloudmha_replication_sql_running",
		"cloudmha_replication_seconds_behind_source", "cloudmha_replication_transactions_behind",
		"cloudmha_replication_bytes_behind", "cloudmha_replication_errant_transactions",
		"cloudmha_semisync_source_on", "cloudmha_semisync_source_clients",
		"cloudmha_semisync_source_tx_waits_total", "cloudmha_semisync_source_no_tx_total",
		"cloudmha_semisync_replica_on", "cloudmha_network_rtt_seconds", "cloudmha_network_probes_total",
		// Clusters.
		"cloudmha_manager_running", "cloudmha_manager_leader", "cloudmha_cluster_state",
		"cloudmha_cluster_verdict", "cloudmha_cluster_paused", "cloudmha_cluster_failover_blocked",
		"cloudmha_primary_probe_ok", "cloudmha_primary_probe_latency_seconds",
		"cloudmha_primary_probes_total", "cloudmha_detection_duration_seconds",
		"cloudmha_failovers_total", "cloudmha_switchovers_total", "cloudmha_failover_duration_seconds",
		"cloudmha_switchover_write_block_seconds", "cloudmha_last_failover_timestamp_seconds",
		"cloudmha_mover_operations_total", "cloudmha_mover_api_calls_total",
		// Manager.
		"cloudmha_build_info", "cloudmha_notifications_total",
	}
}

// metricsPush reads metrics.push: a list of {provider, region, namespace,
// group_id, interval, metrics, endpoint}.
func (p *yamlParser) metricsPush(pr yamlPair) {
	v := resolve(pr.val)
	if v == nil || v.Kind != yaml.SequenceNode {
		if v != nil && v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return
		}
		p.s.errs.add(p.file, pr.line, pr.disp, "must be a list of push targets (provider: %s)", strings.Join(PushProviders(), " or "))
		return
	}
	for i, it := range v.Content {
		disp := fmt.Sprintf("%s[%d]", pr.disp, i)
		l := layer{name: disp, file: p.file, line: resolveLine(it), disp: disp, prefix: disp + ".", keys: map[string]entry{}}
		var mp MetricPush
		intervalSet := false
		for _, c := range p.pairs(it, disp) {
			e := p.s.newEntry(c.key, "", p.file, c.line, c.disp)
			switch c.key {
			case "metrics":
				// A list, or a comma-separated string.
				for _, it := range p.list(c) {
					mp.Metrics = append(mp.Metrics, SplitNotifyList(it)...)
				}
			case "provider", "region", "namespace", "group_id", "interval", "endpoint":
				val, ok := p.scalar(c, false)
				if !ok {
					continue
				}
				e.val = val
				switch c.key {
				case "provider":
					mp.Provider = strings.ToLower(val)
				case "region":
					mp.Region = val
				case "namespace":
					mp.Namespace = val
				case "group_id":
					mp.GroupID = val
				case "interval":
					intervalSet = true
					d, err := ParsePushInterval(val)
					if err != nil {
						p.s.errs.addAt(e, "%v", err)
						// Keep a valid value: the problem is reported once.
						d = DefaultPushInterval
					}
					mp.Interval = d
				case "endpoint":
					mp.Endpoint = val
				}
			default:
				p.s.errs.add(p.file, c.line, c.disp, "unknown key (want %s)", strings.Join(metricPushKeys(), ", "))
				continue
			}
			l.keys[c.key] = e
		}
		if !intervalSet {
			mp.Interval = DefaultPushInterval
		}
		if mp.Provider == PushCloudWatch && mp.Namespace == "" {
			mp.Namespace = DefaultPushNamespace
		}
		p.s.push = append(p.s.push, mp)
		p.s.pushPos = append(p.s.pushPos, l)
	}
}

// ParsePushInterval parses metrics.push[].interval: a Go duration ("60s",
// "5m") or whole seconds ("60").
func ParsePushInterval(v string) (time.Duration, error) {
	d, err := ParseNotifyDuration(v)
	if err != nil {
		return 0, err
	}
	if d < MinPushInterval || d > MaxPushInterval {
		return 0, fmt.Errorf("must be between %s and %s (got %s)", MinPushInterval, MaxPushInterval, d)
	}
	return d, nil
}

// validateMetricsPush checks metrics.push.
func validateMetricsPush(c *Config, loc locator, errs *errList) {
	known := MetricNames()
	for i, mp := range c.Metrics.Push {
		at := func(key string) (string, int, string) { return loc.push(i, key) }
		switch mp.Provider {
		case PushCloudWatch:
			if mp.GroupID != "" {
				report(errs, "is for provider %s only", PushAliyunCMS)(at("group_id"))
			}
			checkCloudWatchNamespace(errs, mp.Namespace, at)
		case PushAliyunCMS:
			switch {
			case mp.GroupID == "":
				report(errs, "missing: provider %s needs the application group id (group_id; \"0\" for none)", PushAliyunCMS)(at("group_id"))
			case !allDigits(mp.GroupID):
				report(errs, "must be the numeric id of a CloudMonitor application group (got %s)", quoteVal(mp.GroupID))(at("group_id"))
			}
			if mp.Namespace != "" {
				report(errs, "is for provider %s only", PushCloudWatch)(at("namespace"))
			}
			if mp.Region == "" {
				report(errs, "missing: provider %s needs the region (e.g. cn-hangzhou)", PushAliyunCMS)(at("region"))
			}
		case "":
			report(errs, "missing: a push target needs a provider (%s)", strings.Join(PushProviders(), ", "))(at("provider"))
		default:
			report(errs, "must be one of %s (got %s)", strings.Join(PushProviders(), ", "), quoteVal(mp.Provider))(at("provider"))
		}
		if mp.Region != "" && !validRegion(mp.Region) {
			report(errs, "must be a region id such as ap-southeast-1 (got %s)", quoteVal(mp.Region))(at("region"))
		}
		if mp.Interval != 0 && (mp.Interval < MinPushInterval || mp.Interval > MaxPushInterval) {
			report(errs, "must be between %s and %s (got %s)", MinPushInterval, MaxPushInterval, mp.Interval)(at("interval"))
		}
		seen := map[string]bool{}
		for _, m := range mp.Metrics {
			switch {
			case seen[m]:
				report(errs, "lists %s twice", m)(at("metrics"))
			case !slices.Contains(known, m):
				hint := "a metric name from docs/metrics.md, e.g. cloudmha_instance_up"
				for _, suf := range []string{"_sum", "_count", "_bucket"} {
					if base, ok := strings.CutSuffix(m, suf); ok && slices.Contains(known, base) {
						hint = "the histogram's name " + base + " (its _sum and _count are pushed)"
					}
				}
				report(errs, "unknown metric %s: want %s", quoteVal(m), hint)(at("metrics"))
			}
			seen[m] = true
		}
		if mp.Endpoint != "" {
			if msg := checkPushEndpoint(mp.Provider, mp.Endpoint); msg != "" {
				report(errs, "%s", msg)(at("endpoint"))
			}
		}
	}
}

// checkCloudWatchNamespace applies CloudWatch's rules: 1 to 255
// characters, not starting with ':' nor with "AWS/" (reserved).
func checkCloudWatchNamespace(errs *errList, ns string, at func(string) (string, int, string)) {
	switch {
	case ns == "":
		return // the default
	case len(ns) > 255:
		report(errs, "must be at most 255 characters")(at("namespace"))
	case strings.HasPrefix(ns, ":") || strings.HasPrefix(strings.ToUpper(ns), "AWS/"):
		report(errs, "must not start with ':' or AWS/ (reserved by AWS) (got %s)", quoteVal(ns))(at("namespace"))
	default:
		for _, r := range ns {
			if r < 0x20 || r > 0x7e {
				report(errs, "must be printable ASCII (got %s)", quoteVal(ns))(at("namespace"))
				return
			}
		}
	}
}

// checkPushEndpoint checks an endpoint override without echoing user
// information: http(s)://host[:port] for both providers, or host[:port]
// for aliyun-cms, where plain HTTP goes only to a loopback host (an
// emulator), as internal/cloud/aliyun requires. AWS requests are signed
// without revealing the secret, and moto or LocalStack often listen on
// plain HTTP on another host, so cloudwatch accepts http:// anywhere.
func checkPushEndpoint(provider, ep string) string {
	const want = "must be http(s)://host[:port]"
	host := ep
	scheme := "https"
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return want
		}
		if u.User != nil {
			return "must not contain user information"
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Sprintf("%s (got %s)", want, quoteVal(ep))
		}
		host, scheme = u.Host, u.Scheme
	} else if provider != PushAliyunCMS {
		return fmt.Sprintf("%s (got %s)", want, quoteVal(ep))
	} else if strings.ContainsAny(ep, "/@?#") {
		return fmt.Sprintf("must be host[:port] or http(s)://host[:port] (got %s)", quoteVal(ep))
	}
	h := host
	if hh, p, err := net.SplitHostPort(host); err == nil {
		if n, perr := strconv.Atoi(p); perr != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port must be between 1 and 65535 (got %s)", quoteVal(p))
		}
		h = hh
	}
	loopback := h == "localhost"
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if provider == PushAliyunCMS && scheme == "http" && !loopback {
		return fmt.Sprintf("plain http:// only to a loopback emulator; use https:// (got %s)", quoteVal(ep))
	}
	return ""
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// validRegion accepts region ids: lowercase letters, digits and '-'.
func validRegion(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
