// Package memcachedtest starts memcached servers on loopback for the tests
// of this repository and for memctl's embedded server, and twemproxy
// (nutcracker) in front of them for the proxy tests (StartTwemproxy): it
// finds the binary, picks free ports, waits until the process accepts
// connections, keeps the start of its output for errors, and makes sure
// the process dies with the one that started it (on Linux even when that
// process is killed: PR_SET_PDEATHSIG).
//
// A Server and a Twemproxy are safe for concurrent use.
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
func Binary() (string, error) { return lookBinary("memcached", BinaryPaths, ErrNoMemcached) }

// lookBinary finds name on PATH, else at the first of paths that is a
// file, else returns missing.
func lookBinary(name string, paths []string, missing error) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", missing
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

	process
}

// process is a child process started for a test: its command, the start
// of its output, and a channel closed when it has exited. Server and
// Twemproxy share it.
type process struct {
	cmd      *exec.Cmd
	out      *limitedBuffer
	done     chan struct{}
	stopOnce sync.Once
}

// start starts bin with args, its stdout and stderr kept (the first 4 KiB)
// and copied to output when set, and env added to the environment when
// set; the kernel kills it with the test process (dieWithParent).
func (p *process) start(bin string, args, env []string, output io.Writer) error {
	p.out, p.done = &limitedBuffer{max: 4096}, make(chan struct{})
	cmd := exec.Command(bin, args...)
	var w io.Writer = p.out
	if output != nil {
		w = io.MultiWriter(p.out, output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	p.cmd = cmd
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return nil
}

// waitAccepting waits up to wait (5 s when 0) until addr accepts
// connections. It stops the process if it does not, or if ctx ends first;
// what names the program in errors, with its arguments.
func (p *process) waitAccepting(ctx context.Context, network, addr string, wait time.Duration, what string) error {
	if wait <= 0 {
		wait = 5 * time.Second
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start: %s", what, p.Output())
		case <-ctx.Done():
			p.Stop()
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout(network, addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	return fmt.Errorf("%s did not accept connections within %v: %s", what, wait, p.Output())
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
	return tries(ctx, attempts, func() (*Server, error) {
		port := cfg.Port
		if port == 0 && cfg.Socket == "" {
			var err error
			if port, err = FreePort(cfg.Host); err != nil {
				return nil, fmt.Errorf("finding a free port: %w", err)
			}
		}
		return launch(ctx, bin, cfg, port)
	})
}

// tries calls launch up to n times, until it succeeds or ctx ends, and
// returns its last error: a port that was free may be taken before the
// process binds it.
func tries[T any](ctx context.Context, n int, launch func() (T, error)) (T, error) {
	var zero T
	var lastErr error
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		v, err := launch()
		if err == nil {
			return v, nil
		}
		lastErr = err
	}
	return zero, lastErr
}

func launch(ctx context.Context, bin string, cfg Config, port int) (*Server, error) {
	s := &Server{Bin: bin, Port: port}
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
	if err := s.start(bin, s.Args, cfg.Env, cfg.Output); err != nil {
		return nil, err
	}
	if err := s.waitAccepting(ctx, network, s.Addr, cfg.Ready, "memcached "+strings.Join(s.Args, " ")); err != nil {
		return nil, err
	}
	return s, nil
}

// Pid returns the process id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the server (SIGSTOP pauses it; note that SIGSTOP
// takes effect asynchronously, so wait a little before relying on it).
func (s *Server) Signal(sig os.Signal) error {
	if s.Exited() {
		return fmt.Errorf("memcached at %s is not running", s.Addr)
	}
	return s.cmd.Process.Signal(sig)
}

// Stop kills the server and waits for it to exit. It may be called more
// than once, from several goroutines, and on a nil Server.
func (s *Server) Stop() {
	if s != nil {
		s.process.Stop()
	}
}

// Stop kills the process and waits for it to exit. It may be called more
// than once, from several goroutines.
func (p *process) Stop() {
	if p == nil || p.cmd == nil {
		return
	}
	p.stopOnce.Do(func() { p.cmd.Process.Kill() })
	<-p.done
}

// Done is closed when the process has exited.
func (p *process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns the start of what the process wrote, for error messages.
func (p *process) Output() string {
	out := strings.TrimSpace(p.out.String())
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
