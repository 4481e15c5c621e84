package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

// web holds the status page: index.html and its assets, served from memory.
//
//go:embed web
var web embed.FS

// pageCSP keeps the page to its own origin: no inline script, no external
// font, style or script, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	data  []byte
	ctype string
	etag  string
}

// loadStatic reads the embedded files once.
func loadStatic() map[string]asset {
	out := map[string]asset{}
	entries, err := fs.ReadDir(web, "web")
	if err != nil {
		panic("api: embedded page: " + err.Error()) // cannot happen: embedded at build time
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := fs.ReadFile(web, path.Join("web", e.Name()))
		if err != nil {
			panic("api: embedded page: " + err.Error())
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = http.DetectContentType(data)
		}
		out[e.Name()] = asset{data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return out
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, r, "index.html")
}

func (s *server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" {
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
		return
	}
	s.serveAsset(w, r, name)
}

func (s *server) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := s.static[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	// Revalidate every time: cheap (304) and a new binary's page is never
	// mixed with an old script.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", pageCSP)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.data))
}
