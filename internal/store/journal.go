package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Journal record states.
const (
	StepStarted = "started"
	StepDone    = "done"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// Reserved step names of the journal: the first record of a run carries
// the plan, the last one says how the run ended.
const (
	StepPlan   = "plan"
	StepFinish = "finish"
	// StepAbandon closes a run that a person decided not to resume.
	StepAbandon = "abandon"
)

// JournalRecord is one line of a failover journal.
type JournalRecord struct {
	ID     string    `json:"id"`   // run identifier
	Kind   string    `json:"kind"` // failover | switchover
	Step   string    `json:"step"` // step key (unique within the run), or StepPlan/StepFinish/StepAbandon
	Index  int       `json:"index"`
	State  string    `json:"state"` // started | done | failed | skipped
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
	// Plan is the serialized plan; only on the StepPlan record.
	Plan json.RawMessage `json:"plan,omitempty"`
}

// FailoverRecord is what the journal knows about one run.
type FailoverRecord struct {
	ID      string
	Kind    string
	Plan    json.RawMessage
	Started time.Time
	// Steps holds the last record of every step key, in journal order of
	// their first appearance.
	Steps []JournalRecord
	// Finished is set when a StepFinish record with State done or a
	// StepAbandon record closed the run. A run whose StepFinish says failed
	// stays unfinished: the cluster is half-way.
	Finished bool
	// FinishState is the State of that closing record.
	FinishState string
}

// StepState returns the last journaled state of step key ("" when the step
// was never journaled).
func (f *FailoverRecord) StepState(key string) string {
	for _, r := range f.Steps {
		if r.Step == key {
			return r.State
		}
	}
	return ""
}

// Journal is an append-only file of JSON lines, one record per line, each
// written with fsync before Append returns. A manager that restarts reads it
// back to resume an unfinished failover. It is safe for concurrent use.
type Journal struct {
	path string

	mu      sync.Mutex
	f       *os.File
	records []JournalRecord
	// Torn is true when the last line of the file was incomplete (a crash
	// during a write); that line was ignored.
	torn bool
}

// JournalPath is where a manager of cluster app keeps its failover journal.
func JournalPath(workdir, app string) string {
	return filepath.Join(workdir, app+".journal")
}

// OpenJournal opens (creating it if needed) the journal at path and reads the
// records it already holds. A last line cut short by a crash is ignored;
// any other unreadable line is an error, because resuming from a journal
// that cannot be read could repeat or skip work.
func OpenJournal(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open journal %s: create directory: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	j := &Journal{path: path}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var r JournalRecord
		if err := json.Unmarshal(b, &r); err != nil {
			if !bytes.HasSuffix(data, []byte("\n")) && isLastLine(data, line) {
				j.torn = true
				break
			}
			return nil, fmt.Errorf("open journal %s: line %d: %w", path, line, err)
		}
		j.records = append(j.records, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if j.torn {
		// Cut the torn line off so that the next record starts cleanly.
		if err := f.Truncate(int64(bytes.LastIndexByte(data, '\n') + 1)); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("open journal %s: cut torn line: %w", path, err)
		}
	}
	j.f = f
	return j, nil
}

// isLastLine reports whether line (1-based) is the last line of data.
func isLastLine(data []byte, line int) bool {
	return bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n"))+1 == line
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Torn reports whether OpenJournal found (and ignored) a torn last line.
func (j *Journal) Torn() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.torn
}

// Append writes r as one line and syncs the file. A zero At is set to now.
func (j *Journal) Append(r JournalRecord) error {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal %s: encode record: %w", j.path, err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("journal %s: closed", j.path)
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal %s: write: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: sync: %w", j.path, err)
	}
	j.records = append(j.records, r)
	return nil
}

// Records returns a copy of every record read or appended so far.
func (j *Journal) Records() []JournalRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]JournalRecord(nil), j.records...)
}

