package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// locator finds where a value was set, so that checks across parameters
// name a file, line and key.
type locator interface {
	app(key string) (file string, line int, disp string)
	server(i int, key string) (file string, line int, disp string)
	binlog(i int, key string) (file string, line int, disp string)
	notify(i int, key string) (file string, line int, disp string)
	group(i int, key string) (file string, line int, disp string)
	push(i int, key string) (file string, line int, disp string)
	servers() (file string, line int, disp string)
}

// srcLocator locates values in a parsed source.
type srcLocator struct{ s *source }

func (s *source) locator() locator { return srcLocator{s} }

func (l srcLocator) app(key string) (string, int, string) {
	if e, ok := l.s.def.keys[key]; ok {
		return e.file, e.line, e.disp
	}
	if line, ok := l.s.appLine[key]; ok {
		return l.s.def.file, line, l.s.appDisp(key)
	}
	return l.s.def.file, l.s.def.line, l.s.appDisp(key)
}

func (l srcLocator) server(i int, key string) (string, int, string) {
	if i < len(l.s.hosts) {
		return l.s.hosts[i].pos(key)
	}
	return noLocator{}.server(i, key)
}

func (l srcLocator) binlog(i int, key string) (string, int, string) {
	if i < len(l.s.binlogs) {
		return l.s.binlogs[i].pos(key)
	}
	return noLocator{}.binlog(i, key)
}

func (l srcLocator) notify(i int, key string) (string, int, string) {
	if i < len(l.s.notifyPos) {
		return l.s.notifyPos[i].pos(key)
	}
	return noLocator{}.notify(i, key)
}

func (l srcLocator) group(i int, key string) (string, int, string) {
	if i < len(l.s.groupPos) {
		return l.s.groupPos[i].pos(key)
	}
	return noLocator{}.group(i, key)
}

func (l srcLocator) push(i int, key string) (string, int, string) {
	if i < len(l.s.pushPos) {
		return l.s.pushPos[i].pos(key)
	}
	return noLocator{}.push(i, key)
}

func (l srcLocator) servers() (string, int, string) {
	return l.s.serversFile, l.s.serversLine, l.s.serversKey
}

// noLocator names values by their place in the Config (for Validate).
type noLocator struct{}

func (noLocator) app(key string) (string, int, string) { return "", 0, key }
func (noLocator) server(i int, key string) (string, int, string) {
	return "", 0, fmt.Sprintf("servers[%d].%s", i, key)
}
func (noLocator) binlog(i int, key string) (string, int, string) {
	return "", 0, fmt.Sprintf("binlog_servers[%d].%s", i, key)
}
func (noLocator) notify(i int, key string) (string, int, string) {
	return "", 0, fmt.Sprintf("notify[%d].%s", i, key)
}
func (noLocator) group(i int, key string) (string, int, string) {
	return "", 0, fmt.Sprintf("contact_groups[%d].%s", i, key)
}
func (noLocator) push(i int, key string) (string, int, string) {
	return "", 0, fmt.Sprintf("metrics.push[%d].%s", i, key)
}
func (noLocator) servers() (string, int, string) { return "", 0, "servers" }

// Validate checks a Config built in code (the parsers already call the
// same checks). Problems are joined *Error values whose Key is the field's
// path, e.g. "servers[1].hostname".
func (c *Config) Validate() error {
	var errs errList
	validate(c, noLocator{}, &errs)
	return errs.err()
}

type at func(file string, line int, disp string)

// report returns a function that adds an error at a located position.
func report(errs *errList, msg string, args ...any) at {
	return func(file string, line int, disp string) {
		errs.add(file, line, disp, msg, args...)
	}
}

// normalizeAddress derives the address mover MHA users imply: vip set =>
// "vip"; otherwise master_ip_failover_script set => "script". It also fills
// the VIP prefix default.
func normalizeAddress(c *Config, loc locator, errs *errList) {
	a := &c.Address
	if a.Mover == MoverNone {
		switch {
		case a.VIP != "" && c.MasterIPFailoverScript != "":
			report(errs, "both vip and master_ip_failover_script are set: choose one with address_mover (vip or script)")(loc.app("vip"))
		case a.VIP != "":
			a.Mover = MoverVIP
		case c.MasterIPFailoverScript != "":
			a.Mover = MoverScript
		}
	}
	if a.Mover == MoverVIP && a.Prefix == 0 {
		if ip, err := netip.ParseAddr(a.VIP); err == nil {
			a.Prefix = ip.BitLen()
		}
	}
}

