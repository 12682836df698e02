package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
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
	bin, err := memcachedtest.Binary()
	if err != nil {
		return nil, err
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
		n.env = []string{"SASL_CONF_PATH=" + dir}
		n.args = append(n.args, "-S")
	}
	if err := n.launch(0); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.nodes[n] = true
	b.mu.Unlock()
	return n, nil
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
	args []string
	env  []string

	mu   sync.Mutex
	srv  *memcachedtest.Server // the current process
	port int
}

func (n *localNode) Name() string { return n.name }
func (n *localNode) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// launch starts the process on port (0: a free one) and waits until it
// answers.
func (n *localNode) launch(port int) error {
	srv, err := memcachedtest.Start(context.Background(), memcachedtest.Config{
		Port:  port,
		Args:  append(append([]string{}, baseArgs...), n.args...),
		Env:   n.env,
		Ready: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	if err := waitReady(srv.Addr, 10*time.Second, nil); err != nil {
		srv.Stop()
		return err
	}
	n.mu.Lock()
	n.srv, n.port = srv, srv.Port
	n.mu.Unlock()
	return nil
}

func (n *localNode) server() *memcachedtest.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

func (n *localNode) signal(sig syscall.Signal) error {
	srv := n.server()
	if srv == nil {
		return errors.New("not started")
	}
	return srv.Signal(sig)
}

func (n *localNode) Kill() error {
	srv := n.server()
	if srv == nil {
		return nil
	}
	stopped := make(chan struct{})
	go func() { srv.Stop(); close(stopped) }()
	select {
	case <-stopped:
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

// Restart starts a fresh, empty process on the same port.
func (n *localNode) Restart() error {
	if err := n.Kill(); err != nil {
		return err
	}
	var err error
	for attempt := 0; attempt < 10; attempt++ { // the old listener may linger a moment
		if err = n.launch(n.port); err == nil {
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
