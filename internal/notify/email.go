package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
)

// Email sends plain-text e-mail through an SMTP server.
//
// smtp://host[:port] (default port 25) requires STARTTLS: a server that
// does not offer it is refused, unless options.tls is "none", which sends
// without TLS (STARTTLS is then not attempted). smtps://host[:port]
// (default 465) uses implicit TLS. With options.user and a secret (the
// password) it authenticates with AUTH PLAIN or LOGIN (options.auth: auto,
// the default, prefers PLAIN), only over TLS unless tls is "none".
// options.from is the sender (default cloudmha@HOSTNAME); options.ca_file
// a PEM bundle of the CAs to trust instead of the system's.
type Email struct {
	addr        string // host:port
	host        string
	implicitTLS bool
	plaintext   bool // options.tls: none
	user        string
	password    config.Secret
	auth        string
	from        *mail.Address
	to          []*mail.Address
	tlsConfig   *tls.Config
	hostname    string
	now         func() time.Time
	red         redactor
}

// NewEmail returns the SMTP channel.
func NewEmail(n config.Notifier, o ChannelOptions) (*Email, error) {
	o = o.withDefaults()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("email notifier %s: "+format, append([]any{n.Name}, args...)...)
	}
	u, err := url.Parse(n.URL)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, fail("url must be smtp://host[:port] or smtps://host[:port]")
	}
	if u.User != nil {
		return nil, fail("url must not carry a user or password: use options.user and the secret")
	}
	m := &Email{host: u.Hostname(), user: n.Options["user"], password: n.Secret, auth: "auto",
		hostname: o.Hostname, now: o.Now, red: notifierRedactor(n)}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "25"
		}
	case "smtps":
		m.implicitTLS = true
		if port == "" {
			port = "465"
		}
	default:
		return nil, fail("url scheme must be smtp or smtps (got %q)", u.Scheme)
	}
	m.addr = net.JoinHostPort(m.host, port)
	switch v := n.Options["tls"]; v {
	case "", "starttls":
	case "none":
		if m.implicitTLS {
			return nil, fail("options.tls: none is for smtp:// only")
		}
		m.plaintext = true
	default:
		return nil, fail("options.tls must be starttls or none (got %q)", v)
	}
	if v, ok := n.Options["auth"]; ok {
		if !slices.Contains([]string{"auto", "plain", "login"}, v) {
			return nil, fail("options.auth must be auto, plain or login (got %q)", v)
		}
		m.auth = v
	}
	if (m.user != "") != m.password.IsSet() {
		return nil, fail("options.user and the secret (SMTP password) go together")
	}
	from := n.Options["from"]
	if from == "" {
		from = "cloudmha@" + o.Hostname
	}
	if m.from, err = mail.ParseAddress(from); err != nil {
		return nil, fail("options.from: %w", err)
	}
	if len(n.To) == 0 {
		return nil, fail("no recipient (to)")
	}
	for _, t := range n.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fail("to %q: %w", t, err)
		}
		m.to = append(m.to, a)
	}
	if o.TLSConfig != nil {
		m.tlsConfig = o.TLSConfig.Clone()
	} else {
		m.tlsConfig = &tls.Config{}
	}
	m.tlsConfig.ServerName = m.host
	if m.tlsConfig.MinVersion == 0 {
		m.tlsConfig.MinVersion = tls.VersionTLS12
	}
	if f := n.Options["ca_file"]; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fail("options.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fail("options.ca_file %s: no PEM certificate", f)
		}
		m.tlsConfig.RootCAs = pool
	}
	return m, nil
}

// smtpError wraps an SMTP failure: 4xx replies and network errors are
// retried, 5xx replies and TLS verification failures are not.
func (m *Email) smtpError(stage string, err error) error {
	e := &sendError{msg: "smtp " + m.addr + ": " + stage, err: m.red.sanitize(err)}
	var te *textproto.Error
	var ve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &te):
		e.permanent = te.Code >= 500
	case errors.As(err, &ve):
		e.permanent = true
	}
	return e
}

