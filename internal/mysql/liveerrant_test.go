package mysql

import "testing"

func TestLiveErrant(t *testing.T) {
	mustSet := func(k Kind, s string) GTIDSet {
		g, err := ParseGTIDSet(k, s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	uuidP := "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidR := "8a94f357-aab4-11df-86ab-c80aa9429562"
	cases := []struct {
		name             string
		kind             Kind
		replica, primary string
		primaryOrigin    string
		want             string
	}{
		{"mariadb replica read after newer primary writes", MariaDB, "0-1-105", "0-1-100", "1", ""},
		{"mariadb written on the replica", MariaDB, "0-1-100,0-3-5", "0-1-100", "1", "0-3-5"},
		{"mysql replica ahead of the primary's read", MySQL, uuidP + ":1-105", uuidP + ":1-100", uuidP, ""},
		{"mysql written on the replica", MySQL, uuidP + ":1-100," + uuidR + ":1-2", uuidP + ":1-100", uuidP, uuidR + ":1-2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Status{Flavor: Flavor{Kind: tc.kind}, GTIDExecuted: mustSet(tc.kind, tc.primary)}
			if tc.kind == MariaDB {
				p.ServerID = 1
			} else {
				p.ServerUUID = tc.primaryOrigin
			}
			r := &Status{Flavor: Flavor{Kind: tc.kind}, GTIDExecuted: mustSet(tc.kind, tc.replica)}
			e, err := LiveErrant(r, p)
			if err != nil {
				t.Fatal(err)
			}
			if e.String() != tc.want {
				t.Fatalf("errant %q, want %q", e.String(), tc.want)
			}
		})
	}
}
