package aliyun

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Signature algorithms the server verifies.
const (
	// AlgACS3 is the V3 signature, the Darabonba SDKs' default.
	AlgACS3 = "ACS3-HMAC-SHA256"
	// AlgV1 is the legacy RPC signature (SignatureMethod=HMAC-SHA1).
	AlgV1 = "HMAC-SHA1"
)

// PercentEncode is RFC 3986 encoding as Alibaba Cloud uses it: unreserved
// characters (A-Z a-z 0-9 - _ . ~) are kept, everything else is %XX, space
// is %20 (never +).
func PercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%")
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// CanonicalQuery is the sorted, RFC 3986 encoded query string of the V3
// canonical request (one value per key, as the SDKs send).
func CanonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := ""
		if vs := q[k]; len(vs) > 0 {
			v = vs[0]
		}
		parts = append(parts, PercentEncode(k)+"="+PercentEncode(v))
	}
	return strings.Join(parts, "&")
}

// V3StringToSign returns the ACS3-HMAC-SHA256 string to sign of a request
// whose signed headers (lowercase names, in order) have the given values.
func V3StringToSign(method, path string, q url.Values, signed []string, header func(string) string, payloadHash string) string {
	if path == "" {
		path = "/"
	}
	var ch strings.Builder
	for _, h := range signed {
		ch.WriteString(h + ":" + strings.TrimSpace(header(h)) + "\n")
	}
	creq := method + "\n" + path + "\n" + CanonicalQuery(q) + "\n" + ch.String() + "\n" + strings.Join(signed, ";") + "\n" + payloadHash
	sum := sha256.Sum256([]byte(creq))
	return AlgACS3 + "\n" + hex.EncodeToString(sum[:])
}

// V3Signature is hex(HMAC-SHA256(secret, stringToSign)).
func V3Signature(secret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// V1StringToSign is METHOD&%2F&pe(sorted pe(k)=pe(v) joined by &), without
// the Signature parameter.
func V1StringToSign(method string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, PercentEncode(k)+"="+PercentEncode(params.Get(k)))
	}
	return method + "&" + PercentEncode("/") + "&" + PercentEncode(strings.Join(parts, "&"))
}

// V1Signature is base64(HMAC-SHA1(secret+"&", stringToSign)).
func V1Signature(secret, stringToSign string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// authInfo is what a verified request is.
type authInfo struct {
	accessKeyID string
	action      string
	version     string
	params      url.Values // query + form body
	alg         string
}

// verify checks the request's signature, timestamp and nonce. body is the
// request body, already read.
func (s *Server) verify(r *http.Request, body []byte) (*authInfo, *apiError) {
	params := url.Values{}
	for k, v := range r.URL.Query() {
		params[k] = v
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errBadRequest("InvalidParameter", "The request body is not a valid form: "+err.Error())
		}
		for k, v := range form {
			params[k] = v
		}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		return s.verifyV3(r, body, params, auth)
	}
	if params.Get("Signature") != "" {
		return s.verifyV1(r, params)
	}
	return nil, &apiError{Status: http.StatusBadRequest, Code: "MissingSignature", Message: "The request is not signed (no Authorization header, no Signature parameter)."}
}

