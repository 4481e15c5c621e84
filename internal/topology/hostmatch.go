package topology

import (
	"net/netip"
	"strconv"
	"strings"
)

// HostMatches reports whether a MySQL account host pattern admits a client
// at addr (an IP address or a host name). It understands the forms MySQL and
// MariaDB accept: a literal, LIKE wildcards (% and _), an IPv4 address with a
// netmask ("10.0.0.0/255.255.255.0") and CIDR ("10.0.0.0/24", MySQL 8.0.23+).
// Matching is case-insensitive, as for host names in the grant tables.
func HostMatches(pattern, addr string) bool {
	if addr == "" {
		return false
	}
	pattern, addr = strings.ToLower(pattern), strings.ToLower(addr)
	if base, mask, ok := strings.Cut(pattern, "/"); ok {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return false
		}
		netIP, err := netip.ParseAddr(base)
		if err != nil {
			return false
		}
		bits, err := strconv.Atoi(mask)
		if err != nil {
			m, err := netip.ParseAddr(mask)
			if err != nil || !m.Is4() {
				return false
			}
			bits = maskBits(m.As4())
			if bits < 0 {
				return false
			}
		}
		p, err := netIP.Prefix(bits)
		return err == nil && p.Contains(ip)
	}
	return like(pattern, addr)
}

// maskBits returns the prefix length of a contiguous netmask, or -1.
func maskBits(m [4]byte) int {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := 0
	for v&(1<<31) != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return -1
	}
	return n
}

// like implements SQL LIKE with % and _ (no escapes: host names have none).
func like(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '%':
			p = p[1:]
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if like(p, s[i:]) {
					return true
				}
			}
			return false
		case '_':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}
