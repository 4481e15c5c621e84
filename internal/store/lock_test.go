package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app1.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if HolderPID(p) != os.Getpid() {
		t.Errorf("holder pid %d, want %d", HolderPID(p), os.Getpid())
	}
	// flock locks belong to open file descriptions: a second open in the
	// same process conflicts too, which is what lets this test observe it.
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := AcquireLock(ctx, p); err == nil {
		t.Fatal("AcquireLock succeeded while held")
	}
	done := make(chan *Lock)
	go func() {
		l2, err := AcquireLock(context.Background(), p)
		if err != nil {
			t.Error(err)
		}
		done <- l2
	}()
	time.Sleep(100 * time.Millisecond)
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case l2 := <-done:
		_ = l2.Unlock()
	case <-time.After(5 * time.Second):
		t.Fatal("AcquireLock did not get the released lock")
	}
}
