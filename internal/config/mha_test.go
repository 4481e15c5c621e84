package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantApp1 is testdata/app1.cnf on top of testdata/masterha_default.cnf.
func wantApp1() *Config {
	base := Server{
		Port: 3307, SSHPort: 2222, SSHUser: "root", SSHOptions: "-o StrictHostKeyChecking=no",
		SSHConnectionTimeout: 10 * time.Second, User: "mha", Password: NewSecret("Pa55 w0rd#1"),
		ReplUser: "repl", ReplPassword: NewSecret("R3pl!"), MasterPIDFile: "/var/run/mysqld/mysqld.pid",
		HandleRawBinlog: true, RemoteWorkdir: "/var/tmp/mha", MasterBinlogDir: []string{"/var/lib/mysql", "/data/binlog"},
		UseGTIDAutoPos: true,
	}
	s1 := base
	s1.Name, s1.Hostname, s1.IP, s1.CandidateMaster, s1.NodeLabel, s1.Zone, s1.Priority =
		"server1", "db1.example.internal", "10.0.0.11", true, "rack-a", "cn-hangzhou-h", 100
	s2 := base
	s2.Name, s2.Hostname, s2.IP, s2.Port, s2.SSHHost, s2.SSHIP, s2.SSHPort, s2.CandidateMaster, s2.Zone =
		"server2", "db2.example.internal", "10.0.0.12", 3306, "db2-mgmt.example.internal", "10.1.0.12", 22, true, "cn-hangzhou-i"
	s3 := base
	s3.Name, s3.Hostname, s3.NoMaster, s3.IgnoreFail, s3.SkipInitSSHCheck, s3.SkipResetSlave = "server3", "db3.example.internal", true, true, true, true
	s3.DisableLogBin, s3.HandleRawBinlog, s3.UseGTIDAutoPos, s3.User = true, false, false, "mha3"
	s3.Password, s3.ReplPassword, s3.MasterBinlogDir = NewSecret("Db3-Secret"), NewSecret("Repl-From-File"), []string{"/mysql/binlog"}
	return &Config{
		Name:                       "app1",
		Files:                      []string{"masterha_default.cnf", "app1.cnf"},
		ManagerWorkdir:             "/var/log/masterha/app1",
		ManagerLog:                 "/var/log/masterha/app1/manager.log",
		LogLevel:                   "info",
		PingInterval:               2 * time.Second,
		PingType:                   PingInsert,
		CheckReplDelay:             false,
		CheckReplFilter:            true,
		LatestPriority:             false,
		MultiTierSlave:             true,
		SecondaryCheckScript:       "masterha_secondary_check -s remote1 -s remote2",
		MasterIPFailoverScript:     "/usr/local/bin/master_ip_failover",
		MasterIPOnlineChangeScript: "/usr/local/bin/master_ip_online_change",
		ShutdownScript:             "/usr/local/bin/power_manager",
		ReportScript:               "/usr/local/bin/send_report",
		InitConfLoadScript:         "/usr/local/bin/load_conf",
		Servers:                    []Server{s1, s2, s3},
		BinlogServers: []BinlogServer{{
			Name: "binlog1", Hostname: "binlog1.example.internal", Port: 3307, SSHPort: 2222, SSHUser: "root",
			SSHOptions: "-o StrictHostKeyChecking=no", SSHConnectionTimeout: 10 * time.Second,
			MasterBinlogDir: []string{"/var/lib/binlog-server"}, RemoteWorkdir: "/var/tmp/mha",
		}},
		Address: Address{Mover: MoverScript},
		Ignored: []IgnoredParam{
			{File: "masterha_default.cnf", Line: 11, Key: "client_bindir", Reason: "not used by cloudmha"},
			{File: "app1.cnf", Line: 33, Key: "client_bindir", Reason: "not used by cloudmha"},
			{File: "app1.cnf", Line: 34, Key: "client_libdir", Reason: "not used by cloudmha"},
			{File: "app1.cnf", Line: 52, Key: "check_repl_delay", Reason: "application parameter in a host section: cloudmha reads it from [server default] only"},
		},
	}
}

