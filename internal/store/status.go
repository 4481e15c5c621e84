// Package store keeps a manager's durable state in its work directory: the
// status file that `cloudmha status` (masterha_check_status) reads, and later
// the failover journal, history and lock.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// State is a manager's state, numbered as MHA's ManagerConst.pm numbers it;
// the number is also `status`'s exit code.
type State int

// MHA's manager states.
const (
	Running             State = 0
	NotRunning          State = 2
	PartiallyRunning    State = 3
	NotFound            State = 4
	InitializingMonitor State = 10
	PingFailing         State = 20
	PingFailed          State = 21
	RetryingMonitor     State = 30
	ConfigError         State = 31
	TimestampOld        State = 32
	FailoverRunning     State = 50
	FailoverError       State = 51
)

var stateNames = map[State]string{
	Running: "PING_OK", NotRunning: "NOT_RUNNING", PartiallyRunning: "PARTIALLY_RUNNING",
	NotFound: "NOT_FOUND", InitializingMonitor: "INITIALIZING_MONITOR", PingFailing: "PING_FAILING",
	PingFailed: "PING_FAILED", RetryingMonitor: "RETRYING_MONITOR", ConfigError: "CONFIG_ERROR",
	TimestampOld: "TIMESTAMP_OLD", FailoverRunning: "FAILOVER_RUNNING", FailoverError: "FAILOVER_ERROR",
}

// String is MHA's spelling, e.g. "0:PING_OK".
func (s State) String() string { return fmt.Sprintf("%d:%s", int(s), s.Name()) }

// ParseState parses MHA's "code:NAME" spelling.
func ParseState(s string) (State, error) {
	code, name, _ := strings.Cut(s, ":")
	n, err := strconv.Atoi(code)
	if err != nil {
		return 0, fmt.Errorf("state %q: not of the form CODE:NAME", s)
	}
	st := State(n)
	if want, ok := stateNames[st]; !ok || (name != "" && name != want) {
		return 0, fmt.Errorf("state %q: unknown state", s)
	}
	return st, nil
}

// Name is MHA's status word without its number: "PING_OK".
func (s State) Name() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return "UNKNOWN"
}

// StateByName returns the state MHA spells name (PING_OK, …).
func StateByName(name string) (State, bool) {
	for st, n := range stateNames {
		if n == name {
			return st, true
		}
	}
	return 0, false
}

// Status is one line of the status file.
type Status struct {
	PID     int
	State   State
	Primary string    // address of the primary the manager watches
	Updated time.Time // the file's modification time
}

// StatusPath is where a manager of cluster app keeps its status: MHA's own
// file name, so that tooling written for MHA keeps finding it.
func StatusPath(workdir, app string) string {
	return filepath.Join(workdir, app+".master_status.health")
}

// WriteStatus replaces the status file atomically.
func WriteStatus(path string, s Status) error {
	line := fmt.Sprintf("%d\t%s\tmaster:%s\n", s.PID, s.State, s.Primary)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return fmt.Errorf("write status file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write status file: %w", err)
	}
	return nil
}

// ReadStatus reads the status file. A missing file is reported with an error
// that wraps fs.ErrNotExist.
func ReadStatus(path string) (Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}, fmt.Errorf("read status file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Status{}, fmt.Errorf("read status file: %w", err)
	}
	fields := strings.Split(strings.TrimSpace(string(b)), "\t")
	if len(fields) < 2 {
		return Status{}, fmt.Errorf("status file %s: malformed line %q", path, strings.TrimSpace(string(b)))
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return Status{}, fmt.Errorf("status file %s: bad pid %q", path, fields[0])
	}
	st, err := ParseState(fields[1])
	if err != nil {
		return Status{}, fmt.Errorf("status file %s: %w", path, err)
	}
	s := Status{PID: pid, State: st, Updated: fi.ModTime()}
	if len(fields) > 2 {
		s.Primary = strings.TrimPrefix(fields[2], "master:")
	}
	return s, nil
}

// Evaluate decides the state `status` reports: NotRunning when there is no
// file or its process is gone, TimestampOld when a running manager has not
// refreshed the file for much longer than its ping interval, else the
// recorded state.
func Evaluate(path string, now time.Time, pingInterval time.Duration, alive func(pid int) bool) (State, Status, error) {
	s, err := ReadStatus(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NotRunning, s, nil
	}
	if err != nil {
		return ConfigError, s, err
	}
	if alive == nil {
		alive = ProcessAlive
	}
	if !alive(s.PID) {
		return NotRunning, s, nil
	}
	stale := 10 * pingInterval
	if stale < 30*time.Second {
		stale = 30 * time.Second
	}
	if s.State == Running && now.Sub(s.Updated) > stale {
		return TimestampOld, s, nil
	}
	return s.State, s, nil
}

// ProcessAlive reports whether a process with this PID exists.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
