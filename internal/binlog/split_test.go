package binlog

import (
	"reflect"
	"testing"
)

func stmts(items []Item) []string {
	var out []string
	for _, it := range items {
		if it.Kind == Statement {
			out = append(out, it.Text)
		}
	}
	return out
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain", "SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"no final delimiter", "SELECT 1;\nSELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"empty statements", ";;SELECT 1;;", []string{"SELECT 1"}},
		{"single quotes", `INSERT INTO t VALUES ('a;b', 'it''s; x', 'back\'slash;');`, []string{`INSERT INTO t VALUES ('a;b', 'it''s; x', 'back\'slash;')`}},
		{"double quotes and backticks", "SELECT \"x;y\", `we;ird` FROM t;", []string{"SELECT \"x;y\", `we;ird` FROM t"}},
		{"escaped backslash before quote", `SELECT 'a\\'; SELECT 2;`, []string{`SELECT 'a\\'`, "SELECT 2"}},
		{"block comment inside", "SELECT /* ; */ 1;", []string{"SELECT /* ; */ 1"}},
		{"line comment inside", "SELECT 1 # ; not the end\n, 2;", []string{"SELECT 1 # ; not the end\n, 2"}},
		{"dash comment inside", "SELECT 1 -- ; nope\n;", []string{"SELECT 1 -- ; nope"}},
		{"minus minus without space is not a comment", "SELECT 1--1;", []string{"SELECT 1--1"}},
		{"executable comment ends at delimiter", "/*!40019 SET @@session.max_delayed_threads=0*/;", []string{"/*!40019 SET @@session.max_delayed_threads=0*/"}},
		{
			"delimiter change",
			"SELECT 1;\nDELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END//\nDELIMITER ;\nSELECT 3;",
			[]string{"SELECT 1", "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", "SELECT 3"},
		},
		{
			"mysqlbinlog delimiter",
			"DELIMITER /*!*/;\n/*M!100001 SET @@session.gtid_seq_no=5*//*!*/;\nSTART TRANSACTION\n/*!*/;\nCOMMIT/*!*/;\nDELIMITER ;\nROLLBACK /* added by mysqlbinlog */;\n",
			[]string{"/*M!100001 SET @@session.gtid_seq_no=5*/", "START TRANSACTION", "COMMIT", "ROLLBACK /* added by mysqlbinlog */"},
		},
		{
			"binlog block",
			"DELIMITER /*!*/;\nBINLOG '\nFekBaxMBAAAALgAAADICAAAA\nABIAAAAAAAEAAXQAAXcAAwMP/ANkAAIG0lUiMA==\n'/*!*/;\n",
			[]string{"BINLOG '\nFekBaxMBAAAALgAAADICAAAA\nABIAAAAAAAEAAXQAAXcAAwMP/ANkAAIG0lUiMA==\n'"},
		},
		{
			"delimiter inside string with custom delimiter",
			"DELIMITER /*!*/;\nINSERT INTO t VALUES ('x/*!*/;y')\n/*!*/;\n",
			[]string{"INSERT INTO t VALUES ('x/*!*/;y')"},
		},
		{"delimiter keyword inside a statement is text", "SELECT 'DELIMITER ;' ;", []string{"SELECT 'DELIMITER ;'"}},
		{"lowercase delimiter command", "delimiter $$\nSELECT 1$$", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stmts(Split(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitItems(t *testing.T) {
	in := "# at 4\n#261121 18:55:17 server id 1  end_log_pos 256\n/* plain */\nDELIMITER /*!*/;\nSELECT 1\n/*!*/;\n-- bye\n"
	got := Split(in)
	want := []Item{
		{Kind: Comment, Text: "# at 4", Line: 1, Terminated: true},
		{Kind: Comment, Text: "#261121 18:55:17 server id 1  end_log_pos 256", Line: 2, Terminated: true},
		{Kind: Comment, Text: "/* plain */", Line: 3, Terminated: true},
		{Kind: Delimiter, Text: "/*!*/;", Line: 4, Terminated: true},
		{Kind: Statement, Text: "SELECT 1", Line: 5, Terminated: true},
		{Kind: Comment, Text: "-- bye", Line: 7, Terminated: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Split items\n got %+v\nwant %+v", got, want)
	}
}

func TestSplitUnterminated(t *testing.T) {
	for _, in := range []string{"SELECT 'abc", "SELECT /* open", "DELIMITER /*!*/;\nBINLOG '\nAAAA\n"} {
		items := Split(in)
		if len(items) == 0 {
			t.Fatalf("Split(%q): nothing", in)
		}
		last := items[len(items)-1]
		if last.Kind != Statement || last.Terminated {
			t.Errorf("Split(%q): last item %+v, want an unterminated statement", in, last)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"SELECT 1;", "DELIMITER //\nx//", "'a;b';", "/*!*/;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, it := range Split(s) {
			if it.Kind == Statement && it.Text == "" {
				t.Fatalf("empty statement from %q", s)
			}
		}
	})
}
