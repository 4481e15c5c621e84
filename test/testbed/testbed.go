// Package testbed builds a real MariaDB primary/replica cluster for tests:
// every host is a Linux network namespace with its own mariadbd and sshd,
// joined by a bridge that lives in a "switch" namespace of its own. A client
// namespace runs workloads that record every acknowledged write, a manager
// namespace hosts the manager under test, and fault injection (kill -9,
// SIGSTOP, link down) works on the real processes and links.
//
// Network safety (see DESIGN.md, "Test bed"): the bed only uses a /24 inside
// 198.18.0.0/15 (default 198.18.0.0/24); before creating anything it refuses a
// subnet that any address or (non-default) route of the root namespace
// overlaps, then installs a blackhole route for the subnet in the root
// namespace (metric 4000, kept after teardown) so that nothing can ever leak
// through the default route. No address of the subnet is ever configured in
// the root namespace, the bridge lives in <prefix>-sw which has no address,
// and no namespace gets a default route. Clients dial from inside a namespace
// (Bed.Dialer).
//
// Everything needs root. Only one bed runs per machine at a time: Up takes an
// exclusive flock on /run/cloudmha-testbed.lock and Down releases it.
package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults and fixed names.
const (
	DefaultSubnet = "198.18.0.0/24"
	DefaultPrefix = "cmha"
	DefaultHosts  = 3
	// BaseDir holds the cached template datadir and the default work
	// directories (BaseDir/<prefix>).
	BaseDir = "/var/tmp/cloudmha-testbed"
	// LockPath is the machine-wide lock that serialises beds.
	LockPath = "/run/cloudmha-testbed.lock"
	// MarkerDir records, per prefix, the work directory of a running bed so
	// that Leftovers and a later Up can find processes of a custom WorkDir.
	MarkerDir = "/run/cloudmha-testbed"
	// MySQLPort is the port of every mariadbd.
	MySQLPort = 3306
	// TestDatabase and TestTable hold the workload's rows.
	TestDatabase = "cloudmha_test"
	TestTable    = "writes"
	// DefaultSemiSyncTimeout is rpl_semi_sync_master_timeout when
	// Options.SemiSync is on and Options.SemiSyncTimeout is zero.
	DefaultSemiSyncTimeout = 2 * time.Second
	// BlackholeMetric is the metric of the root namespace's blackhole route.
	BlackholeMetric = 4000

	stateFile  = "state.json"
	markerFile = ".cloudmha-testbed"
	vipOctet   = 100
	clientOct  = 200
	mgrOctet   = 201
	firstHost  = 11
	maxHosts   = 20
)

// Options configures Up. Zero values take the defaults documented per field.
type Options struct {
	Hosts   int    // number of database hosts db1..dbN at .11, .12, …; default 3, at most 20
	Subnet  string // a /24 inside 198.18.0.0/15; default "198.18.0.0/24"
	Prefix  string // namespace prefix: <prefix>-sw, <prefix>-db1…, <prefix>-client, <prefix>-mgr; default "cmha"
	WorkDir string // default /var/tmp/cloudmha-testbed/<prefix>
	// SemiSync turns semi-synchronous replication on: every host runs with
	// rpl_semi_sync_slave_enabled=ON, rpl_semi_sync_master_wait_point=AFTER_SYNC
	// and rpl_semi_sync_master_timeout=SemiSyncTimeout; the source side
	// (rpl_semi_sync_master_enabled) is switched on only on the primary, at
	// bring-up and when Start restarts a host that has no replication
	// configured.
	SemiSync bool
	// SemiSyncTimeout defaults to 2 s (DefaultSemiSyncTimeout): long enough
	// that a replica briefly slow to ack does not drop the primary to
	// asynchronous mode, short enough that a workload against a primary whose
	// replicas are all gone stalls for 2 s and not a minute.
	SemiSyncTimeout time.Duration
	// Durable runs mariadbd with innodb_flush_log_at_trx_commit=1 and
	// sync_binlog=1. Off by default (2 and 0): the bed injects process and
	// network faults, never power loss, and a commit in the page cache
	// survives kill -9 — fsync per commit only slows the bed on a busy disk.
	Durable bool
	Logger  *slog.Logger `json:"-"`
}

