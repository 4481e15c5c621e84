package remote

import (
	"context"
	"strings"
	"sync"
	"time"
)

// CheckResult is the outcome of checking SSH to one host.
type CheckResult struct {
	Server  string        `json:"server"`
	Addr    string        `json:"addr"`
	User    string        `json:"user"`
	OK      bool          `json:"ok"`
	Elapsed time.Duration `json:"-"`
	Ms      float64       `json:"ms"`
	Detail  string        `json:"detail,omitempty"` // what the host said (uname, binlog tool)
	Error   string        `json:"error,omitempty"`
}

// probeCmd checks the host can run what binlog salvage needs later: a shell
// and mysqlbinlog / mariadb-binlog.
const probeCmd = `uname -n; command -v mariadb-binlog || command -v mysqlbinlog || echo "no mysqlbinlog/mariadb-binlog in PATH"`

// CheckAll connects to every target concurrently and runs a harmless command.
// names are parallel to targets.
func CheckAll(ctx context.Context, names []string, targets []Target) []CheckResult {
	out := make([]CheckResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r := CheckResult{Server: names[i], Addr: t.Addr, User: t.User}
			c, err := Dial(ctx, t)
			if err == nil {
				var b []byte
				b, err = c.Run(ctx, probeCmd)
				r.Detail = strings.Join(strings.Fields(string(b)), " ")
				_ = c.Close()
			}
			r.OK = err == nil
			if err != nil {
				r.Error = err.Error()
			}
			r.Elapsed = time.Since(start)
			r.Ms = float64(r.Elapsed.Microseconds()) / 1000
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}
