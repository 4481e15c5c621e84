// Package api is the manager's HTTP API (JSON) and its embedded status
// page. It serves a view.Backend: the running manager implements it.
//
// Reads are open when no token is configured; actions then are refused.
// With a token, every /api/ route needs "Authorization: Bearer <token>";
// /healthz, /metrics and the status page's static files never do (the page
// itself fetches the API with the token it keeps in sessionStorage).
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cloudmha/cloudmha/internal/view"
)

// Limits of the API.
const (
	// MaxBodyBytes bounds the JSON body of an action.
	MaxBodyBytes = 64 << 10
	// DefaultEventLimit and MaxEventLimit bound GET /api/v1/events.
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
	// maxByLen bounds the "by" of an action (it goes into events and logs).
	maxByLen = 128
	// minTokenLen: shorter tokens are accepted with a warning.
	minTokenLen = 16
)

// Options configure New.
type Options struct {
	Backend view.Backend
	// Token is the bearer token. "" leaves the read endpoints open and
	// refuses every action with 403. Surrounding white space (a token
	// file's trailing newline) is ignored.
	Token string
	// Metrics is served at /metrics when non-nil, without authentication
	// (Prometheus scrapes it).
	Metrics http.Handler
	Logger  *slog.Logger
}

// ActionResult is the answer to a successful ack, pause or resume.
type ActionResult struct {
	OK      bool   `json:"ok"`
	Action  string `json:"action"`
	Cluster string `json:"cluster"`
	By      string `json:"by"`
}

// Health is the answer of GET /healthz.
type Health struct {
	Status string `json:"status"` // ok | unavailable
	Error  string `json:"error,omitempty"`
}

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// Bodies of the actions.
type ackBody struct {
	By   string `json:"by"`
	Note string `json:"note"`
}

type pauseBody struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

type resumeBody struct {
	By string `json:"by"`
}

type server struct {
	backend  view.Backend
	hasToken bool
	tokenSum [sha256.Size]byte
	log      *slog.Logger
	mux      *http.ServeMux
	static   map[string]asset
}

// New returns the API and status page handler. It panics when o.Backend is
// nil (a programming error).
func New(o Options) http.Handler {
	if o.Backend == nil {
		panic("api: Options.Backend is nil")
	}
	s := &server{
		backend: o.Backend,
		log:     o.Logger,
		mux:     http.NewServeMux(),
		static:  loadStatic(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if tok := strings.TrimSpace(o.Token); tok != "" {
		s.hasToken = true
		s.tokenSum = sha256.Sum256([]byte(tok))
		if len(tok) < minTokenLen {
			s.log.Warn("api: the API token is short; use at least 32 random characters", "min_length", minTokenLen)
		}
	} else {
		s.log.Info("api: no API token configured: read endpoints are open, actions are refused")
	}

	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	if o.Metrics != nil {
		m.Handle("GET /metrics", o.Metrics)
	}
	m.HandleFunc("GET /{$}", s.index)
	m.HandleFunc("GET /assets/{file}", s.asset)

	m.Handle("GET /api/v1/clusters", s.read(s.clusters))
	m.Handle("GET /api/v1/clusters/{name}", s.read(s.cluster))
	m.Handle("GET /api/v1/clusters/{name}/history", s.read(s.history))
	m.Handle("GET /api/v1/events", s.read(s.events))
	m.Handle("GET /api/v1/alerts", s.read(s.alerts))

	m.Handle("POST /api/v1/clusters/{name}/switchover", s.action("switchover", s.switchover))
	m.Handle("POST /api/v1/clusters/{name}/ack", s.action("ack", s.ack))
	m.Handle("POST /api/v1/clusters/{name}/pause", s.action("pause", s.pause))
	m.Handle("POST /api/v1/clusters/{name}/resume", s.action("resume", s.resume))

	// Everything else under /api/: JSON 404 or 405, after authentication
	// (an unauthenticated client learns nothing about the routes).
	m.Handle("/api/", s.read(s.apiFallback))
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// JSON and errors: nothing to run or embed (the page overrides this).
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

// ---- authentication ----

// authorized reports whether r carries the configured token. Both sides are
// hashed first so that the comparison is constant-time and its duration does
// not depend on the token's length either.
func (s *server) authorized(r *http.Request) (ok bool, reason string) {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return false, "missing bearer token"
	}
	scheme, tok, found := strings.Cut(hdr, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, "the Authorization header must be \"Bearer <token>\""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) != 1 {
		return false, "invalid bearer token"
	}
	return true, ""
}

// read guards a read endpoint: open without a configured token, else the
// token is required.
func (s *server) read(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if s.hasToken && !s.checkAuth(w, r) {
			return
		}
		h(w, r)
	})
}

