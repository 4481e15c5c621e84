package notify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

const smtpPassword = "smtp-Pa55-w0rd-XYZ"

func emailNotifier(url string, options map[string]string) config.Notifier {
	return config.Notifier{Name: "mail", Kind: config.NotifyEmail, URL: url, Secret: config.NewSecret(smtpPassword),
		To: []string{"dba@example.com", "Oncall <oncall@example.com>"}, Options: options}
}

func emailOpts(cert testCert) ChannelOptions {
	o := chanOpts()
	o.TLSConfig = newTLSConfig(cert)
	return o
}

func TestEmailSTARTTLSAuthPlain(t *testing.T) {
	cert := newTestCert(t)
	srv := newSMTPServer(t, cert, smtpConfig{starttls: true, authMechs: []string{"PLAIN", "LOGIN"}, user: "ha", pass: smtpPassword})
	m, err := NewEmail(emailNotifier("smtp://"+srv.addr(), map[string]string{"user": "ha", "from": "cloudmha <ha@example.com>"}), emailOpts(cert))
	if err != nil {
		t.Fatal(err)
	}
	e := testEvent()
	e.Title = "主库故障切换完成"
	e.Text = "line one\n.leading dot line\n" + strings.Repeat("long ", 40)
	if err := m.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	ss := srv.sessions()
	if len(ss) != 1 {
		t.Fatalf("sessions %v", ss)
	}
	s := ss[0]
	if want := []string{"EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"}; !reflect.DeepEqual(s.Commands, want) {
		t.Errorf("commands %v, want %v", s.Commands, want)
	}
	if !reflect.DeepEqual(s.AuthTLS, []bool{true}) || !s.AuthOK || s.AuthUser != "ha" || s.AuthMech != "PLAIN" {
		t.Errorf("auth: %s", s)
	}
	if s.From != "FROM:<ha@example.com>" && !strings.HasPrefix(s.From, "FROM:<ha@example.com> ") {
		t.Errorf("MAIL %q", s.From)
	}
	if !reflect.DeepEqual(s.Rcpt, []string{"TO:<dba@example.com>", "TO:<oncall@example.com>"}) {
		t.Errorf("RCPT %v", s.Rcpt)
	}
	if !s.TLSOnAtEnd {
		t.Error("message sent without TLS")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(s.Data))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subj != "[CRITICAL] shop: 主库故障切换完成" {
		t.Errorf("subject %q (%v)", subj, err)
	}
	for k, want := range map[string]string{
		"From": `"cloudmha" <ha@example.com>`, "To": `<dba@example.com>, "Oncall" <oncall@example.com>`,
		"Date": "Fri, 02 Jan 2026 03:04:05 +0000", "Content-Type": "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable", "X-Cloudmha-Event": "failover_end", "X-Cloudmha-Run": "run-42",
	} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if id := msg.Header.Get("Message-Id"); !strings.HasSuffix(id, "@mha1.example.com>") {
		t.Errorf("Message-ID %q", id)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.ReplaceAll(string(body), "\r\n", "\n"), plainText(e); strings.TrimRight(got, "\n") != strings.TrimRight(want, "\n") {
		t.Errorf("body:\n%q\nwant:\n%q", got, want)
	}
}

func TestEmailRefusesServerWithoutSTARTTLS(t *testing.T) {
	cert := newTestCert(t)
	srv := newSMTPServer(t, cert, smtpConfig{authMechs: []string{"PLAIN"}, user: "ha", pass: smtpPassword})
	m, err := NewEmail(emailNotifier("smtp://"+srv.addr(), map[string]string{"user": "ha"}), emailOpts(cert))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), testEvent())
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("error %v", err)
	}
	s := srv.sessions()[0]
	if slices.Contains(s.Commands, "AUTH") || slices.Contains(s.Commands, "MAIL") || s.Data != nil {
		t.Errorf("went on without TLS: %s", s)
	}

	// tls: none sends in clear (and may authenticate, as configured).
	m, err = NewEmail(emailNotifier("smtp://"+srv.addr(), map[string]string{"user": "ha", "tls": "none"}), emailOpts(cert))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	s = srv.sessions()[1]
	if !reflect.DeepEqual(s.AuthTLS, []bool{false}) || !s.AuthOK || s.Data == nil {
		t.Errorf("tls none: %s", s)
	}
}

