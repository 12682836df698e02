package main

// The embedded server: a memcached that memctl starts for itself (for
// "memctl demo" and "memctl bench") when no server is given. It
// listens only on 127.0.0.1, on a free port, with UDP off, and is stopped
// when the command ends: normally, on an error, on SIGINT/SIGTERM, and, on
// Linux, even when memctl itself is killed (see setParentDeathSignal).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// installHint is the error text when no memcached binary can be found.
const installHint = "memcached is not installed: run scripts/install-deps.sh (Debian: apt-get install memcached)"

// errNoMemcached is returned by findMemcached when there is no binary.
var errNoMemcached = errors.New(installHint)

// errInterrupted is returned by withEmbeddedServer when its context was
// cancelled (memctl received SIGINT or SIGTERM).
var errInterrupted = errors.New("interrupted")

// memcachedPaths are tried, in order, when memcached is not on PATH.
var memcachedPaths = []string{"/usr/bin/memcached", "/usr/local/bin/memcached", "/usr/sbin/memcached"}

// findMemcached returns the path of the memcached binary: from PATH, else
// the usual install locations.
func findMemcached() (string, error) {
	if p, err := exec.LookPath("memcached"); err == nil {
		return p, nil
	}
	for _, p := range memcachedPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errNoMemcached
}

// embeddedServer is a memcached process started by memctl.
type embeddedServer struct {
	Addr string // "127.0.0.1:port"
	Port int
	Bin  string // the memcached binary

	cmd      *exec.Cmd
	stderr   *limitedBuffer
	done     chan struct{} // closed when the process has exited
	stopOnce sync.Once
}

// Pid returns the server's process id.
func (s *embeddedServer) Pid() int { return s.cmd.Process.Pid }

// startEmbedded starts memcached on a free loopback port (trying a few
// ports, since another process may take the free one first) and waits until
// it accepts connections. extra are more memcached arguments ("-m", "256",
// ...).
func startEmbedded(ctx context.Context, extra ...string) (*embeddedServer, error) {
	bin, err := findMemcached()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		s, err := launchMemcached(ctx, bin, port, extra)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launchMemcached(ctx context.Context, bin string, port int, extra []string) (*embeddedServer, error) {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64"}
	args = append(args, extra...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root otherwise
	}
	cmd := exec.Command(bin, args...)
	stderr := &limitedBuffer{max: 4096}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &embeddedServer{
		Addr:   "127.0.0.1:" + strconv.Itoa(port),
		Port:   port,
		Bin:    bin,
		cmd:    cmd,
		stderr: stderr,
		done:   make(chan struct{}),
	}
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("memcached %s exited at start: %s", strings.Join(args, " "), s.output())
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("memcached %s did not accept connections within 5s: %s", strings.Join(args, " "), s.output())
}

// output returns what the server wrote to stdout and stderr, for errors.
func (s *embeddedServer) output() string {
	out := strings.TrimSpace(s.stderr.String())
	if out == "" {
		return "(no output)"
	}
	return out
}

// Stop kills the server and waits for it to exit. It is safe to call more
// than once and from several goroutines.
func (s *embeddedServer) Stop() {
	if s == nil {
		return
	}
	s.stopOnce.Do(func() { s.cmd.Process.Kill() })
	<-s.done
}

// Exited reports whether the server process has exited.
func (s *embeddedServer) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// withEmbeddedServer starts a memcached, runs fn with it and stops the
// server when fn returns. If ctx is cancelled first (memctl received SIGINT
// or SIGTERM: see signalContext), the server is stopped at once, so that
// fn's calls fail fast instead of finishing the work, and once fn has
// returned withEmbeddedServer returns errInterrupted. extra are more
// memcached arguments, as for startEmbedded.
func withEmbeddedServer(ctx context.Context, fn func(ctx context.Context, s *embeddedServer) error, extra ...string) error {
	s, err := startEmbedded(ctx, extra...)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	defer s.Stop()
	fnDone := make(chan struct{})
	defer close(fnDone)
	go func() {
		select {
		case <-ctx.Done():
			s.Stop()
		case <-fnDone:
		}
	}()
	err = fn(ctx, s)
	if ctx.Err() != nil {
		return errInterrupted
	}
	return err
}

// limitedBuffer keeps the first max bytes written to it; safe for the
// concurrent writes of a child's stdout and stderr.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

// Write keeps what fits and reports all of p as written.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

// String returns what was kept.
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// signalContext returns a context cancelled when memctl receives SIGINT
// (Ctrl-C) or SIGTERM; stop restores the default handling.
func signalContext() (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
