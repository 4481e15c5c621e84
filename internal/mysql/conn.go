// Package mysql is the only package of cloudmha that speaks SQL. It opens
// connections with bounded timeouts, detects the server's flavor (MySQL
// 5.7/8.0/8.4+, MariaDB 10.x/11.x), chooses the right statements for it and
// reads replication state into plain Go values that the domain packages use.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

// DialFunc opens the network connection to a server. Tests use it to dial
// from inside a network namespace; nil means the standard dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ConnConfig says how to reach one server.
type ConnConfig struct {
	Addr           string // host:port
	User           string
	Password       string // never logged; errors never contain it
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	Database       string
	Dial           DialFunc
	// MaxOpenConns bounds the pool; 0 means 2.
	MaxOpenConns int
}

// Default timeouts used when a ConnConfig leaves them zero.
const (
	DefaultConnectTimeout = 2 * time.Second
	DefaultReadTimeout    = 5 * time.Second
	DefaultWriteTimeout   = 5 * time.Second
)

// The driver logs connection trouble ("unexpected EOF" when a server dies)
// straight to stderr through a process-wide logger. cloudmha reports those
// errors itself, with context, so the driver's copy is dropped.
func init() { _ = driver.SetLogger(log.New(io.Discard, "", 0)) }

// dialerSeq names per-connection dialers registered with the driver. The
// driver keeps a process-wide registry keyed by network name; a unique name per
// Open keeps configurations from interfering with each other.
var dialerSeq atomic.Uint64

// Instance is an open connection pool to one server together with the flavor
// detected when it was opened.
type Instance struct {
	addr   string
	db     *sql.DB
	flavor Flavor
}

// Open connects to the server, verifies it answers and detects its flavor.
func Open(ctx context.Context, cfg ConnConfig) (*Instance, error) {
	dc := driver.NewConfig()
	dc.User = cfg.User
	dc.Passwd = cfg.Password
	dc.Addr = cfg.Addr
	dc.Net = "tcp"
	dc.DBName = cfg.Database
	dc.Timeout = orDefault(cfg.ConnectTimeout, DefaultConnectTimeout)
	dc.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	dc.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	dc.ParseTime = true
	dc.InterpolateParams = true
	dc.AllowNativePasswords = true
	dc.Params = map[string]string{"autocommit": "1"}
	if cfg.Dial != nil {
		name := fmt.Sprintf("cloudmha-dial-%d", dialerSeq.Add(1))
		dial := cfg.Dial
		driver.RegisterDialContext(name, func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		})
		dc.Net = name
	}
	conn, err := driver.NewConnector(dc)
	if err != nil {
		return nil, fmt.Errorf("configure connection to %s: %w", cfg.Addr, err)
	}
	db := sql.OpenDB(conn)
	maxOpen := cfg.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = 2
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxLifetime(10 * time.Minute)

	inst := &Instance{addr: cfg.Addr, db: db}
	var version, comment string
	if err := db.QueryRowContext(ctx, "SELECT @@version, @@version_comment").Scan(&version, &comment); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s as %q: %w", cfg.Addr, cfg.User, redact(err, cfg.Password))
	}
	f, err := ParseFlavor(version, comment)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("detect flavor of %s: %w", cfg.Addr, err)
	}
	inst.flavor = f
	return inst, nil
}

// Addr is the host:port this instance was opened with.
func (i *Instance) Addr() string { return i.addr }

// Flavor is the server's kind and version detected at Open.
func (i *Instance) Flavor() Flavor { return i.flavor }

// DB exposes the pool for callers that need plain database/sql access (the
// test bed's workload, for one). It never exposes driver types.
func (i *Instance) DB() *sql.DB { return i.db }

// Close releases the pool.
func (i *Instance) Close() error { return i.db.Close() }

// Exec runs one statement.
func (i *Instance) Exec(ctx context.Context, query string, args ...any) error {
	if _, err := i.db.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", i.addr, err)
	}
	return nil
}

// ErrorNumber returns the server error number inside err, or 0 when err is not
// a server error.
func ErrorNumber(err error) uint16 {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// redact removes a password from an error's text; drivers may echo DSNs. The
// result still unwraps to err, so ErrorNumber and errors.Is/As keep working.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "[redacted]"), err: err}
}

// redactedError is an error whose text has had a secret removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
