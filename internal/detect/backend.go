package detect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// backend is the Monitor's access to the servers. mysqlBackend implements it
// over internal/mysql; unit tests drive the Monitor with a fake.
type backend interface {
	// ProbePrimary probes the primary once (ping_type decides how). It must
	// return within ctx's deadline.
	ProbePrimary(ctx context.Context) error
	// WatchPrimary opens a dedicated connection to the primary and blocks
	// on it until it breaks (returning established=true and why) or ctx
	// ends. established=false means the connection could not be opened.
	WatchPrimary(ctx context.Context) (established bool, err error)
	// ReadReplica reads replica i's receiver state.
	ReadReplica(ctx context.Context, i int) (*mysql.ReceiverStatus, error)
	// Close releases every connection.
	Close()
}

// watchSleep is how long one SELECT SLEEP of the watch connection lasts.
// The server answers it only at the end, so the connection is blocked in a
// read all the time: a crashed mysqld closes the socket and the read returns
// at once.
const watchSleep = 30 * time.Second

// mysqlBackend keeps one probe connection to the primary (MaxOpenConns 1),
// one watch connection, and one connection per replica.
type mysqlBackend struct {
	primary  config.Server
	replicas []config.Server
	pingType string
	timeout  time.Duration // probe connect/read timeout
	rtimeout time.Duration // replica read timeout
	dial     mysql.DialFunc

	mu          sync.Mutex // guards probe and tableReady
	probe       *mysql.Instance
	tableReady  bool
	replicaMu   []sync.Mutex
	replicaInst []*mysql.Instance
}

func newMySQLBackend(o *MonitorOptions, pingType string, timeout, rtimeout time.Duration) *mysqlBackend {
	return &mysqlBackend{
		primary:     o.Primary,
		replicas:    o.Replicas,
		pingType:    pingType,
		timeout:     timeout,
		rtimeout:    rtimeout,
		dial:        o.Dial,
		replicaMu:   make([]sync.Mutex, len(o.Replicas)),
		replicaInst: make([]*mysql.Instance, len(o.Replicas)),
	}
}

func (b *mysqlBackend) connConfig(s config.Server, connect, read time.Duration) mysql.ConnConfig {
	return mysql.ConnConfig{
		Addr:           s.Addr(),
		User:           s.User,
		Password:       s.Password.Value(),
		ConnectTimeout: connect,
		ReadTimeout:    read,
		WriteTimeout:   connect,
		Dial:           b.dial,
		MaxOpenConns:   1,
	}
}

// ProbePrimary implements backend.
func (b *mysqlBackend) ProbePrimary(ctx context.Context) error {
	if b.pingType == config.PingConnect {
		inst, err := mysql.Open(ctx, b.connConfig(b.primary, b.timeout, b.timeout))
		if err != nil {
			return err
		}
		return inst.Close()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.probe == nil {
		inst, err := mysql.Open(ctx, b.connConfig(b.primary, b.timeout, b.timeout))
		if err != nil {
			return err
		}
		b.probe = inst
	}
	if b.pingType == config.PingInsert {
		if err := b.probe.WriteHeartbeat(ctx, !b.tableReady); err != nil {
			return err
		}
		b.tableReady = true
		return nil
	}
	var one int
	if err := b.probe.DB().QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("SELECT 1 on %s: %w", b.primary.Addr(), err)
	}
	return nil
}

// WatchPrimary implements backend with SELECT SLEEP on a dedicated
// connection whose read timeout outlasts the sleep.
func (b *mysqlBackend) WatchPrimary(ctx context.Context) (bool, error) {
	inst, err := mysql.Open(ctx, b.connConfig(b.primary, b.timeout, watchSleep+b.timeout+5*time.Second))
	if err != nil {
		return false, err
	}
	defer inst.Close()
	secs := int(watchSleep / time.Second)
	for {
		var r int
		if err := inst.DB().QueryRowContext(ctx, "SELECT SLEEP(?)", secs).Scan(&r); err != nil {
			return true, fmt.Errorf("watch connection to %s: %w", b.primary.Addr(), err)
		}
		// r == 1: the sleep was interrupted (KILL QUERY, max_statement_time):
		// the server is alive; sleep again.
	}
}

// ReadReplica implements backend.
func (b *mysqlBackend) ReadReplica(ctx context.Context, i int) (*mysql.ReceiverStatus, error) {
	b.replicaMu[i].Lock()
	defer b.replicaMu[i].Unlock()
	if b.replicaInst[i] == nil {
		inst, err := mysql.Open(ctx, b.connConfig(b.replicas[i], b.rtimeout, b.rtimeout))
		if err != nil {
			return nil, err
		}
		b.replicaInst[i] = inst
	}
	return b.replicaInst[i].ReceiverStatus(ctx)
}

// Close implements backend.
func (b *mysqlBackend) Close() {
	b.mu.Lock()
	if b.probe != nil {
		_ = b.probe.Close()
		b.probe = nil
	}
	b.mu.Unlock()
	for i := range b.replicaInst {
		b.replicaMu[i].Lock()
		if b.replicaInst[i] != nil {
			_ = b.replicaInst[i].Close()
			b.replicaInst[i] = nil
		}
		b.replicaMu[i].Unlock()
	}
}

// isTimeout reports whether err is a timeout (ctx deadline or network).
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
