package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestYAMLNotifyFeatures(t *testing.T) {
	const doc = `servers: [{hostname: h}]
notify:
  - name: dba-ding
    kind: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=abc
    secret_env: HOOK_TOKEN
    options:
      at_mobiles: ["13800000000", "13900000000"]
      at_all: "false"
      timeout: 3s
      retries: 2
      queue_size: 50
  - kind: wecom
    url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k
  - kind: feishu
    url: https://open.feishu.cn/open-apis/bot/v2/hook/t
    secret_file: /etc/cloudmha/repl.pw
  - kind: feishu
    url: https://open.feishu.cn/open-apis/bot/v2/hook/u
  - kind: email
    url: smtps://mail.example.com
    to: [dba@example.com]
    secret: smtp-pw
    options: {from: "cloudmha <ha@example.com>", user: ha, auth: login, ca_file: /etc/ssl/ca.pem}
contact_groups:
  - name: dba
    notifiers: [dba-ding, email]
    severities: [Critical, warning]
  - name: ops
    notifiers: [wecom, feishu, feishu-2]
    kinds: [failover_start, failover_end, mover_failure]
`
	c, err := ParseYAML("n.yaml", []byte(doc), newTestEnv().opts())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range c.Notify {
		names = append(names, n.Name)
	}
	if want := []string{"dba-ding", "wecom", "feishu", "feishu-2", "email"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if o := c.Notify[0].Options; o["at_mobiles"] != "13800000000,13900000000" || o["timeout"] != "3s" || o["retries"] != "2" {
		t.Errorf("options %v", o)
	}
	if c.Notify[2].Secret.Value() != "Repl-From-File" || c.Notify[4].Secret.Value() != "smtp-pw" {
		t.Error("secrets")
	}
	want := []ContactGroup{
		{Name: "dba", Notifiers: []string{"dba-ding", "email"}, Severities: []string{"critical", "warning"}},
		{Name: "ops", Notifiers: []string{"wecom", "feishu", "feishu-2"}, Kinds: []string{"failover_start", "failover_end", "mover_failure"}},
	}
	if !reflect.DeepEqual(c.ContactGroups, want) {
		t.Errorf("groups %+v", c.ContactGroups)
	}
	if !want[0].Selects("critical", "detection") || want[0].Selects("info", "detection") ||
		!want[1].Selects("info", "failover_end") || want[1].Selects("critical", "detection") {
		t.Error("Selects")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if got := NotifierNames([]Notifier{{Kind: "slack"}, {Kind: "slack", Name: "x"}, {Kind: "slack"}}); !reflect.DeepEqual(got, []string{"slack", "x", "slack-3"}) {
		t.Errorf("NotifierNames %v", got)
	}
}

func TestYAMLNotifyErrors(t *testing.T) {
	const head = "servers: [{hostname: h}]\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown option", head + "notify:\n  - kind: slack\n    url: https://x\n    options:\n      channel: '#dba'\n",
			[]string{`c.yaml:6: notify[0].options.channel: unknown option for a slack notifier (want timeout, retries, queue_size)`}},
		{"bad option values", head + "notify:\n  - kind: dingtalk\n    url: https://x\n    options:\n      timeout: 10m\n      retries: many\n      at_all: maybe\n      queue_size: 0\n",
			[]string{
				`c.yaml:6: notify[0].options.timeout: must be between 100ms and 5m0s (got 10m0s)`,
				`c.yaml:7: notify[0].options.retries: must be an integer (got "many")`,
				`c.yaml:8: notify[0].options.at_all: must be true or false (got "maybe")`,
				`c.yaml:9: notify[0].options.queue_size: must be between 1 and 100000 (got 0)`,
			}},
		{"email options", head + "notify:\n  - kind: email\n    url: smtps://u:p@mail\n    to: [a@b]\n    options:\n      from: nobody\n      tls: none\n      auth: cram-md5\n      user: me\n",
			[]string{
				`c.yaml:4: notify[0].url: must not contain a user or password: set options.user and the password in secret, secret_env or secret_file`,
				`c.yaml:7: notify[0].options.from: not an e-mail address: "nobody"`,
				`c.yaml:8: notify[0].options.tls: is for smtp:// only: smtps:// always uses TLS`,
				`c.yaml:9: notify[0].options.auth: must be one of auto, plain, login (got "cram-md5")`,
				`c.yaml:10: notify[0].options.user: is set but the SMTP password is not: set secret, secret_env or secret_file`,
			}},
		{"email secret without user", head + "notify:\n  - kind: email\n    url: smtp://mail:587\n    to: a@b\n    secret_env: HOOK_TOKEN\n    options: {tls: starttls}\n",
			[]string{`c.yaml:3: notify[0].options.user: missing: the SMTP password (secret) needs the SMTP user`}},
		{"secret for wecom", head + "notify:\n  - kind: wecom\n    url: https://x\n    secret_env: HOOK_TOKEN\n",
			[]string{`c.yaml:5: notify[0].secret_env: a wecom notifier takes no secret: its token is part of the url`}},
		{"names", head + "notify:\n  - {kind: slack, url: 'https://x'}\n  - {kind: slack, url: 'https://y', name: slack}\n  - {kind: slack, url: 'https://z', name: 'a b'}\n  - {kind: slack, url: 'https://z', name: ''}\n",
			[]string{
				`c.yaml:4: notify[1].name: duplicate notifier name "slack" (also notify[0]); set name: on one of them`,
				`c.yaml:5: notify[2].name: must be letters, digits, '.', '_' or '-' (got "a b")`,
				`c.yaml:6: notify[3].name: must not be empty`,
			}},
		{"groups", head + "notify:\n  - {kind: slack, url: 'https://x'}\n  - {kind: feishu, url: 'https://y'}\n" +
			"contact_groups:\n  - name: dba\n    notifiers: [slack, pager]\n    severities: [urgent]\n    kinds: [failover, detection]\n    mute: true\n" +
			"  - notifiers: []\n  - {name: dba, notifiers: slack}\n",
			[]string{
				`c.yaml:4: notify[1].name: notifier feishu is in no contact group, so it would receive nothing: add it to one`,
				`c.yaml:7: contact_groups[0].notifiers: no notifier is named "pager" (notifiers: slack, feishu)`,
				`c.yaml:8: contact_groups[0].severities: must be one of critical, warning, info (got "urgent")`,
				`c.yaml:9: contact_groups[0].kinds: must be one of detection, unreachable_primary, failover_start, failover_end, switchover, antiflap_block, mover_failure, test (got "failover")`,
				`c.yaml:10: contact_groups[0].mute: unknown key (want name, notifiers, severities, kinds)`,
				`c.yaml:11: contact_groups[1].name: missing: every contact group needs a name`,
				`c.yaml:11: contact_groups[1].notifiers: missing: a contact group needs at least one notifier`,
				`c.yaml:12: contact_groups[2].name: duplicate contact group name "dba" (also contact_groups[0])`,
			}},
		{"groups not a list", head + "contact_groups: {name: x}\n",
			[]string{`c.yaml:2: contact_groups: must be a list of contact groups`}},
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

// TestValidateNotifyInCode checks the same rules on a Config built in code,
// where positions are the fields' paths.
func TestValidateNotifyInCode(t *testing.T) {
	c := &Config{
		ManagerWorkdir: "/tmp", LogLevel: "info", PingType: PingSelect, PingInterval: DefaultPingInterval,
		Servers: []Server{{Name: "s", Hostname: "h", Port: 3306, SSHPort: 22, SSHConnectionTimeout: 1}},
		Notify: []Notifier{
			{Kind: NotifyWeCom, URL: "https://x", Options: map[string]string{"retries": "99"}},
			{Kind: NotifyFeishu, URL: "ftp://y"},
		},
		ContactGroups: []ContactGroup{{Name: "g", Notifiers: []string{"wecom", "feishu"}, Severities: []string{"warning"}}},
	}
	got := errStrings(t, c.Validate())
	want := []string{
		`notify[0].options.retries: must be between 0 and 20 (got 99)`,
		`notify[1].url: scheme must be https or http (got "ftp")`,
	}
	diffLines(t, got, want)
	c.Notify[0].Options = nil
	c.Notify[1].URL = "https://y"
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// TestNotifySecretsNotInErrors puts a secret where options and groups are
// checked.
func TestNotifySecretsNotInErrors(t *testing.T) {
	const pw = "Notify-Secret-77"
	doc := "servers: [{hostname: h}]\nnotify:\n  - kind: email\n    url: smtp://mail:25\n    to: [a@b]\n    secret: " + pw +
		"\n    options: {password: " + pw + ", tls: " + pw + "}\ncontact_groups:\n  - {name: g, notifiers: [" + pw + "]}\n"
	_, err := ParseYAML("c.yaml", []byte(doc), newTestEnv().opts())
	if err == nil {
		t.Fatal("expected errors")
	}
	if strings.Contains(err.Error(), pw) {
		t.Fatalf("secret revealed:\n%v", err)
	}
	for _, want := range []string{"c.yaml:7: notify[0].options.password: unknown option", "c.yaml:7: notify[0].options.tls: must be one of starttls, none", "c.yaml:9: contact_groups[0].notifiers: no notifier is named"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