// Send delivers the event to every recipient in one transaction.
func (m *Email) Send(ctx context.Context, e Event) (err error) {
	var conn net.Conn
	if m.implicitTLS {
		d := &tls.Dialer{Config: m.tlsConfig}
		conn, err = d.DialContext(ctx, "tcp", m.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", m.addr)
	}
	if err != nil {
		return m.smtpError("connect", err)
	}
	defer func() { _ = conn.Close() }()
	// Unblock any read or write when ctx ends (ctx.Err is then set, so the
	// failure is reported as ctx's).
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = &sendError{msg: "smtp " + m.addr, err: fmt.Errorf("%w (%v)", ctx.Err(), m.red.sanitize(err))}
		}
	}()

	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return m.smtpError("greeting", err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Hello(m.hostname); err != nil {
		return m.smtpError("EHLO", err)
	}
	if !m.implicitTLS && !m.plaintext {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return &sendError{msg: "smtp " + m.addr + ": the server does not offer STARTTLS; set options.tls: none to send without TLS",
				permanent: true}
		}
		if err := c.StartTLS(m.tlsConfig); err != nil {
			return m.smtpError("STARTTLS", err)
		}
	}
	if m.user != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return &sendError{msg: "smtp " + m.addr + ": the server offers no AUTH (is STARTTLS required first?)", permanent: true}
		}
		a, err := m.authFor(strings.Fields(strings.ToUpper(mechs)))
		if err != nil {
			return &sendError{msg: "smtp " + m.addr, err: err, permanent: true}
		}
		if err := c.Auth(a); err != nil {
			return m.smtpError("AUTH", err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return m.smtpError("MAIL FROM", err)
	}
	for _, t := range m.to {
		if err := c.Rcpt(t.Address); err != nil {
			return m.smtpError("RCPT TO", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return m.smtpError("DATA", err)
	}
	if _, err := w.Write(m.message(e)); err != nil {
		return m.smtpError("DATA", err)
	}
	if err := w.Close(); err != nil {
		return m.smtpError("end of DATA", err)
	}
	// The message is accepted; a failed QUIT does not matter.
	_ = c.Quit()
	return nil
}

// authFor picks the mechanism among those the server offers.
func (m *Email) authFor(offered []string) (smtp.Auth, error) {
	plain := &plainAuth{user: m.user, password: m.password, allowPlaintext: m.plaintext}
	login := &loginAuth{plainAuth: *plain}
	switch {
	case (m.auth == "auto" || m.auth == "plain") && slices.Contains(offered, "PLAIN"):
		return plain, nil
	case (m.auth == "auto" || m.auth == "login") && slices.Contains(offered, "LOGIN"):
		return login, nil
	}
	return nil, fmt.Errorf("no usable AUTH mechanism (options.auth %s, server offers %s)", m.auth, strings.Join(offered, " "))
}

// plainAuth is AUTH PLAIN (RFC 4616). Unlike smtp.PlainAuth it allows an
// unencrypted connection only when the notifier says tls: none.
type plainAuth struct {
	user           string
	password       config.Secret
	allowPlaintext bool
}

var errPlaintextAuth = errors.New("refusing to send the SMTP password over an unencrypted connection")

func (a *plainAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	if !s.TLS && !a.allowPlaintext {
		return "", nil, errPlaintextAuth
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.password.Value()), nil
}

func (a *plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected AUTH PLAIN challenge")
	}
	return nil, nil
}

// loginAuth is AUTH LOGIN: the server asks for the user name, then the
// password.
type loginAuth struct {
	plainAuth
	step int
}

func (a *loginAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	if !s.TLS && !a.allowPlaintext {
		return "", nil, errPlaintextAuth
	}
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	a.step++
	c := strings.ToLower(string(challenge))
	switch {
	case strings.HasPrefix(c, "user"), a.step == 1 && !strings.HasPrefix(c, "pass"):
		return []byte(a.user), nil
	case strings.HasPrefix(c, "pass"), a.step == 2:
		return []byte(a.password.Value()), nil
	}
	return nil, errors.New("unexpected AUTH LOGIN challenge")
}

// message is the RFC 5322 message: UTF-8 plain text, quoted-printable.
func (m *Email) message(e Event) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", m.from.String())
	var to []string
	for _, t := range m.to {
		to = append(to, t.String())
	}
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject(e)))
	date := e.Time
	if date.IsZero() {
		date = m.now()
	}
	hdr("Date", date.Format(time.RFC1123Z))
	var id [12]byte
	_, _ = rand.Read(id[:])
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+oneLine(m.hostname)+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("X-Cloudmha-Event", oneLine(string(e.Kind)))
	hdr("X-Cloudmha-Severity", oneLine(string(e.Severity)))
	if e.ID != "" {
		hdr("X-Cloudmha-Run", oneLine(e.ID))
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(plainText(e), "\n", "\r\n")))
	_ = qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}
