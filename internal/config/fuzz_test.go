package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkInvariants is what every accepted configuration must satisfy.
func checkInvariants(t *testing.T, c *Config, err error) {
	t.Helper()
	if err != nil {
		if c != nil {
			t.Fatalf("config returned with error %v", err)
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error is not a *config.Error: %v", err)
		}
		return
	}
	if c == nil {
		t.Fatal("nil config without error")
	}
	if len(c.Servers) == 0 {
		t.Fatal("accepted a config without servers")
	}
	if c.PingInterval < MinYAMLPingInterval {
		t.Fatalf("ping interval %s", c.PingInterval)
	}
	switch c.PingType {
	case PingSelect, PingConnect, PingInsert:
	default:
		t.Fatalf("ping type %q", c.PingType)
	}
	seen := map[string]bool{}
	for _, s := range c.Servers {
		if s.Hostname == "" {
			t.Fatalf("server %s without hostname", s.Name)
		}
		if s.Port < 1 || s.Port > 65535 || s.SSHPort < 1 || s.SSHPort > 65535 {
			t.Fatalf("server %s ports %d/%d", s.Name, s.Port, s.SSHPort)
		}
		if s.CandidateMaster && s.NoMaster {
			t.Fatalf("server %s candidate and no_master", s.Name)
		}
		if seen[s.Addr()] {
			t.Fatalf("duplicate address %s", s.Addr())
		}
		seen[s.Addr()] = true
		if len(s.MasterBinlogDir) == 0 || s.SSHConnectionTimeout <= 0 || s.User == "" {
			t.Fatalf("server %s defaults lost: %+v", s.Name, s)
		}
	}
	for _, b := range c.BinlogServers {
		if b.Hostname == "" || b.Port < 1 || b.Port > 65535 {
			t.Fatalf("binlog server %+v", b)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("accepted config fails Validate: %v", err)
	}
}

func fuzzOpts() LoadOptions {
	te := newTestEnv()
	o := te.opts()
	o.Logger = nil
	return o
}

func FuzzParseMHA(f *testing.F) {
	for _, name := range []string{"app1.cnf", "masterha_default.cnf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte("[server default]\nping_interval=2\n"), b)
	}
	for _, s := range []string{
		"[server1]\nhostname=h\n",
		"[server1]\nhostname=h\nport=70000\n",
		"[server default]\npassword=\"x'\n[server1]\nhostname=h\ncandidate_master=1\n[server2]\nhostname=h\nport=3307\n",
		"[server1]\nhostname=h\n[binlog1]\nhostname=b\n[server1]\n",
		"[ server_a ]\r\nhostname = h\r\nip=::1\r\nssh_ip=fe80::1%eth0\r\n",
		"[server default]\nvip=10.0.0.1\nvip_interface=eth0\n[server1]\nhostname=h\n",
		"x\n[\n]\n[server default\n=\n",
	} {
		f.Add([]byte(nil), []byte(s))
	}
	f.Fuzz(func(t *testing.T, global, app []byte) {
		var g []byte
		if len(global) > 0 {
			g = global
		}
		c, err := ParseMHA("g.cnf", g, "app.cnf", app, fuzzOpts())
		checkInvariants(t, c, err)
		if err != nil && strings.Contains(err.Error(), "Db3-Secret") {
			t.Fatalf("secret in error: %v", err)
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "app1.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range []string{
		"servers: [{hostname: h}]\n",
		"servers: [{hostname: h, port: 0}]\n",
		"a: &a [1, 2]\nb: &b [*a, *a]\nc: [*b, *b]\nservers: [{hostname: h}]\n",
		"defaults: &d {port: 1}\nservers: [{<<: *d, hostname: h}]\n",
		"monitor: {ping_interval: 100ms}\nservers: [{hostname: h, master_binlog_dir: [a, b]}]\n",
		"address: {mover: vip, vip: '::1', interface: lo}\nservers: [{hostname: h}]\nnotify: [{kind: slack, url: 'https://x'}]\n",
		"servers: [{hostname: h}]\nnotify: [{kind: wecom, url: 'https://x'}, {name: f, kind: feishu, url: 'https://y', options: {retries: 1}}]\ncontact_groups: [{name: g, notifiers: [wecom, f], severities: [critical], kinds: [detection]}]\n",
		"servers:\n- hostname: h\n  hostname: h\n",
		"{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseYAML("c.yaml", data, fuzzOpts())
		checkInvariants(t, c, err)
	})
}
