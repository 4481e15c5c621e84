package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

func TestWebhookPayloadAndSignature(t *testing.T) {
	const secret = "whsec-0123456789"
	rec := newRecorder(t)
	w, err := NewWebhook(notifier(config.NotifyWebhook, rec.srv.URL+"/hooks/cloudmha", secret, nil), chanOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	r := rec.only()
	if r.Method != "POST" || r.Path != "/hooks/cloudmha" || r.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
		r.Header.Get("X-Cloudmha-Event") != "failover_end" {
		t.Errorf("request %+v", r)
	}
	jsonEqual(t, r.Body, obj{
		"id": "run-42", "cluster": "shop", "kind": "failover_end", "severity": "critical",
		"title": "failover done: db2 is the new primary", "text": "db1 was fenced.",
		"fields": obj{"old_primary": "db1", "new_primary": "db2"}, "time": "2026-01-02T03:04:05Z",
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(r.Body)
	if got, want := r.Header.Get("X-Cloudmha-Signature-256"), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}

	// Without a secret there is no signature header.
	rec2 := newRecorder(t)
	w2, _ := NewWebhook(notifier(config.NotifyWebhook, rec2.srv.URL, "", nil), chanOpts())
	if err := w2.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec2.only().Header["X-Cloudmha-Signature-256"]; ok {
		t.Error("signature without a secret")
	}
}

func TestDingTalkSignedMarkdown(t *testing.T) {
	const token = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	const secret = "SEC0123456789abcdef0123456789abcdef"
	rec := newRecorder(t, reply{status: 200, body: `{"errcode":0,"errmsg":"ok"}`})
	d, err := NewDingTalk(notifier(config.NotifyDingTalk, rec.srv.URL+"/robot/send?access_token="+token, secret,
		map[string]string{"at_mobiles": "13800000000, 13900000000"}), chanOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	r := rec.only()
	// The signature, computed here independently of DingTalkSign.
	ts := strconv.FormatInt(fixedNow().UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + secret))
	sign := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	if want := "access_token=" + token + "&timestamp=" + ts + "&sign=" + sign; r.RawQuery != want {
		t.Errorf("query %q\nwant  %q", r.RawQuery, want)
	}
	if ts != "1767323045678" {
		t.Errorf("timestamp %s is not in milliseconds", ts)
	}
	jsonEqual(t, r.Body, obj{
		"msgtype": "markdown",
		"markdown": obj{
			"title": "[CRITICAL] shop: failover done: db2 is the new primary",
			"text":  wantMarkdown + "\n\n@13800000000 @13900000000",
		},
		"at": obj{"atMobiles": arr{"13800000000", "13900000000"}, "isAtAll": false},
	})

	// Unsigned: the URL is left alone.
	rec2 := newRecorder(t, reply{status: 200, body: `{"errcode":0,"errmsg":"ok"}`})
	d2, _ := NewDingTalk(notifier(config.NotifyDingTalk, rec2.srv.URL+"/robot/send?access_token="+token, "", nil), chanOpts())
	if err := d2.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if q := rec2.only().RawQuery; q != "access_token="+token {
		t.Errorf("unsigned query %q", q)
	}
}

func TestRobotAPIErrors(t *testing.T) {
	tests := []struct {
		kind       string
		rep        reply
		permanent  bool
		retryAfter time.Duration
		msg        string
	}{
		{config.NotifyDingTalk, reply{200, nil, `{"errcode":310000,"errmsg":"sign not match"}`}, true, 0, "dingtalk API error 310000: sign not match"},
		{config.NotifyDingTalk, reply{200, nil, `{"errcode":130101,"errmsg":"send too fast"}`}, false, time.Minute, "130101"},
		{config.NotifyWeCom, reply{200, nil, `{"errcode":93000,"errmsg":"invalid webhook url"}`}, true, 0, "wecom API error 93000"},
		{config.NotifyWeCom, reply{200, nil, `{"errcode":45009,"errmsg":"api freq out of limit"}`}, false, time.Minute, "45009"},
		{config.NotifyFeishu, reply{400, nil, `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`}, true, 0, "feishu API error 19021"},
		{config.NotifyFeishu, reply{200, nil, `{"code":9499,"msg":"Too Many Request"}`}, false, 10 * time.Second, "9499"},
		{config.NotifyFeishu, reply{200, nil, `{"StatusCode":0,"StatusMessage":"success"}`}, false, 0, ""},
		{config.NotifyDingTalk, reply{502, nil, `bad gateway`}, false, 0, "HTTP 502: bad gateway"},
		{config.NotifyDingTalk, reply{200, nil, `<html>proxy login</html>`}, true, 0, "unexpected dingtalk answer"},
	}
	for _, tc := range tests {
		t.Run(tc.kind+" "+tc.rep.body, func(t *testing.T) {
			rec := newRecorder(t, tc.rep)
			n, err := New(notifier(tc.kind, rec.srv.URL, "", nil), chanOpts())
			if err != nil {
				t.Fatal(err)
			}
			err = n.Send(context.Background(), testEvent())
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %q", err, tc.msg)
			}
			ra, _ := RetryAfter(err)
			if IsPermanent(err) != tc.permanent || ra != tc.retryAfter {
				t.Errorf("permanent %v retry-after %v", IsPermanent(err), ra)
			}
		})
	}
}

func TestSlackPayload(t *testing.T) {
	rec := newRecorder(t)
	s, err := NewSlack(notifier(config.NotifySlack, rec.srv.URL+"/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX", "", nil), chanOpts())
	if err != nil {
		t.Fatal(err)
	}
	e := testEvent()
	e.Text = "db1 <was> fenced & replaced."
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	r := rec.only()
	if r.Path != "/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX" {
		t.Errorf("path %s", r.Path)
	}
	jsonEqual(t, r.Body, obj{
		"text": "[CRITICAL] shop: failover done: db2 is the new primary",
		"blocks": arr{
			obj{"type": "header", "text": obj{"type": "plain_text", "text": "[CRITICAL] shop: failover done: db2 is the new primary"}},
			obj{"type": "section", "text": obj{"type": "mrkdwn", "text": "db1 &lt;was&gt; fenced &amp; replaced."}},
			obj{"type": "section", "fields": arr{
				obj{"type": "mrkdwn", "text": "*new_primary*\ndb2"},
				obj{"type": "mrkdwn", "text": "*old_primary*\ndb1"},
			}},
			obj{"type": "context", "elements": arr{
				obj{"type": "mrkdwn", "text": "shop · failover_end · critical · 2026-01-02T03:04:05Z · run run-42"},
			}},
		},
	})
}

func TestWeComPayload(t *testing.T) {
	rec := newRecorder(t, reply{status: 200, body: `{"errcode":0,"errmsg":"ok"}`})
	w, err := NewWeCom(notifier(config.NotifyWeCom, rec.srv.URL+"/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa", "", nil), chanOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	r := rec.only()
	if r.RawQuery != "key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa" {
		t.Errorf("query %s", r.RawQuery)
	}
	jsonEqual(t, r.Body, obj{"msgtype": "markdown", "markdown": obj{"content": wantMarkdown}})

	// WeCom's 4096-byte limit.
	e := testEvent()
	e.Text = strings.Repeat("故障", 2000)
	if err := w.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var m weComMessage
	if err := jsonUnmarshal(rec.requests()[1].Body, &m); err != nil || len(m.Markdown.Content) > 4096 || !strings.HasSuffix(m.Markdown.Content, "…") {
		t.Errorf("long content: %d bytes, err %v", len(m.Markdown.Content), err)
	}
}

func TestFeishuSignedCard(t *testing.T) {
	const secret = "feishu-secret-0123456789"
	rec := newRecorder(t, reply{status: 200, body: `{"code":0,"data":{},"msg":"success"}`})
	f, err := NewFeishu(notifier(config.NotifyFeishu, rec.srv.URL+"/open-apis/bot/v2/hook/0f4a7d6e-1b2c-4d5e-8f90-a1b2c3d4e5f6", secret, nil), chanOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	r := rec.only()
	// Computed here independently of FeishuSign: the key is
	// timestamp+"\n"+secret, the message empty; seconds.
	ts := strconv.FormatInt(fixedNow().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(ts+"\n"+secret))
	sign := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	jsonEqual(t, r.Body, obj{
		"timestamp": ts, "sign": sign, "msg_type": "interactive",
		"card": obj{
			"config": obj{"wide_screen_mode": true},
			"header": obj{"title": obj{"tag": "plain_text", "content": "[CRITICAL] shop: failover done: db2 is the new primary"}, "template": "red"},
			"elements": arr{obj{"tag": "div", "text": obj{"tag": "lark_md", "content": "db1 was fenced.\n\n" +
				"**cluster**: shop\n**event**: failover_end\n**severity**: critical\n**time**: 2026-01-02T03:04:05Z\n" +
				"**run**: run-42\n**new_primary**: db2\n**old_primary**: db1\n\ncloudmha"}}},
		},
	})
	if ts != "1767323045" {
		t.Errorf("timestamp %s is not in seconds", ts)
	}
}

func TestHTTPStatusClassification(t *testing.T) {
	tests := []struct {
		rep        reply
		permanent  bool
		retryAfter time.Duration
	}{
		{reply{500, nil, "boom"}, false, 0},
		{reply{503, map[string]string{"Retry-After": "3"}, ""}, false, 3 * time.Second},
		{reply{429, map[string]string{"Retry-After": "7"}, "slow down"}, false, 7 * time.Second},
		{reply{429, map[string]string{"Retry-After": fixedNow().Add(90 * time.Second).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")}, ""}, false, 89322 * time.Millisecond},
		{reply{408, nil, ""}, false, 0},
		{reply{400, nil, "invalid_payload"}, true, 0},
		{reply{403, nil, "invalid_token"}, true, 0},
		{reply{404, nil, "no_service"}, true, 0},
		{reply{302, map[string]string{"Location": "https://elsewhere.example/"}, ""}, true, 0},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.rep.status), func(t *testing.T) {
			rec := newRecorder(t, tc.rep)
			s, _ := NewSlack(notifier(config.NotifySlack, rec.srv.URL, "", nil), chanOpts())
			err := s.Send(context.Background(), testEvent())
			if err == nil || !strings.Contains(err.Error(), "HTTP "+strconv.Itoa(tc.rep.status)) {
				t.Fatalf("error %v", err)
			}
			ra, _ := RetryAfter(err)
			if IsPermanent(err) != tc.permanent || ra != tc.retryAfter {
				t.Errorf("permanent %v retry-after %v", IsPermanent(err), ra)
			}
			if len(rec.requests()) != 1 {
				t.Errorf("redirect followed")
			}
		})
	}
}

func TestSendHonoursContext(t *testing.T) {
	release := make(chan struct{})
	rec := newRecorder(t)
	rec.srv.Config.Handler = blockingHandler(release)
	defer close(release)
	w, _ := NewWebhook(notifier(config.NotifyWebhook, rec.srv.URL, "", nil), chanOpts())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := w.Send(ctx, testEvent())
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Errorf("error %v", err)
	}
}

func TestNewRejectsBadNotifiers(t *testing.T) {
	for _, n := range []config.Notifier{
		{Name: "x", Kind: "pager", URL: "https://x"},
		{Name: "x", Kind: config.NotifySlack},
		{Name: "x", Kind: config.NotifyWebhook, URL: "ftp://x/secret-path-token-123456"},
		{Name: "x", Kind: config.NotifyEmail, URL: "smtp://h:25"},
		{Name: "x", Kind: config.NotifyEmail, URL: "smtp://u:pw@h:25", To: []string{"a@b"}},
		{Name: "x", Kind: config.NotifyEmail, URL: "smtps://h", To: []string{"a@b"}, Options: map[string]string{"tls": "none"}},
		{Name: "x", Kind: config.NotifyEmail, URL: "smtp://h", To: []string{"a@b"}, Options: map[string]string{"user": "u"}},
		{Name: "x", Kind: config.NotifyEmail, URL: "smtp://h", To: []string{"a@b"}, Options: map[string]string{"ca_file": "/nonexistent/ca.pem"}},
		{Name: "x", Kind: config.NotifyDingTalk, URL: "https://x", Options: map[string]string{"at_all": "maybe"}},
	} {
		if _, err := New(n, chanOpts()); err == nil {
			t.Errorf("%+v accepted", n)
		} else if strings.Contains(err.Error(), "secret-path-token") || strings.Contains(err.Error(), "pw@") {
			t.Errorf("secret in %v", err)
		}
	}
}
