package topology

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudmha/cloudmha/internal/config"
	"github.com/cloudmha/cloudmha/internal/mysql"
)

// MySQLReader reads servers over the MySQL protocol with the credentials of
// the configuration. It opens a fresh connection per Read: check-repl runs
// once, and the monitor (which keeps connections open) has its own reader.
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

	st, err := inst.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", s.Name, err)
	}
	ns := &NodeState{Status: st}
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