// Host is one database host: a namespace with a mariadbd and an sshd.
type Host struct {
	Name        string // db1, db2, …
	NS          string // <prefix>-db1
	IP          string // 198.18.0.11
	Iface       string // interface inside NS: eth0
	SwitchIface string // the veth end on the bridge in <prefix>-sw (named like the host)
	Port        int    // 3306
	ServerID    int    // 1, 2, …
	Dir         string // WorkDir/<name>
	DataDir     string // Dir/data (binary logs live here too: mysql-bin.*)
	Socket      string // Dir/mysql.sock
	PIDFile     string // Dir/mariadbd.pid
	SSHDir      string // Dir/ssh: sshd_config, host key, authorized_keys, pid file, log
}

// Addr is IP:Port.
func (h *Host) Addr() string { return fmt.Sprintf("%s:%d", h.IP, h.Port) }

// Bed is a running test bed. Its exported fields are saved in
// WorkDir/state.json; Load re-attaches to them from another process.
type Bed struct {
	Opts      Options
	Hosts     []*Host
	Primary   string // name of the initial primary: db1
	VIP       string // 198.18.0.100, on the primary's eth0 at bring-up
	SwitchNS  string // <prefix>-sw: the bridge br0, no address
	ClientNS  string // <prefix>-client at .200
	ClientIP  string
	ManagerNS string // <prefix>-mgr at .201
	ManagerIP string
	// User/Password: cloudmha's monitoring and admin account, ALL
	// PRIVILEGES ON *.* WITH GRANT OPTION, from the subnet ('198.18.0.%').
	User, Password string
	// ReplUser/ReplPassword: REPLICATION SLAVE, REPLICATION CLIENT (= BINLOG
	// MONITOR), SLAVE MONITOR and REPLICATION SLAVE ADMIN, from the subnet.
	ReplUser, ReplPassword string
	// SSHKey is the private ed25519 key (OpenSSH format) authorized for
	// root on every host's sshd; SSHKey+".pub" is its public half.
	SSHKey string
	// Started is when Up finished; BringUp how long it took.
	Started time.Time
	BringUp time.Duration

	log    *slog.Logger
	subnet netip.Prefix
	mu     sync.Mutex
	lock   *os.File // the machine-wide lock while this process holds it
	nsMu   sync.Mutex
	extra  []string // namespaces built on demand (Bed.Internet), in order
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

func (o *Options) setDefaults() {
	if o.Hosts == 0 {
		o.Hosts = DefaultHosts
	}
	if o.Subnet == "" {
		o.Subnet = DefaultSubnet
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(BaseDir, o.Prefix)
	}
	if o.SemiSync && o.SemiSyncTimeout <= 0 {
		o.SemiSyncTimeout = DefaultSemiSyncTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	if o.Hosts < 1 || o.Hosts > maxHosts {
		return fmt.Errorf("testbed: Hosts must be 1..%d, got %d", maxHosts, o.Hosts)
	}
	if !prefixRE.MatchString(o.Prefix) {
		return fmt.Errorf("testbed: Prefix %q must match %s", o.Prefix, prefixRE)
	}
	return validateWorkDir(o.WorkDir)
}

// validateWorkDir refuses work directories whose removal could hurt: the bed
// deletes its WorkDir at Up, so it must be a dedicated absolute directory.
func validateWorkDir(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return fmt.Errorf("testbed: WorkDir %q must be an absolute, clean path", dir)
	}
	if strings.Count(dir, "/") < 3 {
		return fmt.Errorf("testbed: WorkDir %q is too close to / to be deleted safely", dir)
	}
	return nil
}

// Up builds a bed: validates the subnet against the root namespace, adds the
// blackhole route, takes the machine-wide lock, cleans up any earlier bed of
// the same prefix, then creates namespaces, starts mariadbd and sshd on every
// host, sets up GTID replication from db1 and puts the VIP on db1. On error
// everything created is torn down again.
func Up(ctx context.Context, o Options) (*Bed, error) {
	start := time.Now()
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("testbed: needs root (network namespaces, mariadbd --user=mysql)")
	}
	subnet, rangeErr := ValidateSubnet(o.Subnet)
	var overlapErr error
	if p, err := netip.ParsePrefix(o.Subnet); err == nil && p.Addr().Is4() {
		routes, addrs, err := rootNetworkState(ctx)
		if err != nil {
			return nil, err
		}
		overlapErr = CheckOverlap(p.Masked(), routes, addrs)
	}
	if err := errors.Join(rangeErr, overlapErr); err != nil {
		return nil, fmt.Errorf("testbed: refusing subnet %s: %w", o.Subnet, err)
	}
	// First action: the blackhole, so that nothing of the subnet can ever
	// leave through the default route, even from a leftover.
	if err := run(ctx, "ip", "route", "replace", "blackhole", subnet.String(), "metric", fmt.Sprint(BlackholeMetric)); err != nil {
		return nil, err
	}
	log := o.Logger.With("prefix", o.Prefix)
	lock, err := acquireLock(ctx, o.Prefix)
	if err != nil {
		return nil, err
	}
	b := newBed(o, subnet)
	b.lock = lock
	log.Info("testbed: cleaning up earlier runs")
	if err := cleanup(ctx, o.Prefix, []string{o.WorkDir}, log); err != nil {
		b.releaseLock()
		return nil, err
	}
	if err := prepareWorkDir(o.WorkDir); err != nil {
		b.releaseLock()
		return nil, err
	}
	if err := b.bringUp(ctx); err != nil {
		log.Error("testbed: bring-up failed, tearing down", "err", err)
		if derr := b.Down(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, fmt.Errorf("teardown after failed bring-up: %w", derr))
		}
		return nil, err
	}
	b.Started = time.Now()
	b.BringUp = time.Since(start)
	if err := b.saveState(); err != nil {
		_ = b.Down(context.WithoutCancel(ctx))
		return nil, err
	}
	log.Info("testbed: up", "hosts", len(b.Hosts), "took", b.BringUp.Round(time.Millisecond))
	return b, nil
}

