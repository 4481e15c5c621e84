package testbed

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

// WorkloadOptions configures StartWorkload. Zero values take the defaults.
type WorkloadOptions struct {
	Addr     string        // default VIP:3306
	Rate     int           // writes per second, default 100
	Duration time.Duration // default 5 min; the workload always ends by itself
	NS       string        // namespace to connect from, default the client namespace
	Writer   string        // value of the writer column, default "workload"
	// ConnectTimeout bounds one connection attempt (default 1 s);
	// WriteTimeout bounds one BEGIN/INSERT/COMMIT (default 3 s plus the
	// semi-sync timeout, so a commit waiting for acks is not cut short).
	ConnectTimeout time.Duration
	WriteTimeout   time.Duration
}

// WorkloadResult is what a workload did.
type WorkloadResult struct {
	// Acked holds, in order, every id whose COMMIT returned OK: those rows
	// must never be lost.
	Acked []int64
	// Uncertain holds ids whose COMMIT was sent but returned an error: the
	// row may or may not exist. Ids whose INSERT failed are rolled back and
	// appear in neither list.
	Uncertain []int64
	Attempts  int // writes attempted (connection attempts not included)
	Errors    int // failed connection attempts and failed writes
	// FirstError/LastError are the times of the first and last error (zero
	// when none); LastErrorText is the last one's message.
	FirstError, LastError time.Time
	LastErrorText         string
	// MaxAckGap is the longest time without an acknowledged write (from the
	// start, between acks, and until the end): the outage clients saw.
	MaxAckGap        time.Duration
	Started, Stopped time.Time
}

// Workload inserts rows into cloudmha_test.writes at a fixed rate from a
// client namespace and records which were acknowledged.
type Workload struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	res     WorkloadResult
	lastAck time.Time
}

// idSeq gives ids unique in this process and, being seeded with the start
// time in microseconds, across processes using the same bed.
var idSeq atomic.Int64

func init() { idSeq.Store(time.Now().UnixMicro()) }

// StartWorkload starts a workload: one connection (reopened after any
// error) with the monitoring user, one INSERT per transaction, at o.Rate
// (writes that take longer than the interval delay the next ones; no burst
// to catch up). It stops at o.Duration, when ctx ends, or at Stop.
func (b *Bed) StartWorkload(ctx context.Context, o WorkloadOptions) (*Workload, error) {
	if o.Addr == "" {
		o.Addr = fmt.Sprintf("%s:%d", b.VIP, MySQLPort)
	}
	if o.Rate <= 0 {
		o.Rate = 100
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Minute
	}
	if o.NS == "" {
		o.NS = b.ClientNS
	}
	if o.Writer == "" {
		o.Writer = "workload"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 3 * time.Second
		if b.Opts.SemiSync {
			o.WriteTimeout += b.Opts.SemiSyncTimeout
		}
	}
	if err := allowedTarget(b.subnet, o.Addr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	w := &Workload{cancel: cancel, done: make(chan struct{})}
	now := time.Now()
	w.res.Started, w.lastAck = now, now
	cfg := mysql.ConnConfig{
		Addr:           o.Addr,
		User:           b.User,
		Password:       b.Password,
		ConnectTimeout: o.ConnectTimeout,
		ReadTimeout:    o.WriteTimeout,
		WriteTimeout:   o.WriteTimeout,
		Dial:           mysql.DialFunc(b.Dialer(o.NS)),
		MaxOpenConns:   1,
	}
	go w.run(ctx, cfg, o)
	return w, nil
}

func (w *Workload) run(ctx context.Context, cfg mysql.ConnConfig, o WorkloadOptions) {
	defer close(w.done)
	var inst *mysql.Instance
	defer func() {
		if inst != nil {
			_ = inst.Close()
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	insert := fmt.Sprintf("INSERT INTO %s.%s (id, writer) VALUES (?, ?)", TestDatabase, TestTable)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if inst == nil {
			octx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+cfg.ReadTimeout)
			var err error
			inst, err = mysql.Open(octx, cfg)
			cancel()
			if err != nil {
				inst = nil
				if ctx.Err() == nil {
					w.failed(err, 0, false)
				}
				continue
			}
		}
		id := idSeq.Add(1)
		// Not derived from ctx: Stop lets the write in flight finish, so
		// that its outcome is known.
		wctx, cancel := context.WithTimeout(context.Background(), o.WriteTimeout)
		committed, err := write(wctx, inst, insert, id, o.Writer)
		cancel()
		if err != nil {
			w.failed(err, id, committed)
			_ = inst.Close()
			inst = nil
			continue
		}
		w.acked(id)
	}
}

// write runs BEGIN; INSERT; COMMIT. sent reports whether COMMIT was sent.
func write(ctx context.Context, inst *mysql.Instance, insert string, id int64, writer string) (sent bool, err error) {
	tx, err := inst.DB().BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, insert, id, writer); err != nil {
		_ = tx.Rollback()
		return false, err
	}
	return true, tx.Commit()
}

func (w *Workload) acked(id int64) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.res.Attempts++
	w.res.Acked = append(w.res.Acked, id)
	if gap := now.Sub(w.lastAck); gap > w.res.MaxAckGap {
		w.res.MaxAckGap = gap
	}
	w.lastAck = now
}

func (w *Workload) failed(err error, id int64, uncertain bool) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if id != 0 {
		w.res.Attempts++
	}
	if uncertain {
		w.res.Uncertain = append(w.res.Uncertain, id)
	}
	w.res.Errors++
	if w.res.FirstError.IsZero() {
		w.res.FirstError = now
	}
	w.res.LastError = now
	w.res.LastErrorText = err.Error()
}

// Progress returns a copy of the result so far, without stopping.
func (w *Workload) Progress() WorkloadResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.res
	r.Acked = append([]int64(nil), w.res.Acked...)
	r.Uncertain = append([]int64(nil), w.res.Uncertain...)
	return r
}

// Done is closed when the workload has ended (Duration, ctx or Stop).
func (w *Workload) Done() <-chan struct{} { return w.done }

// Stop ends the workload, waits for the write in flight and returns the
// result. It may be called more than once.
func (w *Workload) Stop() WorkloadResult {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.res.Stopped.IsZero() {
		w.res.Stopped = time.Now()
		if gap := w.res.Stopped.Sub(w.lastAck); gap > w.res.MaxAckGap {
			w.res.MaxAckGap = gap
		}
	}
	r := w.res
	r.Acked = append([]int64(nil), w.res.Acked...)
	r.Uncertain = append([]int64(nil), w.res.Uncertain...)
	return r
}

// WrittenIDs returns every id in cloudmha_test.writes on h, ascending (read
// as root over the unix socket).
func (b *Bed) WrittenIDs(ctx context.Context, h *Host) ([]int64, error) {
	out, err := b.SQL(ctx, h, fmt.Sprintf("SELECT id FROM %s.%s ORDER BY id", TestDatabase, TestTable))
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, f := range strings.Fields(out) {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bad id %q", h.Name, f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// MissingWrites returns the acknowledged ids absent on h, ascending.
func (b *Bed) MissingWrites(ctx context.Context, h *Host, acked []int64) ([]int64, error) {
	ids, err := b.WrittenIDs(ctx, h)
	if err != nil {
		return nil, err
	}
	have := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		have[id] = struct{}{}
	}
	var missing []int64
	for _, id := range acked {
		if _, ok := have[id]; !ok {
			missing = append(missing, id)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	return missing, nil
}
