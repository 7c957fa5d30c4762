package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SSHDBin is Debian openssh-server's daemon, which StartSSHD runs.
const SSHDBin = "/usr/sbin/sshd"

// SSHDConfig is what a throwaway sshd trusts and presents.
type SSHDConfig struct {
	// TrustedUserCAKeys are authorized_keys lines of the CAs whose user
	// certificates the daemon accepts, for the principals they name.
	TrustedUserCAKeys []string
	// HostKey is the daemon's private host key (OpenSSH PEM); HostCertificate,
	// when set, its host certificate (authorized_keys form).
	HostKey         []byte
	HostCertificate string
	// RevokedKeys, when set, is a key revocation list (OpenSSH's binary KRL
	// format) the daemon reads through RevokedKeys.
	RevokedKeys []byte
}

// SSHD is a running throwaway sshd.
type SSHD struct {
	Port int
	// User is the account it runs as; the only one that can log in.
	User string
	log  *syncBuffer
}

// Log returns what the daemon logged so far (for test failures).
func (s *SSHD) Log() string { return s.log.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// StartSSHD runs Debian's sshd in the foreground as the current user, on a
// free port of 127.0.0.1, with a configuration of its own in a temporary
// directory: public-key login only, and only by a user certificate of one of
// c's CAs (no authorized_keys file, no password). It is stopped at cleanup.
// A missing sshd or ssh skips the test, or fails it under CI=true.
func StartSSHD(t testing.TB, c SSHDConfig) *SSHD {
	t.Helper()
	_, err := os.Stat(SSHDBin)
	Need(t, err, "sshd (Debian package openssh-server)")
	_, err = exec.LookPath("ssh")
	Need(t, err, "ssh (Debian package openssh-client)")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// As root, sshd insists on its privilege-separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hostKey := write("host_key", c.HostKey)
	cfg := []string{
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"TrustedUserCAKeys " + write("user_ca.pub", []byte(strings.Join(c.TrustedUserCAKeys, "\n")+"\n")),
		"AuthorizedKeysFile none",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"UsePAM no",
		"StrictModes no",
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"LogLevel VERBOSE",
	}
	if c.HostCertificate != "" {
		cfg = append(cfg, "HostCertificate "+write("host_key-cert.pub", []byte(c.HostCertificate)))
	}
	if c.RevokedKeys != nil {
		cfg = append(cfg, "RevokedKeys "+write("revoked.krl", c.RevokedKeys))
	}
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		conf := write("sshd_config", []byte(strings.Join(append([]string{"Port " + strconv.Itoa(port)}, cfg...), "\n")+"\n"))
		log := &syncBuffer{}
		cmd := exec.Command(SSHDBin, "-D", "-e", "-f", conf)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		up := waitPort(ctx, port, exited)
		cancel()
		if up == nil {
			t.Cleanup(func() {
				cmd.Process.Kill() // the daemon this test started, by its own pid
				<-exited
			})
			return &SSHD{Port: port, User: me.Username, log: log}
		}
		cmd.Process.Kill()
		if attempt == 3 {
			t.Fatalf("sshd did not start: %v\n%s", up, log.String())
		}
	}
}

// waitPort waits until 127.0.0.1:port accepts, or the daemon exits.
func waitPort(ctx context.Context, port int, exited chan error) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		select {
		case err := <-exited:
			exited <- err // for the caller's cleanup
			return fmt.Errorf("sshd exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if dial(addr) == nil {
			return nil
		}
	}
}

// SSH runs the ssh client against s as login with the given private key and
// certificate files, trusting host keys as known_hosts says (strict host key
// checking, the host known by alias), and returns its combined output.
func (s *SSHD) SSH(ctx context.Context, login, key, cert, knownHosts, alias string, command ...string) (string, error) {
	args := []string{"-F", "/dev/null", "-i", key, "-o", "CertificateFile=" + cert, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "HostKeyAlias=" + alias,
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-p", strconv.Itoa(s.Port), "-l", login, "127.0.0.1", "--"}
	out, err := exec.CommandContext(ctx, "ssh", append(args, command...)...).CombinedOutput()
	return string(out), err
}
