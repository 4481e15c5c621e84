package rfc2136

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

// testServers are the database servers of the integration tests. server3
// is configured by hostname (localhost) to exercise resolution.
func testServers() []config.Server {
	return []config.Server{
		{Name: "server1", Hostname: "db1", IP: "10.0.0.1", Port: 3306},
		{Name: "server2", Hostname: "db2", IP: "10.0.0.2", Port: 3306},
		{Name: "server3", Hostname: "localhost", Port: 3306},
	}
}

func target(name string) address.Target {
	for _, s := range testServers() {
		if s.Name == name {
			return address.Target{Name: s.Name, Hostname: s.Hostname, IP: s.IP, Port: s.Port, SSHReachable: true}
		}
	}
	panic("no server " + name)
}

func change(from, to string) address.Change {
	return address.Change{Old: target(from), New: target(to)}
}

// secretWatch collects every log line and error of a test and checks at
// the end that no TSIG secret of the server appears in any form.
type secretWatch struct {
	t    *testing.T
	logs *lockedBuffer
	errs []string
}

func watchSecrets(t *testing.T, s *namedServer) (*secretWatch, *slog.Logger) {
	w := &secretWatch{t: t, logs: &lockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		all := w.logs.String() + "\n" + strings.Join(w.errs, "\n")
		for _, short := range leakedKeys(all, s.keys) {
			t.Errorf("the secret of key %s appears in a log line or an error", short)
		}
		if testing.Verbose() {
			t.Logf("mover log:\n%s", w.logs.String())
		}
	})
	return w, log
}

// leakedKeys lists the keys whose secret appears in text, as base64 (or
// its first 12 characters), hex or raw bytes.
func leakedKeys(text string, keys map[string]testKey) []string {
	var leaked []string
	for short, k := range keys {
		raw, _ := base64.StdEncoding.DecodeString(k.secret)
		for _, form := range []string{k.secret, k.secret[:12], hex.EncodeToString(raw), string(raw)} {
			if strings.Contains(text, form) {
				leaked = append(leaked, short)
				break
			}
		}
	}
	return leaked
}

func TestLeakedKeysDetects(t *testing.T) {
	keys := map[string]testKey{"k": {secret: testSecret}}
	raw, _ := base64.StdEncoding.DecodeString(testSecret)
	for _, text := range []string{"x " + testSecret, "x " + testSecret[:12] + "…", hex.EncodeToString(raw), "raw " + string(raw)} {
		if len(leakedKeys(text, keys)) != 1 {
			t.Errorf("leak not detected in %q", text)
		}
	}
	if len(leakedKeys("TSIG key k. (hmac-sha256)", keys)) != 0 {
		t.Error("false positive")
	}
}

// err records an error's text for the secret check and returns it.
func (w *secretWatch) err(err error) error {
	if err != nil {
		w.errs = append(w.errs, err.Error())
	}
	return err
}

