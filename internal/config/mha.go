package config

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
)

// iniSection is one [section] of an app.cnf, as written.
type iniSection struct {
	name    string
	line    int
	entries []iniEntry
}

type iniEntry struct {
	key, val string
	line     int
}

// parseINI reads Config::Tiny's syntax (which MHA uses): "[name]" headers,
// "key = value" lines (white space around both trimmed, no inline
// comments), and comment lines starting with '#' or ';'. Unlike
// Config::Tiny it rejects duplicate sections and keys and lines without '='.
func parseINI(file string, data []byte, errs *errList) []iniSection {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var secs []iniSection
	seenSec := map[string]int{}
	var cur *iniSection
	var seenKey map[string]int
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			name := strings.TrimSpace(line[1 : len(line)-1])
			if name == "" {
				errs.add(file, n, "", "empty section name")
				cur = nil
				continue
			}
			if first, dup := seenSec[name]; dup {
				errs.add(file, n, "["+name+"]", "duplicate section (first at line %d)", first)
				cur = nil // its keys are not checked again
				continue
			}
			seenSec[name] = n
			secs = append(secs, iniSection{name: name, line: n})
			cur = &secs[len(secs)-1]
			seenKey = map[string]int{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			// Do not quote the line: it may be a password on the wrong line.
			errs.add(file, n, "", "syntax error: expected [section] or key=value")
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			errs.add(file, n, "", "syntax error: empty parameter name")
			continue
		}
		if cur == nil {
			if len(secs) == 0 && len(seenSec) == 0 {
				errs.add(file, n, k, "parameter outside of a section (start with [server default])")
			}
			continue
		}
		if first, dup := seenKey[k]; dup {
			errs.add(file, n, k, "duplicate parameter in [%s] (first at line %d)", cur.name, first)
			continue
		}
		seenKey[k] = n
		cur.entries = append(cur.entries, iniEntry{key: k, val: v, line: n})
	}
	return secs
}

type sectionKind int

const (
	kindDefault sectionKind = iota
	kindHost
	kindBinlog
)

// classify maps a section name to its kind, as MHA: "server default", or a
// name starting with "server"/"binlog" followed by a non-space character.
func classify(name string) (sectionKind, bool) {
	switch {
	case name == "server default":
		return kindDefault, true
	case len(name) > 6 && strings.HasPrefix(name, "server") && !isSpace(name[6]):
		return kindHost, true
	case len(name) > 6 && strings.HasPrefix(name, "binlog") && !isSpace(name[6]):
		return kindBinlog, true
	}
	return 0, false
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\v' || b == '\f' || b == '\r' }

// mhaValue applies MHA's quote handling: MHA strips one trailing quote and
// one optional leading quote (s/^['"]?(.*)['"]$/$1/) from every value, and
// removes all quotes from ssh_options.
func mhaValue(key, v string) string {
	if key == "ssh_options" {
		return strings.NewReplacer(`"`, "", "'", "").Replace(v)
	}
	if n := len(v); n > 0 && (v[n-1] == '"' || v[n-1] == '\'') {
		v = v[:n-1]
		if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
			v = v[1:]
		}
	}
	return v
}

// scanSection checks a section's keys and returns those that take effect.
func (s *source) scanSection(file string, sec iniSection, kind sectionKind) layer {
	l := layer{name: sec.name, file: file, line: sec.line, disp: "[" + sec.name + "]", keys: map[string]entry{}}
	for _, ie := range sec.entries {
		e := s.newEntry(ie.key, mhaValue(ie.key, ie.val), file, ie.line, ie.key)
		sc := keyScope(ie.key)
		switch {
		case sc == scopeUnknown:
			s.errs.addAt(e, "unknown parameter (MHA: \"Parameter name %s is invalid!\")", ie.key)
		case sc == scopeIgnored:
			s.ignore(file, ie.line, ie.key, "not used by cloudmha", slog.LevelDebug)
		case kind == kindDefault && sc == scopeHost:
			s.ignore(file, ie.line, ie.key, "per-host parameter: MHA does not inherit it from [server default]; set it in the host section", slog.LevelWarn)
		case kind != kindDefault && sc == scopeApp:
			s.ignore(file, ie.line, ie.key, "application parameter in a host section: cloudmha reads it from [server default] only", slog.LevelWarn)
		case kind != kindDefault && sc == scopeDefaultOnly:
			s.errs.addAt(e, "allowed in [server default] only")
		default:
			l.keys[ie.key] = e
		}
	}
	s.checkSecretConflicts(l)
	return l
}

// ParseMHA parses an MHA app.cnf (name, data) on top of MHA's global file
// (globalName, global; nil global means none). Names in errors are the
// given file names. opts.Path and opts.GlobalPath are not used.
func ParseMHA(globalName string, global []byte, name string, data []byte, opts LoadOptions) (*Config, error) {
	s := newSource(dialectMHA, opts)
	base := filepath.Base(name)
	s.name = strings.TrimSuffix(base, filepath.Ext(base))
	s.serversFile, s.serversKey = name, ""

	defKeys := map[string]entry{}
	defFile, defLine := name, 0
	if global != nil {
		s.files = append(s.files, globalName)
		for _, sec := range parseINI(globalName, global, &s.errs) {
			kind, ok := classify(sec.name)
			switch {
			case ok && kind == kindDefault:
				l := s.scanSection(globalName, sec, kindDefault)
				s.shadowed = append(s.shadowed, sorted(l.keys)...)
				defKeys, defFile, defLine = l.keys, globalName, sec.line
			case ok:
				s.ignore(globalName, sec.line, "["+sec.name+"]", "MHA reads only [server default] from the global file", slog.LevelWarn)
			default:
				s.errs.add(globalName, sec.line, "["+sec.name+"]", "invalid section name: only [server default] belongs in the global file")
			}
		}
	}
	s.files = append(s.files, name)
	for _, sec := range parseINI(name, data, &s.errs) {
		kind, ok := classify(sec.name)
		if !ok {
			s.errs.add(name, sec.line, "["+sec.name+"]", `invalid section name: must be "server default" or start with "server" or "binlog" followed by a non-space character`)
			continue
		}
		l := s.scanSection(name, sec, kind)
		switch kind {
		case kindDefault:
			s.shadowed = append(s.shadowed, sorted(l.keys)...)
			defKeys, defFile, defLine = overlay(defKeys, l.keys), name, sec.line
		case kindHost:
			s.hosts = append(s.hosts, l)
		case kindBinlog:
			s.binlogs = append(s.binlogs, l)
		}
	}
	s.def = layer{name: "server default", file: defFile, line: defLine, disp: "[server default]", keys: defKeys}
	return s.build()
}