func (s *Server) verifyV3(r *http.Request, body []byte, params url.Values, auth string) (*authInfo, *apiError) {
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != AlgACS3 {
		return nil, errBadRequest("InvalidAuthorization.Algorithm", "Unsupported signature algorithm "+alg+"; this emulator verifies "+AlgACS3+".")
	}
	var ak, signedHeaders, sig string
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			ak = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			sig = v
		}
	}
	if ak == "" || signedHeaders == "" || sig == "" {
		return nil, errBadRequest("IncompleteSignature", "The Authorization header lacks Credential, SignedHeaders or Signature.")
	}
	secret, ok := s.secret(ak)
	if !ok {
		return nil, errAccessKeyNotFound()
	}
	signed := strings.Split(signedHeaders, ";")
	have := map[string]bool{}
	for _, h := range signed {
		have[h] = true
	}
	for _, must := range []string{"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"} {
		if !have[must] {
			return nil, errBadRequest("IncompleteSignature", "Header "+must+" must be signed.")
		}
	}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-acs-") && !have[l] {
			return nil, errBadRequest("IncompleteSignature", "Header "+l+" is not signed.")
		}
	}
	date := r.Header.Get("x-acs-date")
	if ae := s.checkTime(date); ae != nil {
		return nil, ae
	}
	sum := sha256.Sum256(body)
	payload := r.Header.Get("x-acs-content-sha256")
	if payload != hex.EncodeToString(sum[:]) {
		return nil, errBadRequest("SignatureDoesNotMatch", "x-acs-content-sha256 does not match the request body.")
	}
	header := func(h string) string {
		if h == "host" {
			return r.Host
		}
		vs := r.Header.Values(h)
		if len(vs) > 1 {
			vs = append([]string(nil), vs...)
			sort.Strings(vs)
		}
		return strings.Join(vs, ",")
	}
	path := r.URL.EscapedPath()
	sts := V3StringToSign(r.Method, path, r.URL.Query(), signed, header, payload)
	if !hmac.Equal([]byte(V3Signature(secret, sts)), []byte(strings.ToLower(sig))) {
		return nil, errSignature(sts)
	}
	if ae := s.useNonce(ak, r.Header.Get("x-acs-signature-nonce")); ae != nil {
		return nil, ae
	}
	return &authInfo{accessKeyID: ak, action: r.Header.Get("x-acs-action"), version: r.Header.Get("x-acs-version"), params: params, alg: AlgACS3}, nil
}

func (s *Server) verifyV1(r *http.Request, params url.Values) (*authInfo, *apiError) {
	for _, k := range []string{"AccessKeyId", "SignatureMethod", "SignatureNonce", "Timestamp", "Action", "Version"} {
		if params.Get(k) == "" {
			return nil, errBadRequest("MissingParameter", "The input parameter \""+k+"\" that is mandatory for processing this request is not supplied.")
		}
	}
	if m := params.Get("SignatureMethod"); m != AlgV1 {
		return nil, errBadRequest("InvalidParameter.SignatureMethod", "Unsupported SignatureMethod "+m+".")
	}
	ak := params.Get("AccessKeyId")
	secret, ok := s.secret(ak)
	if !ok {
		return nil, errAccessKeyNotFound()
	}
	if ae := s.checkTime(params.Get("Timestamp")); ae != nil {
		return nil, ae
	}
	sts := V1StringToSign(r.Method, params)
	if !hmac.Equal([]byte(V1Signature(secret, sts)), []byte(params.Get("Signature"))) {
		return nil, errSignature(sts)
	}
	if ae := s.useNonce(ak, params.Get("SignatureNonce")); ae != nil {
		return nil, ae
	}
	return &authInfo{accessKeyID: ak, action: params.Get("Action"), version: params.Get("Version"), params: params, alg: AlgV1}, nil
}

// checkTime accepts an ISO 8601 UTC timestamp within MaxSkew of now.
func (s *Server) checkTime(v string) *apiError {
	t, err := time.Parse("2006-01-02T15:04:05Z", v)
	if err != nil {
		return errBadRequest("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted: "+v+".")
	}
	d := s.now().Sub(t)
	if d < 0 {
		d = -d
	}
	if d > s.opts.MaxSkew {
		return errBadRequest("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	return nil
}

// useNonce records a nonce; a nonce seen within twice the allowed skew is
// refused.
func (s *Server) useNonce(ak, nonce string) *apiError {
	if nonce == "" {
		return errBadRequest("MissingSignatureNonce", "The signature nonce is missing.")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.nonces {
		if now.Sub(t) > 2*s.opts.MaxSkew {
			delete(s.nonces, k)
		}
	}
	key := ak + "\x00" + nonce
	if _, used := s.nonces[key]; used {
		return errBadRequest("SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	s.nonces[key] = now
	return nil
}
