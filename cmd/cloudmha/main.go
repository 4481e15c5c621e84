// Command cloudmha keeps a MySQL/MariaDB primary writable through failures
// and moves the clients' address to the new primary. It is one binary with
// subcommands, and it also answers to MHA's command names (masterha_*) with
// MHA's flags, so existing runbooks and scripts keep working.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a process exit code chosen by a subcommand (MHA's codes).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitCode wraps err (which may be nil: the message was printed already) so
// that run exits with code.
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

// mhaAliases maps MHA's command names to cloudmha subcommands.
var mhaAliases = map[string]string{
	"masterha_check_repl":    "check-repl",
	"masterha_check_ssh":     "check-ssh",
	"masterha_check_status":  "status",
	"masterha_manager":       "manager",
	"masterha_master_switch": "master-switch",
	"masterha_stop":          "stop",
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, &globals{stdout: stdout, stderr: stderr})
}

// runWith is run with the globals (and their test seams) given.
func runWith(ctx context.Context, args []string, g *globals) int {
	stderr := g.stderr
	args = translateMHA(args)
	root := newRootCmdWith(g)
	root.SetArgs(args[1:])
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "cloudmha: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "cloudmha: %v\n", err)
	return 1
}

// translateMHA turns an invocation by an MHA name — through a symlink
// (masterha_check_repl --conf=…) or as a subcommand (cloudmha
// masterha_check_repl …) — into the cloudmha subcommand, and accepts Perl
// Getopt::Long's single-dash long options (-conf=app1.cnf) there.
func translateMHA(args []string) []string {
	if len(args) == 0 {
		return []string{"cloudmha"}
	}
	base := filepath.Base(args[0])
	rest := args[1:]
	sub, ok := mhaAliases[base]
	if !ok && len(rest) > 0 {
		if sub, ok = mhaAliases[rest[0]]; ok {
			rest = rest[1:]
		}
	}
	if !ok {
		return args
	}
	out := []string{args[0], sub}
	for _, a := range rest {
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && strings.IndexByte(a, '=') != 2 {
			if name, _, _ := strings.Cut(a[1:], "="); len(name) > 1 {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
