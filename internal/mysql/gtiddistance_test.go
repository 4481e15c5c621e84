package mysql

import (
	"errors"
	"testing"
)

func TestTransactionsBehind(t *testing.T) {
	tests := []struct {
		name          string
		ahead, behind GTIDSet
		want          uint64
		wantKindErr   bool
	}{
		{"MySQL caught up", my(t, uuidA+":1-100"), my(t, uuidA+":1-100"), 0, false},
		{"MySQL 10 behind", my(t, uuidA+":1-100"), my(t, uuidA+":1-90"), 10, false},
		{"MySQL gaps and two sources", my(t, uuidA+":1-100:120-129,"+uuidB+":1-5"), my(t, uuidA+":1-50:60-100"), 9 + 10 + 5, false},
		{"MySQL replica ahead (errant) is not behind", my(t, uuidA+":1-10"), my(t, uuidA+":1-10,"+uuidB+":1-3"), 0, false},
		{"MySQL empty replica", my(t, uuidA+":1-7"), GTIDSet{}, 7, false},
		{"MariaDB caught up", ma(t, "0-1-100"), ma(t, "0-1-100"), 0, false},
		{"MariaDB 5 behind", ma(t, "0-1-100"), ma(t, "0-1-95"), 5, false},
		{"MariaDB history of two primaries in one domain", ma(t, "0-1-100,0-2-120"), ma(t, "0-1-100"), 20, false},
		{"MariaDB two domains", ma(t, "0-1-100,1-1-50"), ma(t, "0-1-98,1-1-40"), 2 + 10, false},
		{"MariaDB domain the replica never saw", ma(t, "0-1-10,7-1-3"), ma(t, "0-1-10"), 3, false},
		{"MariaDB replica's local write in the domain", ma(t, "0-1-100"), ma(t, "0-1-100,0-12-101"), 0, false},
		{"empty primary", GTIDSet{}, ma(t, "0-1-5"), 0, false},
		{"kinds differ", my(t, uuidA+":1-5"), ma(t, "0-1-5"), 0, true},
	}
	for _, tt := range tests {
		got, err := TransactionsBehind(tt.ahead, tt.behind)
		if tt.wantKindErr {
			if !errors.Is(err, ErrGTIDKindMismatch) {
				t.Errorf("%s: err = %v, want ErrGTIDKindMismatch", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: TransactionsBehind(%s, %s) = %d, %v; want %d", tt.name, tt.ahead, tt.behind, got, err, tt.want)
		}
	}
}

func TestErrantCount(t *testing.T) {
	tests := []struct {
		name             string
		replica, primary GTIDSet
		want             uint64
	}{
		{"MySQL none", my(t, uuidA+":1-90"), my(t, uuidA+":1-100"), 0},
		{"MySQL local writes", my(t, uuidA+":1-100,"+uuidB+":1-3:7"), my(t, uuidA+":1-100"), 4},
		{"MySQL interval beyond the primary", my(t, uuidA+":1-105"), my(t, uuidA+":1-100"), 5},
		{"MariaDB none (replica behind)", ma(t, "0-1-90"), ma(t, "0-1-100"), 0},
		{"MariaDB one local write in strict mode", ma(t, "0-1-100,0-12-101"), ma(t, "0-1-100"), 1},
		{"MariaDB several local writes", ma(t, "0-1-100,0-12-103"), ma(t, "0-1-100"), 3},
		{"MariaDB old local write, primary moved on", ma(t, "0-1-150,0-12-101"), ma(t, "0-1-150"), 1},
		{"MariaDB local domain", ma(t, "0-1-100,5-12-4"), ma(t, "0-1-100"), 4},
		{"empty replica", GTIDSet{}, ma(t, "0-1-100"), 0},
	}
	for _, tt := range tests {
		got, err := ErrantCount(tt.replica, tt.primary)
		if err != nil || got != tt.want {
			t.Errorf("%s: ErrantCount(%s, %s) = %d, %v; want %d", tt.name, tt.replica, tt.primary, got, err, tt.want)
		}
	}
	if _, err := ErrantCount(my(t, uuidA+":1"), ma(t, "0-1-1")); !errors.Is(err, ErrGTIDKindMismatch) {
		t.Errorf("kinds differ: err = %v", err)
	}
}