func newBed(o Options, subnet netip.Prefix) *Bed {
	b := &Bed{
		Opts:         o,
		Primary:      "db1",
		VIP:          hostIP(subnet, vipOctet),
		SwitchNS:     o.Prefix + "-sw",
		ClientNS:     o.Prefix + "-client",
		ClientIP:     hostIP(subnet, clientOct),
		ManagerNS:    o.Prefix + "-mgr",
		ManagerIP:    hostIP(subnet, mgrOctet),
		User:         "cloudmha",
		Password:     "cloudmha-testbed-pw",
		ReplUser:     "repl",
		ReplPassword: "repl-testbed-pw",
		SSHKey:       filepath.Join(o.WorkDir, "id_ed25519"),
		log:          o.Logger.With("prefix", o.Prefix),
		subnet:       subnet,
	}
	for i := 1; i <= o.Hosts; i++ {
		name := fmt.Sprintf("db%d", i)
		dir := filepath.Join(o.WorkDir, name)
		b.Hosts = append(b.Hosts, &Host{
			Name:        name,
			NS:          o.Prefix + "-" + name,
			IP:          hostIP(subnet, firstHost+i-1),
			Iface:       "eth0",
			SwitchIface: name,
			Port:        MySQLPort,
			ServerID:    i,
			Dir:         dir,
			DataDir:     filepath.Join(dir, "data"),
			Socket:      filepath.Join(dir, "mysql.sock"),
			PIDFile:     filepath.Join(dir, "mariadbd.pid"),
			SSHDir:      filepath.Join(dir, "ssh"),
		})
	}
	return b
}

