package config

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dialect selects the value syntax: MHA's (0/1 booleans, whole seconds) or
// YAML's (true/false, Go durations).
type dialect int

const (
	dialectMHA dialect = iota
	dialectYAML
)

// scope says where a parameter belongs.
type scope int

const (
	scopeUnknown     scope = iota
	scopeApp               // application-wide: [server default] (or the global file)
	scopeServer            // per server, inherited from [server default]
	scopeHost              // per host only; MHA does not inherit it from [server default]
	scopeDefaultOnly       // cloudmha extension valid in [server default] only
	scopeIgnored           // accepted for MHA compatibility, unused by cloudmha
)

// keyScope classifies every parameter app.cnf may contain: all of MHA
// 0.58's (lib/MHA/Config.pm) plus cloudmha's few extensions.
func keyScope(k string) scope {
	switch k {
	case "manager_workdir", "manager_log", "log_level", "ping_interval", "ping_type",
		"check_repl_delay", "check_repl_filter", "latest_priority", "multi_tier_slave",
		"secondary_check_script", "master_ip_failover_script", "master_ip_online_change_script",
		"shutdown_script", "report_script", "init_conf_load_script":
		return scopeApp
	case "port", "ssh_port", "ssh_user", "ssh_options", "ssh_connection_timeout",
		"skip_reset_slave", "user", "password", "repl_user", "repl_password",
		"disable_log_bin", "master_pid_file", "handle_raw_binlog", "remote_workdir",
		"master_binlog_dir", "use_gtid_auto_pos",
		// cloudmha extensions
		"password_env", "password_file", "repl_password_env", "repl_password_file",
		"zone", "priority":
		return scopeServer
	case "hostname", "ip", "ssh_host", "ssh_ip", "node_label",
		"candidate_master", "no_master", "ignore_fail", "skip_init_ssh_check":
		return scopeHost
	case "address_mover", "vip", "vip_interface", "vip_prefix", "metrics_listen":
		return scopeDefaultOnly
	case "client_bindir", "client_libdir":
		return scopeIgnored
	}
	return scopeUnknown
}

// secretGroup returns the logical secret a key sets ("password" for
// password, password_env and password_file), or "".
func secretGroup(k string) string {
	switch k {
	case "password", "password_env", "password_file":
		return "password"
	case "repl_password", "repl_password_env", "repl_password_file":
		return "repl_password"
	}
	return ""
}

func groupMembers(g string) []string {
	return []string{g, g + "_env", g + "_file"}
}

// isSecret reports whether k's value is a secret (never printed).
func isSecret(k string) bool { return k == "password" || k == "repl_password" }

// entry is one parameter as written in a file.
type entry struct {
	key  string // canonical (MHA) name
	val  string
	file string
	line int
	disp string // as shown in errors: "port", "servers[1].port", "manager.workdir"
	seq  int    // global reading order
}

// layer is one section: [server default], [serverN], [binlogN], or their
// YAML counterparts.
type layer struct {
	name   string // section name / server name
	file   string
	line   int    // header line
	disp   string // "[server1]", "servers[0]"
	prefix string // prepended to a key for display: "" or "servers[0]."
	keys   map[string]entry
}

func (l layer) pos(key string) (string, int, string) {
	if e, ok := l.keys[key]; ok {
		return e.file, e.line, e.disp
	}
	return l.file, l.line, l.prefix + key
}

// source is what a parser produced, before it becomes a Config.
type source struct {
	dialect dialect
	name    string
	files   []string
	def     layer // merged defaults: application keys and per-server defaults
	appDisp func(key string) string
	// appLine locates an unset application key (YAML: its section's line)
	appLine map[string]int
	hosts   []layer
	binlogs []layer
	// where "no server" is reported
	serversFile string
	serversLine int
	serversKey  string

	// YAML only
	addrOptions map[string]string
	addrDNS     *AddressLayer
	notify      []Notifier
	notifyPos   []layer
	groups      []ContactGroup
	groupPos    []layer
	push        []MetricPush
	pushPos     []layer

	ignored []IgnoredParam
	errs    errList
	log     *slog.Logger
	opts    LoadOptions
	seq     int
	fileVal map[string]fileResult
	// shadowed holds defaults entries that a later layer may override;
	// they are checked too.
	shadowed []entry
}

type fileResult struct {
	val string
	err error
}

func newSource(d dialect, opts LoadOptions) *source {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &source{dialect: d, log: log, opts: opts, appDisp: func(k string) string { return k }}
}

