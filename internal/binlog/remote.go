package binlog

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The remote side of salvage is one POSIX sh script run in one SSH session.
// It finds the binlog files, picks the newest file from which decoding must
// start, decodes from there to the end and streams the text back, preceded
// by "#cloudmha …" lines that say what it did:
//
//	#cloudmha tool mariadb-binlog gtid
//	#cloudmha index /var/lib/mysql/mysql-bin.index
//	#cloudmha file /var/lib/mysql/mysql-bin.000007 1048576 0-1-500
//	#cloudmha start /var/lib/mysql/mysql-bin.000007 covered
//	#cloudmha decode
//	…decoder output…
//	#cloudmha rc 0
//
// "file" lines come newest first, for the files examined; the last field is
// the file's Gtid_list (binlog state at its start). "start … covered" means
// the candidate has everything before that file; "start … uncovered" means
// even the oldest file starts after a transaction the candidate lacks (the
// binlogs before were purged).
const markerPrefix = "#cloudmha "

// scriptTemplate is the script; the first line gets the positional
// parameters (binlog directories) and START.
const scriptTemplate = `
LC_ALL=C; export LC_ALL
tool=""
for t in mariadb-binlog mysqlbinlog; do
  if command -v "$t" >/dev/null 2>&1; then tool=$t; break; fi
done
if [ -z "$tool" ]; then echo "#cloudmha error neither mariadb-binlog nor mysqlbinlog in PATH"; exit 0; fi
help=$("$tool" --help 2>/dev/null)
gtid=""
case "$help" in *--gtid-strict-mode*) [ -n "$START" ] && gtid=gtid ;; esac
annot=""
case "$help" in *--skip-annotate-row-events*) annot=--skip-annotate-row-events ;; esac
echo "#cloudmha tool $tool $gtid"

# resolve DIR ENTRY: the file an index entry names, looked up as written,
# then in the binlog directory.
resolve() {
  case "$2" in
    /*) if [ -f "$2" ]; then echo "$2"; return; fi ;;
  esac
  if [ -f "$1/${2##*/}" ]; then echo "$1/${2##*/}"; fi
}

# The index of the binary log (not of a relay log) whose last file is the
# most recently written.
index=""; idxdir=""; newest=""
for d in "$@"; do
  [ -d "$d" ] || continue
  for i in "$d"/*.index; do
    [ -f "$i" ] || continue
    case "${i##*/}" in *relay*) continue ;; esac
    last=$(grep -v '^[[:space:]]*$' "$i" | tail -n 1)
    [ -n "$last" ] || continue
    f=$(resolve "$d" "$last")
    [ -n "$f" ] || continue
    if [ -z "$newest" ] || [ "$f" -nt "$newest" ]; then index=$i; idxdir=$d; newest=$f; fi
  done
done
files=""
if [ -n "$index" ]; then
  echo "#cloudmha index $index"
  while IFS= read -r e; do
    [ -n "$e" ] || continue
    f=$(resolve "$idxdir" "$e")
    [ -n "$f" ] && files="$files$f
"
  done < "$index"
else
  # No index: the files named like NAME-bin.NNNNNN of the most recently
  # written series.
  for d in "$@"; do
    for f in "$d"/*-bin.[0-9][0-9][0-9]*; do
      [ -f "$f" ] || continue
      if [ -z "$newest" ] || [ "$f" -nt "$newest" ]; then newest=$f; fi
    done
  done
  if [ -n "$newest" ]; then
    for f in "${newest%.*}".[0-9][0-9][0-9]*; do
      [ -f "$f" ] && files="$files$f
"
    done
  fi
fi
if [ -z "$files" ]; then echo "#cloudmha error no binary logs found in $*"; exit 0; fi

# covered LIST: every d-s-n of LIST has n <= START's seq_no for domain d.
covered() {
  awk -v list="$1" -v start="$START" 'BEGIN {
    n = split(start, s, ","); for (i = 1; i <= n; i++) { split(s[i], g, "-"); if (!(g[1] in m) || g[3] + 0 > m[g[1]]) m[g[1]] = g[3] + 0 }
    n = split(list, l, ","); for (i = 1; i <= n; i++) { if (l[i] == "") continue; split(l[i], g, "-"); if (!(g[1] in m) || g[3] + 0 > m[g[1]]) exit 1 }
    exit 0 }'
}

start=""; state=uncovered
for f in $(printf '%s' "$files" | awk '{ a[NR] = $0 } END { for (i = NR; i > 0; i--) print a[i] }'); do
  gl=$("$tool" "$f" 2>/dev/null | head -n 60 | sed -n 's/.*Gtid list \[\(.*\)\].*/\1/p' | head -n 1)
  echo "#cloudmha file $f $(wc -c < "$f" | tr -d ' ') $gl"
  start=$f
  if covered "$gl"; then state=covered; break; fi
done
echo "#cloudmha start $start $state"
set --
take=""
for f in $files; do
  [ "$f" = "$start" ] && take=1
  [ -n "$take" ] && set -- "$@" "$f"
done
err=$(mktemp "${WORKDIR:-/tmp}/cloudmha-salvage.XXXXXX" 2>/dev/null || mktemp)
echo "#cloudmha decode"
if [ -n "$gtid" ]; then
  "$tool" $annot --skip-gtid-strict-mode --start-position="$START" "$@" 2>"$err"
else
  "$tool" $annot "$@" 2>"$err"
fi
rc=$?
echo
head -n 20 "$err" | sed 's/^/#cloudmha stderr /'
rm -f "$err"
echo "#cloudmha rc $rc"
`

