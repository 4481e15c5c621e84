package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecretNeverPrinted(t *testing.T) {
	const pw = "Hunter2-Very-Secret"
	s := NewSecret(pw)
	if s.Value() != pw || !s.IsSet() {
		t.Fatal("Value/IsSet")
	}
	if NewSecret("").IsSet() || (Secret{}).String() != "" {
		t.Fatal("unset secret")
	}
	srv := Server{Name: "db1", Password: s, ReplPassword: s}
	cfg := &Config{Name: "app", Servers: []Server{srv}, Notify: []Notifier{{Kind: "slack", Secret: s}}}
	var outs []string
	for _, v := range []any{s, &s, srv, &srv, cfg, *cfg, []Secret{s}, map[string]Secret{"k": s}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %10.3v", "%-20s|"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(y))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s), s.GoString())
	txt, _ := s.MarshalText()
	outs = append(outs, string(txt))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("secret", "pw", s, "server", srv, "config", cfg, slog.Any("ptr", &srv))
		l.Info("group", slog.Group("g", "pw", s))
	}
	outs = append(outs, buf.String())

	all := strings.Join(outs, "\n")
	if strings.Contains(all, pw) || strings.Contains(all, fmt.Sprintf("%x", pw)) || strings.Contains(all, "Hunter") {
		t.Fatalf("secret revealed:\n%s", all)
	}
	if !strings.Contains(all, "[redacted]") {
		t.Fatal("redacted marker missing")
	}
	if got := fmt.Sprintf("%v|%s|%#v", s, s, s); got != "[redacted]|[redacted]|[redacted]" {
		t.Errorf("got %q", got)
	}
	if got, _ := json.Marshal(Secret{}); string(got) != `""` {
		t.Errorf("unset json %s", got)
	}
}

// TestSecretsNotInErrorsOrLogs builds broken configurations full of a
// password and checks every error and log line.
func TestSecretsNotInErrorsOrLogs(t *testing.T) {
	const pw = "S3cr3t-Pw-42"
	cnf := strings.Join([]string{
		"[server default]",
		"password=" + pw,
		"password_env=" + "DB3_PASSWORD", // conflict with password
		"repl_password='" + pw + "'",
		"pasword=" + pw, // typo: unknown key
		"client_bindir=" + pw,
		pw, // a password on a line of its own
		pw + " = 1",
		"ping_type=" + "PONG",
		"[server1]",
		"hostname=h",
		"password=" + pw,
		"password_file=/etc/cloudmha/repl.pw",
		"check_repl_delay=" + pw,
		"[server2]",
		"password=" + pw,
		"password=" + pw + "x", // duplicate
		"[" + pw + "]",
	}, "\n")
	te := newTestEnv()
	te.env["PW_ENV"] = pw
	te.files["/pw"] = pw + "\n"
	_, err := ParseMHA("g.cnf", []byte("[server default]\npassword="+pw+"\nport="+pw+"\n"), "app.cnf", []byte(cnf), te.opts())
	if err == nil {
		t.Fatal("expected errors")
	}
	yml := "servers:\n  - hostname: h\n    password: " + pw + "\n    password_env: PW_ENV\n    repl_password: [" + pw + "]\n" +
		"  - password: {x: " + pw + "}\n    bogus: " + pw + "\n" +
		"notify:\n  - kind: slack\n    url: https://hooks.slack.com/services/" + pw + "\n    secret: " + pw + "\n    secret_file: /pw\n" +
		"  - kind: webhook\n    url: ftp://x/" + pw + "\n  - kind: email\n    url: smtp://h:25\n    to: [" + pw + "]\n"
	_, yerr := ParseYAML("app.yaml", []byte(yml), te.opts())
	if yerr == nil {
		t.Fatal("expected YAML errors")
	}
	_, serr := ParseYAML("bad.yaml", []byte("servers:\n  - password: "+pw+"\n  \"x: ["+pw), te.opts())
	out := err.Error() + "\n" + yerr.Error() + "\n" + fmt.Sprint(serr) + "\n" + te.log.String()
	// email recipients are not secrets; the recipient list error quotes
	// the address, so remove that one line before checking.
	var kept []string
	for l := range strings.SplitSeq(out, "\n") {
		if !strings.Contains(l, "not an e-mail address") {
			kept = append(kept, l)
		}
	}
	out = strings.Join(kept, "\n")
	if strings.Contains(out, pw) || strings.Contains(out, "S3cr3t") {
		t.Fatalf("password revealed:\n%s", out)
	}
	for _, want := range []string{"app.cnf:3: password_env: conflicts with password", "app.cnf:5: pasword: unknown parameter",
		"app.cnf:7: syntax error", "g.cnf:3: port: must be an integer (got \"[redacted]\")", "app.cnf:8: [redacted]: unknown parameter", "app.yaml:4: servers[0].password_env: conflicts",
		"app.yaml:12: notify[0].secret_file: conflicts", "app.yaml:14: notify[1].url: scheme must be https or http"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