func TestEmailTLSNoneDoesNotUpgrade(t *testing.T) {
	cert := newTestCert(t)
	srv := newSMTPServer(t, cert, smtpConfig{starttls: true})
	n := emailNotifier("smtp://"+srv.addr(), map[string]string{"tls": "none"})
	n.Secret = config.Secret{}
	m, err := NewEmail(n, chanOpts()) // no trust in the test CA: an upgrade would fail
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	if s := srv.sessions()[0]; slices.Contains(s.Commands, "STARTTLS") || s.TLSOnAtEnd {
		t.Errorf("upgraded: %s", s)
	}
}

func TestEmailImplicitTLSAuthLogin(t *testing.T) {
	cert := newTestCert(t)
	srv := newSMTPServer(t, cert, smtpConfig{implicitTLS: true, authMechs: []string{"LOGIN", "PLAIN"}, user: "ha", pass: smtpPassword})
	// Trust the test CA through options.ca_file this time.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, cert.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := NewEmail(emailNotifier("smtps://"+srv.addr(), map[string]string{"user": "ha", "auth": "login", "ca_file": ca}), chanOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	s := srv.sessions()[0]
	if slices.Contains(s.Commands, "STARTTLS") || !reflect.DeepEqual(s.AuthTLS, []bool{true}) || !s.AuthOK || s.AuthMech != "LOGIN" || !s.TLSOnAtEnd {
		t.Errorf("smtps: %s", s)
	}
}

func TestEmailErrors(t *testing.T) {
	cert := newTestCert(t)
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := newSMTPServer(t, cert, smtpConfig{starttls: true})
		n := emailNotifier("smtp://"+srv.addr(), nil)
		n.Secret = config.Secret{}
		m, _ := NewEmail(n, chanOpts())
		err := m.Send(context.Background(), testEvent())
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := newSMTPServer(t, cert, smtpConfig{starttls: true, authMechs: []string{"PLAIN"}, user: "ha", pass: "other"})
		m, _ := NewEmail(emailNotifier("smtp://"+srv.addr(), map[string]string{"user": "ha"}), emailOpts(cert))
		err := m.Send(context.Background(), testEvent())
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "AUTH") || strings.Contains(err.Error(), smtpPassword) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("no usable mechanism", func(t *testing.T) {
		srv := newSMTPServer(t, cert, smtpConfig{starttls: true, authMechs: []string{"CRAM-MD5"}})
		m, _ := NewEmail(emailNotifier("smtp://"+srv.addr(), map[string]string{"user": "ha"}), emailOpts(cert))
		err := m.Send(context.Background(), testEvent())
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "no usable AUTH mechanism") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("temporary RCPT failure", func(t *testing.T) {
		srv := newSMTPServer(t, cert, smtpConfig{starttls: true, rcptReply: "451 4.3.0 try later"})
		n := emailNotifier("smtp://"+srv.addr(), nil)
		n.Secret = config.Secret{}
		m, _ := NewEmail(n, emailOpts(cert))
		err := m.Send(context.Background(), testEvent())
		if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "RCPT TO") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("permanent RCPT failure", func(t *testing.T) {
		srv := newSMTPServer(t, cert, smtpConfig{starttls: true, rcptReply: "550 5.1.1 no such user"})
		n := emailNotifier("smtp://"+srv.addr(), nil)
		n.Secret = config.Secret{}
		m, _ := NewEmail(n, emailOpts(cert))
		if err := m.Send(context.Background(), testEvent()); err == nil || !IsPermanent(err) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		n := emailNotifier("smtp://"+closedAddr(t), nil)
		n.Secret = config.Secret{}
		m, _ := NewEmail(n, chanOpts())
		err := m.Send(context.Background(), testEvent())
		if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "connect") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		// A server that accepts and never greets.
		ln := listen(t)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(io.Discard, c)
			}
		}()
		n := emailNotifier("smtp://"+ln.Addr().String(), nil)
		n.Secret = config.Secret{}
		m, _ := NewEmail(n, chanOpts())
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := m.Send(ctx, testEvent())
		if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
			t.Fatalf("error %v", err)
		}
	})
}
