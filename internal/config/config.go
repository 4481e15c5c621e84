// Package config reads a cluster's configuration: MHA for MySQL's app.cnf
// (with MHA's global masterha_default.cnf) as is, or cloudmha's native YAML,
// and returns one validated *Config.
//
// Both formats share one model and one set of rules: the YAML keys are MHA's
// parameter names where MHA has one, `defaults:` plays the role of
// [server default] and each item of `servers:` the role of a [serverN]
// section. Every problem is reported at once, as *Error values that name the
// file, line and key; no message ever contains a secret.
//
// The package does no network or DNS work: a server's IP is whatever the
// file says (possibly empty); resolution happens later.
package config

import (
	"net"
	"slices"
	"strconv"
	"time"
)

// MHA 0.58 defaults, and cloudmha's where MHA has none.
const (
	DefaultGlobalPath           = "/etc/masterha_default.cnf"
	DefaultPort                 = 3306
	DefaultSSHPort              = 22
	DefaultSSHConnectionTimeout = 5 * time.Second
	DefaultUser                 = "root"
	DefaultRemoteWorkdir        = "/var/tmp"
	DefaultManagerWorkdir       = "/var/tmp"
	DefaultLogLevel             = "info"
	DefaultPingInterval         = 3 * time.Second
	// MinYAMLPingInterval is the smallest ping_interval the YAML format
	// accepts; app.cnf, like MHA, takes whole seconds >= 1.
	MinYAMLPingInterval = 100 * time.Millisecond
)

// Ping types (ping_type).
const (
	PingSelect  = "SELECT"
	PingConnect = "CONNECT"
	PingInsert  = "INSERT"
)

// Address mover kinds known to this package. Other lowercase kinds (cloud
// providers) are accepted and checked by the address package.
const (
	MoverNone   = ""
	MoverVIP    = "vip"
	MoverScript = "script"
)

// DNSMovers returns the movers that may serve as address.dns, the DNS layer
// on top of the main mover.
func DNSMovers() []string { return []string{"rfc2136", "route53", "alidns"} }

// Notifier kinds.
const (
	NotifyWebhook  = "webhook"
	NotifyDingTalk = "dingtalk"
	NotifySlack    = "slack"
	NotifyWeCom    = "wecom"
	NotifyFeishu   = "feishu"
	NotifyEmail    = "email"
)

// NotifierKinds returns every notifier kind, in the order error messages
// list them.
func NotifierKinds() []string {
	return []string{NotifyWebhook, NotifyDingTalk, NotifySlack, NotifyWeCom, NotifyFeishu, NotifyEmail}
}

// Alert severities (contact_groups[].severities), most severe first.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Severities returns the alert severities, most severe first.
func Severities() []string { return []string{SeverityCritical, SeverityWarning, SeverityInfo} }

// NotifyEventKinds returns the kinds of notification event a contact group
// may select (contact_groups[].kinds). The notify package defines one
// constant for each.
func NotifyEventKinds() []string {
	return []string{"detection", "unreachable_primary", "failover_start", "failover_end", "switchover",
		"antiflap_block", "mover_failure", "test"}
}

// DefaultMasterBinlogDir returns MHA's default master_binlog_dir.
func DefaultMasterBinlogDir() []string { return []string{"/var/lib/mysql", "/var/log/mysql"} }

// Config is one cluster ("application" in MHA's words).
type Config struct {
	// Name is the application name: YAML `name:`; for app.cnf (and a YAML
	// file without name) the file's base name without extension, as MHA.
	Name string
	// Files lists the configuration files read, in order (global first).
	// Files read for password_file are not listed.
	Files []string

	ManagerWorkdir string        // manager_workdir, default /var/tmp
	ManagerLog     string        // manager_log, "" = stderr
	LogLevel       string        // debug|info|notice|warning|error, default info
	PingInterval   time.Duration // default 3s
	PingType       string        // SELECT (default) | CONNECT | INSERT

	CheckReplDelay  bool // default true
	CheckReplFilter bool // default true
	LatestPriority  bool // default true
	MultiTierSlave  bool // default false

	SecondaryCheckScript       string
	MasterIPFailoverScript     string
	MasterIPOnlineChangeScript string
	ShutdownScript             string
	ReportScript               string
	// InitConfLoadScript is stored; it is run at load time only when
	// LoadOptions.InitConfLoad is set.
	InitConfLoadScript string

	Servers       []Server       // in file order
	BinlogServers []BinlogServer // [binlogN] sections / binlog_servers:, in file order

	Address Address
	Notify  []Notifier
	// ContactGroups route notification events to notifiers by severity
	// and kind. Without any, every notifier receives every event.
	ContactGroups []ContactGroup
	Metrics       Metrics

	// Ignored lists parameters that were accepted but have no effect in
	// cloudmha (client_bindir, …, or a parameter in a section where MHA
	// ignores it too).
	Ignored []IgnoredParam
}

