package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudmha/cloudmha/internal/config"
)

func TestHTTPFlagsAddress(t *testing.T) {
	a := &config.Config{Name: "a", Metrics: config.Metrics{Listen: "127.0.0.1:9104"}}
	b := &config.Config{Name: "b"}
	c := &config.Config{Name: "c", Metrics: config.Metrics{Listen: "127.0.0.1:9105"}}
	var f httpFlags
	if got, err := f.address([]*config.Config{b, a}); err != nil || got != "127.0.0.1:9104" {
		t.Fatalf("one cluster sets metrics.listen: %q %v", got, err)
	}
	if _, err := f.address([]*config.Config{a, c}); err == nil || !strings.Contains(err.Error(), "set --http-listen") {
		t.Fatalf("clusters disagree: %v", err)
	}
	f.listen = "10.0.0.5:9000"
	if got, err := f.address([]*config.Config{a, c}); err != nil || got != f.listen {
		t.Fatalf("the flag wins: %q %v", got, err)
	}
	if got, _ := (&httpFlags{}).address([]*config.Config{b}); got != "" {
		t.Fatalf("no listener asked for: %q", got)
	}
}

func TestHTTPFlagsToken(t *testing.T) {
	t.Setenv(tokenEnv, "  from-env  ")
	var f httpFlags
	if tok, err := f.token(); err != nil || tok != "from-env" {
		t.Fatalf("env token: %q %v", tok, err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "tok")
	if err := os.WriteFile(p, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.tokenFile = p
	if tok, err := f.token(); err != nil || tok != "from-file" {
		t.Fatalf("file token: %q %v", tok, err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	f.tokenFile = empty
	if _, err := f.token(); err == nil || strings.Contains(err.Error(), "from-") {
		t.Fatalf("empty token file: %v", err)
	}
	f = httpFlags{tlsCert: "cert.pem"}
	if _, err := f.token(); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Fatalf("cert without key: %v", err)
	}
}
