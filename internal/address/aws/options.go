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
	// DefaultInterface is the guest interface the secondary IP is added to.
	DefaultInterface = "eth0"
)

var (
	eniRE   = regexp.MustCompile(`^eni-[0-9a-f]{8,17}$`)
	instRE  = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	allocRE = regexp.MustCompile(`^eipalloc-[0-9a-f]{8,17}$`)
	ifaceRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)
)

// settings are the parsed cfg.Address.Options of one mover.
type settings struct {
	region      string
	endpoint    string
	vip         netip.Addr // secondary IP
	allocID     string     // EIP
	publicIP    netip.Addr // EIP, when given instead of allocation_id
	eni         map[string]string
	instance    map[string]string
	guest       string // ssh | none
	iface       string
	prefix      int
	sudo        string // auto | yes | no
	waitTimeout time.Duration
	rollback    bool
	maxAttempts int
}

// parseSettings reads and validates cfg.Address for the mover kind. It does
// no I/O.
func parseSettings(kind string, cfg *config.Config) (settings, error) {
	if cfg == nil {
		return settings{}, fmt.Errorf("%s mover: no configuration", kind)
	}
	a := cfg.Address
	s := settings{
		eni: map[string]string{}, instance: map[string]string{},
		guest: "ssh", iface: a.Interface, prefix: a.Prefix, sudo: "auto",
		waitTimeout: DefaultWaitTimeout, rollback: true,
	}
	names := map[string]bool{}
	for _, srv := range cfg.Servers {
		names[srv.Name] = true
	}
	known := []string{"region", "endpoint", "wait_timeout", "rollback", "max_attempts", "eni_id.<server>", "instance_id.<server>"}
	if kind == KindSecondaryIP {
		known = append(known, "vip", "guest", "interface", "prefix", "sudo")
	} else {
		known = append(known, "allocation_id", "public_ip")
	}
	vip := a.VIP
	bad := func(k, v, want string) error {
		return fmt.Errorf("%s mover: option %s=%q: %s", kind, k, v, want)
	}
	keys := make([]string, 0, len(a.Options))
	for k := range a.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic first error
	for _, k := range keys {
		v := a.Options[k]
		prefix, server, dotted := strings.Cut(k, ".")
		if dotted {
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
			default:
				return settings{}, fmt.Errorf("%s mover: unknown option %q (known: %s)", kind, k, strings.Join(known, ", "))
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
		case kind == KindSecondaryIP && k == "vip":
			vip = v
		case kind == KindSecondaryIP && k == "guest":
			if v != "ssh" && v != "none" {
				return settings{}, bad(k, v, "want ssh or none")
			}
			s.guest = v
		case kind == KindSecondaryIP && k == "interface":
			if !ifaceRE.MatchString(v) {
				return settings{}, bad(k, v, "want an interface name")
			}
			s.iface = v
		case kind == KindSecondaryIP && k == "prefix":
			n, err := strconv.Atoi(v)
			if err != nil {
				return settings{}, bad(k, v, "want a prefix length")
			}
			s.prefix = n
		case kind == KindSecondaryIP && k == "sudo":
			if v != "auto" && v != "yes" && v != "no" {
				return settings{}, bad(k, v, "want auto, yes or no")
			}
			s.sudo = v
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
		default:
			return settings{}, fmt.Errorf("%s mover: unknown option %q (known: %s)", kind, k, strings.Join(known, ", "))
		}
	}
	switch kind {
	case KindSecondaryIP:
		ip, err := netip.ParseAddr(vip)
		if err != nil || !ip.Is4() {
			return settings{}, fmt.Errorf("%s mover: vip %q: want the secondary private IPv4 address (option vip or address vip)", kind, vip)
		}
		s.vip = ip
		if s.iface == "" {
			s.iface = DefaultInterface
		}
		if !ifaceRE.MatchString(s.iface) {
			return settings{}, fmt.Errorf("%s mover: bad interface %q", kind, s.iface)
		}
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
	}
	if len(cfg.Servers) == 0 {
		return settings{}, fmt.Errorf("%s mover: no servers in the configuration", kind)
	}
	for _, srv := range cfg.Servers {
		if s.eni[srv.Name] != "" || s.instance[srv.Name] != "" {
			continue
		}
		if _, err := netip.ParseAddr(srv.Host()); err != nil {
			return settings{}, fmt.Errorf("%s mover: server %s: give option eni_id.%s or instance_id.%s, or an IP address, to find its network interface (have %q)", kind, srv.Name, srv.Name, srv.Name, srv.Host())
		}
	}
	return s, nil
}
