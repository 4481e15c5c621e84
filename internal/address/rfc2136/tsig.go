package rfc2136

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// tsigKey is a TSIG key. It implements dns.TsigProvider so that the secret
// stays in this type (miekg/dns's own provider wants it base64 in a map).
// Its String, GoString and LogValue never show the secret.
type tsigKey struct {
	name   string // canonical FQDN
	alg    string // dns.HmacSHA256 …
	secret []byte
}

// String describes the key without its secret.
func (k *tsigKey) String() string {
	if k == nil {
		return "no TSIG key"
	}
	return fmt.Sprintf("TSIG key %s (%s)", k.name, strings.TrimSuffix(k.alg, "."))
}

// GoString keeps %#v from printing the secret.
func (k *tsigKey) GoString() string { return k.String() }

// LogValue keeps slog from printing the secret.
func (k *tsigKey) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(slog.String("name", k.name), slog.String("algorithm", strings.TrimSuffix(k.alg, ".")))
}

func (k *tsigKey) mac(msg []byte, t *dns.TSIG) ([]byte, error) {
	if dns.CanonicalName(t.Hdr.Name) != k.name {
		return nil, fmt.Errorf("TSIG key %s: message signed with key %s: %w", k.name, t.Hdr.Name, dns.ErrSecret)
	}
	if dns.CanonicalName(t.Algorithm) != k.alg {
		return nil, fmt.Errorf("TSIG key %s: message uses algorithm %s, the key is %s: %w", k.name, t.Algorithm, k.alg, dns.ErrKeyAlg)
	}
	h := hmac.New(hashOf(k.alg), k.secret)
	h.Write(msg)
	return h.Sum(nil), nil
}

// Generate implements dns.TsigProvider.
func (k *tsigKey) Generate(msg []byte, t *dns.TSIG) ([]byte, error) { return k.mac(msg, t) }

// Verify implements dns.TsigProvider.
func (k *tsigKey) Verify(msg []byte, t *dns.TSIG) error {
	want, err := k.mac(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}

// algorithms maps the accepted spellings of tsig_algorithm (and of a key
// file's algorithm) to the wire names. hmac-md5 is not accepted.
func normalizeAlgorithm(s string) (string, error) {
	a := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	a = strings.TrimPrefix(a, "hmac-")
	switch a {
	case "sha1":
		return dns.HmacSHA1, nil
	case "sha224":
		return dns.HmacSHA224, nil
	case "sha256":
		return dns.HmacSHA256, nil
	case "sha384":
		return dns.HmacSHA384, nil
	case "sha512":
		return dns.HmacSHA512, nil
	}
	return "", fmt.Errorf("TSIG algorithm %q is not supported (want hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224 or hmac-sha1)", s)
}

func hashOf(alg string) func() hash.Hash {
	switch alg {
	case dns.HmacSHA1:
		return sha1.New
	case dns.HmacSHA224:
		return sha256.New224
	case dns.HmacSHA384:
		return sha512.New384
	case dns.HmacSHA512:
		return sha512.New
	default:
		return sha256.New
	}
}

// fileKey is one key read from a secret file; name and alg are empty for a
// bare base64 secret.
type fileKey struct {
	name   string
	alg    string
	secret []byte
}

// decodeSecret decodes a base64 secret (whitespace ignored, as BIND does).
// Its errors never quote the input.
func decodeSecret(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	if s == "" {
		return nil, errors.New("the secret is empty")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, errors.New("the secret is not valid base64")
	}
	if len(b) == 0 {
		return nil, errors.New("the secret is empty")
	}
	return b, nil
}

// parseSecretFile reads what tsig_secret_file holds: either a bare base64
// secret, or BIND key statements as tsig-keygen writes them:
//
//	key "name" {
//		algorithm hmac-sha256;
//		secret "base64…";
//	};
//
// Other top-level statements are skipped, so a named.conf fragment works.
// No error quotes the file's content.
func parseSecretFile(data string) ([]fileKey, error) {
	trimmed := strings.TrimSpace(data)
	if trimmed == "" {
		return nil, errors.New("the file is empty")
	}
	if !strings.ContainsAny(trimmed, "{};\"") {
		b, err := decodeSecret(trimmed)
		if err != nil {
			return nil, fmt.Errorf("neither a BIND key file nor a base64 secret: %w", err)
		}
		return []fileKey{{secret: b}}, nil
	}
	toks, err := tokenize(data)
	if err != nil {
		return nil, err
	}
	p := &confParser{toks: toks}
	var keys []fileKey
	for !p.done() {
		t := p.next()
		if t.kind == tokWord && strings.EqualFold(t.s, "key") {
			k, err := p.keyStatement(t.line)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(keys, func(o fileKey) bool { return o.name == k.name }) {
				return nil, fmt.Errorf("line %d: key %s is defined twice", t.line, k.name)
			}
			keys = append(keys, k)
			continue
		}
		if err := p.skipStatement(t); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no key statement found (want key \"name\" { algorithm …; secret \"…\"; };)")
	}
	return keys, nil
}

// readSecretFile reads path and picks the key: wantName ("" = the only key
// in the file) and wantAlg ("" = the file's, else hmac-sha256). The result
// has a canonical name and a wire algorithm name.
func readSecretFile(path, wantName, wantAlg string) (*tsigKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read TSIG secret file: %w", err)
	}
	keys, err := parseSecretFile(string(data))
	if err != nil {
		return nil, fmt.Errorf("TSIG secret file %s: %w", path, err)
	}
	var k fileKey
	switch {
	case keys[0].name == "": // bare secret
		if wantName == "" {
			return nil, fmt.Errorf("TSIG secret file %s holds a bare secret: option tsig_key_name is required", path)
		}
		k = keys[0]
		k.name = wantName
	case wantName == "":
		if len(keys) > 1 {
			return nil, fmt.Errorf("TSIG secret file %s defines %d keys (%s): set option tsig_key_name", path, len(keys), keyNames(keys))
		}
		k = keys[0]
	default:
		i := slices.IndexFunc(keys, func(k fileKey) bool { return k.name == wantName })
		if i < 0 {
			return nil, fmt.Errorf("TSIG secret file %s has no key %s (it defines %s)", path, wantName, keyNames(keys))
		}
		k = keys[i]
	}
	alg := k.alg
	switch {
	case alg == "" && wantAlg == "":
		alg = dns.HmacSHA256
	case alg == "":
		alg = wantAlg
	case wantAlg != "" && wantAlg != alg:
		return nil, fmt.Errorf("option tsig_algorithm=%s but key %s in %s is %s", strings.TrimSuffix(wantAlg, "."), k.name, path, strings.TrimSuffix(alg, "."))
	}
	return &tsigKey{name: k.name, alg: alg, secret: k.secret}, nil
}