func (s *namedServer) opts(key string, extra ...string) map[string]string {
	m := map[string]string{"server": s.addr, "zone": "example.test", "name": "db", "ttl": "30", "timeout": "3s"}
	if key != "" {
		m["tsig_secret_file"] = s.keys[key].file
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func newMover(t *testing.T, opts map[string]string, log *slog.Logger) *Mover {
	t.Helper()
	m, err := NewWithOptions(testServers(), opts, Options{Logger: log})
	if err != nil {
		t.Fatalf("NewWithOptions: %v", err)
	}
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantA(t *testing.T, s *namedServer, want ...string) {
	t.Helper()
	got, _ := s.getA(t, "db."+testZone)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("db A = %v, want %v", got, want)
	}
}

func TestBINDAcquireHolderStatus(t *testing.T) {
	s := startNamed(t)
	w, log := watchSecrets(t, s)
	ctx := ctxT(t)
	m := newMover(t, s.opts("full"), log)

	if h, err := m.Holder(ctx); w.err(err) != nil || h != "" {
		t.Fatalf("Holder before any record = %q, %v; want \"\", nil", h, err)
	}
	if err := w.err(m.Status(ctx, target("server1"))); !errors.Is(err, ErrConflict) {
		t.Fatalf("Status without a record: %v, want ErrConflict", err)
	}

	serial := s.soaSerial(t)
	if err := w.err(m.Acquire(ctx, change("server2", "server1"))); err != nil {
		t.Fatalf("Acquire server1: %v", err)
	}
	wantA(t, s, "10.0.0.1")
	if _, ttl := s.getA(t, "db."+testZone); ttl != 30 {
		t.Errorf("TTL = %d, want 30", ttl)
	}
	if after := s.soaSerial(t); !serialAfter(after, serial) {
		t.Errorf("SOA serial %d -> %d: not increased", serial, after)
	}
	if h, err := m.Holder(ctx); w.err(err) != nil || h != "server1" {
		t.Fatalf("Holder = %q, %v; want server1", h, err)
	}
	if err := w.err(m.Status(ctx, target("server1"))); err != nil {
		t.Fatalf("Status(server1): %v", err)
	}

	// Failover to server2.
	if err := w.err(m.Release(ctx, change("server1", "server2"))); err != nil {
		t.Fatalf("Release (keep): %v", err)
	}
	wantA(t, s, "10.0.0.1") // keep: untouched
	if err := w.err(m.Acquire(ctx, change("server1", "server2"))); err != nil {
		t.Fatalf("Acquire server2: %v", err)
	}
	wantA(t, s, "10.0.0.2")
	if h, err := m.Holder(ctx); w.err(err) != nil || h != "server2" {
		t.Fatalf("Holder = %q, %v; want server2", h, err)
	}
	if err := w.err(m.Status(ctx, target("server1"))); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "10.0.0.2") {
		t.Fatalf("Status(server1) while the record is server2: %v", err)
	}

	// Acquiring again changes nothing (BIND keeps the serial) and is fine.
	serial = s.soaSerial(t)
	if err := w.err(m.Acquire(ctx, change("server1", "server2"))); err != nil {
		t.Fatalf("Acquire server2 again: %v", err)
	}
	if after := s.soaSerial(t); after != serial {
		t.Logf("serial changed on a no-op update: %d -> %d", serial, after)
	}
	// Status's update is a no-op.
	serial = s.soaSerial(t)
	if err := w.err(m.Status(ctx, target("server2"))); err != nil {
		t.Fatalf("Status(server2): %v", err)
	}
	if after := s.soaSerial(t); after != serial {
		t.Errorf("Status changed the zone: serial %d -> %d", serial, after)
	}

	// A server configured by hostname is resolved.
	if err := w.err(m.Acquire(ctx, address.Change{New: address.Target{Name: "server3"}})); err != nil {
		t.Fatalf("Acquire server3 (by hostname): %v", err)
	}
	wantA(t, s, "127.0.0.1")
	if h, err := m.Holder(ctx); w.err(err) != nil || h != "server3" {
		t.Fatalf("Holder = %q, %v; want server3", h, err)
	}
}

func TestBINDHolderUnknownAndSeveral(t *testing.T) {
	s := startNamed(t)
	w, log := watchSecrets(t, s)
	ctx := ctxT(t)
	m := newMover(t, s.opts("full"), log)

	s.setA(t, "db."+testZone, "10.0.0.1", "192.0.2.99", "192.0.2.7")
	_, err := m.Holder(ctx)
	if w.err(err); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "192.0.2.7, 192.0.2.99") {
		t.Fatalf("Holder with unknown values: %v; want ErrConflict listing 192.0.2.7, 192.0.2.99", err)
	}
	s.setA(t, "db."+testZone, "10.0.0.1", "10.0.0.2")
	_, err = m.Holder(ctx)
	if w.err(err); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "server1, server2") {
		t.Fatalf("Holder with two servers: %v", err)
	}
	// Acquire replaces the whole RRset.
	if err := w.err(m.Acquire(ctx, change("server1", "server2"))); err != nil {
		t.Fatal(err)
	}
	wantA(t, s, "10.0.0.2")

	// A CNAME at the name is reported, not silently ignored.
	ma := newMover(t, s.opts("full", "name", "alias"), log)
	if err := w.err(ma.Acquire(ctx, change("server1", "server2"))); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "CNAME") {
		t.Fatalf("Acquire on a CNAME: %v", err)
	}
}

