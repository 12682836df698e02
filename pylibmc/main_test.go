package pylibmc

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
	"github.com/stretchr/testify/require"
)

// The tests that need memcached start real servers on free loopback ports
// (internal/memcachedtest); a missing memcached binary fails them with the
// install command. The codec's tests (encode, decode, pickles, the zlib
// bomb, FuzzDecode) need none and pass without one.

// shared is the server of the tests that need no special setup (they use
// distinct keys) and of the examples; sharedErr is why it is not there.
var (
	shared    *memcachedtest.Server
	sharedErr error
)

// TestMain starts the shared server and hands it to the examples
// (package pylibmc_test) the way a program would get its servers: in
// $MEMCACHED_SERVERS. Without memcached it says so and runs the tests
// anyway: those that need a server fail, the codec's pass.
func TestMain(m *testing.M) {
	shared, sharedErr = startMemcached()
	if sharedErr != nil {
		fmt.Fprintln(os.Stderr, "starting memcached failed; every test and example that needs a server will fail:", sharedErr)
		os.Setenv("MEMCACHED_SERVERS", "")
	} else {
		os.Setenv("MEMCACHED_SERVERS", shared.Addr)
	}
	code := m.Run()
	shared.Stop()
	os.Exit(code)
}

func startMemcached(extra ...string) (*memcachedtest.Server, error) {
	return memcachedtest.Start(context.Background(), memcachedtest.Config{Args: append([]string{"-t", "2"}, extra...)})
}

// sharedServer returns the address of the shared server, failing t
// without one.
func sharedServer(t testing.TB) string {
	t.Helper()
	if sharedErr != nil {
		t.Fatalf("starting memcached: %v", sharedErr)
	}
	return shared.Addr
}

// newServer starts a server for one test and stops it when the test ends.
func newServer(t testing.TB, extra ...string) string {
	t.Helper()
	s, err := startMemcached(extra...)
	if err != nil {
		t.Fatalf("starting memcached: %v", err)
	}
	t.Cleanup(s.Stop)
	return s.Addr
}

// trio starts three memcached servers for one test.
func trio(t *testing.T) []string {
	t.Helper()
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = newServer(t)
	}
	return addrs
}

// protocols runs a test body once per protocol.
var protocols = []struct {
	name string
	opts []libmemcached.Option
}{
	{"ascii", nil},
	{"binary", []libmemcached.Option{libmemcached.WithBinaryProtocol()}},
}

// newMC returns a libmemcached client of servers, closed when the test
// ends.
func newMC(t testing.TB, servers []string, opts ...libmemcached.Option) *libmemcached.Client {
	t.Helper()
	mc, err := libmemcached.New(servers, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { mc.Close() })
	return mc
}

// newPool returns a libmemcached pool of servers, closed when the test
// ends.
func newPool(t testing.TB, servers []string, size int, opts ...libmemcached.Option) *libmemcached.Pool {
	t.Helper()
	p, err := libmemcached.NewPool(servers, size, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// stores returns a Client of servers over a *libmemcached.Client and one
// over a *libmemcached.Pool, by name, for tests that must hold for both.
func stores(t testing.TB, servers []string, codec Codec, opts ...libmemcached.Option) []struct {
	name string
	c    *Client
} {
	t.Helper()
	return []struct {
		name string
		c    *Client
	}{
		{"client", New(newMC(t, servers, opts...), codec)},
		{"pool", New(newPool(t, servers, 4, opts...), codec)},
	}
}
