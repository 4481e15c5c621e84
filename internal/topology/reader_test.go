package topology

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

func TestDataSizeCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &DataSizeCache{now: func() time.Time { return now }}
	const a, b = "198.18.0.11:3306", "198.18.0.12:3306"

	// First read of a server: due; the size read is remembered.
	if !c.due(a) {
		t.Fatal("first read not due")
	}
	read := &mysql.Stats{DataBytes: 1000, DataBytesRead: true, DataBytesAt: now}
	c.done(a, true, read)

	// 5 s later: not due, the last size is filled in but not marked read.
	now = now.Add(5 * time.Second)
	if c.due(a) {
		t.Error("due again after 5 s")
	}
	s := &mysql.Stats{}
	c.done(a, false, s)
	if s.DataBytes != 1000 || s.DataBytesRead || !s.DataBytesAt.Equal(now.Add(-5*time.Second)) {
		t.Errorf("filled in: %+v", s)
	}
	// Another server has its own schedule, and nothing to fill in yet.
	if !c.due(b) {
		t.Error("server b not due")
	}
	s = &mysql.Stats{}
	c.done(b, true, s) // read failed
	if !s.DataBytesAt.IsZero() || s.DataBytes != 0 {
		t.Errorf("unknown size filled in: %+v", s)
	}
	// A failed read is retried after a minute, not five.
	now = now.Add(30 * time.Second)
	if c.due(b) {
		t.Error("failed read retried after 30 s")
	}
	c.done(b, false, nil)
	now = now.Add(31 * time.Second)
	if !c.due(b) {
		t.Error("failed read not retried after a minute")
	}
	c.done(b, true, nil) // the status read itself failed

	// After DefaultDataSizeEvery the first server is due again.
	now = now.Add(DefaultDataSizeEvery)
	if !c.due(a) {
		t.Error("not due after 5 minutes")
	}

	// A nil cache never reads and fills nothing.
	var none *DataSizeCache
	if none.due(a) {
		t.Error("nil cache due")
	}
	none.done(a, false, &mysql.Stats{})
}

func TestDataSizeCacheConcurrent(t *testing.T) {
	c := NewDataSizeCache(time.Hour)
	var reads atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			s := &mysql.Stats{}
			due := c.due("db1:3306")
			if due {
				reads.Add(1)
				s.DataBytes, s.DataBytesRead, s.DataBytesAt = 42, true, time.Now()
			}
			c.done("db1:3306", due, s)
		})
	}
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("%d concurrent readers read the data size, want 1", n)
	}
}