func keyNames(keys []fileKey) string {
	n := make([]string, len(keys))
	for i, k := range keys {
		n[i] = k.name
	}
	return strings.Join(n, ", ")
}

// canonicalKeyName checks and canonicalizes a key name.
func canonicalKeyName(s string) (string, error) {
	if _, ok := dns.IsDomainName(s); !ok || s == "" || s == "." || strings.ContainsAny(s, " \t\r\n\"") {
		return "", fmt.Errorf("%q is not a valid key name", s)
	}
	return dns.CanonicalName(s), nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokOpen
	tokClose
	tokSemi
)

type token struct {
	kind tokKind
	s    string
	line int
}

// tokenize splits named.conf syntax: words, "strings", { } ; and the three
// comment styles (#, //, /* */).
func tokenize(s string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#' || (c == '/' && i+1 < len(s) && s[i+1] == '/'):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			start := line
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated /* comment", start)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += 2 + end + 2
		case c == '{':
			toks = append(toks, token{tokOpen, "{", line})
			i++
		case c == '}':
			toks = append(toks, token{tokClose, "}", line})
			i++
		case c == ';':
			toks = append(toks, token{tokSemi, ";", line})
			i++
		case c == '"':
			start := line
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("line %d: unterminated quoted string", start)
				}
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '"' {
					i++
					break
				}
				if s[i] == '\n' {
					line++
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, token{tokString, b.String(), start})
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"#", rune(s[j])) &&
				!(s[j] == '/' && j+1 < len(s) && (s[j+1] == '/' || s[j+1] == '*')) {
				j++
			}
			toks = append(toks, token{tokWord, s[i:j], line})
			i = j
		}
	}
	return toks, nil
}

type confParser struct {
	toks []token
	pos  int
}

func (p *confParser) done() bool { return p.pos >= len(p.toks) }

func (p *confParser) next() token {
	t := p.toks[p.pos]
	p.pos++
	return t
}

func (p *confParser) lastLine() int {
	if len(p.toks) == 0 {
		return 1
	}
	return p.toks[len(p.toks)-1].line
}

// expect consumes a token of kind k; what names it in the error.
func (p *confParser) expect(k tokKind, what string) (token, error) {
	if p.done() {
		return token{}, fmt.Errorf("line %d: unexpected end of file, want %s", p.lastLine(), what)
	}
	t := p.next()
	if t.kind != k {
		return t, fmt.Errorf("line %d: want %s", t.line, what)
	}
	return t, nil
}

// skipStatement skips the statement started by t, up to its ';' (nested
// blocks included).
func (p *confParser) skipStatement(t token) error {
	depth := 0
	for {
		switch t.kind {
		case tokOpen:
			depth++
		case tokClose:
			depth--
			if depth < 0 {
				return fmt.Errorf("line %d: unbalanced }", t.line)
			}
		case tokSemi:
			if depth == 0 {
				return nil
			}
		}
		if p.done() {
			return fmt.Errorf("line %d: unexpected end of file inside a statement", p.lastLine())
		}
		t = p.next()
	}
}

// keyStatement parses the rest of `key NAME { algorithm A; secret "S"; };`.
// Errors never quote the secret.
func (p *confParser) keyStatement(line int) (fileKey, error) {
	if p.done() {
		return fileKey{}, fmt.Errorf("line %d: key statement without a name", line)
	}
	nt := p.next()
	if nt.kind != tokWord && nt.kind != tokString {
		return fileKey{}, fmt.Errorf("line %d: key statement without a name", nt.line)
	}
	name, err := canonicalKeyName(nt.s)
	if err != nil {
		return fileKey{}, fmt.Errorf("line %d: %w", nt.line, err)
	}
	if _, err := p.expect(tokOpen, "{ after key "+name); err != nil {
		return fileKey{}, err
	}
	k := fileKey{name: name}
	var haveSecret bool
	for {
		if p.done() {
			return fileKey{}, fmt.Errorf("line %d: key %s: unexpected end of file, want }", p.lastLine(), name)
		}
		t := p.next()
		if t.kind == tokClose {
			break
		}
		if t.kind != tokWord {
			return fileKey{}, fmt.Errorf("line %d: key %s: want algorithm or secret", t.line, name)
		}
		switch strings.ToLower(t.s) {
		case "algorithm":
			v, err := p.value()
			if err != nil {
				return fileKey{}, fmt.Errorf("key %s: algorithm: %w", name, err)
			}
			if k.alg, err = normalizeAlgorithm(v.s); err != nil {
				return fileKey{}, fmt.Errorf("line %d: key %s: %w", v.line, name, err)
			}
		case "secret":
			v, err := p.value()
			if err != nil {
				return fileKey{}, fmt.Errorf("key %s: secret: %w", name, err)
			}
			if k.secret, err = decodeSecret(v.s); err != nil {
				return fileKey{}, fmt.Errorf("line %d: key %s: %w", v.line, name, err)
			}
			haveSecret = true
		default:
			return fileKey{}, fmt.Errorf("line %d: key %s: unknown clause%s (want algorithm or secret)", t.line, name, quoteKeyword(t.s))
		}
		if _, err := p.expect(tokSemi, "; after the "+strings.ToLower(t.s)+" clause of key "+name); err != nil {
			return fileKey{}, err
		}
	}
	if _, err := p.expect(tokSemi, "; after the key "+name+" block"); err != nil {
		return fileKey{}, err
	}
	if !haveSecret {
		return fileKey{}, fmt.Errorf("line %d: key %s has no secret", line, name)
	}
	if k.alg == "" {
		return fileKey{}, fmt.Errorf("line %d: key %s has no algorithm", line, name)
	}
	return k, nil
}

// value reads the single word or string of a clause.
func (p *confParser) value() (token, error) {
	if p.done() {
		return token{}, fmt.Errorf("line %d: unexpected end of file", p.lastLine())
	}
	t := p.next()
	if t.kind != tokWord && t.kind != tokString {
		return token{}, fmt.Errorf("line %d: missing value", t.line)
	}
	return t, nil
}

// quoteKeyword returns " \"w\"" when w looks like a keyword, "" otherwise:
// an unknown word in a key block may be a misplaced secret, which must not
// reach an error message.
func quoteKeyword(w string) string {
	if len(w) > 24 {
		return ""
	}
	for _, r := range w {
		if (r < 'a' || r > 'z') && r != '-' && r != '_' {
			return ""
		}
	}
	return fmt.Sprintf(" %q", w)
}
