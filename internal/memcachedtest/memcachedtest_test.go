package memcachedtest

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// version asks the server at addr for its version within d.
func version(network, addr string, d time.Duration) (string, error) {
	c, err := net.DialTimeout(network, addr, d)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func TestStartAnswersAndStops(t *testing.T) {
	s := start(t, Config{Args: []string{"-t", "2"}})
	if s.Port == 0 || s.Addr != "127.0.0.1:"+strconv.Itoa(s.Port) {
		t.Fatalf("Addr %q, Port %d", s.Addr, s.Port)
	}
	if got := s.Arg("-p"); got != strconv.Itoa(s.Port) {
		t.Errorf("Arg(-p) = %q", got)
	}
	if got := s.Arg("-t"); got != "2" {
		t.Errorf("Arg(-t) = %q: the extra arguments are passed", got)
	}
	if v, err := version("tcp", s.Addr, time.Second); err != nil || !strings.HasPrefix(v, "VERSION ") {
		t.Fatalf("version: %q, %v", v, err)
	}
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	s.Stop()
	<-done
	s.Stop()
	if !s.Exited() {
		t.Fatal("Stop returned with the server running")
	}
	if _, err := version("tcp", s.Addr, 200*time.Millisecond); err == nil {
		t.Fatal("a stopped server answers")
	}
	if err := s.Signal(syscall.SIGCONT); err == nil {
		t.Fatal("Signal to a stopped server succeeds")
	}
}

func TestSameAddressAgain(t *testing.T) {
	s := start(t, Config{})
	port := s.Port
	s.Stop()
	var again *Server
	var err error
	for i := 0; i < 20; i++ { // the old listener may linger a moment
		if again, err = Start(context.Background(), Config{Port: port}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer again.Stop()
	if again.Addr != s.Addr {
		t.Fatalf("restarted on %s, not %s", again.Addr, s.Addr)
	}
}

func TestSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mc.sock")
	s := start(t, Config{Socket: path})
	if s.Addr != path || s.Port != 0 {
		t.Fatalf("Addr %q, Port %d", s.Addr, s.Port)
	}
	if _, err := version("unix", path, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestPauseAndResume(t *testing.T) {
	s := start(t, Config{})
	if err := s.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // SIGSTOP is asynchronous
	if _, err := version("tcp", s.Addr, 300*time.Millisecond); err == nil {
		t.Fatal("a paused server answers")
	}
	if err := s.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := version("tcp", s.Addr, 2*time.Second); err != nil {
		t.Fatalf("a resumed server does not answer: %v", err)
	}
}

func TestFailures(t *testing.T) {
	if _, err := Start(context.Background(), Config{Args: []string{"--no-such-flag"}}); err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Errorf("a bad flag: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context: %v", err)
	}
	saved := BinaryPaths
	BinaryPaths = nil
	defer func() { BinaryPaths = saved }()
	t.Setenv("PATH", t.TempDir())
	if _, err := Start(context.Background(), Config{}); !errors.Is(err, ErrNoMemcached) {
		t.Errorf("no binary: %v", err)
	}
}

// memcached hands new connections to its worker threads in turn:
// ClientThreads sees consecutive connections on different threads of a
// two-thread server and every other one on the same thread.
func TestClientThreads(t *testing.T) {
	s := start(t, Config{Args: []string{"-t", "2"}})
	var ports []int
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A round trip, so that the server has taken the connection.
		if _, err := c.Write([]byte("version\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		ports = append(ports, c.LocalAddr().(*net.TCPAddr).Port)
	}
	threads, err := s.ClientThreads()
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) != len(ports) {
		t.Fatalf("ClientThreads found %d client connections (%v), want %d", len(threads), threads, len(ports))
	}
	th := make([]int, len(ports))
	for i, p := range ports {
		var ok bool
		if th[i], ok = threads[p]; !ok {
			t.Fatalf("connection from port %d not found in %v", p, threads)
		}
	}
	if th[0] == th[1] || th[0] != th[2] || th[1] != th[3] {
		t.Errorf("threads of four consecutive connections: %v, want alternating", th)
	}
}
