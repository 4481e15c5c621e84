package notify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCert is a self-signed certificate for 127.0.0.1.
type testCert struct {
	tls  tls.Certificate
	pool *x509.CertPool
	pem  []byte
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cloudmha test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return testCert{
		tls:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pool: pool,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

// smtpConfig says how the test server behaves.
type smtpConfig struct {
	implicitTLS bool     // smtps: TLS from the first byte
	starttls    bool     // offer STARTTLS
	authMechs   []string // offered AUTH mechanisms (none: no AUTH)
	user, pass  string   // accepted credentials
	rcptReply   string   // answer to RCPT TO, default "250 ok"
}

// smtpSession is what one connection did.
type smtpSession struct {
	Commands   []string // verbs in order, with TLS noted: "STARTTLS", "AUTH(tls)"
	AuthTLS    []bool   // for each AUTH: was TLS on
	AuthOK     bool
	AuthUser   string
	AuthMech   string
	From       string
	Rcpt       []string
	Data       []byte
	TLSOnAtEnd bool
}

type smtpServer struct {
	t    *testing.T
	cfg  smtpConfig
	cert testCert
	ln   net.Listener
	mu   sync.Mutex
	sess []*smtpSession
	wg   sync.WaitGroup
}

func newSMTPServer(t *testing.T, cert testCert, cfg smtpConfig) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{t: t, cfg: cfg, cert: cert, ln: ln}
	if cfg.implicitTLS {
		s.ln = tls.NewListener(ln, s.tlsConfig())
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		_ = s.ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *smtpServer) tlsConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.cert.tls}, MinVersion: tls.VersionTLS12}
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) sessions() []smtpSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []smtpSession
	for _, x := range s.sess {
		out = append(out, *x)
	}
	return out
}

func (s *smtpServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *smtpServer) handle(conn net.Conn) {
	sess := &smtpSession{}
	s.mu.Lock()
	s.sess = append(s.sess, sess)
	s.mu.Unlock()
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tlsOn := s.cfg.implicitTLS
	tp := textproto.NewConn(conn)
	record := func(f func()) {
		s.mu.Lock()
		defer s.mu.Unlock()
		f()
	}
	reply := func(format string, args ...any) bool { return tp.PrintfLine(format, args...) == nil }
	if !reply("220 test.example ESMTP") {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		record(func() { sess.Commands = append(sess.Commands, verb) })
		switch verb {
		case "EHLO", "HELO":
			lines := []string{"test.example"}
			if s.cfg.starttls && !tlsOn {
				lines = append(lines, "STARTTLS")
			}
			if len(s.cfg.authMechs) > 0 {
				lines = append(lines, "AUTH "+strings.Join(s.cfg.authMechs, " "))
			}
			lines = append(lines, "8BITMIME")
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply("250%s%s", sep, l)
			}
		case "STARTTLS":
			if !s.cfg.starttls || tlsOn {
				reply("502 not offered")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(conn, s.tlsConfig())
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, tp, tlsOn = tc, textproto.NewConn(tc), true
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			mech = strings.ToUpper(mech)
			record(func() { sess.AuthTLS = append(sess.AuthTLS, tlsOn); sess.AuthMech = mech })
			var user, pass string
			switch mech {
			case "PLAIN":
				if initial == "" {
					reply("334 ")
					if initial, err = tp.ReadLine(); err != nil {
						return
					}
				}
				b, _ := base64.StdEncoding.DecodeString(initial)
				parts := strings.Split(string(b), "\x00")
				if len(parts) == 3 {
					user, pass = parts[1], parts[2]
				}
			case "LOGIN":
				ask := func(prompt string) string {
					reply("334 %s", base64.StdEncoding.EncodeToString([]byte(prompt)))
					l, _ := tp.ReadLine()
					b, _ := base64.StdEncoding.DecodeString(l)
					return string(b)
				}
				user, pass = ask("Username:"), ask("Password:")
			default:
				reply("504 unrecognized mechanism")
				continue
			}
			if user == s.cfg.user && pass == s.cfg.pass {
				record(func() { sess.AuthOK, sess.AuthUser = true, user })
				reply("235 2.7.0 authenticated")
			} else {
				reply("535 5.7.8 authentication failed")
			}
		case "MAIL":
			record(func() { sess.From = arg })
			reply("250 ok")
		case "RCPT":
			record(func() { sess.Rcpt = append(sess.Rcpt, arg) })
			if s.cfg.rcptReply != "" {
				reply("%s", s.cfg.rcptReply)
			} else {
				reply("250 ok")
			}
		case "DATA":
			reply("354 go ahead")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			record(func() { sess.Data = b; sess.TLSOnAtEnd = tlsOn })
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		case "RSET", "NOOP":
			reply("250 ok")
		default:
			reply("502 %s not implemented", verb)
		}
	}
}

func (s smtpSession) String() string {
	return fmt.Sprintf("%v auth-tls=%v ok=%v from=%s rcpt=%v data=%d bytes", s.Commands, s.AuthTLS, s.AuthOK, s.From, s.Rcpt, len(bytes.TrimSpace(s.Data)))
}