// Runs returns every run of the journal, oldest first.
func (j *Journal) Runs() []*FailoverRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	var runs []*FailoverRecord
	byID := map[string]*FailoverRecord{}
	for _, r := range j.records {
		run := byID[r.ID]
		if run == nil {
			run = &FailoverRecord{ID: r.ID, Kind: r.Kind, Started: r.At}
			byID[r.ID] = run
			runs = append(runs, run)
		}
		switch r.Step {
		case StepPlan:
			run.Plan = r.Plan
			continue
		case StepFinish:
			// A run that stopped on a failed step is not finished: the
			// cluster is half-way; resume it or abandon it explicitly.
			run.Finished = r.State == StepDone
			run.FinishState = r.State
			continue
		case StepAbandon:
			run.Finished = true
			run.FinishState = r.State
			continue
		}
		replaced := false
		for i := range run.Steps {
			if run.Steps[i].Step == r.Step {
				run.Steps[i] = r
				replaced = true
				break
			}
		}
		if !replaced {
			run.Steps = append(run.Steps, r)
		}
	}
	return runs
}

// Unfinished returns the latest run that has a plan and did not finish: a
// manager stopped in the middle of it, or a step failed and no one has
// abandoned the run since.
func (j *Journal) Unfinished() (*FailoverRecord, bool) {
	runs := j.Runs()
	for i := len(runs) - 1; i >= 0; i-- {
		if !runs[i].Finished && runs[i].Plan != nil {
			return runs[i], true
		}
	}
	return nil, false
}

// Abandon closes run id without resuming it (a person has taken over).
func (j *Journal) Abandon(id, kind, why string) error {
	return j.Append(JournalRecord{ID: id, Kind: kind, Step: StepAbandon, State: StepFailed, Detail: why})
}

// Close closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// HistoryPath is where finished failover and switchover reports of cluster
// app are kept, one JSON document per line.
func HistoryPath(workdir, app string) string {
	return filepath.Join(workdir, app+".history.jsonl")
}

// AppendHistory appends report (any JSON-encodable value) as one line of the
// history file at path and syncs it.
func AppendHistory(path string, report any) error {
	b, err := json.Marshal(report)
	if err != nil {
		return fmt.Errorf("history %s: encode report: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("history %s: create directory: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("history %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("history %s: write: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("history %s: sync: %w", path, err)
	}
	return f.Close()
}

// ReadHistory returns every line of the history file at path as raw JSON,
// oldest first; a missing file is an empty history.
func ReadHistory(path string) ([]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	var out []json.RawMessage
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			continue // a torn last line after a crash
		}
		out = append(out, json.RawMessage(append([]byte(nil), line...)))
	}
	return out, nil
}

// FailoverCompletePath is MHA's anti-flapping file: a failover newer than
// --last_failover_minute blocks the next automatic one.
func FailoverCompletePath(workdir, app string) string {
	return filepath.Join(workdir, app+".failover.complete")
}

// ackPath is the acknowledgement that lifts the block of the failover
// recorded at path; a separate file, so that the failover's record stays.
func ackPath(path string) string { return path + ".ack" }

// MarkFailoverComplete writes MHA's failover.complete file; its modification
// time is the failover's time, as MHA reads it.
func MarkFailoverComplete(path string, at time.Time, detail string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("mark failover complete %s: %w", path, err)
	}
	if err := writeFileSync(path, []byte(detail+"\n")); err != nil {
		return fmt.Errorf("mark failover complete %s: %w", path, err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		return fmt.Errorf("mark failover complete %s: set time: %w", path, err)
	}
	return nil
}

// LastFailover returns the time of the last failover recorded at path that
// no one has acknowledged; false when there is none (no file, or an Ack at
// or after it). Callers compare the time with their block period.
func LastFailover(path string) (time.Time, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}, false
	}
	at := st.ModTime()
	if ack, err := os.Stat(ackPath(path)); err == nil && !ack.ModTime().Before(at) {
		return time.Time{}, false
	}
	return at, true
}

// Ack acknowledges the failover recorded at path: LastFailover no longer
// reports it, so automatic failover is allowed again. who and note are kept
// in the acknowledgement file for the record.
func Ack(path, who, note string, at time.Time) error {
	b, err := json.Marshal(struct {
		At   time.Time `json:"at"`
		By   string    `json:"by,omitempty"`
		Note string    `json:"note,omitempty"`
	}{at, who, note})
	if err != nil {
		return fmt.Errorf("acknowledge failover %s: %w", path, err)
	}
	p := ackPath(path)
	if err := writeFileSync(p, append(b, '\n')); err != nil {
		return fmt.Errorf("acknowledge failover %s: %w", path, err)
	}
	if err := os.Chtimes(p, at, at); err != nil {
		return fmt.Errorf("acknowledge failover %s: set time: %w", path, err)
	}
	return nil
}

// writeFileSync replaces path with data through a synced temporary file.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
