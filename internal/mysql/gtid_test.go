package mysql

import (
	"errors"
	"testing"
)

const (
	uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidB = "73f86016-978b-11ea-b13a-ae5f5a1e3b8d"
)

func my(t *testing.T, s string) GTIDSet {
	t.Helper()
	g, err := ParseGTIDSet(MySQL, s)
	if err != nil {
		t.Fatalf("ParseGTIDSet(mysql, %q): %v", s, err)
	}
	return g
}

func ma(t *testing.T, s string) GTIDSet {
	t.Helper()
	g, err := ParseGTIDSet(MariaDB, s)
	if err != nil {
		t.Fatalf("ParseGTIDSet(mariadb, %q): %v", s, err)
	}
	return g
}

func TestParseGTIDSetMySQL(t *testing.T) {
	tests := map[string]string{
		"":                               "",
		uuidA + ":1-5":                   uuidA + ":1-5",
		uuidA + ":1-5:7":                 uuidA + ":1-5:7",
		uuidA + ":7:1-5":                 uuidA + ":1-5:7",
		uuidA + ":1-5:6-9":               uuidA + ":1-9",
		uuidB + ":1-3," + uuidA + ":1-5": uuidA + ":1-5," + uuidB + ":1-3",
		// As SHOW REPLICA STATUS and @@gtid_executed print multi-source sets.
		uuidA + ":1-5,\n" + uuidB + ":1-3\n":          uuidA + ":1-5," + uuidB + ":1-3",
		" " + uuidA + ":1-5 ,\r\n\t" + uuidB + ":1-3": uuidA + ":1-5," + uuidB + ":1-3",
		"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-2":    uuidA + ":1-2",
		uuidA + ":1-3," + uuidA + ":5":                uuidA + ":1-3:5",
	}
	for in, want := range tests {
		g := my(t, in)
		if got := g.String(); got != want {
			t.Errorf("ParseGTIDSet(mysql, %q).String() = %q, want %q", in, got, want)
		}
		if g.Kind() != MySQL {
			t.Errorf("Kind = %q", g.Kind())
		}
		if g.IsEmpty() != (want == "") {
			t.Errorf("%q IsEmpty = %v", in, g.IsEmpty())
		}
	}
	for _, bad := range []string{"nope", uuidA, uuidA + ":5-1", uuidA + ":x", "not-a-uuid:1-5", uuidA + ":1-5,", uuidA + ":tag:1-5"} {
		if _, err := ParseGTIDSet(MySQL, bad); err == nil {
			t.Errorf("ParseGTIDSet(mysql, %q): no error", bad)
		}
	}
	if _, err := ParseGTIDSet("oracle", ""); err == nil {
		t.Error("unknown kind: no error")
	}
}

func TestParseGTIDSetMariaDB(t *testing.T) {
	tests := map[string]string{
		"":                       "",
		"0-1-100":                "0-1-100",
		"0-1-100,1-2-5":          "0-1-100,1-2-5",
		"1-2-5,0-12-7,0-1-100":   "0-1-100,0-12-7,1-2-5",
		"0-1-100, 0-2-3\n":       "0-1-100,0-2-3",
		"0-1-5,0-1-9,0-1-7":      "0-1-9", // duplicates keep the largest seq_no
		"0-4294967295-184467440": "0-4294967295-184467440",
	}
	for in, want := range tests {
		g := ma(t, in)
		if got := g.String(); got != want {
			t.Errorf("ParseGTIDSet(mariadb, %q).String() = %q, want %q", in, got, want)
		}
		if g.Kind() != MariaDB || g.IsEmpty() != (want == "") {
			t.Errorf("%q: kind %q empty %v", in, g.Kind(), g.IsEmpty())
		}
	}
	for _, bad := range []string{"0-1", "0-1-2-3", "a-1-2", "0-1-2,", ",0-1-2", "0-4294967296-1", uuidA + ":1-5"} {
		if _, err := ParseGTIDSet(MariaDB, bad); err == nil {
			t.Errorf("ParseGTIDSet(mariadb, %q): no error", bad)
		}
	}
}