// Server is one MySQL/MariaDB host ([serverN] section or YAML servers item).
type Server struct {
	Name     string // section name ("server1") or YAML name
	Hostname string
	IP       string // may be empty: resolution happens later
	Port     int    // default 3306

	SSHHost              string
	SSHIP                string
	SSHPort              int // default 22
	SSHUser              string
	SSHOptions           string
	SSHConnectionTimeout time.Duration // default 5s

	NodeLabel string

	CandidateMaster  bool
	NoMaster         bool
	IgnoreFail       bool
	SkipInitSSHCheck bool
	SkipResetSlave   bool

	User         string // default root
	Password     Secret
	ReplUser     string
	ReplPassword Secret

	DisableLogBin   bool
	MasterPIDFile   string
	HandleRawBinlog bool   // default true
	RemoteWorkdir   string // default /var/tmp
	MasterBinlogDir []string
	UseGTIDAutoPos  bool // default true

	// cloudmha extensions
	Zone     string
	Priority int // higher is preferred among equal candidates
}

// Host returns the address to connect to: IP if set, else Hostname.
func (s Server) Host() string { return hostOf(s.IP, s.Hostname) }

// Addr returns host:port for MySQL.
func (s Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port)) }

// SSHAddr returns host:port for SSH: ssh_ip, else ssh_host, else Host().
func (s Server) SSHAddr() string {
	return net.JoinHostPort(hostOf(s.SSHIP, s.SSHHost, s.Host()), strconv.Itoa(s.SSHPort))
}

// BinlogServer is a [binlogN] section: a host holding a copy of the
// primary's binary logs (e.g. mysqlbinlog --raw --stop-never).
type BinlogServer struct {
	Name     string
	Hostname string
	IP       string
	Port     int

	SSHHost              string
	SSHIP                string
	SSHPort              int
	SSHUser              string
	SSHOptions           string
	SSHConnectionTimeout time.Duration

	NodeLabel       string
	MasterBinlogDir []string
	RemoteWorkdir   string
}

// Host returns IP if set, else Hostname.
func (b BinlogServer) Host() string { return hostOf(b.IP, b.Hostname) }

// SSHAddr returns host:port for SSH: ssh_ip, else ssh_host, else Host().
func (b BinlogServer) SSHAddr() string {
	return net.JoinHostPort(hostOf(b.SSHIP, b.SSHHost, b.Host()), strconv.Itoa(b.SSHPort))
}

func hostOf(candidates ...string) string {
	for _, c := range candidates {
		if c != "" {
			return c
		}
	}
	return ""
}

// Address says how clients find the primary.
type Address struct {
	// Mover is "" (none), "vip", "script" (master_ip_failover_script), or a
	// provider kind of the address package (e.g. "aliyun/havip").
	Mover     string
	VIP       string // vip mover: the address
	Interface string // vip mover: network interface
	Prefix    int    // vip mover: prefix length, default 32 (IPv4) / 128 (IPv6)
	Options   map[string]string
	// DNS is an optional extra layer on top of Mover: a DNS record that
	// follows the primary (YAML address.dns). It is moved after Mover
	// and released after it.
	DNS *AddressLayer
}

// AddressLayer is a mover run in addition to the main one.
type AddressLayer struct {
	Mover   string
	Options map[string]string
	File    string // where it was configured, for errors
	Line    int
}

// Notifier is one alert destination.
type Notifier struct {
	// Name identifies the notifier in contact groups, logs and metrics.
	// The parsers fill in the default (see NotifierNames); in a Config
	// built in code it may be left empty.
	Name    string
	Kind    string // webhook|dingtalk|slack|wecom|feishu|email
	URL     string // endpoint; for email smtp://host:port or smtps://host:port
	Secret  Secret // signing secret / token / SMTP password
	To      []string
	Options map[string]string
}

// NotifierNames returns the effective name of each notifier: its Name, or
// by default its kind for the first notifier of that kind and kind-2,
// kind-3, … for the next ones.
func NotifierNames(ns []Notifier) []string {
	out := make([]string, len(ns))
	count := map[string]int{}
	for i, n := range ns {
		count[n.Kind]++
		switch {
		case n.Name != "":
			out[i] = n.Name
		case count[n.Kind] == 1:
			out[i] = n.Kind
		default:
			out[i] = n.Kind + "-" + strconv.Itoa(count[n.Kind])
		}
	}
	return out
}

// ContactGroup is a named set of notifiers that receives the events of
// the listed severities and kinds (seed: alert rules with contact groups).
// An event goes to the union of the notifiers of every group that selects
// it, each notifier once.
type ContactGroup struct {
	Name       string
	Notifiers  []string // notifier names
	Severities []string // empty: every severity
	Kinds      []string // empty: every kind (NotifyEventKinds)
}

// Selects reports whether the group receives an event of the given
// severity and kind.
func (g ContactGroup) Selects(severity, kind string) bool {
	return (len(g.Severities) == 0 || slices.Contains(g.Severities, severity)) &&
		(len(g.Kinds) == 0 || slices.Contains(g.Kinds, kind))
}

// Metrics configures the Prometheus endpoint and the pushes to cloud
// monitoring services.
type Metrics struct {
	Listen string // host:port, "" = disabled
	// Push lists the cloud monitoring services the key metrics are also
	// pushed to (YAML metrics.push; app.cnf has no equivalent).
	Push []MetricPush
}

// IgnoredParam is a parameter that was accepted and has no effect.
type IgnoredParam struct {
	File   string
	Line   int
	Key    string
	Reason string
}
