package config

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

// testEnv is the environment and file system the tests' configurations see.
type testEnv struct {
	env   map[string]string
	files map[string]string
	log   bytes.Buffer
}

func newTestEnv() *testEnv {
	return &testEnv{
		env: map[string]string{
			"DB3_PASSWORD": "Db3-Secret",
			"HOOK_TOKEN":   "hook-token-value",
			"EMPTY":        "",
		},
		files: map[string]string{
			"/etc/cloudmha/repl.pw":  "Repl-From-File\n",
			"/etc/cloudmha/crlf.pw":  "Crlf-Secret\r\n",
			"/etc/cloudmha/empty.pw": "\n",
		},
	}
}

func (t *testEnv) opts() LoadOptions {
	return LoadOptions{
		Logger:         slog.New(slog.NewTextHandler(&t.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DefaultSSHUser: "osuser",
		LookupEnv: func(k string) (string, bool) {
			v, ok := t.env[k]
			return v, ok
		},
		ReadFile: func(p string) ([]byte, error) {
			v, ok := t.files[p]
			if !ok {
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
			}
			return []byte(v), nil
		},
	}
}

// errStrings returns the message of every joined error.
func errStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Errorf("error %q is not a *config.Error", e)
			}
			out = append(out, e.Error())
		}
		return out
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Errorf("error %q is not a *config.Error", err)
	}
	return []string{err.Error()}
}

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}
