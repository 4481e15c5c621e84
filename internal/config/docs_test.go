package config

import (
	"os"
	"testing"
)

// TestExampleConfigParses keeps docs/config.example.yaml valid.
func TestExampleConfigParses(t *testing.T) {
	const path = "../../docs/config.example.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	te := newTestEnv()
	te.env["CLOUDMHA_MYSQL_PASSWORD"] = "x1"
	te.env["SMTP_PASSWORD"] = "x2"
	te.files["/etc/cloudmha/db3.pw"] = "x3\n"
	te.files["/etc/cloudmha/dingtalk.secret"] = "x4\n"
	c, err := ParseYAML(path, data, te.opts())
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "app1" || len(c.Servers) != 3 || len(c.BinlogServers) != 1 || len(c.Notify) != 3 ||
		c.Address.Mover != MoverVIP || c.Address.Prefix != 24 || c.Metrics.Listen == "" || len(c.Metrics.Push) != 2 {
		t.Errorf("unexpected example config: %+v", c)
	}
	if c.Servers[2].Password.Value() != "x3" || c.Servers[0].Password.Value() != "x1" {
		t.Error("password overrides in the example")
	}
}
