package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	global := write("masterha_default.cnf", "[server default]\nping_interval=8\n")
	app := write("app1.cnf", "[server1]\nhostname=db1\n")
	sniffed := write("cluster", "# MHA without extension\n\n[server1]\nhostname=db1\n")
	yml := write("app2.yaml", "servers: [{hostname: db1}]\n")
	yamlNoExt := write("native", "---\n# yaml\nservers: [{hostname: db1}]\n")
	pwFile := write("pw", "From-Real-File\n")
	withPw := write("app3.cnf", "[server1]\nhostname=db1\npassword_file="+pwFile+"\n")

	opts := LoadOptions{DefaultSSHUser: "u", GlobalPath: global, Path: app}
	c, err := Load(opts)
	if err != nil || c.PingInterval.Seconds() != 8 || strings.Join(c.Files, ",") != global+","+app || c.Name != "app1" {
		t.Fatalf("explicit global: %v %+v", err, c)
	}
	opts.GlobalPath = GlobalNone
	if c, err = Load(opts); err != nil || c.PingInterval.Seconds() != 3 || len(c.Files) != 1 {
		t.Fatalf("none: %v %+v", err, c)
	}
	opts.GlobalPath = filepath.Join(dir, "missing.cnf")
	_, err = Load(opts)
	var ce *Error
	if !errors.As(err, &ce) || ce.File != opts.GlobalPath || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing explicit global: %v", err)
	}
	// "" uses /etc/masterha_default.cnf when it exists: fake the file system.
	fake := func(files map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return os.ReadFile(p)
		}
	}
	c, err = Load(LoadOptions{Path: app, DefaultSSHUser: "u", ReadFile: fake(map[string]string{DefaultGlobalPath: "[server default]\nping_interval=4\n"})})
	if err != nil || c.PingInterval.Seconds() != 4 || c.Files[0] != DefaultGlobalPath {
		t.Fatalf("default global: %v %+v", err, c)
	}
	c, err = Load(LoadOptions{Path: app, DefaultSSHUser: "u", ReadFile: func(p string) ([]byte, error) {
		if p == DefaultGlobalPath {
			return nil, os.ErrNotExist
		}
		return os.ReadFile(p)
	}})
	if err != nil || len(c.Files) != 1 {
		t.Fatalf("absent default global: %v %+v", err, c)
	}
	for _, p := range []string{sniffed, yml, yamlNoExt} {
		c, err := Load(LoadOptions{Path: p, GlobalPath: GlobalNone, DefaultSSHUser: "u"})
		if err != nil || c.Servers[0].Hostname != "db1" || c.Name != strings.TrimSuffix(filepath.Base(p), ".yaml") {
			t.Errorf("%s: %v %+v", p, err, c)
		}
	}
	if _, err := Load(LoadOptions{Path: yml, GlobalPath: global}); err == nil {
		t.Error("global file with YAML should be refused")
	}
	c, err = Load(LoadOptions{Path: withPw, GlobalPath: GlobalNone, DefaultSSHUser: "u"})
	if err != nil || c.Servers[0].Password.Value() != "From-Real-File" {
		t.Errorf("password_file: %v", err)
	}
	if _, err := Load(LoadOptions{Path: filepath.Join(dir, "nope.cnf"), GlobalPath: GlobalNone}); !errors.As(err, &ce) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(LoadOptions{}); err == nil {
		t.Error("empty path accepted")
	}
}

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct {
		path, data string
		want       Format
	}{
		{"a.yaml", "[server1]", FormatYAML},
		{"a.YML", "", FormatYAML},
		{"a.cnf", "servers: []", FormatMHA},
		{"a", "\xef\xbb\xbf; c\n[server default]\n", FormatMHA},
		{"a", "name: x\n", FormatYAML},
		{"a", "", FormatYAML},
	} {
		if got := DetectFormat(tc.path, []byte(tc.data)); got != tc.want {
			t.Errorf("%s %q: got %v", tc.path, tc.data, got)
		}
	}
}

func TestValidateProgrammatic(t *testing.T) {
	c := &Config{ManagerWorkdir: "/x", LogLevel: "info", PingInterval: DefaultPingInterval, PingType: PingSelect,
		Servers: []Server{{Name: "a", Hostname: "h", Port: 3306, SSHPort: 22, SSHConnectionTimeout: 1, NoMaster: true, CandidateMaster: true},
			{Name: "b", Port: 0, SSHPort: 22, SSHConnectionTimeout: 1}}}
	diffLines(t, errStrings(t, c.Validate()), []string{
		`servers[0].no_master: candidate_master and no_master are both set on server a`,
		`servers[1].hostname: missing: every server needs a hostname`,
		`servers[1].port: must be between 1 and 65535 (got 0)`,
	})
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "app1.cnf", Line: 12, Key: "ping_type", Msg: "bad"}, "app1.cnf:12: ping_type: bad"},
		{Error{File: "app1.cnf", Msg: "bad"}, "app1.cnf: bad"},
		{Error{Key: "k", Msg: "bad"}, "k: bad"},
		{Error{Line: 3, Msg: "bad"}, "3: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
}