// action guards an action: refused without a configured token, else the
// token is required.
func (s *server) action(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !s.hasToken {
			s.log.Warn("api: action refused: no API token configured",
				"action", name, "cluster", r.PathValue("name"), "remote", r.RemoteAddr)
			writeJSON(w, http.StatusForbidden, errorBody{Error: "actions are disabled: this manager has no API token " +
				"(start it with --api-token-file=FILE or CLOUDMHA_API_TOKEN)"})
			return
		}
		if !s.checkAuth(w, r) {
			return
		}
		h(w, r)
	})
}

func (s *server) checkAuth(w http.ResponseWriter, r *http.Request) bool {
	ok, reason := s.authorized(r)
	if ok {
		return true
	}
	challenge := `Bearer realm="cloudmha"`
	if r.Header.Get("Authorization") != "" {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	s.log.Warn("api: unauthorized request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason)
	writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized: " + reason})
	return false
}

// ---- reads ----

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := s.backend.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable", Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

func (s *server) clusters(w http.ResponseWriter, r *http.Request) {
	cs := s.backend.Clusters()
	if cs == nil {
		cs = []view.Cluster{}
	}
	writeJSON(w, http.StatusOK, cs)
}

func (s *server) cluster(w http.ResponseWriter, r *http.Request) {
	c, err := s.backend.Cluster(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("cluster %q: %w", r.PathValue("name"), err))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	h, err := s.backend.History(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("history of %q: %w", r.PathValue("name"), err))
		return
	}
	if h == nil {
		h = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultEventLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, fmt.Errorf("limit %q: must be a positive integer: %w", v, view.ErrInvalid))
			return
		}
		limit = min(n, MaxEventLimit)
	}
	cluster := q.Get("cluster")
	ev, err := s.backend.Events(cluster, limit)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("events of %q: %w", cluster, err))
		return
	}
	if ev == nil {
		ev = []view.Event{}
	}
	if len(ev) > limit {
		ev = ev[:limit]
	}
	writeJSON(w, http.StatusOK, ev)
}

func (s *server) alerts(w http.ResponseWriter, r *http.Request) {
	a := s.backend.Alerts()
	if a == nil {
		a = []view.Alert{}
	}
	writeJSON(w, http.StatusOK, a)
}

// apiFallback answers a request under /api/ that no route matched: 405 when
// the path exists for another method, else 404.
func (s *server) apiFallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.mux.Handler(r2); p != "" && p != "/api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("method %s not allowed on %s (allowed: %s)",
			r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.URL.Path})
}

// ---- actions ----

func (s *server) switchover(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req view.SwitchRequest
	if !s.decode(w, r, "switchover", &req) {
		return
	}
	by, ok := s.by(w, r, "switchover", req.By)
	if !ok {
		return
	}
	req.By = by
	log := s.log.With("action", "switchover", "cluster", name, "by", by, "remote", r.RemoteAddr,
		"new_primary", req.NewPrimary, "dry_run", req.DryRun, "orig_master_is_new_slave", req.OrigMasterIsNewSlave)
	log.Info("api: switchover requested")
	start := time.Now()
	// The switchover runs to its end even if the client goes away: stopping
	// it half-way because a connection dropped would be worse.
	res, err := s.backend.Switchover(context.WithoutCancel(r.Context()), name, req)
	took := time.Since(start).Round(time.Millisecond)
	if err == nil && res.Error == "" && (res.OK || req.DryRun) {
		log.Info("api: switchover done", "outcome", "ok", "took", took)
		writeJSON(w, http.StatusOK, res)
		return
	}
	if err == nil {
		msg := res.Error
		if msg == "" {
			msg = "switchover did not complete"
		}
		err = errors.New(msg)
	}
	err = fmt.Errorf("switchover of %q: %w", name, err)
	log.Warn("api: switchover failed", "outcome", "error", "error", err, "took", took)
	status := statusOf(err)
	if res.Plan == "" && res.Report == nil {
		writeJSON(w, status, errorBody{Error: err.Error()})
		return
	}
	// The run got somewhere: the body keeps the plan and the report, and
	// its "error" field is the error, as in every error answer.
	res.OK = false
	res.Error = err.Error()
	writeJSON(w, status, res)
}

