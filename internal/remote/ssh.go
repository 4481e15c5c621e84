// Package remote runs commands on database hosts over SSH with
// golang.org/x/crypto/ssh, honouring the parts of MHA's ssh_options that
// matter (identity files, host-key policy, known-hosts file, port, timeout).
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DialFunc opens the TCP connection; nil means net.Dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options are the SSH settings understood from MHA's ssh_options string.
type Options struct {
	IdentityFiles  []string
	StrictHostKey  string // "yes" (default), "no", "accept-new"
	KnownHosts     []string
	Port           int           // -p or -o Port=; 0 = keep the configured ssh_port
	ConnectTimeout time.Duration // -o ConnectTimeout=
	Ignored        []string      // options that have no meaning here
}

// ParseSSHOptions reads the ssh(1) command-line options MHA users put in
// ssh_options, e.g. "-i /root/.ssh/mha -o StrictHostKeyChecking=no".
func ParseSSHOptions(s string) (Options, error) {
	var o Options
	words, err := splitWords(s)
	if err != nil {
		return o, fmt.Errorf("ssh_options: %w", err)
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		arg := func() (string, error) {
			if len(w) > 2 {
				return w[2:], nil
			}
			if i+1 >= len(words) {
				return "", fmt.Errorf("ssh_options: %s needs a value", w)
			}
			i++
			return words[i], nil
		}
		switch {
		case strings.HasPrefix(w, "-i"):
			v, err := arg()
			if err != nil {
				return o, err
			}
			o.IdentityFiles = append(o.IdentityFiles, expandHome(v))
		case strings.HasPrefix(w, "-p"):
			v, err := arg()
			if err != nil {
				return o, err
			}
			if o.Port, err = strconv.Atoi(v); err != nil || o.Port < 1 || o.Port > 65535 {
				return o, fmt.Errorf("ssh_options: bad port %q", v)
			}
		case strings.HasPrefix(w, "-o"):
			v, err := arg()
			if err != nil {
				return o, err
			}
			if err := o.setOption(v); err != nil {
				return o, err
			}
		default:
			o.Ignored = append(o.Ignored, w)
		}
	}
	return o, nil
}

func (o *Options) setOption(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		k, v, ok = strings.Cut(kv, " ")
	}
	if !ok {
		return fmt.Errorf("ssh_options: -o %q is not Key=Value", kv)
	}
	switch strings.ToLower(strings.TrimSpace(k)) {
	case "stricthostkeychecking":
		switch strings.ToLower(v) {
		case "no", "off":
			o.StrictHostKey = "no"
		case "accept-new":
			o.StrictHostKey = "accept-new"
		case "yes", "ask":
			o.StrictHostKey = "yes"
		default:
			return fmt.Errorf("ssh_options: StrictHostKeyChecking=%q is not yes, no or accept-new", v)
		}
	case "userknownhostsfile":
		for _, f := range strings.Fields(v) {
			o.KnownHosts = append(o.KnownHosts, expandHome(f))
		}
	case "identityfile":
		o.IdentityFiles = append(o.IdentityFiles, expandHome(v))
	case "port":
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("ssh_options: bad Port %q", v)
		}
		o.Port = p
	case "connecttimeout":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("ssh_options: bad ConnectTimeout %q", v)
		}
		o.ConnectTimeout = time.Duration(n) * time.Second
	default:
		o.Ignored = append(o.Ignored, "-o "+kv)
	}
	return nil
}

// splitWords splits like a shell would for the simple quoting people use in
// ssh_options: whitespace, single and double quotes.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[2:])
		}
	}
	return p
}

// Target is one host to reach.
type Target struct {
	Addr    string // host:port
	User    string
	Options Options
	Timeout time.Duration // connect + handshake; 0 = 5 s (MHA's ssh_connection_timeout)
	Dial    DialFunc
}

// Client is an open SSH connection.
type Client struct{ c *ssh.Client }

// Dial connects and authenticates.
func Dial(ctx context.Context, t Target) (*Client, error) {
	timeout := t.Timeout
	if t.Options.ConnectTimeout > 0 {
		timeout = t.Options.ConnectTimeout
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	auths, err := authMethods(t.Options)
	if err != nil {
		return nil, err
	}
	hk, err := hostKeyCallback(t.Options)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{User: t.User, Auth: auths, HostKeyCallback: hk, Timeout: timeout}
	dial := t.Dial
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: connect: %w", t.User, t.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, cfg)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ssh %s@%s: %w", t.User, t.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &Client{c: ssh.NewClient(cc, chans, reqs)}, nil
}

// Run runs one command and returns its standard output. A non-zero exit is
// an error that carries the command's standard error.
func (c *Client) Run(ctx context.Context, cmd string) ([]byte, error) {
	s, err := c.c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh session: %w", err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err := <-done:
		if err != nil {
			return out.Bytes(), fmt.Errorf("remote command %q: %w: %s", cmd, err, strings.TrimSpace(errb.String()))
		}
		return out.Bytes(), nil
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		return out.Bytes(), fmt.Errorf("remote command %q: %w", cmd, ctx.Err())
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

func authMethods(o Options) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	files := o.IdentityFiles
	explicit := len(files) > 0
	if !explicit {
		if h, err := os.UserHomeDir(); err == nil {
			for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				files = append(files, filepath.Join(h, ".ssh", n))
			}
		}
	}
	var signers []ssh.Signer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if explicit {
				return nil, fmt.Errorf("ssh identity %s: %w", f, err)
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("ssh identity %s: %w (passphrase-protected keys need ssh-agent)", f, err)
		}
		signers = append(signers, s)
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		}
	}
	if len(methods) == 0 {
		return nil, errors.New("ssh: no identity: add -i KEY to ssh_options, put a key in ~/.ssh, or run ssh-agent")
	}
	return methods, nil
}

func hostKeyCallback(o Options) (ssh.HostKeyCallback, error) {
	if o.StrictHostKey == "no" {
		return ssh.InsecureIgnoreHostKey(), nil //nolint:gosec // the operator asked for it in ssh_options
	}
	files := o.KnownHosts
	if len(files) == 0 {
		if h, err := os.UserHomeDir(); err == nil {
			files = []string{filepath.Join(h, ".ssh", "known_hosts")}
		}
	}
	var existing []string
	for _, f := range files {
		if f == "/dev/null" {
			continue
		}
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	var cb ssh.HostKeyCallback
	if len(existing) > 0 {
		var err error
		if cb, err = knownhosts.New(existing...); err != nil {
			return nil, fmt.Errorf("ssh known_hosts: %w", err)
		}
	}
	if o.StrictHostKey == "accept-new" {
		return func(host string, remote net.Addr, key ssh.PublicKey) error {
			if cb == nil {
				return nil
			}
			err := cb(host, remote, key)
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) && len(ke.Want) == 0 {
				return nil // unknown host: accepted, as ssh does with accept-new
			}
			return err
		}, nil
	}
	if cb == nil {
		return nil, fmt.Errorf("ssh: no known_hosts file (%s) and StrictHostKeyChecking is on: add the hosts' keys with ssh-keyscan, or set ssh_options=\"-o StrictHostKeyChecking=accept-new\"", strings.Join(files, ", "))
	}
	return cb, nil
}
