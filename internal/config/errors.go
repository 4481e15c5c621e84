package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a configuration. Load and the Parse
// functions return every problem at once, joined with errors.Join, so
// errors.As(err, &*Error) finds the first one and
// interface{ Unwrap() []error } gives all of them. Messages never contain a
// secret value.
type Error struct {
	File string // file name as given (or "" when not from a file)
	Line int    // 1-based line, 0 when the problem concerns the whole file
	Key  string // parameter, e.g. "ping_type", "[server3]" or "servers[0].port"
	Msg  string
}

// Error formats as "file:line: key: message", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// errList collects problems, dropping exact duplicates (a bad value in
// [server default] is inherited by every host but reported once).
type errList struct {
	errs    []error
	seen    map[Error]bool
	secrets []string // values to redact from messages
}

// minRedactLen is the shortest secret redacted from messages; shorter ones
// would redact ordinary words and numbers.
const minRedactLen = 3

func (l *errList) add(file string, line int, key, format string, args ...any) {
	e := Error{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	if l.seen == nil {
		l.seen = make(map[Error]bool)
	}
	if l.seen[e] {
		return
	}
	l.seen[e] = true
	l.errs = append(l.errs, &e)
}

// addAt reports a problem at an entry's position.
func (l *errList) addAt(e entry, format string, args ...any) {
	l.add(e.file, e.line, e.disp, format, args...)
}

// sort orders the problems by file (in reading order) and line.
func (l *errList) sort(files []string) {
	idx := func(e error) (int, int) {
		ce := e.(*Error)
		i := slices.Index(files, ce.File)
		if i < 0 {
			i = len(files)
		}
		return i, ce.Line
	}
	slices.SortStableFunc(l.errs, func(a, b error) int {
		fa, la := idx(a)
		fb, lb := idx(b)
		return cmp.Or(cmp.Compare(fa, fb), cmp.Compare(la, lb))
	})
}

func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	if len(l.secrets) > 0 {
		// Longest first, so that a secret containing another is removed
		// whole; quoteVal may have shortened a long one.
		slices.SortFunc(l.secrets, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(a, b)) })
		l.secrets = slices.Compact(l.secrets)
		var pairs []string
		for _, sec := range l.secrets {
			pairs = append(pairs, sec, redacted)
		}
		for _, sec := range l.secrets {
			if len(sec) > quoteMax {
				pairs = append(pairs, sec[:quoteMax], redacted)
			}
		}
		r := strings.NewReplacer(pairs...)
		for _, e := range l.errs {
			ce := e.(*Error)
			ce.File, ce.Key, ce.Msg = r.Replace(ce.File), r.Replace(ce.Key), r.Replace(ce.Msg)
		}
	}
	return errors.Join(l.errs...)
}

const quoteMax = 64

// quoteVal quotes a user value for an error message, shortened so that a
// whole line pasted into the wrong place does not end up in a log. It is
// never called with the value of a secret parameter.
func quoteVal(v string) string {
	if len(v) > quoteMax {
		v = v[:quoteMax] + "…"
	}
	return strconv.Quote(v)
}
