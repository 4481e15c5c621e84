package aws

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// Defaults of the options.
const (
	// DefaultWaitTimeout bounds the wait for EC2 to show a move.
	DefaultWaitTimeout = 60 * time.Second
	// DefaultRoute53WaitTimeout bounds the wait for a Route 53 change to
	// be INSYNC (AWS: "generally within 60 seconds").
	DefaultRoute53WaitTimeout = 2 * time.Minute
	// DefaultInterface is the guest interface the address is added to.
	DefaultInterface = "eth0"
	// DefaultTTL is the TTL of the Route 53 record, in seconds.
	DefaultTTL = 60
	// DefaultPollInterval is how often GetChange is polled until INSYNC.
	DefaultPollInterval = 2 * time.Second
)

var (
	eniRE   = regexp.MustCompile(`^eni-[0-9a-f]{8,17}$`)
	instRE  = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	allocRE = regexp.MustCompile(`^eipalloc-[0-9a-f]{8,17}$`)
	rtbRE   = regexp.MustCompile(`^rtb-[0-9a-f]{8,17}$`)
	zoneRE  = regexp.MustCompile(`^[A-Z0-9]{1,32}$`)
	ifaceRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)
	labelRE = regexp.MustCompile(`^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$`)
)

// settings are the parsed cfg.Address.Options of one mover.
type settings struct {
	region      string
	endpoint    string
	waitTimeout time.Duration
	rollback    bool
	maxAttempts int

	// EC2 movers: how to find each server's ENI.
	eni      map[string]string
	instance map[string]string

	// Guest side (secondary IP, route): the address the guest carries.
	vip    netip.Addr // the secondary IP, or the route's overlay IP
	guest  string     // ssh | none
	iface  string
	prefix int
	sudo   string // auto | yes | no

	// aws-eip
	allocID  string
	publicIP netip.Addr // when given instead of allocation_id

	// aws-route
	routeTables     []string
	cidr            netip.Prefix
	sourceDestCheck bool // check at Status that it is disabled

	// route53
	zoneID       string // without /hostedzone/
	name         string // lower case, with the final dot
	ttl          int64
	recordType   string
	onRelease    string // keep | delete
	waitInsync   bool
	pollInterval time.Duration
	ip           map[string]netip.Addr // server name -> published address
}

// ec2Kind is true for the movers that find the servers' ENIs.
func ec2Kind(kind string) bool { return kind != KindRoute53 }

// guestKind is true for the movers that configure the guest over SSH.
func guestKind(kind string) bool { return kind == KindSecondaryIP || kind == KindRoute }

// knownOptions lists the options of a kind, for error messages.
func knownOptions(kind string) []string {
	known := []string{"region", "endpoint", "wait_timeout", "rollback", "max_attempts"}
	if ec2Kind(kind) {
		known = append(known, "eni_id.<server>", "instance_id.<server>")
	}
	switch kind {
	case KindSecondaryIP:
		known = append(known, "vip", "guest", "interface", "prefix", "sudo")
	case KindEIP:
		known = append(known, "allocation_id", "public_ip")
	case KindRoute:
		known = append(known, "route_tables", "cidr", "source_dest_check", "guest", "interface", "sudo")
	case KindRoute53:
		known = append(known, "hosted_zone_id", "name", "ttl", "type", "on_release", "wait_insync", "poll_interval", "ip.<server>")
	}
	return known
}

