package mysql

import (
	"testing"
	"time"
)

func TestGTIDPosition(t *testing.T) {
	cases := map[string]string{
		"0-1-100,0-2-50,1-3-7": "0-1-100,1-3-7",
		"0-1-100,0-2-150":      "0-2-150",
		"":                     "",
	}
	for in, want := range cases {
		if got := MustParseGTIDSet(MariaDB, in).Position(); got != want {
			t.Errorf("Position(%q) = %q, want %q", in, got, want)
		}
	}
	my := "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"
	if got := MustParseGTIDSet(MySQL, my).Position(); got != my {
		t.Errorf("MySQL position %q", got)
	}
}

func TestGTIDWithoutOrigin(t *testing.T) {
	s := MustParseGTIDSet(MariaDB, "0-1-100,0-2-50,1-1-3")
	if got := s.WithoutOrigin("1").String(); got != "0-2-50" {
		t.Errorf("MariaDB: %q", got)
	}
	if got := s.WithoutOrigin("").String(); got != s.String() {
		t.Errorf("empty origin: %q", got)
	}
	if s.String() != "0-1-100,0-2-50,1-1-3" {
		t.Errorf("WithoutOrigin changed its receiver: %s", s)
	}
	u1, u2 := "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
	m := MustParseGTIDSet(MySQL, u1+":1-5,"+u2+":1-3")
	if got := m.WithoutOrigin(u1).String(); got != u2+":1-3" {
		t.Errorf("MySQL: %q", got)
	}
}

func TestParseProcesses(t *testing.T) {
	ps := parseProcesses([]map[string]string{
		{"ID": "5", "USER": "repl", "COMMAND": "Binlog Dump GTID", "TIME_MS": "1000.5", "INFO": NullValue},
		{"ID": "6", "USER": "system user", "COMMAND": "Slave_SQL", "TIME_MS": "1"},
		{"ID": "7", "USER": "app", "COMMAND": "Query", "TIME_MS": "2500.000", "INFO": "UPDATE t SET a=1"},
	})
	if len(ps) != 3 || !ps[0].IsReplication() || !ps[1].IsSystem() || ps[2].IsReplication() || ps[2].IsSystem() {
		t.Fatalf("%+v", ps)
	}
	if ps[2].ID != 7 || ps[2].Time != 2500*time.Millisecond || ps[2].Info != "UPDATE t SET a=1" || ps[0].Info != "" {
		t.Fatalf("%+v", ps[2])
	}
}
