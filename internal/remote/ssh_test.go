package remote

import (
	"testing"
	"time"
)

func TestParseSSHOptions(t *testing.T) {
	o, err := ParseSSHOptions(`-i /root/.ssh/mha -o StrictHostKeyChecking=no -o "UserKnownHostsFile=/dev/null" -p 2222 -o ConnectTimeout=4 -q -o ServerAliveInterval=5`)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.IdentityFiles) != 1 || o.IdentityFiles[0] != "/root/.ssh/mha" {
		t.Errorf("identity: %v", o.IdentityFiles)
	}
	if o.StrictHostKey != "no" || o.Port != 2222 || o.ConnectTimeout != 4*time.Second {
		t.Errorf("got %+v", o)
	}
	if len(o.KnownHosts) != 1 || o.KnownHosts[0] != "/dev/null" {
		t.Errorf("known hosts: %v", o.KnownHosts)
	}
	if len(o.Ignored) != 2 {
		t.Errorf("ignored: %v", o.Ignored)
	}
	o, err = ParseSSHOptions("-i/k -oPort=23")
	if err != nil || o.IdentityFiles[0] != "/k" || o.Port != 23 {
		t.Errorf("joined forms: %+v %v", o, err)
	}
	for _, bad := range []string{"-i", "-p x", "-o Port=0", `-o "StrictHostKeyChecking=maybe"`, `-i 'unterminated`, "-o NoValue"} {
		if _, err := ParseSSHOptions(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestAuthNeedsIdentity(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := authMethods(Options{}); err == nil {
		t.Fatal("no keys anywhere: want an error")
	}
	if _, err := authMethods(Options{IdentityFiles: []string{"/nonexistent/key"}}); err == nil {
		t.Fatal("missing explicit key: want an error")
	}
	if _, err := hostKeyCallback(Options{}); err == nil {
		t.Fatal("strict host keys without known_hosts: want an error")
	}
	if _, err := hostKeyCallback(Options{StrictHostKey: "accept-new"}); err != nil {
		t.Fatal(err)
	}
}
