package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The local backend: memcached processes on loopback ports, for machines
// without a Docker engine. Kill is SIGKILL, Pause SIGSTOP (then a 50 ms wait:
// the signal is asynchronous), Unpause SIGCONT, Restart a new, empty process
// on the same port. Network faults are not supported.

type localBackend struct {
	bin    string
	reason string
	dir    string

	mu    sync.Mutex
	nodes map[*localNode]bool
}

func newLocalBackend(reason string) (*localBackend, error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		for _, p := range []string{"/usr/bin/memcached", "/usr/local/bin/memcached", "/usr/sbin/memcached"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return nil, errors.New("memcached is not installed: run scripts/install-deps.sh (Debian: apt-get install memcached)")
	}
	dir, err := os.MkdirTemp("", "libmemcached-go-it-local")
	if err != nil {
		return nil, err
	}
	return &localBackend{bin: bin, reason: reason, dir: dir, nodes: make(map[*localNode]bool)}, nil
}

func (b *localBackend) Name() string { return "local" }
func (b *localBackend) Describe() string {
	return fmt.Sprintf("memcached processes (%s) on 127.0.0.1; %s", b.bin, b.reason)
}

func (b *localBackend) start(name string, o nodeOptions) (node, error) {
	n := &localNode{b: b, name: name, args: append([]string{}, o.args...)}
	if o.sasl != nil {
		dir, err := os.MkdirTemp(b.dir, "sasl")
		if err != nil {
			return nil, err
		}
		host, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		if err := makeSASLFiles(dir, host, dir+"/sasldb2", *o.sasl); err != nil {
			return nil, err
		}
		n.env = append(os.Environ(), "SASL_CONF_PATH="+dir)
		n.args = append(n.args, "-S")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n.port = port
		if lastErr = n.launch(); lastErr == nil {
			b.mu.Lock()
			b.nodes[n] = true
			b.mu.Unlock()
			return n, nil
		}
	}
	return nil, lastErr
}

func (b *localBackend) remove(nd node) error {
	n := nd.(*localNode)
	b.mu.Lock()
	delete(b.nodes, n)
	b.mu.Unlock()
	return n.Kill()
}

func (b *localBackend) close() {
	b.mu.Lock()
	nodes := make([]*localNode, 0, len(b.nodes))
	for n := range b.nodes {
		nodes = append(nodes, n)
	}
	b.mu.Unlock()
	for _, n := range nodes {
		b.remove(n)
	}
	os.RemoveAll(b.dir)
}

type localNode struct {
	b    *localBackend
	name string
	port int
	args []string
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	output *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<16 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (n *localNode) Name() string { return n.name }
func (n *localNode) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// launch starts the process and waits until it answers.
func (n *localNode) launch() error {
	args := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(n.port)}, baseArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	args = append(args, n.args...)
	cmd := exec.Command(n.b.bin, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = n.env
	// The server dies with the test process, even if it crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done, n.output = cmd, done, out
	n.mu.Unlock()
	err := waitReady(n.Addr(), 10*time.Second, func() error {
		select {
		case <-done:
			return fmt.Errorf("memcached %v exited: %s", args, out.String())
		default:
			return nil
		}
	})
	if err != nil {
		cmd.Process.Kill()
		<-done
	}
	return err
}

func (n *localNode) signal(sig syscall.Signal) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return errors.New("not started")
	}
	select {
	case <-done:
		return fmt.Errorf("%s is not running", n.name)
	default:
	}
	return cmd.Process.Signal(sig)
}

func (n *localNode) Kill() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still runs 10s after SIGKILL", n.name)
	}
}

func (n *localNode) Pause() error {
	if err := n.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(50 * time.Millisecond) // SIGSTOP is asynchronous
	return nil
}

func (n *localNode) Unpause() error { return n.signal(syscall.SIGCONT) }

func (n *localNode) Restart() error {
	if err := n.Kill(); err != nil {
		return err
	}
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if err = n.launch(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

var errNoNetwork = fmt.Errorf("%w: local processes share the host's loopback; network faults need the Docker backend", errUnsupported)

func (n *localNode) Disconnect() error { return errNoNetwork }
func (n *localNode) Reconnect() error  { return errNoNetwork }
func (n *localNode) Partition() error  { return errNoNetwork }
func (n *localNode) Heal() error       { return errNoNetwork }