func hostIP(subnet netip.Prefix, octet int) string {
	a := subnet.Addr().As4()
	a[3] = byte(octet)
	return netip.AddrFrom4(a).String()
}

// userHost is the account host pattern for the subnet: '198.18.0.%'.
func (b *Bed) userHost() string {
	a := b.subnet.Addr().As4()
	return fmt.Sprintf("%d.%d.%d.%%", a[0], a[1], a[2])
}

// prepareWorkDir empties WorkDir (only if it is ours: marker present, or
// empty) and marks it.
func prepareWorkDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) == 0:
	default:
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			return fmt.Errorf("testbed: WorkDir %s is not empty and not a test bed's (no %s): refusing to delete it", dir, markerFile)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte("cloudmha test bed work directory; deleted by the next Up\n"), 0o644)
}

// Load re-attaches to a bed brought up (possibly by another process) with
// this WorkDir. The returned Bed does not hold the machine-wide lock.
func Load(workDir string) (*Bed, error) {
	data, err := os.ReadFile(filepath.Join(workDir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("testbed: no bed in %s: %w", workDir, err)
	}
	b := &Bed{}
	if err := json.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", filepath.Join(workDir, stateFile), err)
	}
	b.subnet, err = ValidateSubnet(b.Opts.Subnet)
	if err != nil {
		return nil, err
	}
	b.Opts.Logger = slog.New(slog.DiscardHandler)
	b.log = b.Opts.Logger
	return b, nil
}

// SetLogger replaces the logger (useful after Load).
func (b *Bed) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	b.Opts.Logger = l
	b.log = l.With("prefix", b.Opts.Prefix)
}

func (b *Bed) saveState() error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(b.Opts.WorkDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(b.Opts.WorkDir, stateFile)); err != nil {
		return err
	}
	if err := os.MkdirAll(MarkerDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(MarkerDir, b.Opts.Prefix+".workdir"), []byte(b.Opts.WorkDir+"\n"), 0o644)
}