func TestParseMHAFull(t *testing.T) {
	te := newTestEnv()
	got, err := ParseMHA("masterha_default.cnf", readTestdata(t, "masterha_default.cnf"),
		"app1.cnf", readTestdata(t, "app1.cnf"), te.opts())
	if err != nil {
		t.Fatalf("ParseMHA: %v", err)
	}
	want := wantApp1()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config mismatch:\n got: %+v\nwant: %+v", got, want)
		for i := range min(len(got.Servers), len(want.Servers)) {
			if !reflect.DeepEqual(got.Servers[i], want.Servers[i]) {
				t.Errorf("server %d:\n got: %+v\nwant: %+v", i, got.Servers[i], want.Servers[i])
			}
		}
	}
	// Secrets: compared above through DeepEqual; check the values too.
	if v := got.Servers[0].Password.Value(); v != "Pa55 w0rd#1" {
		t.Errorf("quoted password: got %q", v)
	}
	if v := got.Servers[2].ReplPassword.Value(); v != "Repl-From-File" {
		t.Errorf("repl_password_file: got %q", v)
	}
	// Ignored parameters are logged.
	for _, s := range []string{"level=DEBUG", "key=client_libdir", "line=34", "level=WARN", "key=check_repl_delay"} {
		if !strings.Contains(te.log.String(), s) {
			t.Errorf("log lacks %q:\n%s", s, te.log.String())
		}
	}
	if got.Servers[1].Addr() != "10.0.0.12:3306" || got.Servers[1].SSHAddr() != "10.1.0.12:22" {
		t.Errorf("addr %s ssh %s", got.Servers[1].Addr(), got.Servers[1].SSHAddr())
	}
	if got.Servers[2].Addr() != "db3.example.internal:3307" || got.Servers[2].SSHAddr() != "db3.example.internal:2222" {
		t.Errorf("addr %s ssh %s", got.Servers[2].Addr(), got.Servers[2].SSHAddr())
	}
}