// parseSettings reads and validates cfg.Address for the mover kind. It does
// no I/O. Every error names the option at fault.
func parseSettings(kind string, cfg *config.Config) (settings, error) {
	if cfg == nil {
		return settings{}, fmt.Errorf("%s mover: no configuration", kind)
	}
	switch kind {
	case KindSecondaryIP, KindEIP, KindRoute, KindRoute53:
	default:
		return settings{}, fmt.Errorf("aws mover: unknown kind %q", kind)
	}
	a := cfg.Address
	s := settings{
		eni: map[string]string{}, instance: map[string]string{}, ip: map[string]netip.Addr{},
		guest: "ssh", iface: a.Interface, prefix: a.Prefix, sudo: "auto",
		waitTimeout: DefaultWaitTimeout, rollback: true,
		sourceDestCheck: true,
		ttl:             DefaultTTL, recordType: "A", onRelease: "keep", waitInsync: true, pollInterval: DefaultPollInterval,
	}
	if kind == KindRoute53 {
		s.waitTimeout = DefaultRoute53WaitTimeout
	}
	names := map[string]bool{}
	for _, srv := range cfg.Servers {
		names[srv.Name] = true
	}
	unknown := func(k string) error {
		return fmt.Errorf("%s mover: unknown option %q (known: %s)", kind, k, strings.Join(knownOptions(kind), ", "))
	}
	bad := func(k, v, want string) error {
		return fmt.Errorf("%s mover: option %s=%q: %s", kind, k, v, want)
	}
	vip, cidr := a.VIP, ""
	keys := make([]string, 0, len(a.Options))
	for k := range a.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic first error
	for _, k := range keys {
		v := a.Options[k]
		prefix, server, dotted := strings.Cut(k, ".")
		if dotted {
			known := ec2Kind(kind) && (prefix == "eni_id" || prefix == "instance_id") || kind == KindRoute53 && prefix == "ip"
			if !known {
				return settings{}, unknown(k)
			}
			if !names[server] {
				return settings{}, fmt.Errorf("%s mover: option %s: no server named %q in the configuration", kind, k, server)
			}
			switch prefix {
			case "eni_id":
				if !eniRE.MatchString(v) {
					return settings{}, bad(k, v, "want an ENI id (eni-…)")
				}
				s.eni[server] = v
			case "instance_id":
				if !instRE.MatchString(v) {
					return settings{}, bad(k, v, "want an instance id (i-…)")
				}
				s.instance[server] = v
			case "ip":
				ip, err := netip.ParseAddr(v)
				if err != nil || !ip.Is4() {
					return settings{}, bad(k, v, "want the IPv4 address the record gives for this server")
				}
				s.ip[server] = ip
			}
			continue
		}
		switch {
		case k == "region":
			if v == "" || strings.ContainsAny(v, " /\t\n") {
				return settings{}, bad(k, v, "want a region name such as eu-west-1")
			}
			s.region = v
		case k == "endpoint":
			s.endpoint = v // checked by the cloud package
		case k == "wait_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > time.Hour {
				return settings{}, bad(k, v, "want a duration such as 60s (up to 1h)")
			}
			s.waitTimeout = d
		case k == "rollback":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return settings{}, bad(k, v, "want true or false")
			}
			s.rollback = b
		case k == "max_attempts":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 50 {
				return settings{}, bad(k, v, "want 1..50")
			}
			s.maxAttempts = n
		case guestKind(kind) && k == "guest":
			if v != "ssh" && v != "none" {
				return settings{}, bad(k, v, "want ssh or none")
			}
			s.guest = v
		case guestKind(kind) && k == "interface":
			if !ifaceRE.MatchString(v) {
				return settings{}, bad(k, v, "want an interface name")
			}
			s.iface = v
		case guestKind(kind) && k == "sudo":
			if v != "auto" && v != "yes" && v != "no" {
				return settings{}, bad(k, v, "want auto, yes or no")
			}
			s.sudo = v
		case kind == KindSecondaryIP && k == "vip":
			vip = v
		case kind == KindSecondaryIP && k == "prefix":
			n, err := strconv.Atoi(v)
			if err != nil {
				return settings{}, bad(k, v, "want a prefix length")
			}
			s.prefix = n
		case kind == KindEIP && k == "allocation_id":
			if !allocRE.MatchString(v) {
				return settings{}, bad(k, v, "want an allocation id (eipalloc-…)")
			}
			s.allocID = v
		case kind == KindEIP && k == "public_ip":
			ip, err := netip.ParseAddr(v)
			if err != nil || !ip.Is4() {
				return settings{}, bad(k, v, "want the Elastic IP's IPv4 address")
			}
			s.publicIP = ip
		case kind == KindRoute && k == "route_tables":
			for _, t := range strings.Split(v, ",") {
				t = strings.TrimSpace(t)
				if !rtbRE.MatchString(t) {
					return settings{}, bad(k, v, fmt.Sprintf("%q is not a route table id (rtb-…); want a comma-separated list", t))
				}
				if slices.Contains(s.routeTables, t) {
					return settings{}, bad(k, v, t+" is listed twice")
				}
				s.routeTables = append(s.routeTables, t)
			}
		case kind == KindRoute && k == "cidr":
			cidr = v
		case kind == KindRoute && k == "source_dest_check":
			if v != "check" && v != "ignore" {
				return settings{}, bad(k, v, "want check or ignore")
			}
			s.sourceDestCheck = v == "check"
		case kind == KindRoute53 && k == "hosted_zone_id":
			id := strings.TrimPrefix(v, "/hostedzone/")
			if !zoneRE.MatchString(id) {
				return settings{}, bad(k, v, "want a hosted zone id such as Z0123456789ABCDEFGHIJ")
			}
			s.zoneID = id
		case kind == KindRoute53 && k == "name":
			n, err := fqdn(v)
			if err != nil {
				return settings{}, bad(k, v, err.Error())
			}
			s.name = n
		case kind == KindRoute53 && k == "ttl":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > 86400 {
				return settings{}, bad(k, v, "want seconds, 0..86400")
			}
			s.ttl = n
		case kind == KindRoute53 && k == "type":
			if !strings.EqualFold(v, "A") {
				return settings{}, bad(k, v, "want A (only IPv4 A records are supported)")
			}
			s.recordType = "A"
		case kind == KindRoute53 && k == "on_release":
			if v != "keep" && v != "delete" {
				return settings{}, bad(k, v, "want keep or delete")
			}
			s.onRelease = v
		case kind == KindRoute53 && k == "wait_insync":
			switch strings.ToLower(v) {
			case "yes", "true":
				s.waitInsync = true
			case "no", "false":
				s.waitInsync = false
			default:
				return settings{}, bad(k, v, "want yes or no")
			}
		case kind == KindRoute53 && k == "poll_interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < 10*time.Millisecond || d > time.Minute {
				return settings{}, bad(k, v, "want a duration from 10ms to 1m")
			}
			s.pollInterval = d
		default:
			return settings{}, unknown(k)
		}
	}
	switch kind {
	case KindSecondaryIP:
		ip, err := netip.ParseAddr(vip)
		if err != nil || !ip.Is4() {
			return settings{}, fmt.Errorf("%s mover: vip %q: want the secondary private IPv4 address (option vip or address vip)", kind, vip)
		}
		s.vip = ip
		if s.prefix == 0 {
			s.prefix = 32
		}
		if s.prefix < 1 || s.prefix > 32 {
			return settings{}, fmt.Errorf("%s mover: prefix %d out of range 1..32", kind, s.prefix)
		}
	case KindEIP:
		if s.allocID == "" && !s.publicIP.IsValid() {
			return settings{}, fmt.Errorf("%s mover: option allocation_id (or public_ip) is required", kind)
		}
	case KindRoute:
		if len(s.routeTables) == 0 {
			return settings{}, fmt.Errorf("%s mover: option route_tables is required (comma-separated route table ids: every table the clients' subnets use)", kind)
		}
		from := "option cidr"
		if cidr == "" {
			cidr, from = vip, "address vip"
		}
		if cidr == "" {
			return settings{}, fmt.Errorf("%s mover: option cidr is required (the overlay address, a.b.c.d/32, outside the VPC CIDR)", kind)
		}
		p, err := parseOverlay(cidr)
		if err != nil {
			return settings{}, fmt.Errorf("%s mover: %s %q: %w", kind, from, cidr, err)
		}
		s.cidr, s.vip, s.prefix = p, p.Addr(), 32
	case KindRoute53:
		if s.zoneID == "" {
			return settings{}, fmt.Errorf("%s mover: option hosted_zone_id is required", kind)
		}
		if s.name == "" {
			return settings{}, fmt.Errorf("%s mover: option name is required (the record's fully qualified name)", kind)
		}
	}
	if guestKind(kind) {
		if s.iface == "" {
			s.iface = DefaultInterface
		}
		if !ifaceRE.MatchString(s.iface) {
			return settings{}, fmt.Errorf("%s mover: bad interface %q", kind, s.iface)
		}
	}
	if len(cfg.Servers) == 0 {
		return settings{}, fmt.Errorf("%s mover: no servers in the configuration", kind)
	}
	for _, srv := range cfg.Servers {
		if kind == KindRoute53 {
			if _, ok := s.ip[srv.Name]; ok {
				continue
			}
			ip, err := netip.ParseAddr(srv.Host())
			if err != nil || !ip.Is4() {
				return settings{}, fmt.Errorf("%s mover: server %s: give option ip.%s, or an IPv4 address as the server's ip, for the record to point at (have %q)", kind, srv.Name, srv.Name, srv.Host())
			}
			s.ip[srv.Name] = ip
			continue
		}
		if s.eni[srv.Name] != "" || s.instance[srv.Name] != "" {
			continue
		}
		if _, err := netip.ParseAddr(srv.Host()); err != nil {
			return settings{}, fmt.Errorf("%s mover: server %s: give option eni_id.%s or instance_id.%s, or an IP address, to find its network interface (have %q)", kind, srv.Name, srv.Name, srv.Name, srv.Host())
		}
	}
	if kind == KindRoute53 {
		seen := map[netip.Addr]string{}
		for _, srv := range cfg.Servers {
			ip := s.ip[srv.Name]
			if other, dup := seen[ip]; dup {
				return settings{}, fmt.Errorf("%s mover: servers %s and %s both publish %s: the record could not tell them apart (set ip.<server>)", kind, other, srv.Name, ip)
			}
			seen[ip] = srv.Name
		}
	}
	return s, nil
}

// parseOverlay parses the route's overlay address: a.b.c.d or a.b.c.d/32.
func parseOverlay(v string) (netip.Prefix, error) {
	if !strings.Contains(v, "/") {
		v += "/32"
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is4() || p.Bits() != 32 {
		return netip.Prefix{}, fmt.Errorf("want the overlay IPv4 address as a.b.c.d/32")
	}
	return p, nil
}

// fqdn validates a DNS name and returns it in lower case with the final
// dot, as Route 53 lists names.
func fqdn(v string) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(v, "."))
	labels := strings.Split(n, ".")
	if len(labels) < 2 || len(n) > 253 {
		return "", fmt.Errorf("want a fully qualified name such as db.example.com")
	}
	for i, l := range labels {
		if !labelRE.MatchString(l) || l == "*" && i > 0 {
			return "", fmt.Errorf("label %q: want letters, digits, - and _ (a leading * is allowed), up to 63 characters", l)
		}
	}
	return n + ".", nil
}
