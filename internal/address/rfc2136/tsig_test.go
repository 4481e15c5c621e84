package rfc2136

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM0NQ==" // "secret-secret-secret-secret-012345"

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseSecretFile(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(testSecret)
	tests := []struct {
		name, body string
		want       []fileKey
		err        string
	}{
		{name: "bare", body: testSecret + "\n", want: []fileKey{{secret: raw}}},
		{name: "bare with slash and plus", body: "ab/+cd==", want: []fileKey{{secret: []byte{0x69, 0xbf, 0xfe, 0x71}}}},
		{name: "tsig-keygen", body: "key \"mha-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + testSecret + "\";\n};\n",
			want: []fileKey{{name: "mha-key.", alg: dns.HmacSHA256, secret: raw}}},
		{name: "unquoted name, comments, other statements", body: `
# a comment
// another
/* a block
   comment */
options { directory "/var/cache/bind"; listen-on { any; }; };
key mha.example. { secret "` + testSecret + `"; algorithm HMAC-SHA512; }; // trailing
key "two" { algorithm hmac-sha1; secret "` + testSecret + `"; };
`, want: []fileKey{{name: "mha.example.", alg: dns.HmacSHA512, secret: raw}, {name: "two.", alg: dns.HmacSHA1, secret: raw}}},
		{name: "empty", body: " \n", err: "empty"},
		{name: "not base64", body: "this is not base64!", err: "neither a BIND key file nor a base64 secret"},
		{name: "no key", body: `options { };`, err: "no key statement"},
		{name: "no secret", body: `key "k" { algorithm hmac-sha256; };`, err: "has no secret"},
		{name: "no algorithm", body: `key "k" { secret "` + testSecret + `"; };`, err: "has no algorithm"},
		{name: "md5", body: `key "k" { algorithm hmac-md5; secret "` + testSecret + `"; };`, err: "not supported"},
		{name: "bad secret", body: `key "k" { algorithm hmac-sha256; secret "%%%not-base64%%%"; };`, err: "not valid base64"},
		{name: "missing semicolon", body: `key "k" { algorithm hmac-sha256; secret "` + testSecret + `" };`, err: "want ; after the secret clause"},
		{name: "missing final semicolon", body: `key "k" { algorithm hmac-sha256; secret "` + testSecret + `"; }`, err: "unexpected end of file"},
		{name: "unterminated string", body: `key "k" { algorithm hmac-sha256; secret "` + testSecret + `; };`, err: "unterminated quoted string"},
		{name: "unterminated comment", body: `/* key "k" {`, err: "unterminated /* comment"},
		{name: "duplicate", body: `key k { algorithm hmac-sha256; secret "` + testSecret + `"; }; key "k." { algorithm hmac-sha256; secret "` + testSecret + `"; };`, err: "defined twice"},
		{name: "misplaced secret", body: `key "k" { algorithm hmac-sha256; ` + testSecret + `; };`, err: "unknown clause (want"},
		{name: "unknown clause", body: `key "k" { algorithm hmac-sha256; secrte "x"; };`, err: `unknown clause "secrte"`},
		{name: "bad key name", body: `key "a b" { algorithm hmac-sha256; secret "` + testSecret + `"; };`, err: "not a valid key name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSecretFile(tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testSecret[:10]) {
					t.Fatalf("the error quotes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadSecretFile(t *testing.T) {
	two := writeFile(t, `key "a" { algorithm hmac-sha256; secret "`+testSecret+`"; };
key "b" { algorithm hmac-sha512; secret "`+testSecret+`"; };`)
	bare := writeFile(t, testSecret)
	tests := []struct {
		name, path, key, alg string
		wantName, wantAlg    string
		err                  string
	}{
		{name: "pick a", path: two, key: "a.", wantName: "a.", wantAlg: dns.HmacSHA256},
		{name: "pick b, algorithm agrees", path: two, key: "b.", alg: dns.HmacSHA512, wantName: "b.", wantAlg: dns.HmacSHA512},
		{name: "ambiguous", path: two, err: "defines 2 keys (a., b.): set option tsig_key_name"},
		{name: "absent", path: two, key: "c.", err: "has no key c. (it defines a., b.)"},
		{name: "algorithm disagrees", path: two, key: "b.", alg: dns.HmacSHA256, err: "tsig_algorithm=hmac-sha256 but key b."},
		{name: "bare default algorithm", path: bare, key: "k.", wantName: "k.", wantAlg: dns.HmacSHA256},
		{name: "bare sha1", path: bare, key: "k.", alg: dns.HmacSHA1, wantName: "k.", wantAlg: dns.HmacSHA1},
		{name: "bare needs a name", path: bare, err: "tsig_key_name is required"},
		{name: "missing file", path: filepath.Join(t.TempDir(), "nope"), key: "k.", err: "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := readSecretFile(tc.path, tc.key, tc.alg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.name != tc.wantName || k.alg != tc.wantAlg || base64.StdEncoding.EncodeToString(k.secret) != testSecret {
				t.Fatalf("got %s", k)
			}
		})
	}
}

// A file written by BIND's own tsig-keygen parses, when it is installed.
func TestTsigKeygenOutput(t *testing.T) {
	path, err := exec.LookPath("tsig-keygen")
	if err != nil {
		t.Skip("tsig-keygen not installed (bind9 package)")
	}
	for _, alg := range []string{"hmac-sha256", "hmac-sha512", "hmac-sha1"} {
		out, err := exec.Command(path, "-a", alg, "cloudmha-test").Output()
		if err != nil {
			t.Fatal(err)
		}
		k, err := readSecretFile(writeFile(t, string(out)), "", "")
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if k.name != "cloudmha-test." || k.alg != alg+"." || len(k.secret) == 0 {
			t.Fatalf("%s: got %s", alg, k)
		}
	}
}

func TestNormalizeAlgorithm(t *testing.T) {
	for in, want := range map[string]string{
		"hmac-sha256": dns.HmacSHA256, "sha256": dns.HmacSHA256, "HMAC-SHA256.": dns.HmacSHA256,
		"sha512": dns.HmacSHA512, "hmac-sha512": dns.HmacSHA512, "sha1": dns.HmacSHA1, "hmac-sha1": dns.HmacSHA1,
		"sha384": dns.HmacSHA384, "sha224": dns.HmacSHA224,
	} {
		if got, err := normalizeAlgorithm(in); err != nil || got != want {
			t.Errorf("%q -> %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "md5", "hmac-md5", "sha3", "rsa"} {
		if _, err := normalizeAlgorithm(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The provider signs exactly as miekg/dns's own does, and verifies its
// signatures.
func TestTsigProviderMatchesMiekg(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(testSecret)
	for _, alg := range []string{dns.HmacSHA1, dns.HmacSHA256, dns.HmacSHA512} {
		k := &tsigKey{name: "k.", alg: alg, secret: raw}
		now := time.Now().Unix()
		m1 := new(dns.Msg)
		m1.SetQuestion("db.example.test.", dns.TypeA)
		m1.Id = 42
		m1.SetTsig("k.", alg, 300, now)
		m2 := m1.Copy()
		ours, _, err := dns.TsigGenerateWithProvider(m1, k, "", false)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _, err := dns.TsigGenerate(m2, testSecret, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if string(ours) != string(theirs) {
			t.Fatalf("%s: signatures differ", alg)
		}
		if err := dns.TsigVerifyWithProvider(theirs, k, "", false); err != nil {
			t.Fatalf("%s: verify: %v", alg, err)
		}
		bad := &tsigKey{name: "k.", alg: alg, secret: []byte("other")}
		if err := dns.TsigVerifyWithProvider(theirs, bad, "", false); err == nil {
			t.Fatalf("%s: a wrong secret verifies", alg)
		}
		other := &tsigKey{name: "other.", alg: alg, secret: raw}
		if err := dns.TsigVerifyWithProvider(theirs, other, "", false); err == nil {
			t.Fatalf("%s: another key name verifies", alg)
		}
	}
}

// The key never prints its secret, whatever the verb or logger.
func TestTsigKeyRedacted(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(testSecret)
	k := &tsigKey{name: "k.", alg: dns.HmacSHA256, secret: raw}
	var sb strings.Builder
	log := slog.New(slog.NewTextHandler(&sb, nil))
	log.Info("x", "key", k)
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("x", "key", k)
	s := settings{key: k}
	all := fmt.Sprintf("%v %+v %#v %s %v %+v", k, k, k, k, s, s) + sb.String()
	if strings.Contains(all, string(raw)) || strings.Contains(all, testSecret) || strings.Contains(all, fmt.Sprint(raw)) {
		t.Fatalf("secret printed: %s", all)
	}
	if !strings.Contains(all, "TSIG key k. (hmac-sha256)") {
		t.Fatalf("key not described: %s", all)
	}
}
