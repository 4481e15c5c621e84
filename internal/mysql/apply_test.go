package mysql

import (
	"context"
	"testing"
	"time"
)

// TestIntegrationSession checks that a Session keeps session state between
// statements even when the pool has several connections.
func TestIntegrationSession(t *testing.T) {
	srv := startMariaDB(t)
	inst := srv.open(t, itAdminUser, itAdminPass)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := inst.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	for _, q := range []string{"SET @cloudmha_x = 'a;b'", "SET @@session.gtid_seq_no = 0", "SELECT 1 /* ; */"} {
		if err := s.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Placeholders are not interpreted: the statement is sent verbatim.
	if err := s.Exec(ctx, "SET @cloudmha_q = '?'"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.QueryString(ctx, "SELECT CONCAT(@cloudmha_x, @cloudmha_q)"); err != nil || v != "a;b?" {
		t.Fatalf("session variable: %q, %v", v, err)
	}
	if v, err := s.QueryString(ctx, "SELECT NULL"); err != nil || v != "" {
		t.Fatalf("NULL: %q, %v", v, err)
	}
	if err := s.Exec(ctx, "SELEC 1"); err == nil || ErrorNumber(err) != 1064 {
		t.Fatalf("syntax error: %v", err)
	}
}
