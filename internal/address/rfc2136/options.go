package rfc2136

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults of the options.
const (
	DefaultTTL       = 60
	DefaultTimeout   = 5 * time.Second
	DefaultTransport = "tcp"
	DefaultOnRelease = OnReleaseKeep
	DefaultPort      = "53"
	// DefaultAlgorithm is the TSIG algorithm when neither tsig_algorithm
	// nor the key file names one.
	DefaultAlgorithm = "hmac-sha256"
)

// Values of on_release.
const (
	OnReleaseKeep   = "keep"
	OnReleaseDelete = "delete"
)

// maxTTL is the largest TTL RFC 2181 allows.
const maxTTL = 1<<31 - 1

// knownOptions returns the keys of Address.Options this mover reads.
func knownOptions() []string {
	return []string{
		"server", "zone", "name", "ttl",
		"tsig_key_name", "tsig_algorithm", "tsig_secret_file",
		"transport", "timeout", "on_release", "verify",
	}
}

// settings are the parsed options.
type settings struct {
	server     string // host:port
	zone       string // canonical FQDN
	name       string // canonical FQDN inside zone
	ttl        uint32
	key        *tsigKey // nil: unsigned messages
	secretFile string   // for log lines only
	transport  string   // udp | tcp
	timeout    time.Duration
	onRelease  string
	verify     bool
}

// parseSettings validates every option and reads the TSIG secret file. An
// option it does not know is an error naming it. No error contains the
// secret.
func parseSettings(m map[string]string) (settings, error) {
	s := settings{ttl: DefaultTTL, transport: DefaultTransport, timeout: DefaultTimeout, onRelease: DefaultOnRelease, verify: true}
	known := knownOptions()
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return s, fmt.Errorf("unknown option(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	get := func(k string) string { return strings.TrimSpace(m[k]) }
	bad := func(k, want string) error { return fmt.Errorf("option %s=%q: %s", k, m[k], want) }

	var err error
	if s.server, err = parseServer(get("server")); err != nil {
		return s, err
	}

	zone := get("zone")
	if zone == "" {
		return s, errors.New("option zone is required (e.g. example.com)")
	}
	if _, ok := dns.IsDomainName(zone); !ok || dns.Fqdn(zone) == "." || strings.ContainsAny(zone, " \t\"") {
		return s, bad("zone", "want a domain name (e.g. example.com)")
	}
	s.zone = dns.CanonicalName(zone)

	if s.name, err = parseName(get("name"), s.zone); err != nil {
		return s, err
	}

	if v := get("ttl"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n > maxTTL {
			return s, bad("ttl", "want seconds, 0..2147483647")
		}
		s.ttl = uint32(n)
	}

	switch v := strings.ToLower(get("transport")); v {
	case "":
	case "udp", "tcp":
		s.transport = v
	default:
		return s, bad("transport", "want udp or tcp")
	}

	if v := get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, bad("timeout", "want a positive duration (e.g. 5s)")
		}
		s.timeout = d
	}

	switch v := strings.ToLower(get("on_release")); v {
	case "":
	case OnReleaseKeep, OnReleaseDelete:
		s.onRelease = v
	default:
		return s, bad("on_release", "want keep or delete")
	}

	switch v := strings.ToLower(get("verify")); v {
	case "":
	case "yes", "true", "on", "1":
		s.verify = true
	case "no", "false", "off", "0":
		s.verify = false
	default:
		return s, bad("verify", "want yes or no")
	}

	keyName, alg, file := get("tsig_key_name"), get("tsig_algorithm"), get("tsig_secret_file")
	if keyName != "" {
		if keyName, err = canonicalKeyName(keyName); err != nil {
			return s, fmt.Errorf("option tsig_key_name: %w", err)
		}
	}
	if alg != "" {
		if alg, err = normalizeAlgorithm(alg); err != nil {
			return s, fmt.Errorf("option tsig_algorithm: %w", err)
		}
	}
	switch {
	case file != "":
		if s.key, err = readSecretFile(file, keyName, alg); err != nil {
			return s, fmt.Errorf("option tsig_secret_file: %w", err)
		}
		s.secretFile = file
	case keyName != "":
		return s, errors.New("option tsig_key_name needs tsig_secret_file (the secret is never given in the configuration itself)")
	case alg != "":
		return s, errors.New("option tsig_algorithm needs tsig_secret_file and tsig_key_name")
	}
	return s, nil
}

// parseServer checks host[:port]; the port defaults to 53.
func parseServer(v string) (string, error) {
	if v == "" {
		return "", errors.New("option server is required (host:port of the primary DNS server)")
	}
	bad := fmt.Errorf("option server=%q: want host:port (e.g. 192.0.2.53:53 or [2001:db8::53]:53)", v)
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		// No port: a host name, an IPv4 address, or a bare IPv6 address.
		if strings.Count(v, ":") == 1 || strings.ContainsAny(v, "[]") {
			return "", bad
		}
		host, port = v, DefaultPort
	}
	if host == "" || strings.ContainsAny(host, " \t/\"") {
		return "", bad
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", bad
	}
	return net.JoinHostPort(host, port), nil
}

// parseName resolves the name option against the zone: "@" is the apex, a
// trailing dot makes it absolute, a name that already ends with the zone
// is taken as absolute (db.example.com in zone example.com), anything else
// is relative to the zone (db → db.example.com.).
func parseName(v, zone string) (string, error) {
	if v == "" {
		return "", errors.New("option name is required (the record's name, e.g. db or db.example.com.)")
	}
	var fq string
	switch {
	case v == "@":
		fq = zone
	case strings.HasSuffix(v, "."):
		fq = v
	case dns.IsSubDomain(zone, dns.Fqdn(v)):
		fq = dns.Fqdn(v)
	default:
		fq = v + "." + zone
	}
	if _, ok := dns.IsDomainName(fq); !ok || strings.ContainsAny(fq, " \t\"*") {
		return "", fmt.Errorf("option name=%q: not a valid domain name", v)
	}
	fq = dns.CanonicalName(fq)
	if !dns.IsSubDomain(zone, fq) {
		return "", fmt.Errorf("option name=%q: %s is not inside zone %s", v, fq, zone)
	}
	return fq, nil
}
