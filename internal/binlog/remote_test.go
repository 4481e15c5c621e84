package binlog

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudmha/cloudmha/internal/mysql"
)

func TestParseOutput(t *testing.T) {
	out := "#cloudmha tool mariadb-binlog gtid\n#cloudmha index /d/mysql-bin.index\n" +
		"#cloudmha file /d/mysql-bin.000003 1568 0-1-5\n#cloudmha file /d/mysql-bin.000002 1058 0-1-3\n" +
		"#cloudmha start /d/mysql-bin.000002 covered\n#cloudmha decode\nSELECT 1;\n# End of log file\n\n" +
		"#cloudmha stderr WARNING: one\n#cloudmha stderr two\n#cloudmha rc 0\n"
	l, body, err := ParseOutput([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := Listing{
		Tool: "mariadb-binlog", GTIDMode: true, Index: "/d/mysql-bin.index",
		Examined: []FileInfo{{"/d/mysql-bin.000003", 1568, "0-1-5"}, {"/d/mysql-bin.000002", 1058, "0-1-3"}},
		Start:    "/d/mysql-bin.000002", StartCovered: true,
		Decoded: []string{"/d/mysql-bin.000002", "/d/mysql-bin.000003"},
		Stderr:  []string{"WARNING: one", "two"},
	}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("listing\n got %+v\nwant %+v", l, want)
	}
	if strings.TrimSpace(string(body)) != "SELECT 1;\n# End of log file" {
		t.Errorf("body %q", body)
	}

	if _, _, err := ParseOutput([]byte("#cloudmha tool x\n#cloudmha decode\nSELECT 1;\n")); err == nil {
		t.Error("output without exit status accepted")
	}
	if _, _, err := ParseOutput([]byte("Welcome to the host!\n#cloudmha decode\n")); err == nil {
		t.Error("garbage before the listing accepted")
	}
	l, _, err = ParseOutput([]byte("#cloudmha tool mariadb-binlog\n#cloudmha error no binary logs found in /x\n"))
	if err != nil || l.Error != "no binary logs found in /x" {
		t.Errorf("error line: %+v %v", l, err)
	}
}

// TestScriptLocal runs the remote script on this machine against the
// sample binlog files (needs mariadb-binlog).
func TestScriptLocal(t *testing.T) {
	if _, err := exec.LookPath("mariadb-binlog"); err != nil {
		t.Skip("mariadb-binlog not installed")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	setup := func(t *testing.T, files []string, index bool) string {
		dir := t.TempDir()
		var idx strings.Builder
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join("testdata", "binlogs", f))
			if err != nil {
				t.Fatal(err)
			}
			name := f
			if strings.HasPrefix(f, "truncated-") {
				name = "mysql-bin" + strings.TrimPrefix(f, "truncated-bin")
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
			idx.WriteString("./" + name + "\n")
			// Distinct, increasing modification times.
			mt := time.Now().Add(time.Duration(len(idx.String())-1000) * time.Second)
			_ = os.Chtimes(filepath.Join(dir, name), mt, mt)
		}
		if index {
			if err := os.WriteFile(filepath.Join(dir, "mysql-bin.index"), []byte(idx.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			// A relay log index beside it must be ignored.
			if err := os.WriteFile(filepath.Join(dir, "relay-bin.index"), []byte("./relay-bin.000001\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	run := func(t *testing.T, dirs []string, start string) (Listing, []Unit) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "sh", "-c", Script(dirs, start, t.TempDir())).Output()
		if err != nil {
			t.Fatalf("script: %v", err)
		}
		l, body, err := ParseOutput(out)
		if err != nil {
			t.Fatalf("ParseOutput: %v\n%s", err, out)
		}
		units, err := Parse(Split(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		return l, units
	}
	all := []string{"mysql-bin.000001", "mysql-bin.000002", "mysql-bin.000003"}
	base := func(l Listing) []string {
		var out []string
		for _, f := range l.Decoded {
			out = append(out, filepath.Base(f))
		}
		return out
	}

	t.Run("newest file covers", func(t *testing.T) {
		dir := setup(t, all, true)
		l, units := run(t, []string{"/nonexistent", dir}, "0-1-5")
		if !l.StartCovered || !l.GTIDMode || l.ExitCode != 0 || !reflect.DeepEqual(base(l), []string{"mysql-bin.000003"}) {
			t.Fatalf("listing %+v", l)
		}
		if got := txnGTIDs(units, true); !reflect.DeepEqual(got, []string{"1-1-1", "0-1-6", "0-1-7", "0-1-8", "0-1-9"}) {
			t.Fatalf("decoded %v", got)
		}
	})
	t.Run("go back to the first file", func(t *testing.T) {
		dir := setup(t, all, true)
		l, units := run(t, []string{dir}, "0-1-2")
		if !l.StartCovered || !reflect.DeepEqual(base(l), all) || len(l.Examined) != 3 {
			t.Fatalf("listing %+v", l)
		}
		if got := txnGTIDs(units, true); !reflect.DeepEqual(got, []string{"0-1-3", "0-1-4", "0-1-5", "1-1-1", "0-1-6", "0-1-7", "0-1-8", "0-1-9"}) {
			t.Fatalf("decoded %v", got)
		}
	})
	t.Run("nothing new", func(t *testing.T) {
		dir := setup(t, all, true)
		l, units := run(t, []string{dir}, "0-1-9,1-1-1")
		if !l.StartCovered || l.ExitCode != 0 {
			t.Fatalf("listing %+v", l)
		}
		if got := txnGTIDs(units, true); len(got) != 0 {
			t.Fatalf("decoded %v", got)
		}
	})
	t.Run("empty start decodes everything", func(t *testing.T) {
		dir := setup(t, all, true)
		l, units := run(t, []string{dir}, "")
		if !l.StartCovered || l.GTIDMode || len(txnGTIDs(units, true)) != 10 {
			t.Fatalf("listing %+v, %v", l, txnGTIDs(units, true))
		}
	})
	t.Run("no index", func(t *testing.T) {
		dir := setup(t, all, false)
		l, _ := run(t, []string{dir}, "0-1-5")
		if l.Index != "" || !l.StartCovered || !reflect.DeepEqual(base(l), []string{"mysql-bin.000003"}) {
			t.Fatalf("listing %+v", l)
		}
	})
	t.Run("purged binlogs", func(t *testing.T) {
		dir := setup(t, all[1:], true)
		l, _ := run(t, []string{dir}, "0-1-1")
		if l.StartCovered {
			t.Fatalf("listing %+v", l)
		}
	})
	t.Run("truncated last file", func(t *testing.T) {
		dir := setup(t, []string{"mysql-bin.000001", "mysql-bin.000002", "truncated-bin.000003"}, true)
		l, units := run(t, []string{dir}, "0-1-7,1-1-1")
		cov, _ := NewCoverage(mysql.MustParseGTIDSet(mysql.MariaDB, "0-1-7,1-1-1"))
		p, err := Filter(units, cov)
		if err != nil {
			t.Fatal(err)
		}
		if l.ExitCode != 0 || !reflect.DeepEqual(gtidStrings(p.Apply), []string{"0-1-8"}) || !reflect.DeepEqual(gtidStrings(p.Incomplete), []string{"0-1-9"}) {
			t.Fatalf("listing %+v apply %v incomplete %v", l, p.Apply, p.Incomplete)
		}
	})
	t.Run("no binlogs", func(t *testing.T) {
		l, _ := run(t, []string{t.TempDir()}, "0-1-5")
		if !strings.HasPrefix(l.Error, "no binary logs found") {
			t.Fatalf("listing %+v", l)
		}
	})
}
