// Package memcachedtest starts memcached servers on loopback for the tests
// of this repository and for memctl's embedded server: it finds the
// binary, picks a free port, waits until the server accepts connections,
// keeps the start of its output for errors, and makes sure the server dies
// with the process that started it (on Linux even when that process is
// killed: PR_SET_PDEATHSIG).
//
// A Server is safe for concurrent use.
package memcachedtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// InstallHint is the text of ErrNoMemcached.
const InstallHint = "memcached is not installed: run scripts/install-deps.sh (Debian, Ubuntu: apt-get install memcached; macOS: brew install memcached)"

// ErrNoMemcached means no memcached binary was found. Tests fail with it;
// they never skip.
var ErrNoMemcached = errors.New(InstallHint)

// BinaryPaths are the install locations Binary tries, in order, when
// memcached is not on PATH. Tests of the no-binary case empty it.
var BinaryPaths = []string{"/usr/bin/memcached", "/usr/local/bin/memcached", "/usr/sbin/memcached", "/opt/homebrew/bin/memcached"}

// Binary returns the path of the memcached binary: from PATH, else the
// usual install locations, else ErrNoMemcached.
func Binary() (string, error) {
	if p, err := exec.LookPath("memcached"); err == nil {
		return p, nil
	}
	for _, p := range BinaryPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", ErrNoMemcached
}

// FreePort returns a TCP port on host ("127.0.0.1", "::1") that was free a
// moment ago.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Config says how to start a server. The zero value is a memcached on a
// free port of 127.0.0.1, with UDP off and 64 MB of memory.
type Config struct {
	// Host is the address to listen on: "127.0.0.1" (the default) or "::1".
	Host string
	// Port is the TCP port; 0 picks a free one, and Start tries another if
	// it was taken before memcached could bind it.
	Port int
	// Socket, when set, is a Unix socket path to listen on instead of TCP.
	Socket string
	// Args are more memcached arguments ("-t", "2", "-S", ...).
	Args []string
	// Env are more environment variables ("SASL_CONF_PATH=...").
	Env []string
	// Output, when set, receives memcached's stdout and stderr; the first
	// 4 KiB are kept for errors either way.
	Output io.Writer
	// Ready is how long Start waits for the server to accept connections
	// (default 5 s).
	Ready time.Duration
}

// Server is a memcached process.
type Server struct {
	// Addr is what clients dial: "127.0.0.1:port", "[::1]:port" or the
	// socket path.
	Addr string
	// Port is the TCP port (0 for a socket).
	Port int
	// Bin is the memcached binary, Args its arguments.
	Bin  string
	Args []string

	cmd      *exec.Cmd
	out      *limitedBuffer
	done     chan struct{}
	stopOnce sync.Once
}

// Start starts memcached as cfg says and waits until it accepts
// connections. It returns ErrNoMemcached when there is no binary, and
// ctx.Err() if ctx ends first.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	attempts := 1
	if cfg.Port == 0 && cfg.Socket == "" {
		attempts = 5 // another process may take the free port first
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		port := cfg.Port
		if port == 0 && cfg.Socket == "" {
			if port, err = FreePort(cfg.Host); err != nil {
				return nil, fmt.Errorf("finding a free port: %w", err)
			}
		}
		s, err := launch(ctx, bin, cfg, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func launch(ctx context.Context, bin string, cfg Config, port int) (*Server, error) {
	s := &Server{Bin: bin, Port: port, out: &limitedBuffer{max: 4096}, done: make(chan struct{})}
	network := "tcp"
	if cfg.Socket != "" {
		network, s.Addr, s.Port = "unix", cfg.Socket, 0
		s.Args = []string{"-s", cfg.Socket, "-m", "64"}
	} else {
		s.Addr = net.JoinHostPort(cfg.Host, strconv.Itoa(port))
		s.Args = []string{"-l", cfg.Host, "-p", strconv.Itoa(port), "-U", "0", "-m", "64"}
	}
	if os.Geteuid() == 0 {
		s.Args = append(s.Args, "-u", "root") // memcached refuses to run as root otherwise
	}
	s.Args = append(s.Args, cfg.Args...)
	cmd := exec.Command(bin, s.Args...)
	var w io.Writer = s.out
	if cfg.Output != nil {
		w = io.MultiWriter(s.out, cfg.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if cfg.Env != nil {
		cmd.Env = append(os.Environ(), cfg.Env...)
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	wait := cfg.Ready
	if wait <= 0 {
		wait = 5 * time.Second
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("memcached %s exited at start: %s", strings.Join(s.Args, " "), s.Output())
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		default:
		}
		if c, err := net.DialTimeout(network, s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("memcached %s did not accept connections within %v: %s", strings.Join(s.Args, " "), wait, s.Output())
}

// Pid returns the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to the server (SIGSTOP pauses it; note that SIGSTOP
// takes effect asynchronously, so wait a little before relying on it).
func (s *Server) Signal(sig os.Signal) error {
	if s.Exited() {
		return fmt.Errorf("memcached at %s is not running", s.Addr)
	}
	return s.cmd.Process.Signal(sig)
}

// Stop kills the server and waits for it to exit. It may be called more
// than once, from several goroutines.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil {
		return
	}
	s.stopOnce.Do(func() { s.cmd.Process.Kill() })
	<-s.done
}

// Done is closed when the server process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Exited reports whether the server process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Output returns the start of what the server wrote, for error messages.
func (s *Server) Output() string {
	out := strings.TrimSpace(s.out.String())
	if out == "" {
		return "(no output)"
	}
	return out
}

// Arg returns the value following flag on the server's command line, or "".
func (s *Server) Arg(flag string) string {
	for i := 0; i+1 < len(s.Args); i++ {
		if s.Args[i] == flag {
			return s.Args[i+1]
		}
	}
	return ""
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
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// String returns what was kept.
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