// TestMHADefaults checks that an app.cnf with nothing but a hostname gets
// MHA 0.58's defaults.
func TestMHADefaults(t *testing.T) {
	got, err := ParseMHA("", nil, "/etc/mha/app2.cnf", []byte("[server1]\nhostname=db1\n"), newTestEnv().opts())
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Name: "app2", Files: []string{"/etc/mha/app2.cnf"},
		ManagerWorkdir: "/var/tmp", LogLevel: "info", PingInterval: 3 * time.Second, PingType: "SELECT",
		CheckReplDelay: true, CheckReplFilter: true, LatestPriority: true, MultiTierSlave: false,
		Servers: []Server{{
			Name: "server1", Hostname: "db1", Port: 3306, SSHPort: 22, SSHUser: "osuser",
			SSHConnectionTimeout: 5 * time.Second, User: "root", HandleRawBinlog: true,
			RemoteWorkdir: "/var/tmp", MasterBinlogDir: []string{"/var/lib/mysql", "/var/log/mysql"},
			UseGTIDAutoPos: true,
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got: %+v\nwant: %+v", got, want)
	}
	if got.Servers[0].Password.IsSet() || got.Servers[0].ReplPassword.IsSet() {
		t.Error("passwords should be unset")
	}
}

func TestMHALayering(t *testing.T) {
	global := "[server default]\nuser=g\nport=3310\nping_interval=7\npassword_env=DB3_PASSWORD\nssh_options='-i key'\n[server9]\nhostname=ignored\n"
	app := strings.Join([]string{
		"[server default]",
		"user=a",
		"[server1]",
		"hostname=h1",
		"[server2]",
		"hostname=h2",
		"port=3311",
		"password=Own-Pw",
		"[server_x]",
		"hostname=h3",
		"repl_password_file=/etc/cloudmha/crlf.pw",
	}, "\n")
	te := newTestEnv()
	c, err := ParseMHA("g.cnf", []byte(global), "app.cnf", []byte(app), te.opts())
	if err != nil {
		t.Fatal(err)
	}
	if c.PingInterval != 7*time.Second {
		t.Errorf("ping_interval from global: %s", c.PingInterval)
	}
	type row struct {
		name, user string
		port       int
		pw, opts   string
	}
	var got []row
	for _, s := range c.Servers {
		got = append(got, row{s.Name, s.User, s.Port, s.Password.Value(), s.SSHOptions})
	}
	want := []row{
		{"server1", "a", 3310, "Db3-Secret", "-i key"},
		{"server2", "a", 3311, "Own-Pw", "-i key"},
		{"server_x", "a", 3310, "Db3-Secret", "-i key"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	if v := c.Servers[2].ReplPassword.Value(); v != "Crlf-Secret" {
		t.Errorf("trailing CRLF not trimmed: %q", v)
	}
	if len(c.Ignored) != 1 || c.Ignored[0].Key != "[server9]" || c.Ignored[0].File != "g.cnf" || c.Ignored[0].Line != 7 {
		t.Errorf("ignored: %+v", c.Ignored)
	}
}

func TestMHAQuotesAndSyntax(t *testing.T) {
	app := "# comment\n; other comment\n  [ server default ]  \n  user =  'quoted user'  \nmaster_binlog_dir = /a , /b/c ,\n" +
		"ssh_options = -o \"ConnectTimeout=3\" -o 'X=1'\nmanager_log=/x # not a comment\n\r\n[server1]\r\nhostname=h\r\n"
	c, err := ParseMHA("", nil, "app.cnf", []byte(app), newTestEnv().opts())
	if err != nil {
		t.Fatal(err)
	}
	s := c.Servers[0]
	if s.User != "quoted user" || !reflect.DeepEqual(s.MasterBinlogDir, []string{"/a", "/b/c"}) ||
		s.SSHOptions != "-o ConnectTimeout=3 -o X=1" || c.ManagerLog != "/x # not a comment" || s.Hostname != "h" {
		t.Errorf("got %+v / %q", s, c.ManagerLog)
	}
}

func TestMHAHostKeysInDefaultAreNotInherited(t *testing.T) {
	c, err := ParseMHA("", nil, "app.cnf", []byte("[server default]\ncandidate_master=1\nhostname=x\n[server1]\nhostname=h\n"), newTestEnv().opts())
	if err != nil {
		t.Fatal(err)
	}
	if c.Servers[0].CandidateMaster || c.Servers[0].Hostname != "h" {
		t.Errorf("host-only key inherited: %+v", c.Servers[0])
	}
	if len(c.Ignored) != 2 || c.Ignored[0].Key != "candidate_master" || c.Ignored[0].Line != 2 {
		t.Errorf("ignored: %+v", c.Ignored)
	}
}

func TestMHAInitConfLoad(t *testing.T) {
	app := "[server default]\ninit_conf_load_script=/bin/load\npassword=old\n[server1]\nhostname=h\n"
	opts := newTestEnv().opts()
	var ran string
	opts.InitConfLoad = func(script string) ([]byte, error) {
		ran = script
		return []byte("password=From-Script\nping_interval=9\n"), nil
	}
	c, err := ParseMHA("", nil, "app.cnf", []byte(app), opts)
	if err != nil {
		t.Fatal(err)
	}
	if ran != "/bin/load" || c.PingInterval != 9*time.Second || c.Servers[0].Password.Value() != "From-Script" {
		t.Errorf("ran %q ping %s", ran, c.PingInterval)
	}
	opts.InitConfLoad = func(string) ([]byte, error) { return []byte("ping_type=PONG\n"), nil }
	_, err = ParseMHA("", nil, "app.cnf", []byte(app), opts)
	diffLines(t, errStrings(t, err), []string{`init_conf_load_script output:1: ping_type: must be one of SELECT, CONNECT, INSERT (got "PONG")`})
}

func TestMHAErrors(t *testing.T) {
	const h = "[server1]\nhostname=h1\n"
	tests := []struct {
		name   string
		global string // "" = none
		app    string
		want   []string
	}{
		{"unknown key", "", "[server default]\nuser=a\nfoo=1\n" + h,
			[]string{`app.cnf:3: foo: unknown parameter (MHA: "Parameter name foo is invalid!")`}},
		{"unknown key in host", "", h + "Hostname=x\n",
			[]string{`app.cnf:3: Hostname: unknown parameter (MHA: "Parameter name Hostname is invalid!")`}},
		{"bad port", "", h + "port=33o6\n",
			[]string{`app.cnf:3: port: must be an integer (got "33o6")`}},
		{"port out of range", "", h + "port=70000\n",
			[]string{`app.cnf:3: port: must be between 1 and 65535 (got 70000)`}},
		{"port zero in default", "", "[server default]\nport=0\n" + h,
			[]string{`app.cnf:2: port: must be between 1 and 65535 (got 0)`}},
		{"bad ssh_port", "", h + "ssh_port=-1\n",
			[]string{`app.cnf:3: ssh_port: must be between 1 and 65535 (got -1)`}},
		{"bad bool", "", h + "candidate_master=yes\n",
			[]string{`app.cnf:3: candidate_master: must be 0 or 1 (got "yes")`}},
		{"bad bool in default", "", "[server default]\ncheck_repl_delay=true\n" + h,
			[]string{`app.cnf:2: check_repl_delay: must be 0 or 1 (got "true")`}},
		{"ping_interval 0", "", "[server default]\nping_interval=0\n" + h,
			[]string{`app.cnf:2: ping_interval: must be a whole number of seconds between 1 and 86400 (got 0)`}},
		{"ping_interval fraction", "", "[server default]\nping_interval=0.5\n" + h,
			[]string{`app.cnf:2: ping_interval: must be a whole number of seconds >= 1 (got "0.5")`}},
		{"ping_interval duration", "", "[server default]\nping_interval=1s\n" + h,
			[]string{`app.cnf:2: ping_interval: must be a whole number of seconds >= 1 (got "1s")`}},
		{"ssh_connection_timeout 0", "", h + "ssh_connection_timeout=0\n",
			[]string{`app.cnf:3: ssh_connection_timeout: must be a whole number of seconds between 1 and 86400 (got 0)`}},
		{"bad ping_type", "", "[server default]\nping_type=PONG\n" + h,
			[]string{`app.cnf:2: ping_type: must be one of SELECT, CONNECT, INSERT (got "PONG")`}},
		{"bad log_level", "", "[server default]\nlog_level=verbose\n" + h,
			[]string{`app.cnf:2: log_level: must be one of debug, info, notice, warning, error (got "verbose")`}},
		{"bad ip", "", h + "ip=10.0.0.300\n",
			[]string{`app.cnf:3: ip: must be an IP address (got "10.0.0.300")`}},
		{"empty master_binlog_dir", "", h + "master_binlog_dir= , \n",
			[]string{`app.cnf:3: master_binlog_dir: must name at least one directory`}},
		{"missing hostname", "", h + "\n[server2]\nport=3307\n",
			[]string{`app.cnf:4: hostname: missing: every server needs a hostname`}},
		{"empty hostname", "", h + "[server2]\nhostname=\n",
			[]string{`app.cnf:4: hostname: missing: every server needs a hostname`}},
		{"missing binlog hostname", "", h + "[binlog1]\nport=3307\n",
			[]string{`app.cnf:3: hostname: missing: every binlog server needs a hostname`}},
		{"no servers", "", "[server default]\nuser=a\n",
			[]string{`app.cnf: no server is defined: at least one host section ([server1], [server_db2], … or a servers: item) is required`}},
		{"only binlog servers", "", "[binlog1]\nhostname=b\n",
			[]string{`app.cnf: no server is defined: at least one host section ([server1], [server_db2], … or a servers: item) is required`}},
		{"duplicate key", "", h + "user=a\nhostname=h2\n",
			[]string{`app.cnf:4: hostname: duplicate parameter in [server1] (first at line 2)`}},
		{"duplicate section", "", h + "[server2]\nhostname=h2\n[server1]\nhostname=h3\n",
			[]string{`app.cnf:5: [server1]: duplicate section (first at line 1)`}},
		{"line without =", "", h + "this line has no equals sign\n",
			[]string{`app.cnf:3: syntax error: expected [section] or key=value`}},
		{"empty key", "", h + "=value\n",
			[]string{`app.cnf:3: syntax error: empty parameter name`}},
		{"key outside section", "", "user=a\n" + h,
			[]string{`app.cnf:1: user: parameter outside of a section (start with [server default])`}},
		{"unknown section", "", h + "[mysqld]\nport=3306\n",
			[]string{`app.cnf:3: [mysqld]: invalid section name: must be "server default" or start with "server" or "binlog" followed by a non-space character`}},
		{"bare server section", "", h + "[server]\nhostname=x\n",
			[]string{`app.cnf:3: [server]: invalid section name: must be "server default" or start with "server" or "binlog" followed by a non-space character`}},
		{"empty section name", "", h + "[]\n",
			[]string{`app.cnf:3: empty section name`}},
		{"candidate and no_master", "", h + "candidate_master=1\nno_master=1\n",
			[]string{`app.cnf:4: no_master: candidate_master and no_master are both set on server server1`}},
		{"duplicate host:port", "", h + "[server2]\nhostname=h1\n",
			[]string{`app.cnf:4: hostname: server server2 has the same host and port (h1:3306) as server server1`}},
		{"duplicate ip:port", "", h + "ip=10.0.0.1\n[server2]\nhostname=10.0.0.1\n",
			[]string{`app.cnf:5: hostname: server server2 has the same host and port (10.0.0.1:3306) as server server1`}},
		{"same host other port is fine", "", h + "[server2]\nhostname=h1\nport=3307\n", nil},
		{"vip key in host section", "", h + "vip=10.0.0.100\n",
			[]string{`app.cnf:3: vip: allowed in [server default] only`}},
		{"vip without interface", "", "[server default]\nvip=10.0.0.100\n" + h,
			[]string{`app.cnf:1: vip_interface: missing: address mover vip needs the network interface`}},
		{"vip bad prefix", "", "[server default]\nvip=10.0.0.100\nvip_interface=eth0\nvip_prefix=33\n" + h,
			[]string{`app.cnf:4: vip_prefix: must be between 1 and 32 (got 33)`}},
		{"vip and script without mover", "", "[server default]\nvip=10.0.0.100\nvip_interface=eth0\nmaster_ip_failover_script=/bin/true\n" + h,
			[]string{`app.cnf:2: vip: both vip and master_ip_failover_script are set: choose one with address_mover (vip or script)`}},
		{"script mover without script", "", "[server default]\naddress_mover=script\n" + h,
			[]string{`app.cnf:2: address_mover: address mover script needs master_ip_failover_script`}},
		{"bad mover", "", "[server default]\naddress_mover=Big Cloud\n" + h,
			[]string{`app.cnf:2: address_mover: must be vip, script or a provider kind such as aliyun/havip (got "big cloud")`}},
		{"bad metrics_listen", "", "[server default]\nmetrics_listen=9104\n" + h,
			[]string{`app.cnf:2: metrics_listen: must be host:port, e.g. 127.0.0.1:9104 (got "9104")`}},
		{"password and password_env", "", h + "password=x\npassword_env=DB3_PASSWORD\n",
			[]string{`app.cnf:4: password_env: conflicts with password: set only one of password, password_env, password_file`}},
		{"password_env unset", "", "[server default]\npassword_env=NOPE\n" + h + "[server2]\nhostname=h2\n",
			[]string{`app.cnf:2: password_env: environment variable NOPE is not set`}},
		{"password_env empty", "", h + "password_env=EMPTY\n",
			[]string{`app.cnf:3: password_env: environment variable EMPTY is empty`}},
		{"password_file missing", "", h + "repl_password_file=/nope\n",
			[]string{`app.cnf:3: repl_password_file: secret file /nope does not exist`}},
		{"password_file empty", "", h + "password_file=/etc/cloudmha/empty.pw\n",
			[]string{`app.cnf:3: password_file: secret file /etc/cloudmha/empty.pw is empty`}},
		{"error in global file", "[server default]\nping_type=PONG\nbad_key=1\n", h,
			[]string{`g.cnf:2: ping_type: must be one of SELECT, CONNECT, INSERT (got "PONG")`,
				`g.cnf:3: bad_key: unknown parameter (MHA: "Parameter name bad_key is invalid!")`}},
		{"bad section in global", "[whatever]\nx=1\n", h,
			[]string{`g.cnf:1: [whatever]: invalid section name: only [server default] belongs in the global file`}},
		{"app overrides bad global", "[server default]\nping_interval=0\n", "[server default]\nping_interval=1\n" + h,
			[]string{`g.cnf:2: ping_interval: must be a whole number of seconds between 1 and 86400 (got 0)`}},
		{"all problems at once", "", "[server default]\nping_type=x\nnope=1\n[server1]\nport=x\ncandidate_master=1\nno_master=1\n[bad]\n",
			[]string{
				`app.cnf:2: ping_type: must be one of SELECT, CONNECT, INSERT (got "x")`,
				`app.cnf:3: nope: unknown parameter (MHA: "Parameter name nope is invalid!")`,
				`app.cnf:4: hostname: missing: every server needs a hostname`,
				`app.cnf:5: port: must be an integer (got "x")`,
				`app.cnf:7: no_master: candidate_master and no_master are both set on server server1`,
				`app.cnf:8: [bad]: invalid section name: must be "server default" or start with "server" or "binlog" followed by a non-space character`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var global []byte
			if tc.global != "" {
				global = []byte(tc.global)
			}
			c, err := ParseMHA("g.cnf", global, "app.cnf", []byte(tc.app), newTestEnv().opts())
			diffLines(t, errStrings(t, err), tc.want)
			if (err == nil) != (c != nil) {
				t.Errorf("config %v with error %v", c, err)
			}
		})
	}
}