func validate(c *Config, loc locator, errs *errList) {
	validateApp(c, loc, errs)
	if len(c.Servers) == 0 {
		report(errs, "no server is defined: at least one host section ([server1], [server_db2], … or a servers: item) is required")(loc.servers())
	}
	names, addrs := map[string]int{}, map[string]int{}
	for i, s := range c.Servers {
		if s.Hostname == "" {
			report(errs, "missing: every server needs a hostname")(loc.server(i, "hostname"))
		}
		checkPort(errs, s.Port, func() (string, int, string) { return loc.server(i, "port") })
		checkPort(errs, s.SSHPort, func() (string, int, string) { return loc.server(i, "ssh_port") })
		if s.SSHConnectionTimeout <= 0 {
			report(errs, "must be positive")(loc.server(i, "ssh_connection_timeout"))
		}
		if s.CandidateMaster && s.NoMaster {
			report(errs, "candidate_master and no_master are both set on server %s", s.Name)(loc.server(i, "no_master"))
		}
		if s.Name != "" {
			if j, dup := names[s.Name]; dup {
				report(errs, "duplicate server name %q (also servers[%d])", s.Name, j)(loc.server(i, "name"))
			} else {
				names[s.Name] = i
			}
		}
		if s.Hostname != "" {
			// MHA refuses two servers with the same ip:port; without
			// resolving names, compare both hostname:port and Host():port.
			k1 := "h\x00" + s.Hostname + "\x00" + strconv.Itoa(s.Port)
			k2 := "a\x00" + s.Host() + "\x00" + strconv.Itoa(s.Port)
			j, dup := addrs[k1]
			if !dup {
				j, dup = addrs[k2]
			}
			if dup {
				report(errs, "server %s has the same host and port (%s) as server %s", s.Name, s.Addr(), c.Servers[j].Name)(loc.server(i, "hostname"))
			} else {
				addrs[k1], addrs[k2] = i, i
			}
		}
	}
	binlogNames := map[string]int{}
	for i, b := range c.BinlogServers {
		if b.Hostname == "" {
			report(errs, "missing: every binlog server needs a hostname")(loc.binlog(i, "hostname"))
		}
		checkPort(errs, b.Port, func() (string, int, string) { return loc.binlog(i, "port") })
		checkPort(errs, b.SSHPort, func() (string, int, string) { return loc.binlog(i, "ssh_port") })
		if j, dup := binlogNames[b.Name]; dup && b.Name != "" {
			report(errs, "duplicate binlog server name %q (also binlog_servers[%d])", b.Name, j)(loc.binlog(i, "name"))
		} else {
			binlogNames[b.Name] = i
		}
	}
	validateAddress(c, loc, errs)
	validateNotify(c, loc, errs)
	if l := c.Metrics.Listen; l != "" {
		if _, p, err := net.SplitHostPort(l); err != nil || !validPortOrZero(p) {
			report(errs, "must be host:port, e.g. 127.0.0.1:9104 (got %s)", quoteVal(l))(loc.app("metrics_listen"))
		}
	}
	validateMetricsPush(c, loc, errs)
}

func validateApp(c *Config, loc locator, errs *errList) {
	switch c.LogLevel {
	case "debug", "info", "notice", "warning", "error":
	default:
		report(errs, "must be one of debug, info, notice, warning, error (got %s)", quoteVal(c.LogLevel))(loc.app("log_level"))
	}
	switch c.PingType {
	case PingSelect, PingConnect, PingInsert:
	default:
		report(errs, "must be one of SELECT, CONNECT, INSERT (got %s)", quoteVal(c.PingType))(loc.app("ping_type"))
	}
	if c.PingInterval < MinYAMLPingInterval {
		report(errs, "must be at least %s (got %s)", MinYAMLPingInterval, c.PingInterval)(loc.app("ping_interval"))
	}
	if c.ManagerWorkdir == "" {
		report(errs, "must not be empty")(loc.app("manager_workdir"))
	}
}

func checkPort(errs *errList, p int, where func() (string, int, string)) {
	if p < 1 || p > 65535 {
		report(errs, "must be between 1 and 65535 (got %d)", p)(where())
	}
}

func validPortOrZero(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func validMoverKind(k string) bool {
	if k == "" || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-", r)) {
			return false
		}
	}
	return true
}

func validateAddress(c *Config, loc locator, errs *errList) {
	a := c.Address
	switch a.Mover {
	case MoverNone:
		if a.Interface != "" && a.VIP == "" {
			report(errs, "is set but no address mover is configured (set vip, or address_mover)")(loc.app("vip_interface"))
		}
	case MoverVIP:
		ip, err := netip.ParseAddr(a.VIP)
		switch {
		case a.VIP == "":
			report(errs, "missing: address mover vip needs the virtual IP")(loc.app("vip"))
		case err != nil:
			report(errs, "must be an IP address (got %s)", quoteVal(a.VIP))(loc.app("vip"))
		case a.Prefix < 1 || a.Prefix > ip.BitLen():
			report(errs, "must be between 1 and %d (got %d)", ip.BitLen(), a.Prefix)(loc.app("vip_prefix"))
		}
		if a.Interface == "" {
			report(errs, "missing: address mover vip needs the network interface")(loc.app("vip_interface"))
		}
	case MoverScript:
		if c.MasterIPFailoverScript == "" {
			report(errs, "address mover script needs master_ip_failover_script")(loc.app("address_mover"))
		}
	default:
		if !validMoverKind(a.Mover) {
			report(errs, "must be vip, script or a provider kind such as aliyun/havip (got %s)", quoteVal(a.Mover))(loc.app("address_mover"))
		}
	}
	if a.DNS != nil && a.Mover == MoverNone {
		errs.add(a.DNS.File, a.DNS.Line, "address.dns", "is set but address.mover is not: a DNS layer sits on top of a mover (for DNS alone, set address.mover: %s and its options)", a.DNS.Mover)
	}
	if a.Mover != MoverVIP && a.Mover != MoverNone && a.VIP != "" {
		report(errs, "is set but address_mover is %s", a.Mover)(loc.app("vip"))
	}
}
