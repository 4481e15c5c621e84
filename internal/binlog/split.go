package binlog

import (
	"fmt"
	"strings"
)

// ItemKind says what a piece of a SQL script is.
type ItemKind int

// Kinds of Item.
const (
	// Statement is a statement to send to the server, without its delimiter.
	Statement ItemKind = iota + 1
	// Comment is a comment line ("# at 4", "-- x") or a plain /* … */
	// comment found between statements; it is never sent to the server.
	Comment
	// Delimiter is a client-side DELIMITER command; Text is the new
	// delimiter.
	Delimiter
)

// String names the kind.
func (k ItemKind) String() string {
	switch k {
	case Statement:
		return "statement"
	case Comment:
		return "comment"
	case Delimiter:
		return "delimiter"
	}
	return fmt.Sprintf("ItemKind(%d)", int(k))
}

// Item is one piece of a script as the mysql command-line client would see
// it.
type Item struct {
	Kind ItemKind
	// Text is the statement without its delimiter and surrounding
	// whitespace, the comment line (without its newline), or the new
	// delimiter.
	Text string
	// Line is the 1-based line on which the item starts.
	Line int
	// Terminated is false for a statement that the input ended inside
	// (no delimiter, or inside a string or comment).
	Terminated bool
}

// Split cuts a script such as the output of mysqlbinlog / mariadb-binlog
// into statements the way the mysql command-line client does:
//
//   - the delimiter is ";" until a "DELIMITER x" line (at the start of a
//     statement) changes it; mysqlbinlog uses "DELIMITER /*!*/;";
//   - a delimiter inside a quoted string ('…', "…", `…`, with backslash
//     escapes and doubled quotes) or inside a plain /* … */ comment does
//     not end a statement; inside an executable comment (/*! … */,
//     /*M! … */) it does, as in the client;
//   - lines starting with # or "-- " between statements are Comment items;
//     inside a statement they stay part of its text (the server ignores
//     them).
//
// A statement the input ends inside is returned with Terminated false.
func Split(input string) []Item {
	s := splitter{in: input, delim: ";", line: 1}
	return s.run()
}

type splitter struct {
	in    string
	pos   int
	line  int
	delim string
	out   []Item
}

func (s *splitter) run() []Item {
	for s.pos < len(s.in) {
		s.skipSpace()
		if s.pos >= len(s.in) {
			break
		}
		switch {
		case s.in[s.pos] == '#' || s.hasDashComment(s.pos):
			s.lineComment()
		case strings.HasPrefix(s.in[s.pos:], "/*") && !s.isExecutableComment(s.pos) && !strings.HasPrefix(s.in[s.pos:], s.delim):
			s.blockComment()
		case s.isDelimiterCommand():
			s.delimiterCommand()
		default:
			s.statement()
		}
	}
	return s.out
}

func (s *splitter) advance(n int) {
	s.line += strings.Count(s.in[s.pos:s.pos+n], "\n")
	s.pos += n
}

func (s *splitter) skipSpace() {
	for s.pos < len(s.in) {
		switch s.in[s.pos] {
		case ' ', '\t', '\r', '\n', '\f', '\v':
			s.advance(1)
		default:
			return
		}
	}
}

// hasDashComment reports whether a "-- " comment (two dashes followed by
// whitespace or the end of the line) starts at i.
func (s *splitter) hasDashComment(i int) bool {
	if !strings.HasPrefix(s.in[i:], "--") {
		return false
	}
	if i+2 >= len(s.in) {
		return true
	}
	switch s.in[i+2] {
	case ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func (s *splitter) isExecutableComment(i int) bool {
	r := s.in[i:]
	return strings.HasPrefix(r, "/*!") || strings.HasPrefix(r, "/*M!")
}

func (s *splitter) lineComment() {
	start, line := s.pos, s.line
	end := strings.IndexByte(s.in[s.pos:], '\n')
	if end < 0 {
		end = len(s.in) - s.pos
	}
	s.out = append(s.out, Item{Kind: Comment, Text: strings.TrimRight(s.in[start:start+end], "\r"), Line: line, Terminated: true})
	s.advance(end)
}

func (s *splitter) blockComment() {
	start, line := s.pos, s.line
	end := strings.Index(s.in[s.pos+2:], "*/")
	terminated := end >= 0
	n := len(s.in) - s.pos
	if terminated {
		n = end + 4
	}
	s.advance(n)
	s.out = append(s.out, Item{Kind: Comment, Text: s.in[start:s.pos], Line: line, Terminated: terminated})
}

// isDelimiterCommand reports whether a DELIMITER command starts at pos
// (case-insensitive, followed by whitespace).
func (s *splitter) isDelimiterCommand() bool {
	const kw = "delimiter"
	r := s.in[s.pos:]
	if len(r) <= len(kw) || !strings.EqualFold(r[:len(kw)], kw) {
		return false
	}
	c := r[len(kw)]
	return c == ' ' || c == '\t'
}

func (s *splitter) delimiterCommand() {
	line := s.line
	end := strings.IndexByte(s.in[s.pos:], '\n')
	if end < 0 {
		end = len(s.in) - s.pos
	}
	arg := strings.TrimSpace(s.in[s.pos+len("delimiter") : s.pos+end])
	// The client takes the first word, unquoted.
	if f := strings.Fields(arg); len(f) > 0 {
		arg = f[0]
	}
	if len(arg) >= 2 && (arg[0] == '\'' || arg[0] == '"' || arg[0] == '`') && arg[len(arg)-1] == arg[0] {
		arg = arg[1 : len(arg)-1]
	}
	s.advance(end)
	if arg == "" {
		// "DELIMITER" without an argument is an error in the client;
		// keep the current delimiter and record the attempt.
		s.out = append(s.out, Item{Kind: Comment, Text: "DELIMITER", Line: line, Terminated: true})
		return
	}
	s.delim = arg
	s.out = append(s.out, Item{Kind: Delimiter, Text: arg, Line: line, Terminated: true})
}

// statement scans one statement up to its delimiter.
func (s *splitter) statement() {
	start, line := s.pos, s.line
	var quote byte     // inside '…', "…" or `…`
	inComment := false // inside a plain /* … */ comment
	for s.pos < len(s.in) {
		c := s.in[s.pos]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' && s.pos+1 < len(s.in) {
				s.advance(2)
				continue
			}
			if c == quote {
				quote = 0
			}
			s.advance(1)
		case inComment:
			if strings.HasPrefix(s.in[s.pos:], "*/") {
				inComment = false
				s.advance(2)
				continue
			}
			s.advance(1)
		case strings.HasPrefix(s.in[s.pos:], s.delim):
			text := strings.TrimSpace(s.in[start:s.pos])
			s.advance(len(s.delim))
			s.emit(text, line, true)
			return
		case c == '\'' || c == '"' || c == '`':
			quote = c
			s.advance(1)
		case c == '/' && strings.HasPrefix(s.in[s.pos:], "/*") && !s.isExecutableComment(s.pos):
			inComment = true
			s.advance(2)
		case c == '#' || s.hasDashComment(s.pos):
			end := strings.IndexByte(s.in[s.pos:], '\n')
			if end < 0 {
				end = len(s.in) - s.pos
			}
			s.advance(end)
		default:
			s.advance(1)
		}
	}
	s.emit(strings.TrimSpace(s.in[start:]), line, false)
}

func (s *splitter) emit(text string, line int, terminated bool) {
	if text == "" {
		return // an empty statement (";;") is nothing to run
	}
	s.out = append(s.out, Item{Kind: Statement, Text: text, Line: line, Terminated: terminated})
}
