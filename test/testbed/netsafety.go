package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Allowed is the only range a bed's subnet may come from (RFC 2544
// benchmarking); the documentation ranges are refused explicitly because
// machines of this project have their uplink in one of them.
var (
	Allowed = netip.MustParsePrefix("198.18.0.0/15")
	refused = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
	}
)

// ValidateSubnet parses s and checks it is an IPv4 /24 inside 198.18.0.0/15.
func ValidateSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %q: %w", s, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("subnet %s: not IPv4", s)
	}
	for _, r := range refused {
		if r.Overlaps(p) {
			return netip.Prefix{}, fmt.Errorf("subnet %s overlaps the documentation range %s, which real machines use: refused", s, r)
		}
	}
	if p.Bits() != 24 {
		return netip.Prefix{}, fmt.Errorf("subnet %s: must be a /24", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("subnet %s: host bits set (did you mean %s?)", s, p.Masked())
	}
	if !Allowed.Contains(p.Addr()) {
		return netip.Prefix{}, fmt.Errorf("subnet %s is outside %s: refused", s, Allowed)
	}
	return p, nil
}

// Route is one route of the root namespace as the overlap check sees it.
type Route struct {
	Dst   netip.Prefix // "default" is 0.0.0.0/0
	Type  string       // unicast, blackhole, local, broadcast, …
	Table string       // main when empty
	Dev   string
}

func (r Route) String() string {
	s := r.Type + " " + r.Dst.String()
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != "" && r.Table != "main" {
		s += " table " + r.Table
	}
	return s
}

// Addr is one interface address of the root namespace.
type Addr struct {
	Dev    string
	Prefix netip.Prefix // address with its prefix length, e.g. 192.0.2.2/24
}

// CheckOverlap refuses subnet when an interface address of the root
// namespace (its address or its connected prefix) or any route overlaps it.
// Default routes (prefix length 0) are ignored — the blackhole is there to
// beat them — and so is our own blackhole route for exactly this subnet.
func CheckOverlap(subnet netip.Prefix, routes []Route, addrs []Addr) error {
	var errs []error
	for _, a := range addrs {
		if !a.Prefix.Addr().Is4() {
			continue
		}
		if a.Prefix.Masked().Overlaps(subnet) || subnet.Contains(a.Prefix.Addr()) {
			errs = append(errs, fmt.Errorf("address %s on %s overlaps %s", a.Prefix, a.Dev, subnet))
		}
	}
	for _, r := range routes {
		if !r.Dst.Addr().Is4() || r.Dst.Bits() == 0 {
			continue
		}
		if r.Type == "blackhole" && r.Dst == subnet {
			continue
		}
		if r.Dst.Overlaps(subnet) {
			errs = append(errs, fmt.Errorf("route %s overlaps %s", r, subnet))
		}
	}
	return errors.Join(errs...)
}

// rootNetworkState reads the IPv4 routes of every table and the IPv4
// addresses of the root namespace (this process must be in it).
func rootNetworkState(ctx context.Context) ([]Route, []Addr, error) {
	out, err := output(ctx, "ip", "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, nil, err
	}
	routes, err := parseRoutesJSON(out)
	if err != nil {
		return nil, nil, err
	}
	out, err = output(ctx, "ip", "-j", "-4", "addr", "show")
	if err != nil {
		return nil, nil, err
	}
	addrs, err := parseAddrsJSON(out)
	if err != nil {
		return nil, nil, err
	}
	return routes, addrs, nil
}

func parseRoutesJSON(data []byte) ([]Route, error) {
	var raw []struct {
		Type  string `json:"type"`
		Dst   string `json:"dst"`
		Dev   string `json:"dev"`
		Table string `json:"table"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse ip -j route: %w", err)
	}
	var out []Route
	for _, r := range raw {
		p, err := parseDst(r.Dst)
		if err != nil {
			return nil, err
		}
		t := r.Type
		if t == "" {
			t = "unicast"
		}
		out = append(out, Route{Dst: p, Type: t, Table: r.Table, Dev: r.Dev})
	}
	return out, nil
}

func parseDst(s string) (netip.Prefix, error) {
	switch {
	case s == "default" || s == "":
		return netip.MustParsePrefix("0.0.0.0/0"), nil
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("route destination %q: %w", s, err)
		}
		return p.Masked(), nil
	default:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("route destination %q: %w", s, err)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
}

func parseAddrsJSON(data []byte) ([]Addr, error) {
	var raw []struct {
		IfName   string `json:"ifname"`
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse ip -j addr: %w", err)
	}
	var out []Addr
	for _, l := range raw {
		for _, ai := range l.AddrInfo {
			if ai.Family != "inet" {
				continue
			}
			a, err := netip.ParseAddr(ai.Local)
			if err != nil {
				return nil, fmt.Errorf("address %q on %s: %w", ai.Local, l.IfName, err)
			}
			out = append(out, Addr{Dev: l.IfName, Prefix: netip.PrefixFrom(a, ai.PrefixLen)})
		}
	}
	return out, nil
}