func (s *server) ack(w http.ResponseWriter, r *http.Request) {
	var b ackBody
	if !s.decode(w, r, "ack", &b) {
		return
	}
	by, ok := s.by(w, r, "ack", b.By)
	if !ok {
		return
	}
	name := r.PathValue("name")
	s.finish(w, r, "ack", name, by, s.backend.Ack(name, by, b.Note), "note", b.Note)
}

func (s *server) pause(w http.ResponseWriter, r *http.Request) {
	var b pauseBody
	if !s.decode(w, r, "pause", &b) {
		return
	}
	by, ok := s.by(w, r, "pause", b.By)
	if !ok {
		return
	}
	name := r.PathValue("name")
	s.finish(w, r, "pause", name, by, s.backend.Pause(name, by, b.Reason), "reason", b.Reason)
}

func (s *server) resume(w http.ResponseWriter, r *http.Request) {
	var b resumeBody
	if !s.decode(w, r, "resume", &b) {
		return
	}
	by, ok := s.by(w, r, "resume", b.By)
	if !ok {
		return
	}
	name := r.PathValue("name")
	s.finish(w, r, "resume", name, by, s.backend.Resume(name, by))
}

// finish logs the outcome of a simple action and answers.
func (s *server) finish(w http.ResponseWriter, r *http.Request, action, cluster, by string, err error, attrs ...any) {
	log := s.log.With("action", action, "cluster", cluster, "by", by, "remote", r.RemoteAddr)
	if err != nil {
		err = fmt.Errorf("%s of %q: %w", action, cluster, err)
		log.Warn("api: action failed", append(attrs, "outcome", "error", "error", err)...)
		s.writeError(w, r, err)
		return
	}
	log.Info("api: action done", append(attrs, "outcome", "ok")...)
	writeJSON(w, http.StatusOK, ActionResult{OK: true, Action: action, Cluster: cluster, By: by})
}

// decode reads an action's JSON body into dst: at most MaxBodyBytes, no
// unknown fields, one value. An empty body leaves dst as it is.
func (s *server) decode(w http.ResponseWriter, r *http.Request, action string, dst any) bool {
	fail := func(status int, msg string) bool {
		s.log.Warn("api: action refused: bad request", "action", action, "cluster", r.PathValue("name"),
			"remote", r.RemoteAddr, "status", status, "error", msg)
		writeJSON(w, status, errorBody{Error: msg})
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fail(http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: the body must be application/json", ct))
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var tooBig *http.MaxBytesError
	if err == nil {
		// Exactly one JSON value.
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("unexpected data after the JSON object")
			if errors.As(err2, &tooBig) {
				err = err2
			}
		}
	}
	switch {
	case err == nil, err == io.EOF: // io.EOF: an empty body
		return true
	case errors.As(err, &tooBig):
		return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
	default:
		return fail(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
}

// by checks the "by" of an action, defaulting to the client's address.
func (s *server) by(w http.ResponseWriter, r *http.Request, action, by string) (string, bool) {
	by = strings.TrimSpace(by)
	if by == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		return host, true
	}
	if len(by) > maxByLen || strings.ContainsFunc(by, unicode.IsControl) {
		s.log.Warn("api: action refused: bad \"by\"", "action", action, "cluster", r.PathValue("name"), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("\"by\" must be at most %d printable characters", maxByLen)})
		return "", false
	}
	return by, true
}

// ---- answers ----

func statusOf(err error) int {
	switch {
	case errors.Is(err, view.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, view.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, view.ErrInvalid):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "error", err)
	}
	writeJSON(w, status, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data, _ = json.Marshal(errorBody{Error: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
