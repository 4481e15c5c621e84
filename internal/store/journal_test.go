package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJournalAppendReopenUnfinished(t *testing.T) {
	path := JournalPath(t.TempDir(), "app1")
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Unfinished(); ok {
		t.Fatal("empty journal has an unfinished run")
	}
	must := func(r JournalRecord) {
		t.Helper()
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	must(JournalRecord{ID: "a", Kind: "failover", Step: StepPlan, State: StepStarted, Plan: json.RawMessage(`{"id":"a"}`)})
	must(JournalRecord{ID: "a", Kind: "failover", Step: "00-x", State: StepStarted})
	must(JournalRecord{ID: "a", Kind: "failover", Step: "00-x", State: StepDone})
	must(JournalRecord{ID: "a", Kind: "failover", Step: StepFinish, State: StepDone})
	must(JournalRecord{ID: "b", Kind: "switchover", Step: StepPlan, State: StepStarted, Plan: json.RawMessage(`{"id":"b"}`)})
	must(JournalRecord{ID: "b", Kind: "switchover", Step: "00-x", State: StepDone})
	must(JournalRecord{ID: "b", Kind: "switchover", Step: "01-y", State: StepStarted})
	_ = j.Close()

	// A crash tore the last line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"id":"b","kind":"swi`)
	_ = f.Close()

	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if !j.Torn() || len(j.Records()) != 7 {
		t.Fatalf("torn %v, %d records", j.Torn(), len(j.Records()))
	}
	run, ok := j.Unfinished()
	if !ok || run.ID != "b" || run.StepState("00-x") != StepDone || run.StepState("01-y") != StepStarted || string(run.Plan) != `{"id":"b"}` {
		t.Fatalf("unfinished: %+v %v", run, ok)
	}
	// Appending after the torn line works and stays readable.
	if err := j.Append(JournalRecord{ID: "b", Kind: "switchover", Step: StepFinish, State: StepFailed, Detail: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Unfinished(); !ok {
		t.Fatal("a failed run must stay unfinished until abandoned")
	}
	if err := j.Abandon("b", "switchover", "operator fixed it"); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Unfinished(); ok {
		t.Fatal("abandoned run still unfinished")
	}
	j2, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if len(j2.Runs()) != 2 {
		t.Fatalf("runs %d", len(j2.Runs()))
	}

	// A corrupt line in the middle is an error, not silently skipped.
	data, _ := os.ReadFile(path)
	lines := strings.Split(string(data), "\n")
	lines[1] = "garbage"
	bad := filepath.Join(t.TempDir(), "bad.journal")
	_ = os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o600)
	if _, err := OpenJournal(bad); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("corrupt journal: %v", err)
	}
}

func TestHistoryAndAntiFlapping(t *testing.T) {
	dir := t.TempDir()
	hp := HistoryPath(dir, "app1")
	if h, err := ReadHistory(hp); err != nil || len(h) != 0 {
		t.Fatalf("%v %v", h, err)
	}
	for i := 0; i < 2; i++ {
		if err := AppendHistory(hp, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := ReadHistory(hp); err != nil || len(h) != 2 || string(h[1]) != `{"n":1}` {
		t.Fatalf("%s %v", h, err)
	}

	cp := FailoverCompletePath(dir, "app1")
	if filepath.Base(cp) != "app1.failover.complete" {
		t.Fatalf("path %s", cp)
	}
	if _, ok := LastFailover(cp); ok {
		t.Fatal("no failover yet")
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := MarkFailoverComplete(cp, at, "run1"); err != nil {
		t.Fatal(err)
	}
	if got, ok := LastFailover(cp); !ok || !got.Equal(at) {
		t.Fatalf("last failover %s %v", got, ok)
	}
	if err := Ack(cp, "alice", "checked", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := LastFailover(cp); ok {
		t.Fatal("acknowledged failover still blocks")
	}
	if _, err := os.Stat(cp); err != nil {
		t.Fatal("the failover record must stay after an ack")
	}
	// A newer failover blocks again.
	if err := MarkFailoverComplete(cp, at.Add(2*time.Minute), "run2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := LastFailover(cp); !ok {
		t.Fatal("a newer failover must block")
	}
}
