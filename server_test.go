package libmemcached

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The tests talk to real memcached servers that they start themselves on
// free loopback ports. A missing memcached binary fails the run.

const installHint = "memcached is not installed: run scripts/install-deps.sh (Debian: apt-get install memcached)"

// memcachedServer is a memcached process started for a test.
type memcachedServer struct {
	cmd  *exec.Cmd
	Addr string // "127.0.0.1:port" or the socket path
	Port int
	done chan struct{}
}

func memcachedBinary() (string, error) {
	if p, err := exec.LookPath("memcached"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/memcached", "/usr/local/bin/memcached", "/usr/sbin/memcached"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s", installHint)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startMemcached starts memcached on a free loopback port with extra
// arguments and waits until it accepts connections.
func startMemcached(extra ...string) (*memcachedServer, error) {
	bin, err := memcachedBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64", "-t", "2"}, extra...)
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		s, err := launch(bin, args, "127.0.0.1:"+strconv.Itoa(port), func() bool {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 100*time.Millisecond)
			if err == nil {
				c.Close()
				return true
			}
			return false
		})
		if err == nil {
			s.Port = port
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// startMemcachedSocket starts memcached on a Unix socket.
func startMemcachedSocket(path string) (*memcachedServer, error) {
	bin, err := memcachedBinary()
	if err != nil {
		return nil, err
	}
	args := []string{"-s", path, "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return launch(bin, args, path, func() bool {
		c, err := net.DialTimeout("unix", path, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		return false
	})
}

func launch(bin string, args []string, addr string, ready func() bool) (*memcachedServer, error) {
	return launchEnv(bin, args, nil, addr, ready)
}

// launchEnv is launch with extra environment variables.
func launchEnv(bin string, args, env []string, addr string, ready func() bool) (*memcachedServer, error) {
	cmd := exec.Command(bin, args...)
	dieWithTests(cmd)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &memcachedServer{cmd: cmd, Addr: addr, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("memcached %v exited at start", args)
		default:
		}
		if ready() {
			return s, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("memcached %v did not accept connections within 5s", args)
}

// Stop kills the server and waits for it to exit.
func (s *memcachedServer) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
}

// newServer starts a server for one test and stops it when the test ends.
func newServer(t testing.TB, extra ...string) *memcachedServer {
	t.Helper()
	s, err := startMemcached(extra...)
	if err != nil {
		t.Fatalf("starting memcached: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var (
	sharedOnce sync.Once
	shared     *memcachedServer
	sharedErr  error
)

// sharedServer is one server for the tests that need no special setup;
// they use distinct keys.
func sharedServer(t testing.TB) *memcachedServer {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = startMemcached() })
	if sharedErr != nil {
		t.Fatalf("starting memcached: %v", sharedErr)
	}
	return shared
}

// SharedServerAddr returns the address of the shared test server, for the
// examples in the external test package; TestMain stops the server.
func SharedServerAddr() string {
	sharedOnce.Do(func() { shared, sharedErr = startMemcached() })
	if sharedErr != nil {
		panic("starting memcached: " + sharedErr.Error())
	}
	return shared.Addr
}

func TestMain(m *testing.M) {
	if _, err := memcachedBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// protocols runs a test body once per protocol.
var protocols = []struct {
	name string
	opts []Option
}{
	{"ascii", nil},
	{"binary", []Option{WithBinaryProtocol()}},
}

// newClient returns a client of the shared server for a test, closed at
// its end.
func newTestClient(t testing.TB, opts ...Option) *Client {
	t.Helper()
	s := sharedServer(t)
	c, err := New([]string{s.Addr}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
