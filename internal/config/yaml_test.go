package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestYAMLEqualsMHA checks that app1.yaml describes the same cluster as
// app1.cnf with its global file.
func TestYAMLEqualsMHA(t *testing.T) {
	te := newTestEnv()
	fromCnf, err := ParseMHA("masterha_default.cnf", readTestdata(t, "masterha_default.cnf"),
		"app1.cnf", readTestdata(t, "app1.cnf"), te.opts())
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := ParseYAML("app1.yaml", readTestdata(t, "app1.yaml"), te.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(fromYAML.Ignored) != 0 || !reflect.DeepEqual(fromYAML.Files, []string{"app1.yaml"}) {
		t.Errorf("ignored %v files %v", fromYAML.Ignored, fromYAML.Files)
	}
	fromCnf.Files, fromCnf.Ignored, fromYAML.Files, fromYAML.Ignored = nil, nil, nil, nil
	if !reflect.DeepEqual(fromCnf, fromYAML) {
		t.Errorf("cnf and YAML differ:\n cnf: %+v\nyaml: %+v", fromCnf, fromYAML)
	}
	if fromYAML.Servers[2].Password.Value() != "Db3-Secret" {
		t.Error("password_env in YAML")
	}
}

func TestYAMLFeatures(t *testing.T) {
	const doc = `
name: shop-db
monitor:
  ping_interval: 500ms
defaults: &d
  ssh_connection_timeout: 3
  master_binlog_dir: /binlog
servers:
  - {hostname: 10.0.0.1, candidate_master: yes, priority: -5}
  - hostname: 10.0.0.2
    no_master: 1
    port: 3307
address:
  mover: VIP
  vip: 10.0.0.100
  interface: eth0
  options: {arp_count: "3"}
notify:
  - kind: DingTalk
    url: https://oapi.dingtalk.com/robot/send?access_token=abc
    secret_env: HOOK_TOKEN
  - kind: email
    url: smtp://mail.example.com:587
    to: dba@example.com
    options: {from: cloudmha@example.com}
metrics: {listen: "127.0.0.1:9104"}
`
	c, err := ParseYAML("/etc/cloudmha/x.yaml", []byte(doc), newTestEnv().opts())
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "shop-db" || c.PingInterval != 500*time.Millisecond || c.Servers[0].SSHConnectionTimeout != 3*time.Second {
		t.Errorf("%+v", c)
	}
	if s := c.Servers[0]; s.Name != "server1" || !s.CandidateMaster || s.Priority != -5 || s.MasterBinlogDir[0] != "/binlog" {
		t.Errorf("server1 %+v", s)
	}
	if s := c.Servers[1]; s.Name != "server2" || !s.NoMaster || s.Port != 3307 {
		t.Errorf("server2 %+v", s)
	}
	wantAddr := Address{Mover: "vip", VIP: "10.0.0.100", Interface: "eth0", Prefix: 32, Options: map[string]string{"arp_count": "3"}}
	if !reflect.DeepEqual(c.Address, wantAddr) {
		t.Errorf("address %+v", c.Address)
	}
	if len(c.Notify) != 2 || c.Notify[0].Kind != "dingtalk" || c.Notify[0].Secret.Value() != "hook-token-value" ||
		!reflect.DeepEqual(c.Notify[1].To, []string{"dba@example.com"}) || c.Notify[1].Options["from"] != "cloudmha@example.com" {
		t.Errorf("notify %+v", c.Notify)
	}
	if c.Metrics.Listen != "127.0.0.1:9104" {
		t.Errorf("metrics %+v", c.Metrics)
	}
	// A DNS layer on top of a cloud mover.
	c, err = ParseYAML("/etc/cloudmha/x.yaml", []byte("servers: [{hostname: h}]\naddress:\n  mover: aliyun-havip\n  options: {havip_id: havip-1}\n  dns:\n    mover: rfc2136\n    options: {zone: db.example., server: \"10.0.0.53:53\"}\n"), newTestEnv().opts())
	if err != nil {
		t.Fatal(err)
	}
	wantDNS := &AddressLayer{Mover: "rfc2136", Options: map[string]string{"zone": "db.example.", "server": "10.0.0.53:53"}, File: "/etc/cloudmha/x.yaml", Line: 5}
	if c.Address.Mover != "aliyun-havip" || !reflect.DeepEqual(c.Address.DNS, wantDNS) {
		t.Errorf("address %+v dns %+v", c.Address, c.Address.DNS)
	}
	// Without name: the file's base name.
	c, err = ParseYAML("/etc/cloudmha/app7.yml", []byte("servers: [{hostname: h}]\nmonitor: {ping_interval: 2}"), newTestEnv().opts())
	if err != nil || c.Name != "app7" || c.PingInterval != 2*time.Second {
		t.Errorf("%v %+v", err, c)
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown top-level key", "servers: [{hostname: h}]\nserver: x\n",
			[]string{`c.yaml:2: server: unknown key`}},
		{"unknown nested key", "manager:\n  workdir: /x\n  logfile: /y\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:3: manager.logfile: unknown key`}},
		{"unknown server key", "servers:\n  - hostname: h\n    candidate: true\n",
			[]string{`c.yaml:3: servers[0].candidate: unknown key`}},
		{"host key in defaults", "defaults:\n  hostname: h\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:2: defaults.hostname: unknown key`}},
		{"mha-only key", "defaults:\n  client_bindir: /usr/bin\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:2: defaults.client_bindir: unknown key`}},
		{"duplicate key", "servers:\n  - hostname: h\n    hostname: i\n",
			[]string{`c.yaml:3: servers[0].hostname: duplicate key (first at line 2)`}},
		{"bad port", "servers:\n  - hostname: h\n    port: 0\n",
			[]string{`c.yaml:3: servers[0].port: must be between 1 and 65535 (got 0)`}},
		{"bad bool", "servers:\n  - hostname: h\n    no_master: maybe\n",
			[]string{`c.yaml:3: servers[0].no_master: must be true or false (got "maybe")`}},
		{"ping too fast", "monitor:\n  ping_interval: 50ms\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:2: monitor.ping_interval: must be between 100ms and 24h0m0s (got 50ms)`}},
		{"ping zero", "monitor:\n  ping_interval: 0\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:2: monitor.ping_interval: must be a whole number of seconds between 1 and 86400 (got 0)`}},
		{"bad ping_type", "monitor: {ping_type: PONG}\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:1: monitor.ping_type: must be one of SELECT, CONNECT, INSERT (got "PONG")`}},
		{"missing hostname", "servers:\n  - hostname: h\n  - name: db2\n    port: 3307\n",
			[]string{`c.yaml:3: servers[1].hostname: missing: every server needs a hostname`}},
		{"no servers", "name: a\n",
			[]string{`c.yaml: servers: no server is defined: at least one host section ([server1], [server_db2], … or a servers: item) is required`}},
		{"empty servers", "name: a\nservers: []\n",
			[]string{`c.yaml:2: servers: no server is defined: at least one host section ([server1], [server_db2], … or a servers: item) is required`}},
		{"duplicate names", "servers:\n  - {name: a, hostname: h}\n  - {name: a, hostname: i}\n",
			[]string{`c.yaml:3: servers[1].name: duplicate server name "a" (also servers[0])`}},
		{"candidate and no_master", "servers:\n  - hostname: h\n    candidate_master: true\n    no_master: true\n",
			[]string{`c.yaml:4: servers[0].no_master: candidate_master and no_master are both set on server server1`}},
		{"password conflict", "defaults:\n  password: x\n  password_file: /etc/cloudmha/repl.pw\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:3: defaults.password_file: conflicts with defaults.password: set only one of password, password_env, password_file`}},
		{"wrong type", "servers:\n  - hostname: [a, b]\n",
			[]string{`c.yaml:2: servers[0].hostname: must be a single value (got a list)`,
				`c.yaml:2: servers[0].hostname: missing: every server needs a hostname`}},
		{"servers not a list", "servers: {hostname: h}\n",
			[]string{`c.yaml:1: servers: must be a list of servers`,
				`c.yaml:1: servers: no server is defined: at least one host section ([server1], [server_db2], … or a servers: item) is required`}},
		{"top not a mapping", "- a\n- b\n",
			[]string{`c.yaml: servers: no server is defined: at least one host section ([server1], [server_db2], … or a servers: item) is required`,
				`c.yaml:1: must be a mapping (got a list)`}},
		{"bad name", "name: a/b\nservers: [{hostname: h}]\n",
			[]string{`c.yaml:1: name: must be letters, digits, '.', '_' or '-' (got "a/b")`}},
		{"syntax error", "servers:\n  - hostname: h\n   port: 1\n",
			[]string{`c.yaml: invalid YAML: line 1: did not find expected '-' indicator`}},
		{"empty", "", []string{`c.yaml: empty configuration`}},
		{"bad notify", "servers: [{hostname: h}]\nnotify:\n  - kind: pager\n  - kind: slack\n  - kind: email\n    url: smtp://h\n",
			[]string{
				`c.yaml:3: notify[0].kind: must be one of webhook, dingtalk, slack, wecom, feishu, email (got "pager")`,
				`c.yaml:4: notify[1].url: missing: a slack notifier needs a url`,
				`c.yaml:5: notify[2].to: missing: an email notifier needs at least one recipient`,
			}},
		{"vip missing", "servers: [{hostname: h}]\naddress:\n  mover: vip\n  interface: eth0\n",
			[]string{`c.yaml:2: address.vip: missing: address mover vip needs the virtual IP`}},
		{"vip with other mover", "servers: [{hostname: h}]\naddress:\n  mover: aliyun/havip\n  vip: 10.0.0.1\n",
			[]string{`c.yaml:4: address.vip: is set but address_mover is aliyun/havip`}},
		{"dns layer without mover", "servers: [{hostname: h}]\naddress:\n  mover: aliyun-havip\n  dns:\n    options: {zone: example.com}\n",
			[]string{`c.yaml:4: address.dns.mover: missing: the DNS layer needs a mover (rfc2136, route53, alidns)`}},
		{"dns layer not dns", "servers: [{hostname: h}]\naddress:\n  mover: aliyun-havip\n  dns:\n    mover: aws-eip\n    ttl: 60\n",
			[]string{`c.yaml:5: address.dns.mover: must be a DNS mover (rfc2136, route53, alidns), got "aws-eip"`,
				`c.yaml:6: address.dns.ttl: unknown key (want mover, options)`}},
		{"dns layer alone", "servers: [{hostname: h}]\naddress:\n  dns:\n    mover: rfc2136\n",
			[]string{`c.yaml:3: address.dns: is set but address.mover is not: a DNS layer sits on top of a mover (for DNS alone, set address.mover: rfc2136 and its options)`}},
		{"unknown binlog key", "servers: [{hostname: h}]\nbinlog_servers:\n  - {hostname: b, user: x}\n",
			[]string{`c.yaml:3: binlog_servers[0].user: unknown key`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseYAML("c.yaml", []byte(tc.doc), newTestEnv().opts())
			diffLines(t, errStrings(t, err), tc.want)
			if (err == nil) != (c != nil) {
				t.Errorf("config %v with error %v", c, err)
			}
		})
	}
}

func TestYAMLAliases(t *testing.T) {
	doc := "x-common: &c {hostname: h}\nservers: [*c]\n"
	_, err := ParseYAML("c.yaml", []byte(doc), newTestEnv().opts())
	if err == nil || !strings.Contains(err.Error(), "x-common: unknown key") {
		t.Errorf("got %v", err)
	}
	doc = "defaults: &d {port: 3307}\nservers:\n  - <<: *d\n    hostname: h\n"
	_, err = ParseYAML("c.yaml", []byte(doc), newTestEnv().opts())
	if err == nil || !strings.Contains(err.Error(), "c.yaml:3: servers[0].<<: unknown key") {
		t.Errorf("merge keys: got %v", err)
	}
}
