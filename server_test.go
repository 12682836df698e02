package libmemcached

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
)

// The tests talk to real memcached servers that they start themselves on
// free loopback ports (internal/memcachedtest). A missing memcached binary
// fails the run.

// memcachedServer is a memcached process started for a test.
type memcachedServer = memcachedtest.Server

func memcachedBinary() (string, error) { return memcachedtest.Binary() }

func freePort() (int, error) { return memcachedtest.FreePort("127.0.0.1") }

// startMemcached starts memcached (two threads) on a free loopback port
// with extra arguments and waits until it accepts connections.
func startMemcached(extra ...string) (*memcachedServer, error) {
	return memcachedtest.Start(context.Background(), memcachedtest.Config{Args: append([]string{"-t", "2"}, extra...)})
}

// startMemcachedSocket starts memcached on a Unix socket.
func startMemcachedSocket(path string) (*memcachedServer, error) {
	return memcachedtest.Start(context.Background(), memcachedtest.Config{Socket: path})
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

// TestMain fails the run at once without memcached, and hands the shared
// server to the examples (package libmemcached_test) the way a program
// would get its servers: in $MEMCACHED_SERVERS.
func TestMain(m *testing.M) {
	sharedOnce.Do(func() { shared, sharedErr = startMemcached() })
	if sharedErr != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting memcached:", sharedErr)
		os.Exit(1)
	}
	os.Setenv("MEMCACHED_SERVERS", shared.Addr)
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