// Down tears the bed down: kills every process it started (by PID file and
// by a sweep of the processes inside its namespaces or running from its
// WorkDir), deletes every namespace of the prefix, removes the data
// directories and state (logs stay in WorkDir for post-mortems) and releases
// the machine-wide lock. It is idempotent and also cleans up after a crashed
// earlier run of the same prefix. The root namespace's blackhole route stays.
func (b *Bed) Down(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.releaseLock()
	err := cleanup(ctx, b.Opts.Prefix, []string{b.Opts.WorkDir}, b.log)
	for _, h := range b.Hosts {
		if rerr := os.RemoveAll(h.DataDir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		for _, g := range []string{"relay-bin.*", "tmp", "mysql.sock*", "mariadbd.pid", "ssh/sshd.pid"} {
			m, _ := filepath.Glob(filepath.Join(h.Dir, g))
			for _, f := range m {
				_ = os.RemoveAll(f)
			}
		}
	}
	_ = os.Remove(filepath.Join(b.Opts.WorkDir, stateFile))
	_ = os.Remove(filepath.Join(MarkerDir, b.Opts.Prefix+".workdir"))
	if err == nil {
		b.log.Info("testbed: down")
	}
	return err
}

func (b *Bed) releaseLock() {
	if b.lock != nil {
		releaseLock(b.lock)
		b.lock = nil
	}
}

// Host returns the host called name (db1, …) or nil.
func (b *Bed) Host(name string) *Host {
	for _, h := range b.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Replicas returns every host except the one called primary.
func (b *Bed) Replicas(primary string) []*Host {
	var out []*Host
	for _, h := range b.Hosts {
		if h.Name != primary {
			out = append(out, h)
		}
	}
	return out
}

// Namespaces lists every namespace of the bed, the switch first and those
// built on demand (the internet's, Bed.Internet) last.
func (b *Bed) Namespaces() []string {
	out := []string{b.SwitchNS}
	for _, h := range b.Hosts {
		out = append(out, h.NS)
	}
	out = append(out, b.ClientNS, b.ManagerNS)
	b.nsMu.Lock()
	defer b.nsMu.Unlock()
	return append(out, b.extra...)
}

// addNamespace records a namespace built after Up (the internet's), so that
// Namespaces lists it; Down removes it with every <prefix>-* namespace.
func (b *Bed) addNamespace(ns string) {
	b.nsMu.Lock()
	defer b.nsMu.Unlock()
	if !slices.Contains(b.extra, ns) {
		b.extra = append(b.extra, ns)
	}
}

func (b *Bed) removeNamespace(ns string) {
	b.nsMu.Lock()
	defer b.nsMu.Unlock()
	b.extra = slices.DeleteFunc(b.extra, func(s string) bool { return s == ns })
}

// Exec runs `ip netns exec NS name args…` and returns its combined output;
// on failure the error contains the output.
func (b *Bed) Exec(ctx context.Context, ns string, name string, args ...string) ([]byte, error) {
	return output(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// WriteYAMLConfig writes a cloudmha YAML configuration of the bed to path,
// with workdir as manager_workdir and the given address mover and its
// options (a YAML flow mapping, e.g. `{region: cn-hangzhou, havip_id: x}`):
// cloud movers take settings that only the YAML format carries.
func (b *Bed) WriteYAMLConfig(path, workdir, mover, options string) error {
	var servers strings.Builder
	for i, h := range b.Hosts {
		fmt.Fprintf(&servers, "  - {name: server%d, hostname: %s, port: %d, master_binlog_dir: [%s]}\n", i+1, h.IP, h.Port, h.DataDir)
	}
	yaml := fmt.Sprintf(`# cloudmha configuration of the test bed %s (generated)
name: app1
manager: {workdir: %s, log_level: info}
monitor: {ping_interval: 1s}
defaults:
  user: %s
  password: %s
  repl_user: %s
  repl_password: %s
  ssh_user: root
  ssh_options: "-i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
servers:
%saddress:
  mover: %s
  options: %s
`, b.Opts.Prefix, workdir, b.User, b.Password, b.ReplUser, b.ReplPassword, b.SSHKey, servers.String(), mover, options)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(yaml), 0o600)
}

// WriteMHAConfig writes an MHA app.cnf for this bed. extra adds or overrides
// keys of [server default]. master_binlog_dir is written per [serverN]
// (every host has its own datadir on this machine). ssh_options is written
// without quotes, as MHA passes the value verbatim to a shell.
func (b *Bed) WriteMHAConfig(path string, extra map[string]string) error {
	def := map[string]string{
		"user":            b.User,
		"password":        b.Password,
		"repl_user":       b.ReplUser,
		"repl_password":   b.ReplPassword,
		"ssh_user":        "root",
		"ssh_options":     fmt.Sprintf("-i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null", b.SSHKey),
		"manager_workdir": filepath.Join(b.Opts.WorkDir, "mgr"),
		"ping_interval":   "1",
	}
	for k, v := range extra {
		def[k] = v
	}
	keys := make([]string, 0, len(def))
	for k := range def {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString("# MHA configuration of the cloudmha test bed " + b.Opts.Prefix + " (generated)\n[server default]\n")
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\n", k, def[k])
	}
	for i, h := range b.Hosts {
		fmt.Fprintf(&sb, "\n[server%d]\nhostname=%s\nport=%d\nmaster_binlog_dir=%s\n", i+1, h.IP, h.Port, h.DataDir)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(sb.String()), 0o600)
}

// run runs a command in the root namespace; the error carries its output.
func run(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, name, args...)
	return err
}

func output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// lookPath finds a program in PATH or the usual sbin directories (go test
// may run with a PATH without them).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("testbed: %s not found", name)
}
