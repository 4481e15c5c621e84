package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Session is one dedicated connection whose session state (variables such
// as @@session.gtid_seq_no, the current database, an open transaction)
// lasts from one statement to the next. Binlog salvage uses it to replay
// decoded binary logs statement by statement, as the mysql client would.
type Session struct {
	addr string
	conn *sql.Conn
}

// Session takes one connection out of the pool for exclusive use. Close it
// to give it back.
func (i *Instance) Session(ctx context.Context) (*Session, error) {
	c, err := i.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: dedicated connection: %w", i.addr, err)
	}
	return &Session{addr: i.addr, conn: c}, nil
}

// Exec sends one statement verbatim (no placeholders are interpreted).
// The error carries the server's error number (see ErrorNumber) but not the
// statement, which may hold row data.
func (s *Session) Exec(ctx context.Context, query string) error {
	if _, err := s.conn.ExecContext(ctx, query); err != nil {
		return fmt.Errorf("%s: %w", s.addr, err)
	}
	return nil
}

// QueryString runs a query that returns one row of one column and returns
// that value ("" for NULL).
func (s *Session) QueryString(ctx context.Context, query string) (string, error) {
	var v sql.NullString
	if err := s.conn.QueryRowContext(ctx, query).Scan(&v); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("%s: %s: no row", s.addr, query)
		}
		return "", fmt.Errorf("%s: %s: %w", s.addr, query, err)
	}
	return v.String, nil
}

// Close returns the connection to the pool. A connection left inside a
// transaction is rolled back by the server when the pool closes it.
func (s *Session) Close() error { return s.conn.Close() }