func TestGTIDSetMySQLOperations(t *testing.T) {
	primary := my(t, uuidA+":1-100,\n"+uuidB+":1-20")
	replica := my(t, uuidA+":1-90")
	errantReplica := my(t, uuidA+":1-100,"+uuidB+":1-20:25-26")

	if !primary.Contains(replica) || replica.Contains(primary) {
		t.Error("Contains: a lagging replica is a subset of the primary")
	}
	if !primary.Contains(my(t, "")) || !primary.Contains(GTIDSet{}) || my(t, "").Contains(replica) {
		t.Error("Contains with empty sets")
	}
	if !primary.Contains(primary) || !primary.Contains(my(t, uuidA+":5:7-9,"+uuidB+":20")) {
		t.Error("Contains: subsets")
	}
	if primary.Contains(my(t, uuidA+":100-101")) || primary.Contains(my(t, uuidA+":1-100:102")) {
		t.Error("Contains: supersets are not contained")
	}

	diff, err := primary.Subtract(replica)
	if err != nil || diff.String() != uuidA+":91-100,"+uuidB+":1-20" {
		t.Errorf("primary - replica = %q, %v", diff, err)
	}
	errant, err := Errant(errantReplica, primary)
	if err != nil || errant.String() != uuidB+":25-26" {
		t.Errorf("Errant = %q, %v", errant, err)
	}
	if e, _ := Errant(replica, primary); !e.IsEmpty() || e.Kind() != MySQL {
		t.Errorf("Errant of a lagging replica = %q (kind %q), want empty", e, e.Kind())
	}
	mid, _ := my(t, uuidA+":1-10").Subtract(my(t, uuidA+":3-4:8"))
	if mid.String() != uuidA+":1-2:5-7:9-10" {
		t.Errorf("hole punching = %q", mid)
	}

	u, err := replica.Union(my(t, uuidA+":95-110,"+uuidB+":1"))
	if err != nil || u.String() != uuidA+":1-90:95-110,"+uuidB+":1" {
		t.Errorf("Union = %q, %v", u, err)
	}
	if u2, _ := u.Union(my(t, uuidA+":91-94")); u2.String() != uuidA+":1-110,"+uuidB+":1" {
		t.Errorf("Union merging intervals = %q", u2)
	}

	// Operations never modify their operands.
	if replica.String() != uuidA+":1-90" || primary.String() != uuidA+":1-100,"+uuidB+":1-20" {
		t.Errorf("operands modified: %q %q", replica, primary)
	}
	add := my(t, uuidB+":1-3")
	u3, _ := replica.Union(add)
	u3b, _ := u3.Union(my(t, uuidB+":4-9"))
	if add.String() != uuidB+":1-3" || u3.String() != uuidA+":1-90,"+uuidB+":1-3" || u3b.IsEmpty() {
		t.Errorf("Union aliasing: add=%q u3=%q", add, u3)
	}

	if !my(t, uuidB+":1-3,"+uuidA+":1-2").Equal(my(t, uuidA+":1-2,\n"+uuidB+":1:2-3")) {
		t.Error("Equal: same set, different spelling")
	}
	if primary.Equal(replica) || !my(t, "").Equal(GTIDSet{}) || !my(t, "").Equal(ma(t, "")) {
		t.Error("Equal with different or empty sets")
	}
}

