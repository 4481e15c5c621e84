package cloudsim

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	var l Loopback
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") })
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:0", "198.18.0.1:0", "localhost:0", "nonsense"} {
		if _, err := l.Start("test emulator", addr, h, log); err == nil || !strings.HasPrefix(err.Error(), "test emulator: ") {
			t.Errorf("Start(%q) = %v, want a refusal", addr, err)
		}
	}
	if l.Endpoint() != "" || l.Stop() != nil {
		t.Fatal("a refused Start left something behind")
	}
	url, err := l.Start("test emulator", "", h, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || url != "http://"+l.Endpoint() {
		t.Errorf("url %s, endpoint %s", url, l.Endpoint())
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hi" {
		t.Errorf("body %q", body)
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("still serving after Stop")
	}
}
