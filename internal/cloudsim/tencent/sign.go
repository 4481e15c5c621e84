package tencent

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Signature algorithms the server verifies.
const (
	AlgTC3        = "TC3-HMAC-SHA256"
	AlgHmacSHA1   = "HmacSHA1"
	AlgHmacSHA256 = "HmacSHA256"
)

// Messages of the vendor's authentication errors.
const (
	msgSignatureFailure = "The provided credentials could not be validated. Please check your signature is correct."
	msgSignatureExpire  = "Signature expired. Timestamp and server time cannot differ by more than five minutes."
	msgSecretIDNotFound = "The SecretId is not found, please ensure that your SecretId is correct."
)

// request is a verified request.
type request struct {
	secretID string
	action   string
	version  string
	region   string
	params   params
	alg      string
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// TC3CanonicalHeaders returns the canonical headers (lowercased, trimmed
// "name:value\n" lines in the order of signed) of a TC3 request.
func TC3CanonicalHeaders(signed []string, header func(name string) string) string {
	var b strings.Builder
	for _, h := range signed {
		b.WriteString(h + ":" + strings.ToLower(strings.TrimSpace(header(h))) + "\n")
	}
	return b.String()
}

// TC3StringToSign returns the TC3-HMAC-SHA256 string to sign of a request:
// canonicalQuery is the query string as sent (GET) or "" (POST),
// payloadHash the hex SHA-256 of the body (or of "UNSIGNED-PAYLOAD").
func TC3StringToSign(method, canonicalQuery string, signed []string, header func(string) string, payloadHash string, timestamp int64, service string) string {
	creq := method + "\n/\n" + canonicalQuery + "\n" + TC3CanonicalHeaders(signed, header) + "\n" + strings.Join(signed, ";") + "\n" + payloadHash
	date := time.Unix(timestamp, 0).UTC().Format("2006-01-02")
	return AlgTC3 + "\n" + strconv.FormatInt(timestamp, 10) + "\n" + date + "/" + service + "/tc3_request\n" + sha256hex([]byte(creq))
}

// TC3Signature is the hex signature of stringToSign with the key derived
// from secretKey for the date (YYYY-MM-DD) and service.
func TC3Signature(secretKey, date, service, stringToSign string) string {
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}

// V1StringToSign is METHOD + host + path + "?" + the sorted raw k=v pairs
// joined by "&", without Signature (the legacy signature).
func V1StringToSign(method, host, path string, p url.Values) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(method + host + path + "?")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + p.Get(k))
	}
	return b.String()
}

// V1Signature is base64(HMAC-SHA1 or HMAC-SHA256(secretKey, stringToSign)).
func V1Signature(secretKey, method, stringToSign string) string {
	var f func() hash.Hash = sha1.New
	if method == AlgHmacSHA256 {
		f = sha256.New
	}
	m := hmac.New(f, []byte(secretKey))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// verify checks the signature, time, token and nonce of a request whose
// body was already read, and returns its parameters.
func (s *Server) verify(r *http.Request, body []byte) (*request, *apiError) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, newErr("UnsupportedProtocol", "HTTP method "+r.Method+" is not supported; use POST or GET.")
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		return s.verifyTC3(r, body, auth)
	}
	form, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newErr("InvalidParameter", "The query string is malformed.")
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method == http.MethodPost && ct == "application/x-www-form-urlencoded" {
		bf, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, newErr("InvalidParameter", "The form body is malformed.")
		}
		for k, v := range bf {
			form[k] = v
		}
	}
	if form.Get("Signature") != "" {
		return s.verifyV1(r, form)
	}
	return nil, newErr("AuthFailure.InvalidAuthorization", "The request is not signed: no Authorization header and no Signature parameter.")
}

func (s *Server) verifyTC3(r *http.Request, body []byte, auth string) (*request, *apiError) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(auth), " ")
	if alg != AlgTC3 {
		return nil, newErr("AuthFailure.InvalidAuthorization", "Authorization header algorithm "+alg+" is not supported; this emulator verifies "+AlgTC3+".")
	}
	var cred, signedHeaders, sig string
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			sig = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 4 || scope[0] == "" || scope[3] != "tc3_request" || signedHeaders == "" || sig == "" {
		return nil, newErr("AuthFailure.InvalidAuthorization", "Authorization header is invalid: want Credential=SecretId/Date/Service/tc3_request, SignedHeaders=…, Signature=….")
	}
	secretID, date, service := scope[0], scope[1], scope[2]
	signed := strings.Split(signedHeaders, ";")
	have := map[string]bool{}
	for i, h := range signed {
		if h != strings.ToLower(h) || i > 0 && signed[i-1] >= h {
			return nil, newErr("AuthFailure.InvalidAuthorization", "SignedHeaders must be lowercase and sorted.")
		}
		have[h] = true
	}
	if !have["host"] || !have["content-type"] {
		return nil, newErr("AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host.")
	}
	action, version, tsRaw := r.Header.Get("X-TC-Action"), r.Header.Get("X-TC-Version"), r.Header.Get("X-TC-Timestamp")
	if action == "" {
		return nil, errMissing("Action")
	}
	if tsRaw == "" {
		return nil, errMissing("Timestamp")
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return nil, newErr("InvalidParameter", "X-TC-Timestamp is not a UNIX timestamp.")
	}
	key, token, ok := s.secret(secretID)
	if !ok {
		return nil, newErr("AuthFailure.SecretIdNotFound", msgSecretIDNotFound)
	}
	if ae := s.checkTime(ts); ae != nil {
		return nil, ae
	}
	if service != Service || date != time.Unix(ts, 0).UTC().Format("2006-01-02") {
		return nil, newErr("AuthFailure.SignatureFailure", msgSignatureFailure)
	}
	payloadHash := sha256hex(body)
	if r.Header.Get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD" {
		payloadHash = sha256hex([]byte("UNSIGNED-PAYLOAD"))
	}
	query := ""
	if r.Method == http.MethodGet {
		query = r.URL.RawQuery
	}
	header := func(h string) string {
		if h == "host" {
			return r.Host
		}
		return strings.Join(r.Header.Values(h), ",")
	}
	sts := TC3StringToSign(r.Method, query, signed, header, payloadHash, ts, service)
	if !hmac.Equal([]byte(TC3Signature(key, date, service, sts)), []byte(strings.ToLower(sig))) {
		return nil, newErr("AuthFailure.SignatureFailure", msgSignatureFailure)
	}
	if token != "" && r.Header.Get("X-TC-Token") != token {
		return nil, newErr("AuthFailure.TokenFailure", "The token is invalid or does not belong to this SecretId.")
	}
	req := &request{secretID: secretID, action: action, version: version, region: r.Header.Get("X-TC-Region"), alg: AlgTC3}
	switch r.Method {
	case http.MethodPost:
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/json" {
			return nil, newErr("InvalidParameter", "POST requests must be application/json (multipart is not served by this emulator).")
		}
		req.params = params{}
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&req.params); err != nil {
				return nil, newErr("InvalidParameter", "The request body is not a JSON object.")
			}
		}
	default:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, newErr("InvalidParameter", "The query string is malformed.")
		}
		req.params = unflatten(q)
	}
	return req, nil
}

