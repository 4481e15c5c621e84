package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://oapi.dingtalk.com/robot/send?access_token=abc":         "https://oapi.dingtalk.com/…?…",
		"https://hooks.slack.com/services/T0/B0/XXXX":                   "https://hooks.slack.com/…",
		"http://user:pw@alerts.example.com:8080/":                       "http://…@alerts.example.com:8080",
		"https://open.feishu.cn/open-apis/bot/v2/hook/0f4a7d6e-1b2c-4d": "https://open.feishu.cn/…",
		"https://x.example": "https://x.example",
		"::not a url":       "[unparsable URL]",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecretsNeverLogged sends through every channel with secrets in every
// place they can be (URL query, path, user information, signing secrets,
// SMTP password), against endpoints that fail in every way (connection
// refused, timeout, an error body that reflects the token, an API error),
// and greps the log and the errors.
func TestSecretsNeverLogged(t *testing.T) {
	secrets := map[string]string{
		"webhook password":  "WEBHOOK-PASS-1234",
		"webhook query":     "WEBHOOK-QUERY-TOKEN-1",
		"webhook hmac":      "WEBHOOK-HMAC-SECRET-1",
		"dingtalk token":    "DINGTALK-ACCESS-TOKEN-0123456789",
		"dingtalk secret":   "SECdingtalk-sign-secret-01",
		"slack token":       "SLACKTOKENSLACKTOKEN1234",
		"wecom key":         "WECOM-KEY-abcdef-123456",
		"feishu token":      "FEISHUTOKEN-0f4a7d6e-1b2c-4d5e",
		"feishu secret":     "feishu-sign-secret-77",
		"smtp password":     "SMTP-PASSWORD-secret-9",
		"smtp password (2)": "SMTP-PASSWORD-secret-10",
	}
	// An endpoint that reflects the request (URL, headers) in its error.
	reflecting := newRecorder(t)
	reflecting.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "cannot handle "+r.URL.String()+" auth="+r.Header.Get("Authorization")+" sig="+r.Header.Get(HeaderSignature)+" "+string(body))
	})
	notFound := newRecorder(t)
	notFound.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "no_service: "+r.URL.Path)
	})
	wecomErr := newRecorder(t, reply{200, nil, `{"errcode":93000,"errmsg":"invalid webhook url, key=` + secrets["wecom key"] + `"}`})
	release := make(chan struct{})
	defer close(release)
	hung := newRecorder(t)
	hung.srv.Config.Handler = blockingHandler(release)
	cert := newTestCert(t)
	smtpSrv := newSMTPServer(t, cert, smtpConfig{starttls: true, authMechs: []string{"PLAIN"}, user: "ha", pass: "not-this"})
	host := func(r *recorder) string { return strings.TrimPrefix(r.srv.URL, "http://") }

	yml := "name: app1\nservers: [{hostname: h}]\nnotify:\n" +
		"  - kind: webhook\n    url: http://ha:" + secrets["webhook password"] + "@" + host(reflecting) + "/hook?token=" + secrets["webhook query"] + "\n    secret: " + secrets["webhook hmac"] + "\n" +
		"  - kind: dingtalk\n    url: http://" + closedAddr(t) + "/robot/send?access_token=" + secrets["dingtalk token"] + "\n    secret: " + secrets["dingtalk secret"] + "\n" +
		"  - kind: slack\n    url: " + notFound.srv.URL + "/services/T000/B000/" + secrets["slack token"] + "\n" +
		"  - kind: wecom\n    url: " + wecomErr.srv.URL + "/cgi-bin/webhook/send?key=" + secrets["wecom key"] + "\n" +
		"  - kind: feishu\n    url: " + hung.srv.URL + "/open-apis/bot/v2/hook/" + secrets["feishu token"] + "\n    secret: " + secrets["feishu secret"] + "\n    options: {timeout: 200ms}\n" +
		"  - name: mail-down\n    kind: email\n    url: smtp://" + closedAddr(t) + "\n    to: [dba@example.com]\n    secret: " + secrets["smtp password"] + "\n    options: {user: ha}\n" +
		"  - name: mail-auth\n    kind: email\n    url: smtp://" + smtpSrv.addr() + "\n    to: [dba@example.com]\n    secret: " + secrets["smtp password (2)"] + "\n    options: {user: ha}\n"
	c, err := config.ParseYAML("app1.yaml", []byte(yml), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	o := testOptions(&sleeps{}, &logs)
	o.MaxAttempts = 2
	o.Channel = chanOpts()
	o.Channel.TLSConfig = newTLSConfig(cert)
	d, err := FromConfig(c, o)
	if err != nil {
		t.Fatal(err)
	}
	d.Notify(testEvent())
	closeOK(t, d)

	// The same failures returned by Send, and construction errors.
	var errs []string
	for _, n := range c.Notify {
		nt, err := New(n, o.Channel)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		if err := nt.Send(ctx, testEvent()); err != nil {
			errs = append(errs, err.Error())
		} else {
			t.Errorf("%s: no error", n.Name)
		}
		cancel()
	}
	bad := c.Notify[0]
	bad.URL = "ftp://x/" + secrets["webhook query"]
	if _, err := New(bad, o.Channel); err != nil {
		errs = append(errs, err.Error())
	}
	out := logs.String() + "\n" + strings.Join(errs, "\n")
	for what, s := range secrets {
		forms := []string{s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s)),
			base64.StdEncoding.EncodeToString([]byte("ha:" + s)), base64.StdEncoding.EncodeToString([]byte("\x00ha\x00" + s))}
		for _, form := range forms {
			if strings.Contains(out, form) {
				t.Errorf("%s revealed:\n%s", what, out)
			}
		}
	}
	for _, st := range d.Stats() {
		if st.Failed != 1 {
			t.Errorf("%s: %+v", st.Name, st)
		}
	}
	// The failures are there, named without their secrets.
	for _, want := range []string{
		"notifier=webhook", "http://…@" + host(reflecting) + "/…?…: HTTP 500: cannot handle",
		"notifier=dingtalk", "connection refused", "notifier=slack", "HTTP 404: no_service",
		"wecom API error 93000", "notifier=feishu", "context deadline exceeded",
		"notifier=mail-down", "notifier=mail-auth", "AUTH: 535", "authentication failed", "[redacted]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	t.Logf("log and errors:\n%s", out)
}