func TestBINDReleaseDelete(t *testing.T) {
	s := startNamed(t)
	w, log := watchSecrets(t, s)
	ctx := ctxT(t)
	m := newMover(t, s.opts("full", "on_release", "delete"), log)

	if err := w.err(m.Acquire(ctx, change("server2", "server1"))); err != nil {
		t.Fatal(err)
	}
	serial := s.soaSerial(t)
	if err := w.err(m.Release(ctx, change("server1", "server2"))); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantA(t, s)
	if after := s.soaSerial(t); !serialAfter(after, serial) {
		t.Errorf("delete did not change the serial")
	}
	if h, err := m.Holder(ctx); w.err(err) != nil || h != "" {
		t.Fatalf("Holder after delete = %q, %v", h, err)
	}
	// Releasing again: nothing left to delete.
	if err := w.err(m.Release(ctx, change("server1", "server2"))); err != nil {
		t.Fatalf("second Release: %v", err)
	}

	// Someone already pointed the record at server2: the prerequisite
	// (db A 10.0.0.1 exists) fails and the record is not clobbered.
	if err := w.err(m.Acquire(ctx, change("server1", "server2"))); err != nil {
		t.Fatal(err)
	}
	serial = s.soaSerial(t)
	if err := w.err(m.Release(ctx, change("server1", "server2"))); err != nil {
		t.Fatalf("Release of a record that moved on: %v", err)
	}
	wantA(t, s, "10.0.0.2")
	if after := s.soaSerial(t); after != serial {
		t.Errorf("the zone changed (serial %d -> %d) although the prerequisite failed", serial, after)
	}

	// The old primary is among several values: not exactly the old value,
	// so nothing is deleted, and it is an error (it still gets traffic).
	s.setA(t, "db."+testZone, "10.0.0.1", "192.0.2.5")
	err := w.err(m.Release(ctx, change("server1", "server2")))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "192.0.2.5") {
		t.Fatalf("Release with an extra value: %v; want ErrConflict", err)
	}
	wantA(t, s, "10.0.0.1", "192.0.2.5")
}

