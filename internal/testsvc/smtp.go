package testsvc

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// SMTPSink is a real SMTP server that keeps what it receives: Debian's
// python3-aiosmtpd run by the test on a loopback port.
type SMTPSink struct {
	Addr string // 127.0.0.1:port
	mu   sync.Mutex
	out  strings.Builder
}

func (s *SMTPSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

// Received is everything the sink has printed: each message's headers and body.
func (s *SMTPSink) Received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// WaitFor waits up to d for the received text to contain sub.
func (s *SMTPSink) WaitFor(t testing.TB, sub string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.Received()
		if strings.Contains(got, sub) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SMTP sink did not receive %q; got:\n%s", sub, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SMTP starts an SMTP sink for the test, stopped at cleanup.
func SMTP(t testing.TB) *SMTPSink {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import aiosmtpd").Run(); err != nil {
		Need(t, fmt.Errorf("python3-aiosmtpd: %w", err), "Debian's python3-aiosmtpd")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &SMTPSink{Addr: addr}
	cmd := exec.Command(py, "-u", "-m", "aiosmtpd", "-n", "-l", addr)
	cmd.Stdout, cmd.Stderr = s, s
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for dial(addr) != nil {
		if time.Now().After(deadline) {
			t.Fatal(errors.New("aiosmtpd did not start listening: " + s.Received()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}