func TestGTIDSetMariaDBOperations(t *testing.T) {
	// The primary (server_id 1) wrote 0-1-100; a replica with server_id 12 has
	// everything and one local write of its own, 0-12-7. gtid_binlog_state
	// keeps one entry per (domain, server).
	primary := ma(t, "0-1-100")
	replica := ma(t, "0-1-100,0-12-7")
	errant, err := Errant(replica, primary)
	if err != nil || errant.String() != "0-12-7" {
		t.Errorf("Errant(replica with a local write) = %q, %v; want 0-12-7", errant, err)
	}
	if replica.Contains(primary) != true || primary.Contains(replica) {
		t.Error("Contains: the replica has everything; the primary lacks 0-12-7")
	}

	// A lagging replica is not errant.
	lagging := ma(t, "0-1-90")
	if e, _ := Errant(lagging, primary); !e.IsEmpty() || e.Kind() != MariaDB {
		t.Errorf("Errant(lagging) = %q (kind %q), want empty", e, e.Kind())
	}
	if !primary.Contains(lagging) || lagging.Contains(primary) {
		t.Error("Contains: a lagging replica")
	}

	// An older write of server 12 that the primary already has is not errant;
	// a newer one is.
	p2 := ma(t, "0-1-100,0-12-5")
	if e, _ := Errant(ma(t, "0-1-100,0-12-5"), p2); !e.IsEmpty() {
		t.Errorf("same state errant = %q", e)
	}
	if e, _ := Errant(ma(t, "0-1-100,0-12-6"), p2); e.String() != "0-12-6" {
		t.Errorf("newer local write errant = %q", e)
	}

	// Multiple domains.
	multi := ma(t, "0-1-100,1-2-50,2-3-7")
	other := ma(t, "0-1-100,1-2-40")
	d, err := multi.Subtract(other)
	if err != nil || d.String() != "1-2-50,2-3-7" {
		t.Errorf("multi-domain subtract = %q, %v", d, err)
	}
	if !multi.Contains(other) || other.Contains(multi) || multi.Contains(ma(t, "3-1-1")) {
		t.Error("multi-domain contains")
	}
	u, err := other.Union(ma(t, "0-1-90,1-2-60,5-5-5"))
	if err != nil || u.String() != "0-1-100,1-2-60,5-5-5" {
		t.Errorf("union = %q, %v", u, err)
	}
	if other.String() != "0-1-100,1-2-40" {
		t.Errorf("operand modified: %q", other)
	}

	if !ma(t, "1-2-40,0-1-100").Equal(other) || other.Equal(multi) || other.Equal(ma(t, "0-1-100,1-2-41")) {
		t.Error("Equal")
	}
	if e, _ := primary.Subtract(ma(t, "")); !e.Equal(primary) {
		t.Error("subtracting the empty set")
	}
	if e, _ := ma(t, "").Subtract(primary); !e.IsEmpty() || e.Kind() != MariaDB {
		t.Error("subtracting from the empty set")
	}
}

func TestGTIDSetKindMismatch(t *testing.T) {
	m, a := my(t, uuidA+":1-5"), ma(t, "0-1-5")
	if _, err := m.Subtract(a); !errors.Is(err, ErrGTIDKindMismatch) {
		t.Errorf("Subtract err = %v", err)
	}
	if _, err := a.Union(m); !errors.Is(err, ErrGTIDKindMismatch) {
		t.Errorf("Union err = %v", err)
	}
	if _, err := Errant(a, m); !errors.Is(err, ErrGTIDKindMismatch) {
		t.Errorf("Errant err = %v", err)
	}
	// Even empty sets of different kinds do not combine…
	if _, err := my(t, "").Subtract(ma(t, "")); !errors.Is(err, ErrGTIDKindMismatch) {
		t.Errorf("Subtract of empty sets of different kinds err = %v", err)
	}
	// …but the zero value combines with either.
	if u, err := (GTIDSet{}).Union(a); err != nil || !u.Equal(a) || u.Kind() != MariaDB {
		t.Errorf("zero ∪ mariadb = %q (%q), %v", u, u.Kind(), err)
	}
	if d, err := m.Subtract(GTIDSet{}); err != nil || !d.Equal(m) {
		t.Errorf("mysql − zero = %q, %v", d, err)
	}
	if z, err := (GTIDSet{}).Subtract(GTIDSet{}); err != nil || !z.IsEmpty() || z.Kind() != "" || z.String() != "" {
		t.Errorf("zero − zero = %q, %v", z, err)
	}
	if m.Contains(a) || a.Contains(m) || m.Equal(a) {
		t.Error("sets of different kinds contain or equal each other")
	}
}

func TestMustParseGTIDSetPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	MustParseGTIDSet(MariaDB, "garbage")
}