func (s *source) newEntry(key, val, file string, line int, disp string) entry {
	if isSecret(key) {
		s.addSecret(val)
	}
	s.seq++
	return entry{key: key, val: val, file: file, line: line, disp: disp, seq: s.seq}
}

// addSecret remembers a secret value so that no error message shows it,
// even when it was written where a secret is not expected (e.g. a password
// pasted as a port or as a parameter name).
func (s *source) addSecret(v string) {
	if len(v) >= minRedactLen {
		s.errs.secrets = append(s.errs.secrets, v)
	}
}

// ignore records an accepted parameter without effect.
func (s *source) ignore(file string, line int, key, reason string, level slog.Level) {
	s.ignored = append(s.ignored, IgnoredParam{File: file, Line: line, Key: key, Reason: reason})
	s.log.Log(context.Background(), level, "config: parameter ignored",
		slog.String("file", file), slog.Int("line", line), slog.String("key", key), slog.String("reason", reason))
}

// checkSecretConflicts reports a section that sets one secret twice
// (password and password_env, …).
func (s *source) checkSecretConflicts(l layer) {
	for _, g := range []string{"password", "repl_password"} {
		var set []entry
		for _, m := range groupMembers(g) {
			if e, ok := l.keys[m]; ok {
				set = append(set, e)
			}
		}
		if len(set) > 1 {
			slices.SortFunc(set, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
			s.errs.addAt(set[len(set)-1], "conflicts with %s: set only one of %s, %s_env, %s_file",
				set[0].disp, g, g, g)
		}
	}
}

// overlay returns base with over's keys on top. Setting any key of a secret
// group replaces the whole group, so a host's password overrides a
// password_env from [server default].
func overlay(base, over map[string]entry) map[string]entry {
	out := maps.Clone(base)
	if out == nil {
		out = make(map[string]entry, len(over))
	}
	for k := range over {
		if g := secretGroup(k); g != "" {
			for _, m := range groupMembers(g) {
				delete(out, m)
			}
		}
	}
	maps.Copy(out, over)
	return out
}

// inheritable returns the keys of defaults that a host inherits.
func inheritable(def map[string]entry) map[string]entry {
	out := make(map[string]entry)
	for k, e := range def {
		if keyScope(k) == scopeServer {
			out[k] = e
		}
	}
	return out
}

func sorted(m map[string]entry) []entry {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

func (s *source) defaultSSHUser() string {
	if s.opts.DefaultSSHUser != "" {
		return s.opts.DefaultSSHUser
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if v, ok := s.lookupEnv("USER"); ok && v != "" {
		return v
	}
	return "root"
}

func (s *source) lookupEnv(k string) (string, bool) {
	if s.opts.LookupEnv != nil {
		return s.opts.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

func (s *source) readFile(path string) ([]byte, error) {
	if s.opts.ReadFile != nil {
		return s.opts.ReadFile(path)
	}
	return os.ReadFile(path)
}

// runInitConfLoad applies init_conf_load_script's output (name=value lines,
// as MHA) on top of the defaults, when the caller allows running it.
func (s *source) runInitConfLoad() {
	e, ok := s.def.keys["init_conf_load_script"]
	if !ok || e.val == "" || s.opts.InitConfLoad == nil {
		return
	}
	out, err := s.opts.InitConfLoad(e.val)
	if err != nil {
		s.errs.addAt(e, "running the script: %v", err)
		return
	}
	const name = "init_conf_load_script output"
	l := layer{name: "server default", file: name, disp: "[server default]", keys: map[string]entry{}}
	for i, row := range strings.Split(string(out), "\n") {
		row = strings.TrimRight(row, "\r")
		if strings.TrimSpace(row) == "" {
			continue
		}
		k, v, found := strings.Cut(row, "=")
		if !found {
			s.errs.add(name, i+1, "", "line has no '='")
			continue
		}
		k = strings.TrimSpace(k)
		en := s.newEntry(k, strings.TrimSpace(v), name, i+1, k)
		switch keyScope(k) {
		case scopeUnknown:
			s.errs.addAt(en, "unknown parameter")
		case scopeIgnored, scopeHost:
			s.ignore(name, i+1, k, "not used from [server default]", slog.LevelDebug)
		default:
			l.keys[k] = en
		}
	}
	s.def.keys = overlay(s.def.keys, l.keys)
}

// build turns the source into a validated Config.
func (s *source) build() (*Config, error) {
	s.runInitConfLoad()
	c := &Config{
		Name:            s.name,
		Files:           s.files,
		ManagerWorkdir:  DefaultManagerWorkdir,
		LogLevel:        DefaultLogLevel,
		PingInterval:    DefaultPingInterval,
		PingType:        PingSelect,
		CheckReplDelay:  true,
		CheckReplFilter: true,
		LatestPriority:  true,
	}
	// Every value written in a defaults section must be valid, even when
	// a later file or section overrides it (MHA parses each on its own).
	scratchC, scratchS := *c, s.newServer("", "")
	for _, e := range s.shadowed {
		if secretGroup(e.key) != "" {
			continue // a reference overridden later is not resolved
		}
		switch keyScope(e.key) {
		case scopeApp, scopeDefaultOnly:
			s.applyApp(&scratchC, e)
		default:
			s.applyServer(&scratchS, e)
		}
	}
	for _, e := range sorted(s.def.keys) {
		switch keyScope(e.key) {
		case scopeApp, scopeDefaultOnly:
			s.applyApp(c, e)
		}
	}
	if s.addrOptions != nil {
		c.Address.Options = s.addrOptions
	}
	c.Address.DNS = s.addrDNS
	c.Notify = s.notify
	c.ContactGroups = s.groups
	c.Metrics.Push = s.push

	sshUser := s.defaultSSHUser()
	inh := inheritable(s.def.keys)
	for i := range s.hosts {
		eff := overlay(inh, s.hosts[i].keys)
		s.hosts[i].keys = eff // positions of effective values, for validation
		srv := s.newServer(s.hosts[i].name, sshUser)
		for _, e := range sorted(eff) {
			s.applyServer(&srv, e)
		}
		c.Servers = append(c.Servers, srv)
	}
	for i := range s.binlogs {
		eff := overlay(inh, s.binlogs[i].keys)
		s.binlogs[i].keys = eff
		srv := s.newServer(s.binlogs[i].name, sshUser)
		for _, e := range sorted(eff) {
			s.applyServer(&srv, e)
		}
		c.BinlogServers = append(c.BinlogServers, BinlogServer{
			Name: srv.Name, Hostname: srv.Hostname, IP: srv.IP, Port: srv.Port,
			SSHHost: srv.SSHHost, SSHIP: srv.SSHIP, SSHPort: srv.SSHPort, SSHUser: srv.SSHUser,
			SSHOptions: srv.SSHOptions, SSHConnectionTimeout: srv.SSHConnectionTimeout,
			NodeLabel: srv.NodeLabel, MasterBinlogDir: srv.MasterBinlogDir, RemoteWorkdir: srv.RemoteWorkdir,
		})
	}
	c.Ignored = s.ignored

	loc := s.locator()
	normalizeAddress(c, loc, &s.errs)
	validate(c, loc, &s.errs)
	s.errs.sort(s.files)
	if err := s.errs.err(); err != nil {
		return nil, err
	}
	for i, name := range NotifierNames(c.Notify) {
		c.Notify[i].Name = name
	}
	return c, nil
}

func (s *source) newServer(name, sshUser string) Server {
	return Server{
		Name:                 name,
		Port:                 DefaultPort,
		SSHPort:              DefaultSSHPort,
		SSHUser:              sshUser,
		SSHConnectionTimeout: DefaultSSHConnectionTimeout,
		User:                 DefaultUser,
		HandleRawBinlog:      true,
		RemoteWorkdir:        DefaultRemoteWorkdir,
		MasterBinlogDir:      DefaultMasterBinlogDir(),
		UseGTIDAutoPos:       true,
	}
}

// applyApp sets one application-level parameter; on a bad value it
// reports an error and leaves the field unchanged.
func (s *source) applyApp(c *Config, e entry) {
	set := func(dst *string) { *dst = e.val }
	switch e.key {
	case "manager_workdir":
		if v, ok := s.nonEmpty(e); ok {
			c.ManagerWorkdir = v
		}
	case "manager_log":
		set(&c.ManagerLog)
	case "log_level":
		v := strings.ToLower(e.val)
		switch v {
		case "debug", "info", "notice", "warning", "error":
			c.LogLevel = v
		default:
			s.errs.addAt(e, "must be one of debug, info, notice, warning, error (got %s)", quoteVal(e.val))
		}
	case "ping_interval":
		if v, ok := s.interval(e, MinYAMLPingInterval); ok {
			c.PingInterval = v
		}
	case "ping_type":
		v := strings.ToUpper(e.val)
		switch v {
		case PingSelect, PingConnect, PingInsert:
			c.PingType = v
		default:
			s.errs.addAt(e, "must be one of SELECT, CONNECT, INSERT (got %s)", quoteVal(e.val))
		}
	case "check_repl_delay":
		s.setBool(&c.CheckReplDelay, e)
	case "check_repl_filter":
		s.setBool(&c.CheckReplFilter, e)
	case "latest_priority":
		s.setBool(&c.LatestPriority, e)
	case "multi_tier_slave":
		s.setBool(&c.MultiTierSlave, e)
	case "secondary_check_script":
		set(&c.SecondaryCheckScript)
	case "master_ip_failover_script":
		set(&c.MasterIPFailoverScript)
	case "master_ip_online_change_script":
		set(&c.MasterIPOnlineChangeScript)
	case "shutdown_script":
		set(&c.ShutdownScript)
	case "report_script":
		set(&c.ReportScript)
	case "init_conf_load_script":
		set(&c.InitConfLoadScript)
	case "address_mover":
		c.Address.Mover = strings.ToLower(e.val)
	case "vip":
		set(&c.Address.VIP)
	case "vip_interface":
		set(&c.Address.Interface)
	case "vip_prefix":
		if v, ok := s.integer(e, 1, 128); ok {
			c.Address.Prefix = v
		}
	case "metrics_listen":
		set(&c.Metrics.Listen)
	}
}

func (s *source) setBool(dst *bool, e entry) {
	if v, ok := s.boolean(e); ok {
		*dst = v
	}
}

// applyServer sets one per-server parameter.
func (s *source) applyServer(srv *Server, e entry) {
	switch e.key {
	case "hostname":
		srv.Hostname = e.val
	case "ip":
		if s.ipAddr(e) {
			srv.IP = e.val
		}
	case "port":
		if v, ok := s.integer(e, 1, 65535); ok {
			srv.Port = v
		}
	case "ssh_host":
		srv.SSHHost = e.val
	case "ssh_ip":
		if s.ipAddr(e) {
			srv.SSHIP = e.val
		}
	case "ssh_port":
		if v, ok := s.integer(e, 1, 65535); ok {
			srv.SSHPort = v
		}
	case "ssh_user":
		if v, ok := s.nonEmpty(e); ok {
			srv.SSHUser = v
		}
	case "ssh_options":
		srv.SSHOptions = e.val
	case "ssh_connection_timeout":
		if v, ok := s.interval(e, time.Second); ok {
			srv.SSHConnectionTimeout = v
		}
	case "node_label":
		srv.NodeLabel = e.val
	case "candidate_master":
		s.setBool(&srv.CandidateMaster, e)
	case "no_master":
		s.setBool(&srv.NoMaster, e)
	case "ignore_fail":
		s.setBool(&srv.IgnoreFail, e)
	case "skip_init_ssh_check":
		s.setBool(&srv.SkipInitSSHCheck, e)
	case "skip_reset_slave":
		s.setBool(&srv.SkipResetSlave, e)
	case "user":
		if v, ok := s.nonEmpty(e); ok {
			srv.User = v
		}
	case "password":
		srv.Password = NewSecret(e.val)
	case "password_env":
		srv.Password = s.secretEnv(e)
	case "password_file":
		srv.Password = s.secretFile(e)
	case "repl_user":
		srv.ReplUser = e.val
	case "repl_password":
		srv.ReplPassword = NewSecret(e.val)
	case "repl_password_env":
		srv.ReplPassword = s.secretEnv(e)
	case "repl_password_file":
		srv.ReplPassword = s.secretFile(e)
	case "disable_log_bin":
		s.setBool(&srv.DisableLogBin, e)
	case "master_pid_file":
		srv.MasterPIDFile = e.val
	case "handle_raw_binlog":
		s.setBool(&srv.HandleRawBinlog, e)
	case "remote_workdir":
		if v, ok := s.nonEmpty(e); ok {
			srv.RemoteWorkdir = v
		}
	case "master_binlog_dir":
		var dirs []string
		for d := range strings.SplitSeq(e.val, ",") {
			// MHA removes all white space from master_binlog_dir.
			d = strings.Join(strings.Fields(d), "")
			if d != "" {
				dirs = append(dirs, d)
			}
		}
		if len(dirs) == 0 {
			s.errs.addAt(e, "must name at least one directory")
		} else {
			srv.MasterBinlogDir = dirs
		}
	case "use_gtid_auto_pos":
		s.setBool(&srv.UseGTIDAutoPos, e)
	case "zone":
		srv.Zone = e.val
	case "priority":
		if v, ok := s.integer(e, -1_000_000, 1_000_000); ok {
			srv.Priority = v
		}
	}
}

func (s *source) nonEmpty(e entry) (string, bool) {
	if e.val == "" {
		s.errs.addAt(e, "must not be empty")
		return "", false
	}
	return e.val, true
}

func (s *source) boolean(e entry) (bool, bool) {
	if s.dialect == dialectMHA {
		// MHA's booleans are 0 and 1.
		switch e.val {
		case "1":
			return true, true
		case "0":
			return false, true
		}
		s.errs.addAt(e, "must be 0 or 1 (got %s)", quoteVal(e.val))
		return false, false
	}
	switch strings.ToLower(e.val) {
	case "1", "true", "yes", "on":
		return true, true
	case "0", "false", "no", "off":
		return false, true
	}
	s.errs.addAt(e, "must be true or false (got %s)", quoteVal(e.val))
	return false, false
}

func (s *source) integer(e entry, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(e.val)
	if err != nil {
		s.errs.addAt(e, "must be an integer (got %s)", quoteVal(e.val))
		return 0, false
	}
	if n < lo || n > hi {
		s.errs.addAt(e, "must be between %d and %d (got %d)", lo, hi, n)
		return 0, false
	}
	return n, true
}

// interval parses MHA whole seconds (>= 1) or, in YAML, also a Go duration
// of at least yamlMin.
func (s *source) interval(e entry, yamlMin time.Duration) (time.Duration, bool) {
	const maxSeconds = 86400
	if n, err := strconv.Atoi(e.val); err == nil {
		if n < 1 || n > maxSeconds {
			s.errs.addAt(e, "must be a whole number of seconds between 1 and %d (got %d)", maxSeconds, n)
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if s.dialect == dialectMHA {
		s.errs.addAt(e, "must be a whole number of seconds >= 1 (got %s)", quoteVal(e.val))
		return 0, false
	}
	d, err := time.ParseDuration(e.val)
	if err != nil {
		s.errs.addAt(e, "must be a duration like \"1s\" or \"500ms\", or whole seconds (got %s)", quoteVal(e.val))
		return 0, false
	}
	if d < yamlMin || d > maxSeconds*time.Second {
		s.errs.addAt(e, "must be between %s and %s (got %s)", yamlMin, maxSeconds*time.Second, d)
		return 0, false
	}
	return d, true
}

func (s *source) ipAddr(e entry) bool {
	if e.val == "" {
		return true
	}
	if !isIP(e.val) {
		s.errs.addAt(e, "must be an IP address (got %s)", quoteVal(e.val))
		return false
	}
	return true
}

func (s *source) secretEnv(e entry) Secret {
	if e.val == "" {
		s.errs.addAt(e, "must name an environment variable")
		return Secret{}
	}
	v, ok := s.lookupEnv(e.val)
	if !ok {
		s.errs.addAt(e, "environment variable %s is not set", e.val)
		return Secret{}
	}
	if v == "" {
		s.errs.addAt(e, "environment variable %s is empty", e.val)
		return Secret{}
	}
	s.addSecret(v)
	return NewSecret(v)
}

func (s *source) secretFile(e entry) Secret {
	if e.val == "" {
		s.errs.addAt(e, "must name a file")
		return Secret{}
	}
	if s.fileVal == nil {
		s.fileVal = make(map[string]fileResult)
	}
	r, ok := s.fileVal[e.val]
	if !ok {
		b, err := s.readFile(e.val)
		r = fileResult{val: strings.TrimRight(string(b), "\r\n"), err: err}
		s.fileVal[e.val] = r
	}
	switch {
	case errors.Is(r.err, fs.ErrNotExist):
		s.errs.addAt(e, "secret file %s does not exist", e.val)
	case r.err != nil:
		s.errs.addAt(e, "reading secret file %s: %v", e.val, unwrapPath(r.err))
	case r.val == "":
		s.errs.addAt(e, "secret file %s is empty", e.val)
	default:
		s.addSecret(r.val)
		return NewSecret(r.val)
	}
	return Secret{}
}