// Script returns the shell command that lists and decodes the binary logs
// in dirs, starting after the MariaDB GTID position start ("" = from the
// first file whose Gtid_list is empty, i.e. the oldest).
//
// workdir (MHA's remote_workdir) holds a temporary file for the decoder's
// messages. The script always exits 0 once it runs: what went wrong is in
// its output ("#cloudmha error …", "#cloudmha stderr …", "#cloudmha rc N").
func Script(dirs []string, start, workdir string) string {
	var b strings.Builder
	b.WriteString("set --")
	for _, d := range dirs {
		b.WriteString(" " + shellQuote(d))
	}
	b.WriteString("\nSTART=" + shellQuote(start))
	b.WriteString("\nWORKDIR=" + shellQuote(workdir))
	b.WriteString(scriptTemplate)
	// Run by sh whatever the login shell of the SSH user is.
	return "exec sh -c " + shellQuote(b.String()) + " cloudmha-salvage"
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Listing is what the remote script reported before decoding.
type Listing struct {
	Tool     string // mariadb-binlog | mysqlbinlog
	GTIDMode bool   // the decoder skipped to the GTID position itself
	Index    string // the binlog index used ("" when the files were globbed)
	// Examined are the files whose Gtid_list was read, newest first.
	Examined []FileInfo
	// Start is the first decoded file; StartCovered reports whether the
	// candidate has every transaction before it.
	Start        string
	StartCovered bool
	// Decoded lists the decoded files, oldest first.
	Decoded []string
	// ExitCode is the decoder's exit status (-1 when not reported).
	ExitCode int
	// Error is what the script reported when it could not decode ("" when
	// it did); Stderr holds the decoder's first messages.
	Error  string
	Stderr []string
}

// FileInfo is one binlog file on the dead host.
type FileInfo struct {
	Path     string
	Size     int64
	GTIDList string // MariaDB Gtid_list at the file's start
}

// ParseOutput splits the script's output into its listing and the
// decoder's text.
func ParseOutput(out []byte) (Listing, []byte, error) {
	l := Listing{ExitCode: -1}
	rest := out
	decode := false
	for len(rest) > 0 && !decode {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		s := string(line)
		if !strings.HasPrefix(s, markerPrefix) {
			return l, nil, fmt.Errorf("unexpected output before the decoded binlog: %.80q", s)
		}
		f := strings.Fields(strings.TrimPrefix(s, markerPrefix))
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "tool":
			if len(f) > 1 {
				l.Tool = f[1]
			}
			l.GTIDMode = len(f) > 2 && f[2] == "gtid"
		case "index":
			l.Index = strings.TrimSpace(strings.TrimPrefix(s, markerPrefix+"index"))
		case "file":
			if len(f) < 3 {
				return l, nil, fmt.Errorf("bad listing line %q", s)
			}
			size, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return l, nil, fmt.Errorf("bad listing line %q: %w", s, err)
			}
			fi := FileInfo{Path: f[1], Size: size}
			if len(f) > 3 {
				fi.GTIDList = f[3]
			}
			l.Examined = append(l.Examined, fi)
		case "start":
			if len(f) < 3 {
				return l, nil, fmt.Errorf("bad listing line %q", s)
			}
			l.Start, l.StartCovered = f[1], f[2] == "covered"
		case "error":
			l.Error = strings.TrimSpace(strings.TrimPrefix(s, markerPrefix+"error"))
			return l, nil, nil
		case "decode":
			decode = true
		}
	}
	if !decode {
		return l, nil, fmt.Errorf("the remote script ended before decoding (listing: %d files examined)", len(l.Examined))
	}
	// The trailer, after the decoder's output: "\n", then "#cloudmha
	// stderr …" lines, then "#cloudmha rc N". Read it backwards.
	body := bytes.TrimRight(rest, "\n")
	var stderr []string
	for len(body) > 0 {
		i := bytes.LastIndexByte(body, '\n')
		last := string(body[i+1:])
		if !strings.HasPrefix(last, markerPrefix) {
			break
		}
		if rc, ok := strings.CutPrefix(last, markerPrefix+"rc "); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(rc)); err == nil {
				l.ExitCode = n
			}
		} else if e, ok := strings.CutPrefix(last, markerPrefix+"stderr "); ok {
			stderr = append(stderr, e)
		}
		if i < 0 {
			body = nil
			break
		}
		body = body[:i]
	}
	for i := len(stderr) - 1; i >= 0; i-- {
		l.Stderr = append(l.Stderr, stderr[i])
	}
	if l.ExitCode < 0 {
		return l, nil, fmt.Errorf("the decoder's output is cut short (no exit status): the SSH session ended early")
	}
	if l.Start != "" {
		take := false
		for i := len(l.Examined) - 1; i >= 0; i-- {
			if l.Examined[i].Path == l.Start {
				take = true
			}
			if take {
				l.Decoded = append(l.Decoded, l.Examined[i].Path)
			}
		}
	}
	return l, body, nil
}