func TestBINDReleaseKeepDoesNothing(t *testing.T) {
	s := startNamed(t)
	w, log := watchSecrets(t, s)
	ctx := ctxT(t)
	var dials atomic.Int32
	d := &net.Dialer{}
	m, err := NewWithOptions(testServers(), s.opts("full", "on_release", "keep"), Options{Logger: log,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.err(m.Acquire(ctx, change("server2", "server1"))); err != nil {
		t.Fatal(err)
	}
	if dials.Load() == 0 {
		t.Fatal("Options.Dial was not used")
	}
	n := dials.Load()
	if err := w.err(m.Release(ctx, change("server1", "server2"))); err != nil {
		t.Fatal(err)
	}
	if dials.Load() != n {
		t.Error("on_release=keep talked to the server")
	}
	wantA(t, s, "10.0.0.1")
}

func TestBINDAuthErrors(t *testing.T) {
	s := startNamed(t)
	w, log := watchSecrets(t, s)
	ctx := ctxT(t)
	full := s.keys["full"]

	// Right key name, wrong secret: NOTAUTH (BADSIG).
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	if err := os.WriteFile(wrong, []byte(`key "mha-key." { algorithm hmac-sha256; secret "`+base64.StdEncoding.EncodeToString([]byte("not the secret at all 0123456789"))+`"; };`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMover(t, map[string]string{"server": s.addr, "zone": "example.test", "name": "db", "tsig_secret_file": wrong}, log)
	err := w.err(m.Acquire(ctx, change("server2", "server1")))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "NOTAUTH") || !strings.Contains(err.Error(), "mha-key.") {
		t.Fatalf("wrong secret: %v; want ErrAuth, NOTAUTH, naming the key", err)
	}
	t.Logf("wrong secret: %v", err)
	// The UPDATE itself (verify=no: no query before it) gets NOTAUTH too.
	mu := newMover(t, map[string]string{"server": s.addr, "zone": "example.test", "name": "db", "tsig_secret_file": wrong, "verify": "no"}, log)
	err = w.err(mu.Acquire(ctx, change("server2", "server1")))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "answered the update with NOTAUTH (TSIG BADSIG)") || !strings.Contains(err.Error(), "mha-key.") {
		t.Fatalf("wrong secret, update: %v", err)
	}
	t.Logf("wrong secret, update: %v", err)
	wantA(t, s)
	if err := w.err(m.Status(ctx, target("server1"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("Status with a wrong secret: %v", err)
	}

	// Unknown key name: NOTAUTH (BADKEY).
	unknown := filepath.Join(t.TempDir(), "unknown.key")
	if err := os.WriteFile(unknown, []byte(full.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m = newMover(t, map[string]string{"server": s.addr, "zone": "example.test", "name": "db", "tsig_secret_file": unknown, "tsig_key_name": "nobody-key"}, log)
	err = w.err(m.Acquire(ctx, change("server2", "server1")))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "BADKEY") || !strings.Contains(err.Error(), "nobody-key.") {
		t.Fatalf("unknown key: %v; want ErrAuth, BADKEY, naming the key", err)
	}
	t.Logf("unknown key: %v", err)

	// Unsigned: REFUSED.
	m = newMover(t, s.opts(""), log)
	err = w.err(m.Acquire(ctx, change("server2", "server1")))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "refused the unsigned update") {
		t.Fatalf("unsigned: %v; want ErrAuth, REFUSED", err)
	}
	t.Logf("unsigned: %v", err)

	// A valid key that the update-policy does not grant this name: REFUSED.
	m = newMover(t, s.opts("limited"), log)
	err = w.err(m.Acquire(ctx, change("server2", "server1")))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "limited-key.") {
		t.Fatalf("limited key: %v; want ErrAuth, REFUSED naming the key", err)
	}
	t.Logf("limited key: %v", err)
	// … and Status catches it before any failover.
	s.setA(t, "db."+testZone, "10.0.0.1")
	if err := w.err(m.Status(ctx, target("server1"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("Status with a key that may not update the name: %v", err)
	}
	wantA(t, s, "10.0.0.1")
	// It may update its own name.
	mo := newMover(t, s.opts("limited", "name", "other"), log)
	if err := w.err(mo.Acquire(ctx, change("server2", "server1"))); err != nil {
		t.Fatalf("limited key on its own name: %v", err)
	}
}

func TestBINDSHA512BareSecretUDP(t *testing.T) {
	s := startNamed(t)
	w, log := watchSecrets(t, s)
	ctx := ctxT(t)
	k := s.keys["sha512"]
	bare := filepath.Join(t.TempDir(), "bare.secret")
	if err := os.WriteFile(bare, []byte(k.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMover(t, map[string]string{
		"server": s.addr, "zone": "example.test.", "name": "db.example.test", "transport": "udp",
		"tsig_key_name": "mha-512", "tsig_algorithm": "sha512", "tsig_secret_file": bare, "ttl": "120",
	}, log)
	if err := w.err(m.Acquire(ctx, change("server1", "server2"))); err != nil {
		t.Fatalf("Acquire over UDP with hmac-sha512: %v", err)
	}
	wantA(t, s, "10.0.0.2")
	if _, ttl := s.getA(t, "db."+testZone); ttl != 120 {
		t.Errorf("TTL = %d, want 120", ttl)
	}
	if err := w.err(m.Status(ctx, target("server2"))); err != nil {
		t.Fatalf("Status over UDP: %v", err)
	}

	// The same secret under the wrong algorithm: BADKEY.
	m = newMover(t, map[string]string{
		"server": s.addr, "zone": "example.test", "name": "db",
		"tsig_key_name": "mha-512", "tsig_algorithm": "hmac-sha256", "tsig_secret_file": bare,
	}, log)
	if err := w.err(m.Acquire(ctx, change("server2", "server1"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong algorithm: %v", err)
	}
}

func TestBINDVerifyOffAndNotAuthoritative(t *testing.T) {
	s := startNamed(t)
	w, log := watchSecrets(t, s)
	ctx := ctxT(t)
	m := newMover(t, s.opts("full", "verify", "no"), log)
	if err := w.err(m.Acquire(ctx, change("server2", "server1"))); err != nil {
		t.Fatal(err)
	}
	wantA(t, s, "10.0.0.1")

	// A zone the server does not serve.
	m = newMover(t, map[string]string{"server": s.addr, "zone": "elsewhere.test", "name": "db", "tsig_secret_file": s.keys["full"].file}, log)
	err := w.err(m.Acquire(ctx, change("server2", "server1")))
	if err == nil {
		t.Fatal("Acquire in a zone the server does not serve succeeded")
	}
	t.Logf("other zone: %v", err)
	if _, err := m.Holder(ctx); w.err(err) == nil {
		t.Fatal("Holder in a zone the server does not serve succeeded")
	}
}

// TestExchangeTimeoutAndCancel needs no BIND: a server that accepts and
// never answers.
func TestExchangeTimeoutAndCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	m := newMover(t, map[string]string{"server": l.Addr().String(), "zone": "example.test", "name": "db", "timeout": "300ms"}, nil)
	start := time.Now()
	_, err = m.Holder(context.Background())
	if err == nil || !strings.Contains(err.Error(), "within 300ms") {
		t.Fatalf("Holder against a silent server: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}

	m = newMover(t, map[string]string{"server": l.Addr().String(), "zone": "example.test", "name": "db", "timeout": "30s"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = m.Holder(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Holder cancelled: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %s", d)
	}
}

// The unsigned-answer check: a server that answers NOERROR without TSIG to
// a signed request is not trusted.
func TestUnsignedAnswerToSignedRequest(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		a := new(dns.Msg)
		a.SetReply(r)
		a.Authoritative = true
		_ = w.WriteMsg(a) // no TSIG
	}), MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept }}
	go func() { _ = srv.ActivateAndServe() }()
	defer func() { _ = srv.Shutdown() }()

	file := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(file, []byte(`key "k." { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0c2VjcmV0"; };`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMover(t, map[string]string{"server": pc.LocalAddr().String(), "zone": "example.test", "name": "db", "transport": "udp", "tsig_secret_file": file}, nil)
	_, err = m.Holder(ctxT(t))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned answer: %v", err)
	}
}
