package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
)

// LoadOptions says what to load and how to reach the outside world.
type LoadOptions struct {
	// Path is the cluster's file: an MHA app.cnf, or cloudmha YAML
	// (*.yaml, *.yml). Other extensions are sniffed: a file whose first
	// meaningful line is a [section] is app.cnf, anything else YAML.
	Path string
	// GlobalPath is MHA's --global_conf, used with app.cnf only.
	// "" means /etc/masterha_default.cnf if it exists; "none" means no
	// global file; any other path must exist.
	GlobalPath string
	// Logger receives reports of ignored parameters (debug, or warn when
	// the parameter would have had an effect in MHA). nil discards them.
	Logger *slog.Logger
	// LookupEnv resolves password_env and friends; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads the configuration files and password_file and
	// friends; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// DefaultSSHUser is ssh_user's default; "" means the current OS user
	// (as MHA), else $USER, else root.
	DefaultSSHUser string
	// InitConfLoad, when set, runs init_conf_load_script and returns its
	// output (name=value lines) which, as in MHA, overrides
	// [server default]. nil means the script is recorded, not run.
	InitConfLoad func(script string) ([]byte, error)
}

// GlobalNone is the GlobalPath value that disables the global file.
const GlobalNone = "none"

// Format is a configuration file format.
type Format int

// Formats.
const (
	FormatMHA Format = iota + 1
	FormatYAML
)

// DetectFormat returns a file's format from its extension, or, for other
// names, from its content.
func DetectFormat(path string, data []byte) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return FormatYAML
	case ".cnf", ".conf", ".ini":
		return FormatMHA
	}
	for line := range strings.SplitSeq(string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line == "---" {
			continue
		}
		if line[0] == '[' && strings.HasSuffix(line, "]") {
			return FormatMHA
		}
		return FormatYAML
	}
	return FormatYAML
}

// Load reads, parses and validates the configuration at opts.Path.
func Load(opts LoadOptions) (*Config, error) {
	if opts.Path == "" {
		return nil, &Error{Msg: "no configuration file given"}
	}
	read := opts.ReadFile
	if read == nil {
		read = newSource(dialectMHA, opts).readFile
	}
	data, err := read(opts.Path)
	if err != nil {
		return nil, &Error{File: opts.Path, Msg: fmt.Sprintf("reading configuration: %v", unwrapPath(err))}
	}
	if DetectFormat(opts.Path, data) == FormatYAML {
		if opts.GlobalPath != "" && opts.GlobalPath != GlobalNone {
			return nil, &Error{File: opts.GlobalPath, Msg: "a global file (--global_conf) applies to MHA app.cnf only, not to YAML"}
		}
		return ParseYAML(opts.Path, data, opts)
	}
	gpath := opts.GlobalPath
	var global []byte
	switch gpath {
	case GlobalNone:
	case "":
		gpath = DefaultGlobalPath
		global, err = read(gpath)
		if errors.Is(err, fs.ErrNotExist) {
			global, err = nil, nil
		}
	default:
		global, err = read(gpath)
	}
	if err != nil {
		return nil, &Error{File: gpath, Msg: fmt.Sprintf("reading global configuration: %v", unwrapPath(err))}
	}
	if global == nil && err == nil && gpath != GlobalNone && gpath != DefaultGlobalPath {
		global = []byte{}
	}
	return ParseMHA(gpath, global, opts.Path, data, opts)
}

// unwrapPath drops the path from an *fs.PathError (the Error names the
// file already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
