package rfc2136

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// namedPath is where Debian's bind9 package installs the server.
const namedPath = "/usr/sbin/named"

// testZone is the zone every test server serves.
const testZone = "example.test."

// testKey is a TSIG key the test server knows.
type testKey struct {
	name, alg, secret string // secret in base64
	file              string // BIND key file holding it
}

// namedServer is a BIND 9 started for one test.
type namedServer struct {
	addr string // 127.0.0.1:port, UDP and TCP
	dir  string
	keys map[string]testKey // by short name: full, sha512, limited
	log  *lockedBuffer      // named's stderr
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNamed starts named on 127.0.0.1 on a free port with a fresh
// directory, serving testZone with three keys:
//
//   - full (hmac-sha256): update-policy zonesub ANY
//   - sha512 (hmac-sha512): update-policy zonesub ANY
//   - limited (hmac-sha256): may only update other.example.test. A
//
// The test is skipped when named is not installed or the test does not run
// as root (named runs as the bind user). named is stopped and the
// directory removed when the test ends.
func startNamed(t *testing.T) *namedServer {
	t.Helper()
	if _, err := os.Stat(namedPath); err != nil {
		t.Skipf("%s not found: install BIND 9 (apt-get install -y bind9 bind9-utils) to run the RFC 2136 integration tests", namedPath)
	}
	if os.Geteuid() != 0 {
		t.Skip("the RFC 2136 integration tests start named as the bind user and must run as root")
	}
	u, err := user.Lookup("bind")
	if err != nil {
		t.Skipf("no bind user (is the bind9 package installed?): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		s, err := tryStartNamed(t, uint32(uid), uint32(gid))
		if err == nil {
			return s
		}
		lastErr = err
		t.Logf("named did not start (attempt %d): %v", attempt, err)
	}
	t.Fatalf("named does not start: %v", lastErr)
	return nil
}

func tryStartNamed(t *testing.T, uid, gid uint32) (*namedServer, error) {
	dir, err := os.MkdirTemp("", "cloudmha-rfc2136-")
	if err != nil {
		return nil, err
	}
	removeDir := func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	}
	port, err := freePort()
	if err != nil {
		removeDir()
		return nil, err
	}
	s := &namedServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, keys: map[string]testKey{}, log: &lockedBuffer{}}
	for _, k := range []struct{ short, name, alg string }{
		{"full", "mha-key.", "hmac-sha256"},
		{"sha512", "mha-512.", "hmac-sha512"},
		{"limited", "limited-key.", "hmac-sha256"},
	} {
		secret := make([]byte, 32)
		if k.alg == "hmac-sha512" {
			secret = make([]byte, 64)
		}
		_, _ = rand.Read(secret)
		tk := testKey{name: k.name, alg: k.alg, secret: base64.StdEncoding.EncodeToString(secret), file: filepath.Join(dir, k.short+".key")}
		body := fmt.Sprintf("key %q {\n\talgorithm %s;\n\tsecret %q;\n};\n", k.name, k.alg, tk.secret)
		if err := os.WriteFile(tk.file, []byte(body), 0o640); err != nil {
			removeDir()
			return nil, err
		}
		s.keys[k.short] = tk
	}
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
include "%[1]s/full.key";
include "%[1]s/sha512.key";
include "%[1]s/limited.key";
zone "%[3]s" {
	type primary;
	file "%[1]s/zone.db";
	update-policy {
		grant mha-key. zonesub ANY;
		grant mha-512. zonesub ANY;
		grant limited-key. name other.%[3]s A;
	};
};
`, dir, port, testZone)
	zone := fmt.Sprintf(`$TTL 300
@	IN SOA	ns1.%[1]s hostmaster.%[1]s 1 3600 600 86400 30
@	IN NS	ns1.%[1]s
ns1	IN A	127.0.0.1
alias	IN CNAME db.%[1]s
`, testZone)
	for name, body := range map[string]string{"named.conf": conf, "zone.db": zone} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o640); err != nil {
			removeDir()
			return nil, err
		}
	}
	if err := chownTree(dir, int(uid), int(gid)); err != nil {
		removeDir()
		return nil, err
	}

	cmd := exec.Command(namedPath, "-g", "-n", "1", "-c", filepath.Join(dir, "named.conf"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	if err := cmd.Start(); err != nil {
		removeDir()
		return nil, fmt.Errorf("start named: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		removeDir()
	}

	// Ready when it answers the zone's SOA.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			stop()
			return nil, fmt.Errorf("named exited: %s", s.log.String())
		default:
		}
		q := new(dns.Msg)
		q.SetQuestion(testZone, dns.TypeSOA)
		c := &dns.Client{Net: "tcp", Timeout: 500 * time.Millisecond}
		if r, _, err := c.Exchange(q, s.addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("named did not answer on %s within 15s: %s", s.addr, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("named log:\n%s", s.log.String())
		}
	})
	return s, nil
}

// freePort finds a port free for both TCP and UDP on 127.0.0.1.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP")
}

func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// rawUpdate sends an UPDATE signed with key k (unsigned when k.name is "")
// straight to the server, bypassing the mover: tests use it to set up
// states.
func (s *namedServer) rawUpdate(t *testing.T, k testKey, build func(u *dns.Msg)) *dns.Msg {
	t.Helper()
	u := new(dns.Msg)
	u.SetUpdate(testZone)
	build(u)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	if k.name != "" {
		u.SetTsig(k.name, dns.Fqdn(k.alg), 300, time.Now().Unix())
		c.TsigSecret = map[string]string{k.name: k.secret}
	}
	r, _, err := c.Exchange(u, s.addr)
	if err != nil {
		t.Fatalf("raw update: %v", err)
	}
	return r
}

// setA makes name's A RRset exactly ips (none: deleted) with the full key.
func (s *namedServer) setA(t *testing.T, name string, ips ...string) {
	t.Helper()
	r := s.rawUpdate(t, s.keys["full"], func(u *dns.Msg) {
		u.RemoveRRset([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}}})
		for _, ip := range ips {
			u.Insert([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}})
		}
	})
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("set %s A %v: %s", name, ips, dns.RcodeToString[r.Rcode])
	}
}

// getA reads name's A RRset (unsigned query), sorted as the server
// returns it, and the TTL.
func (s *namedServer) getA(t *testing.T, name string) ([]string, uint32) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(q, s.addr)
	if err != nil {
		t.Fatalf("query %s A: %v", name, err)
	}
	var ips []string
	var ttl uint32
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
			ttl = a.Hdr.Ttl
		}
	}
	return ips, ttl
}

// soaSerial reads the zone's serial.
func (s *namedServer) soaSerial(t *testing.T) uint32 {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(testZone, dns.TypeSOA)
	r, err := dns.ExchangeContext(context.Background(), q, s.addr)
	if err != nil {
		t.Fatalf("query SOA: %v", err)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA in %v", r)
	return 0
}