// v1Common are the legacy signature's common parameters.
var v1Common = map[string]bool{
	"Action": true, "Version": true, "Region": true, "Timestamp": true, "Nonce": true, "SecretId": true,
	"Signature": true, "SignatureMethod": true, "Token": true, "Language": true, "RequestClient": true,
}

func (s *Server) verifyV1(r *http.Request, form url.Values) (*request, *apiError) {
	for _, k := range []string{"Action", "SecretId", "Timestamp", "Nonce"} {
		if form.Get(k) == "" {
			return nil, errMissing(k)
		}
	}
	method := form.Get("SignatureMethod")
	if method == "" {
		method = AlgHmacSHA1
	}
	if method != AlgHmacSHA1 && method != AlgHmacSHA256 {
		return nil, newErr("InvalidParameter", "SignatureMethod "+method+" is not supported.")
	}
	ts, err := strconv.ParseInt(form.Get("Timestamp"), 10, 64)
	if err != nil {
		return nil, newErr("InvalidParameter", "Timestamp is not a UNIX timestamp.")
	}
	secretID := form.Get("SecretId")
	key, token, ok := s.secret(secretID)
	if !ok {
		return nil, newErr("AuthFailure.SecretIdNotFound", msgSecretIDNotFound)
	}
	if ae := s.checkTime(ts); ae != nil {
		return nil, ae
	}
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	sts := V1StringToSign(r.Method, r.Host, path, form)
	if !hmac.Equal([]byte(V1Signature(key, method, sts)), []byte(form.Get("Signature"))) {
		return nil, newErr("AuthFailure.SignatureFailure", msgSignatureFailure)
	}
	if token != "" && form.Get("Token") != token {
		return nil, newErr("AuthFailure.TokenFailure", "The token is invalid or does not belong to this SecretId.")
	}
	if ae := s.useNonce(secretID, form.Get("Nonce")); ae != nil {
		return nil, ae
	}
	p := url.Values{}
	for k, v := range form {
		if !v1Common[k] {
			p[k] = v
		}
	}
	return &request{secretID: secretID, action: form.Get("Action"), version: form.Get("Version"), region: form.Get("Region"), params: unflatten(p), alg: method}, nil
}

// checkTime accepts a UNIX timestamp within MaxSkew of now.
func (s *Server) checkTime(ts int64) *apiError {
	d := s.now().Sub(time.Unix(ts, 0))
	if d < 0 {
		d = -d
	}
	if d > s.opts.MaxSkew {
		return newErr("AuthFailure.SignatureExpire", msgSignatureExpire)
	}
	return nil
}

// useNonce records a legacy-signature nonce; one seen within twice the
// allowed skew is refused.
func (s *Server) useNonce(secretID, nonce string) *apiError {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.nonces {
		if now.Sub(t) > 2*s.opts.MaxSkew {
			delete(s.nonces, k)
		}
	}
	key := secretID + "\x00" + nonce
	if _, used := s.nonces[key]; used {
		return newErr("AuthFailure.InvalidAuthorization", "The Nonce was already used by this SecretId (replayed request).")
	}
	s.nonces[key] = now
	return nil
}

// unflatten turns the SDK's flattened parameters (Filters.0.Values.1=…)
// into the nested shape of a JSON body, with string leaves.
func unflatten(q url.Values) params {
	root := map[string]any{}
	for k, vs := range q {
		if len(vs) == 0 {
			continue
		}
		parts := strings.Split(k, ".")
		m := root
		for i, part := range parts {
			if i == len(parts)-1 {
				m[part] = vs[0]
				break
			}
			next, ok := m[part].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[part] = next
			}
			m = next
		}
	}
	if m, ok := listify(root).(map[string]any); ok {
		return params(m)
	}
	return params{}
}

// listify turns maps whose keys are all 0..n-1 into lists.
func listify(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for k, x := range m {
		m[k] = listify(x)
	}
	if len(m) == 0 {
		return m
	}
	list := make([]any, len(m))
	for k, x := range m {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(m) || list[i] != nil {
			return m
		}
		list[i] = x
	}
	return list
}
