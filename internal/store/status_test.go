package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStatusRoundTripAndEvaluate(t *testing.T) {
	dir := t.TempDir()
	p := StatusPath(dir, "app1")
	if filepath.Base(p) != "app1.master_status.health" {
		t.Fatalf("status path %s is not MHA's", p)
	}
	now := time.Now()
	if st, _, err := Evaluate(p, now, time.Second, nil); err != nil || st != NotRunning {
		t.Fatalf("missing file: got %v, %v; want NOT_RUNNING", st, err)
	}
	if err := WriteStatus(p, Status{PID: os.Getpid(), State: Running, Primary: "198.18.0.11"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "\t0:PING_OK\tmaster:198.18.0.11\n"; string(b[len(b)-len(want):]) != want {
		t.Fatalf("file %q does not end in MHA's format %q", b, want)
	}
	st, s, err := Evaluate(p, now, time.Second, nil)
	if err != nil || st != Running || s.Primary != "198.18.0.11" || s.PID != os.Getpid() {
		t.Fatalf("got %v %+v %v", st, s, err)
	}
	if st, _, _ := Evaluate(p, now.Add(time.Hour), time.Second, nil); st != TimestampOld {
		t.Fatalf("stale file: got %v, want TIMESTAMP_OLD", st)
	}
	if st, _, _ := Evaluate(p, now, time.Second, func(int) bool { return false }); st != NotRunning {
		t.Fatalf("dead pid: got %v, want NOT_RUNNING", st)
	}
	if err := WriteStatus(p, Status{PID: os.Getpid(), State: FailoverRunning}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := Evaluate(p, now.Add(time.Hour), time.Second, nil); st != FailoverRunning {
		t.Fatalf("got %v, want FAILOVER_RUNNING", st)
	}
}

func TestStatusMalformed(t *testing.T) {
	dir := t.TempDir()
	for _, body := range []string{"", "abc\t0:PING_OK", "12\t7:NOPE", "12\tx"} {
		p := filepath.Join(dir, "s")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if st, _, err := Evaluate(p, time.Now(), time.Second, nil); err == nil || st != ConfigError {
			t.Errorf("%q: got %v, %v; want an error and CONFIG_ERROR", body, st, err)
		}
	}
}

func TestStateNames(t *testing.T) {
	for st, name := range map[State]string{Running: "0:PING_OK", NotRunning: "2:NOT_RUNNING", FailoverError: "51:FAILOVER_ERROR", TimestampOld: "32:TIMESTAMP_OLD"} {
		if st.String() != name {
			t.Errorf("%d: %s, want %s", int(st), st, name)
		}
		if back, err := ParseState(name); err != nil || back != st {
			t.Errorf("parse %s: %v %v", name, back, err)
		}
	}
}
