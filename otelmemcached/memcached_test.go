package otelmemcached_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// This module cannot import the library's internal/memcachedtest, so its
// tests start their memcached here, the same way: loopback, a free port, no
// UDP, and a missing binary is a failure, never a skip.

// installHint is the error for a machine without memcached.
const installHint = "memcached is not installed: run scripts/install-deps.sh (apt-get install memcached)"

// memcached is a server process the tests started.
type memcached struct {
	addr string // 127.0.0.1:port
	port int
	cmd  *exec.Cmd
	exit chan struct{} // closed when the process has ended
}

// memcachedBinary finds memcached on PATH or where packages put it.
func memcachedBinary() (string, error) {
	if p, err := exec.LookPath("memcached"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/memcached", "/usr/local/bin/memcached", "/usr/sbin/memcached", "/opt/homebrew/bin/memcached"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New(installHint)
}

// closedPort returns a loopback port that nothing listened on a moment
// ago.
func closedPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startMemcached starts a server on a free loopback port and waits until
// it accepts connections; it retries when another process took the port
// first.
func startMemcached() (*memcached, error) {
	bin, err := memcachedBinary()
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		m, err := launch(bin)
		if err == nil || attempt == 4 {
			return m, err
		}
	}
}

func launch(bin string) (*memcached, error) {
	port, err := closedPort()
	if err != nil {
		return nil, err
	}
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	m := &memcached{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port, exit: make(chan struct{})}
	m.cmd = exec.Command(bin, args...)
	killWithTest(m.cmd)
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { m.cmd.Wait(); close(m.exit) }()
	for give := time.Now().Add(5 * time.Second); time.Now().Before(give); time.Sleep(10 * time.Millisecond) {
		select {
		case <-m.exit:
			return nil, fmt.Errorf("%s %v exited at start", bin, args)
		default:
		}
		if c, err := net.DialTimeout("tcp", m.addr, 100*time.Millisecond); err == nil {
			c.Close()
			return m, nil
		}
	}
	m.stop()
	return nil, fmt.Errorf("%s %v accepted no connection within 5s", bin, args)
}

// stop kills the server and waits for it.
func (m *memcached) stop() {
	m.cmd.Process.Kill()
	<-m.exit
}

// newMemcached starts a server of the test's own, stopped at its end.
func newMemcached(t *testing.T) *memcached {
	t.Helper()
	m, err := startMemcached()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
	return m
}

// pause stops the server's process (SIGSTOP) until the returned function,
// or the end of the test, continues it.
func (m *memcached) pause(t *testing.T) (resume func()) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the signal lands asynchronously
	paused := true
	resume = func() {
		if paused {
			paused = false
			m.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	return resume
}

// shared is the server of the tests and the examples; TestMain gives its
// address to the examples in $MEMCACHED_SERVERS, as a program would get it.
var shared *memcached

func TestMain(m *testing.M) {
	var err error
	if shared, err = startMemcached(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting memcached:", err)
		os.Exit(1)
	}
	os.Setenv("MEMCACHED_SERVERS", shared.addr)
	code := m.Run()
	shared.stop()
	os.Exit(code)
}
