package rfc2136

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cloudmha/cloudmha/internal/address"
	"github.com/cloudmha/cloudmha/internal/config"
)

func TestParseSettingsDefaults(t *testing.T) {
	s, err := parseSettings(map[string]string{"server": "192.0.2.53", "zone": "Example.COM", "name": "db"})
	if err != nil {
		t.Fatal(err)
	}
	want := settings{server: "192.0.2.53:53", zone: "example.com.", name: "db.example.com.", ttl: 60, transport: "tcp", timeout: 5 * time.Second, onRelease: "keep", verify: true}
	if s != want {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}
}

func TestParseSettings(t *testing.T) {
	keyFile := writeFile(t, `key "mha-key" { algorithm hmac-sha512; secret "`+testSecret+`"; };`)
	bare := writeFile(t, testSecret)
	base := func(kv ...string) map[string]string {
		m := map[string]string{"server": "ns1.example.com:5353", "zone": "example.com", "name": "db"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name  string
		opts  map[string]string
		check func(t *testing.T, s settings)
		err   string
	}{
		{name: "all set", opts: base("ttl", "0", "transport", "UDP", "timeout", "1500ms", "on_release", "delete", "verify", "no", "tsig_secret_file", keyFile),
			check: func(t *testing.T, s settings) {
				if s.ttl != 0 || s.transport != "udp" || s.timeout != 1500*time.Millisecond || s.onRelease != "delete" || s.verify ||
					s.key == nil || s.key.name != "mha-key." || s.key.alg != dns.HmacSHA512 || s.server != "ns1.example.com:5353" {
					t.Fatalf("got %+v (%s)", s, s.key)
				}
			}},
		{name: "bare secret", opts: base("tsig_secret_file", bare, "tsig_key_name", "MHA-Key", "tsig_algorithm", "sha1"),
			check: func(t *testing.T, s settings) {
				if s.key.name != "mha-key." || s.key.alg != dns.HmacSHA1 {
					t.Fatalf("got %s", s.key)
				}
			}},
		{name: "key name selects from file", opts: base("tsig_secret_file", keyFile, "tsig_key_name", "mha-key."),
			check: func(t *testing.T, s settings) {
				if s.key.name != "mha-key." {
					t.Fatalf("got %s", s.key)
				}
			}},
		{name: "ipv6 server", opts: base("server", "[2001:db8::53]:53"), check: func(t *testing.T, s settings) {
			if s.server != "[2001:db8::53]:53" {
				t.Fatal(s.server)
			}
		}},
		{name: "bare ipv6 server", opts: base("server", "2001:db8::53"), check: func(t *testing.T, s settings) {
			if s.server != "[2001:db8::53]:53" {
				t.Fatal(s.server)
			}
		}},
		{name: "absolute name", opts: base("name", "db.other.example.com."), check: func(t *testing.T, s settings) {
			if s.name != "db.other.example.com." {
				t.Fatal(s.name)
			}
		}},
		{name: "name ending with the zone", opts: base("name", "db.example.com"), check: func(t *testing.T, s settings) {
			if s.name != "db.example.com." {
				t.Fatal(s.name)
			}
		}},
		{name: "apex", opts: base("name", "@"), check: func(t *testing.T, s settings) {
			if s.name != "example.com." {
				t.Fatal(s.name)
			}
		}},
		{name: "relative multi-label", opts: base("name", "db.eu"), check: func(t *testing.T, s settings) {
			if s.name != "db.eu.example.com." {
				t.Fatal(s.name)
			}
		}},
		{name: "ttl max", opts: base("ttl", "2147483647"), check: func(t *testing.T, s settings) {
			if s.ttl != 2147483647 {
				t.Fatal(s.ttl)
			}
		}},

		{name: "unknown option", opts: base("tsig_secret", "abc", "zzz", "1"), err: "unknown option(s) tsig_secret, zzz"},
		{name: "no server", opts: base("server", "<delete>"), err: "option server is required"},
		{name: "bad server port", opts: base("server", "ns1:0"), err: `option server="ns1:0"`},
		{name: "bad server port 2", opts: base("server", "ns1:dns"), err: `option server="ns1:dns"`},
		{name: "bad server", opts: base("server", "[::1"), err: `option server="[::1"`},
		{name: "no zone", opts: base("zone", "<delete>"), err: "option zone is required"},
		{name: "root zone", opts: base("zone", "."), err: "option zone="},
		{name: "bad zone", opts: base("zone", "exa mple.com"), err: "option zone="},
		{name: "no name", opts: base("name", "<delete>"), err: "option name is required"},
		{name: "name outside zone", opts: base("name", "db.example.org."), err: "is not inside zone example.com."},
		{name: "wildcard name", opts: base("name", "*"), err: "not a valid domain name"},
		{name: "negative ttl", opts: base("ttl", "-1"), err: "option ttl="},
		{name: "huge ttl", opts: base("ttl", "2147483648"), err: "option ttl="},
		{name: "transport", opts: base("transport", "tls"), err: "want udp or tcp"},
		{name: "timeout", opts: base("timeout", "5"), err: "option timeout="},
		{name: "zero timeout", opts: base("timeout", "0s"), err: "option timeout="},
		{name: "on_release", opts: base("on_release", "remove"), err: "want keep or delete"},
		{name: "verify", opts: base("verify", "maybe"), err: "want yes or no"},
		{name: "key name without file", opts: base("tsig_key_name", "k"), err: "tsig_key_name needs tsig_secret_file"},
		{name: "algorithm without file", opts: base("tsig_algorithm", "sha256"), err: "tsig_algorithm needs tsig_secret_file"},
		{name: "bad algorithm", opts: base("tsig_algorithm", "md5", "tsig_secret_file", keyFile), err: "not supported"},
		{name: "algorithm disagrees with file", opts: base("tsig_algorithm", "sha256", "tsig_secret_file", keyFile), err: "tsig_algorithm=hmac-sha256 but key mha-key."},
		{name: "key not in file", opts: base("tsig_key_name", "other", "tsig_secret_file", keyFile), err: "has no key other."},
		{name: "bare needs name", opts: base("tsig_secret_file", bare), err: "tsig_key_name is required"},
		{name: "bad key name", opts: base("tsig_key_name", "a b", "tsig_secret_file", bare), err: "option tsig_key_name"},
		{name: "missing file", opts: base("tsig_secret_file", "/nonexistent/key"), err: "option tsig_secret_file: read TSIG secret file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSettings(tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), testSecret) {
					t.Fatalf("the error quotes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestNewErrorsNameTheMover(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil || !strings.Contains(err.Error(), "rfc2136 mover: no configuration") {
		t.Fatalf("nil config: %v", err)
	}
	cfg := &config.Config{Address: config.Address{Mover: Kind, Options: map[string]string{"zone": "example.com", "name": "db", "server": "127.0.0.1", "bogus": "x"}}}
	if _, err := New(cfg, Options{}); err == nil || !strings.HasPrefix(err.Error(), "rfc2136 mover: unknown option(s) bogus") {
		t.Fatalf("unknown option: %v", err)
	}
	delete(cfg.Address.Options, "bogus")
	m, err := New(cfg, Options{})
	if err != nil || m.Kind() != Kind {
		t.Fatalf("New: %v, %v", m, err)
	}
	if _, ok := m.(address.StatusChecker); !ok {
		t.Fatal("the mover is not a StatusChecker")
	}
}

func TestWorldReadableSecretFileWarns(t *testing.T) {
	p := writeFile(t, testSecret)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	_, err := NewWithOptions(nil, map[string]string{"server": "127.0.0.1", "zone": "example.com", "name": "db", "tsig_key_name": "k", "tsig_secret_file": p},
		Options{Logger: newTextLogger(&sb)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "readable by every user") || strings.Contains(sb.String(), testSecret) {
		t.Fatalf("log: %s", sb.String())
	}
}

func TestSerialAfter(t *testing.T) {
	for _, tc := range []struct {
		b, a uint32
		want bool
	}{{2, 1, true}, {1, 1, false}, {1, 2, false}, {0, 0xffffffff, true}, {5, 0xfffffff0, true}, {0x80000000, 1, true}, {0x80000001, 1, false}, {1, 0x80000002, true}} {
		if got := serialAfter(tc.b, tc.a); got != tc.want {
			t.Errorf("serialAfter(%d, %d) = %v", tc.b, tc.a, got)
		}
	}
}

func TestTargetAddr(t *testing.T) {
	m := &Mover{servers: []config.Server{{Name: "s1", IP: "10.0.0.1"}, {Name: "s2", Hostname: "10.0.0.2"}, {Name: "s6", IP: "2001:db8::1"}, {Name: "lh", Hostname: "localhost"}}}
	ctx := context.Background()
	for _, tc := range []struct {
		t    address.Target
		want string
		err  string
	}{
		{t: address.Target{Name: "s1"}, want: "10.0.0.1"},
		{t: address.Target{Name: "s1", IP: "10.9.9.9"}, want: "10.9.9.9"}, // the failover's resolved IP wins
		{t: address.Target{Name: "s2"}, want: "10.0.0.2"},
		{t: address.Target{Name: "x", IP: "::ffff:10.0.0.7"}, want: "10.0.0.7"},
		{t: address.Target{Name: "lh"}, want: "127.0.0.1"},
		{t: address.Target{Name: "s6"}, err: "not IPv4"},
		{t: address.Target{Name: "none"}, err: "no IP address or hostname"},
	} {
		got, err := m.targetAddr(ctx, tc.t)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err = %v, want %q", tc.t, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("%+v: %v, %v; want %s", tc.t, got, err, tc.want)
		}
	}
}

// Release's message on the wire: prerequisite "RRset exists (value
// dependent)" with the old address, then delete the A RRset.
func TestReleaseMessage(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *dns.Msg, 4)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		got <- r
		a := new(dns.Msg)
		a.SetReply(r)
		a.Authoritative = true
		_ = w.WriteMsg(a)
	}), MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept }}
	go func() { _ = srv.ActivateAndServe() }()
	defer func() { _ = srv.Shutdown() }()

	m, err := NewWithOptions([]config.Server{{Name: "s1", IP: "10.0.0.1"}}, map[string]string{
		"server": pc.LocalAddr().String(), "zone": "example.com", "name": "db", "transport": "udp", "on_release": "delete", "verify": "no",
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Release(context.Background(), address.Change{Old: address.Target{Name: "s1"}}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.Opcode != dns.OpcodeUpdate || len(r.Question) != 1 || r.Question[0].Name != "example.com." || r.Question[0].Qtype != dns.TypeSOA {
		t.Fatalf("zone section: %v", r)
	}
	if len(r.Answer) != 1 {
		t.Fatalf("prerequisites: %v", r.Answer)
	}
	pre, ok := r.Answer[0].(*dns.A)
	if !ok || pre.Hdr.Class != dns.ClassINET || pre.Hdr.Ttl != 0 || pre.Hdr.Name != "db.example.com." || pre.A.String() != "10.0.0.1" {
		t.Fatalf("prerequisite is not \"RRset exists (value dependent)\" for 10.0.0.1: %v", r.Answer[0])
	}
	if len(r.Ns) != 1 || r.Ns[0].Header().Class != dns.ClassANY || r.Ns[0].Header().Rrtype != dns.TypeA || r.Ns[0].Header().Name != "db.example.com." {
		t.Fatalf("update section is not \"delete the A RRset\": %v", r.Ns)
	}
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
