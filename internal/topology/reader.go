package topology

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// MySQLReader reads servers over the MySQL protocol with the credentials of
// the configuration. It opens a fresh connection per Read: check-repl runs
// once, and the monitor (which keeps connections open) has its own reader.
// It is safe for concurrent use.
type MySQLReader struct {
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// Dial, when set, opens connections (tests dial from a network namespace).
	Dial mysql.DialFunc
	// ReplUser is the replication account to verify; "" means each server's
	// configured repl_user, or failing that the user its replica threads use.
	ReplUser string
	// SkipGrants turns off the grant checks (one round trip fewer).
	SkipGrants bool
	// Stats also reads each server's statistics for metrics into
	// NodeState.Stats, on the same connection and in the same round as its
	// status (mysql.Instance.StatusAndStats): one round trip more with
	// log_bin on. Off by default: the failover path does not pay for it.
	Stats bool
	// DataSize, with Stats, reads each server's data size (expensive on a
	// server with many tables) at most once per DataSize.Every and fills in
	// the last value known in between. The reader is used by value and is
	// often rebuilt for each snapshot, so the cache lives apart: share one
	// across Reads. nil: the data size is never read.
	DataSize *DataSizeCache
}

// Read implements Reader.
func (r MySQLReader) Read(ctx context.Context, s config.Server) (*NodeState, error) {
	inst, err := mysql.Open(ctx, mysql.ConnConfig{
		Addr:           s.Addr(),
		User:           s.User,
		Password:       s.Password.Value(),
		ConnectTimeout: r.ConnectTimeout,
		ReadTimeout:    r.ReadTimeout,
		WriteTimeout:   r.ReadTimeout,
		Dial:           r.Dial,
		MaxOpenConns:   1,
	})
	if err != nil {
		return nil, err
	}
	defer inst.Close()

	ns := &NodeState{}
	if r.Stats {
		key := s.Addr()
		due := r.DataSize.due(key)
		ns.Status, ns.Stats, err = inst.StatusAndStats(ctx, mysql.StatsOptions{DataSize: due})
		r.DataSize.done(key, due, ns.Stats)
	} else {
		ns.Status, err = inst.Status(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", s.Name, err)
	}
	st := ns.Status
	if r.SkipGrants {
		return ns, nil
	}
	if g, err := inst.CurrentGrants(ctx); err == nil {
		ns.Grants = g
	}
	user := r.ReplUser
	if user == "" {
		user = s.ReplUser
	}
	if user == "" && st.Replica != nil {
		user = st.Replica.SourceUser
	}
	if user == "" {
		return ns, nil
	}
	hosts, err := inst.UserHosts(ctx, user)
	if err != nil {
		ns.ReplGrantsErr = err
		return ns, nil
	}
	ns.ReplGrants = map[string][]string{}
	if len(hosts) == 0 {
		ns.ReplGrants[account(user, "%")] = nil
		return ns, nil
	}
	for _, h := range hosts {
		g, err := inst.Grants(ctx, user, h)
		if err != nil {
			ns.ReplGrantsErr = err
			return ns, nil
		}
		ns.ReplGrants[account(user, h)] = g
	}
	return ns, nil
}

func account(user, host string) string { return fmt.Sprintf("'%s'@'%s'", user, host) }

// DefaultDataSizeEvery is how often a DataSizeCache lets a server's data size
// be read when its Every is zero.
const DefaultDataSizeEvery = 5 * time.Minute

// dataSizeRetry is how soon a failed data-size read may be retried (at most
// Every).
const dataSizeRetry = time.Minute

// DataSizeCache spaces out the reads of each server's data size and
// remembers the last one, keyed by the server's address. The zero value is
// ready; it is safe for concurrent use and a nil cache never lets the size
// be read.
type DataSizeCache struct {
	// Every is the interval between two reads of one server; 0 means
	// DefaultDataSizeEvery.
	Every time.Duration

	mu      sync.Mutex
	entries map[string]*dataSizeEntry
	now     func() time.Time // tests
}

type dataSizeEntry struct {
	bytes uint64
	at    time.Time // when bytes was read; zero before the first success
	next  time.Time // no read before then (also set while one runs)
}

// NewDataSizeCache returns a cache that lets each server's size be read
// every interval (0: DefaultDataSizeEvery).
func NewDataSizeCache(every time.Duration) *DataSizeCache { return &DataSizeCache{Every: every} }

func (c *DataSizeCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *DataSizeCache) every() time.Duration {
	if c.Every > 0 {
		return c.Every
	}
	return DefaultDataSizeEvery
}

// due reports whether key's size should be read now; when it is, the slot
// is taken, so concurrent reads of the same server do not all read it.
func (c *DataSizeCache) due(key string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*dataSizeEntry{}
	}
	e := c.entries[key]
	if e == nil {
		e = &dataSizeEntry{}
		c.entries[key] = e
	}
	now := c.clock()
	if now.Before(e.next) {
		return false
	}
	e.next = now.Add(c.every())
	return true
}

// done records the outcome of a read of key (attempted: due said yes) and
// fills in the last size known when s did not read it this time. s may be
// nil (the status read failed).
func (c *DataSizeCache) done(key string, attempted bool, s *mysql.Stats) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		return
	}
	switch {
	case s != nil && s.DataBytesRead:
		e.bytes, e.at = s.DataBytes, s.DataBytesAt
		return
	case attempted:
		if retry := c.clock().Add(min(dataSizeRetry, c.every())); retry.Before(e.next) {
			e.next = retry
		}
	}
	if s != nil && !e.at.IsZero() {
		s.DataBytes, s.DataBytesAt = e.bytes, e.at
	}
}