func TestFromConfig(t *testing.T) {
	rec := newRecorder(t, reply{200, nil, `{"errcode":0,"errmsg":"ok"}`})
	yml := "name: shop\nservers: [{hostname: h}]\nnotify:\n" +
		"  - {name: ding, kind: dingtalk, url: '" + rec.srv.URL + "/robot/send?access_token=t', options: {retries: 0, queue_size: 7, timeout: 2s}}\n" +
		"  - {kind: webhook, url: '" + rec.srv.URL + "/hook'}\n" +
		"contact_groups:\n  - {name: dba, notifiers: [ding], severities: [critical]}\n  - {name: all, notifiers: [webhook]}\n"
	c, err := config.ParseYAML("shop.yaml", []byte(yml), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := FromConfig(c, Options{QueueSize: 50, now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	w := d.byName["ding"]
	if w.maxAttempts != 1 || len(w.buf) != 7 || w.timeout != 2*time.Second {
		t.Errorf("ding: attempts %d queue %d timeout %v", w.maxAttempts, len(w.buf), w.timeout)
	}
	if w := d.byName["webhook"]; w.maxAttempts != DefaultMaxAttempts || len(w.buf) != 50 || w.timeout != DefaultTimeout {
		t.Errorf("webhook: attempts %d queue %d timeout %v", w.maxAttempts, len(w.buf), w.timeout)
	}
	d.Notify(Event{Kind: KindSwitchover, Severity: SeverityInfo, Title: "switchover done"})
	closeOK(t, d)
	reqs := rec.requests()
	if len(reqs) != 1 || reqs[0].Path != "/hook" {
		t.Fatalf("requests %+v", reqs)
	}
	var e Event
	if err := jsonUnmarshal(reqs[0].Body, &e); err != nil || e.Cluster != "shop" {
		t.Errorf("event %+v (%v)", e, err)
	}
	if st := d.Stats(); len(st) != 2 || st[0].Name != "ding" || st[0].Kind != "dingtalk" || st[1].Sent != 1 {
		t.Errorf("stats %+v", st)
	}
}
