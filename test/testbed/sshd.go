package testbed

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// genKey writes an ed25519 key pair in OpenSSH format: path (0600) and
// path.pub.
func genKey(path, comment string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	line := ssh.MarshalAuthorizedKey(sshPub) // ends with "\n"
	line = append(line[:len(line)-1], []byte(" "+comment+"\n")...)
	return os.WriteFile(path+".pub", line, 0o644)
}

func writeClientKey(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return genKey(path, "cloudmha-testbed")
}

// sshdConfig is the configuration of h's sshd: only h's address, its own
// host key, pid file and authorized keys, key login for root only.
func sshdConfig(h *Host) string {
	return fmt.Sprintf(`# sshd of test bed host %[1]s (generated)
ListenAddress %[2]s:22
HostKey %[3]s/ssh_host_ed25519_key
PidFile %[3]s/sshd.pid
AuthorizedKeysFile %[3]s/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
LoginGraceTime 10
MaxStartups 50:30:200
MaxSessions 50
Subsystem sftp internal-sftp
LogLevel INFO
`, h.Name, h.IP, h.SSHDir)
}

// startSSHD writes h's sshd files and runs `sshd -D -f CONF` inside h's
// namespace, in its own session. waitAnswer in bringUp checks it greets.
func (b *Bed) startSSHD(ctx context.Context, h *Host, authorized []byte) error {
	sshd, err := lookPath("sshd")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(h.SSHDir, 0o700); err != nil {
		return err
	}
	if err := genKey(filepath.Join(h.SSHDir, "ssh_host_ed25519_key"), "root@"+h.Name); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.SSHDir, "authorized_keys"), authorized, 0o600); err != nil {
		return err
	}
	conf := filepath.Join(h.SSHDir, "sshd_config")
	if err := os.WriteFile(conf, []byte(sshdConfig(h)), 0o600); err != nil {
		return err
	}
	if out, err := output(ctx, sshd, "-t", "-f", conf); err != nil {
		return fmt.Errorf("testbed: sshd config of %s: %w: %s", h.Name, err, out)
	}
	argv := []string{"ip", "netns", "exec", h.NS}
	// Debian's bash sources ~/.bashrc for every command sshd runs. On
	// machines whose root .bashrc does real work (pyenv init takes a lock,
	// which a killed session can leave behind for a minute) that would make
	// each SSH command slow or hang; a real database host has no such
	// .bashrc. sshd gets a private mount namespace in which it is empty.
	if home, err := os.UserHomeDir(); err == nil {
		if rc := filepath.Join(home, ".bashrc"); fileExists(rc) {
			if un, err := lookPath("unshare"); err == nil {
				argv = append(argv, un, "--mount", "--propagation", "private", "sh", "-c",
					`mount --bind /dev/null "$0" && exec "$@"`, rc)
			}
		}
	}
	argv = append(argv, sshd, "-D", "-f", conf, "-E", filepath.Join(h.SSHDir, "sshd.log"))
	pid, err := spawn(filepath.Join(h.SSHDir, "sshd.out"), argv[0], argv[1:]...)
	if err != nil {
		return fmt.Errorf("testbed: start sshd on %s: %w", h.Name, err)
	}
	b.log.Debug("testbed: sshd started", "host", h.Name, "pid", pid)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
