package libmemcached

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Client semantics, each run under the ASCII and the binary protocol against
// real memcached servers. Helpers here are prefixed "ct" so they do not
// collide with other test files of the package.

// ctKey returns a key unique to the running (sub)test.
func ctKey(t testing.TB, suffix string) string {
	return "ct:" + t.Name() + ":" + suffix
}

// ctErr asserts err is an *Error (through any wrapping) and returns it.
func ctErr(t testing.TB, err error) *Error {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.True(t, errors.As(err, &e), "error %v (%T) is not an *Error", err, err)
	return e
}

// ctNew returns a client of addrs closed at the end of the test.
func ctNew(t testing.TB, addrs []string, opts ...Option) *Client {
	t.Helper()
	c, err := New(addrs, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// ctDeadAddr returns a loopback address with nothing listening.
func ctDeadAddr(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	require.NoError(t, err)
	return "127.0.0.1:" + strconv.Itoa(port)
}

// ctOpts appends more options to a protocol's options without aliasing.
func ctOpts(base []Option, more ...Option) []Option {
	out := make([]Option, 0, len(base)+len(more))
	out = append(out, base...)
	return append(out, more...)
}

// ctWithin runs fn and fails the test if it has not returned within d: a
// bound on a hang, not a speed assertion.
func ctWithin(t testing.TB, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// ctStartOnPort starts memcached on 127.0.0.1:port (for a restart on the
// same address).
func ctStartOnPort(t testing.TB, port int) *memcachedServer {
	t.Helper()
	var s *memcachedServer
	var err error
	for attempt := 0; attempt < 20; attempt++ { // the old listener may linger a moment
		s, err = memcachedtest.Start(context.Background(), memcachedtest.Config{Port: port, Args: []string{"-t", "2"}})
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restarting memcached on port %d: %v", port, err)
	return nil
}

// ctStartIPv6 starts memcached on [::1], or returns nil if IPv6 loopback
// does not work here.
func ctStartIPv6(t testing.TB) *memcachedServer {
	t.Helper()
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		return nil
	} else {
		l.Close()
	}
	s, err := memcachedtest.Start(context.Background(), memcachedtest.Config{Host: "::1", Args: []string{"-t", "2"}})
	if err != nil {
		return nil
	}
	t.Cleanup(s.Stop)
	return s
}

// ctStat reads one numeric stat of the single server of c.
func ctStat(t testing.TB, c *Client, name string) int64 {
	t.Helper()
	st, err := c.Stats()
	require.NoError(t, err)
	require.Len(t, st, 1)
	for _, m := range st {
		v, ok := m[name]
		require.True(t, ok, "stat %q missing", name)
		n, err := strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
		return n
	}
	return 0
}

// ctArg returns the value following flag in a server's command line.
func ctArg(t testing.TB, s *memcachedServer, flag string) string {
	t.Helper()
	v := s.Arg(flag)
	require.NotEmpty(t, v, "no %s in %v", flag, s.Args)
	return v
}

// ---------------------------------------------------------------------------
// Construction

func TestClientConstructionDoesNotConnect(t *testing.T) {
	const connectTimeoutMS = 100
	bound := 5*connectTimeoutMS*time.Millisecond + 2*time.Second
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			dead := ctDeadAddr(t)
			opts := ctOpts(pr.opts, WithBehaviors(map[string]any{"connect_timeout": connectTimeoutMS}))
			ops := []struct {
				name string
				op   string
				call func(c *Client) error
			}{
				{"get", "get", func(c *Client) error { _, err := c.Get("k"); return err }},
				{"set", "set", func(c *Client) error { return c.Set(&Item{Key: "k", Value: []byte("v")}) }},
				{"incr", "incr", func(c *Client) error { _, err := c.Increment("k", 1); return err }},
			}
			for _, o := range ops {
				t.Run(o.name, func(t *testing.T) {
					c, err := New([]string{dead}, opts...)
					require.NoError(t, err, "New must not connect")
					defer c.Close()
					var opErr error
					start := time.Now()
					ctWithin(t, bound+5*time.Second, o.name, func() { opErr = o.call(c) })
					elapsed := time.Since(start)
					e := ctErr(t, opErr)
					assert.True(t, e.Temporary(), "refused connection must be Temporary: %v", e)
					assert.False(t, e.Timeout(), "refused connection is not a timeout: %v", e)
					assert.True(t, isConnectionClass(e.Code), "code %v is not connection-class", e.Code)
					assert.Equal(t, o.op, e.Op)
					assert.Equal(t, dead, e.Server)
					assert.Less(t, elapsed, bound, "first operation hung")
				})
			}
			t.Run("config", func(t *testing.T) {
				c, err := NewFromConfig("--SERVER="+dead, opts...)
				require.NoError(t, err, "NewFromConfig must not connect")
				defer c.Close()
				var opErr error
				ctWithin(t, bound+5*time.Second, "get", func() { _, opErr = c.Get("k") })
				e := ctErr(t, opErr)
				assert.True(t, e.Temporary(), "%v", e)
			})
		})
	}
}

func TestClientNoServers(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for name, servers := range map[string][]string{"nil": nil, "empty": {}} {
				c, err := New(servers, pr.opts...)
				assert.Nil(t, c, name)
				assert.ErrorIs(t, err, ErrNoServers, name)
				ctErr(t, err)
			}
			c, err := NewFromConfig("--BINARY-PROTOCOL", pr.opts...)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ErrNoServers)
		})
	}
}

func TestClientServerSpecs(t *testing.T) {
	live := sharedServer(t)
	host, _, err := net.SplitHostPort(live.Addr)
	require.NoError(t, err)
	v6 := ctStartIPv6(t)
	sockDir := t.TempDir()
	sockPath := filepath.Join(sockDir, "mc.sock")
	require.Less(t, len(sockPath), 100, "socket path too long for sun_path")
	sock, err := startMemcachedSocket(sockPath)
	require.NoError(t, err)
	t.Cleanup(sock.Stop)

	cases := []struct {
		name        string
		spec        string
		wantServers []string
		roundTrip   bool // a server is really there: do set/get
	}{
		{"host:port", live.Addr, []string{live.Addr}, true},
		{"host only", host, []string{host + ":11211"}, false},
		{"host:port:weight", live.Addr + ":2", []string{live.Addr}, true},
		{"unix socket", sockPath, []string{sockPath}, true},
		{"ipv6 parse", "[::1]:12345", []string{"[::1]:12345"}, false},
		{"ipv6 no port", "[::1]", []string{"[::1]:11211"}, false},
	}
	if v6 != nil {
		cases = append(cases, struct {
			name        string
			spec        string
			wantServers []string
			roundTrip   bool
		}{"ipv6 live", v6.Addr, []string{v6.Addr}, true})
	} else {
		t.Log("IPv6 loopback unavailable: checking the parsed [::1] address only")
	}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := ctNew(t, []string{tc.spec}, pr.opts...)
					assert.Equal(t, tc.wantServers, c.Servers())
					if !tc.roundTrip {
						return
					}
					k := ctKey(t, "k")
					want := []byte("via " + tc.spec)
					require.NoError(t, c.Set(&Item{Key: k, Value: want}))
					it, err := c.Get(k)
					require.NoError(t, err)
					assert.Equal(t, want, it.Value)
					srv, err := c.ServerFor(k)
					require.NoError(t, err)
					assert.Equal(t, tc.wantServers[0], srv)
					st, err := c.Stats()
					require.NoError(t, err)
					assert.Contains(t, st, tc.wantServers[0])
				})
			}
		})
	}
}

func TestClientMalformedServerSpecs(t *testing.T) {
	bad := []string{
		"", "host:", "host:notaport", "host:70000", "a:1:2:3", "[::1", "host:1:0", "ho st:1",
		":11211", "[]", "[]:1", "[::1]:", "[::1]x", "host:0", "host:-1", "host:1:", "host:1:x",
		"host:1:-2", "host\n:1", "host\x00:1", "[::1]:99999",
	}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for _, spec := range bad {
				var c *Client
				var err error
				assert.NotPanics(t, func() { c, err = New([]string{spec}, pr.opts...) }, "%q", spec)
				if !assert.Error(t, err, "spec %q accepted", spec) {
					c.Close()
					continue
				}
				assert.Nil(t, c, "%q", spec)
				var e *Error
				assert.True(t, errors.As(err, &e), "spec %q: %v is not an *Error", spec, err)
				// A bad spec after good ones fails the whole call too.
				c, err = New([]string{"127.0.0.1:11211", spec}, pr.opts...)
				assert.Error(t, err, "%q after a good spec", spec)
				assert.Nil(t, c)
			}
		})
	}
}

func TestClientNewFromConfig(t *testing.T) {
	s := sharedServer(t)
	t.Run("binary config", func(t *testing.T) {
		c, err := NewFromConfig("--SERVER=" + s.Addr + " --BINARY-PROTOCOL")
		require.NoError(t, err)
		defer c.Close()
		b, err := c.Behavior(BehaviorBinaryProtocol)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), b)
		assert.Equal(t, []string{s.Addr}, c.Servers())
		// The client knows it is binary: a key with a space is allowed.
		k := ctKey(t, "with space")
		require.NoError(t, c.Set(&Item{Key: k, Value: []byte("cfg")}))
		it, err := c.Get(k)
		require.NoError(t, err)
		assert.Equal(t, []byte("cfg"), it.Value)
	})
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c, err := NewFromConfig("--SERVER="+s.Addr, pr.opts...)
			require.NoError(t, err)
			defer c.Close()
			b, err := c.Behavior(BehaviorBinaryProtocol)
			require.NoError(t, err)
			assert.Equal(t, pr.name == "binary", b == 1)
			k := ctKey(t, "k")
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte(pr.name)}))
			it, err := c.Get(k)
			require.NoError(t, err)
			assert.Equal(t, []byte(pr.name), it.Value)

			for _, cfg := range []string{"--FOO", "--SERVER=", "garbage words", "--SERVER=" + s.Addr + " --NOT-AN-OPTION"} {
				c, err := NewFromConfig(cfg, pr.opts...)
				assert.Nil(t, c, "%q", cfg)
				e := ctErr(t, err)
				assert.ErrorIs(t, err, ErrParseError, "%q", cfg)
				assert.Equal(t, ReturnParseError, e.Code, "%q", cfg)
				assert.NotEmpty(t, e.Message, "%q: libmemcached's parse message", cfg)
				assert.Contains(t, strings.ToLower(e.Message), "pars", "%q: libmemcached's parse message", cfg)
			}
			c2, err := NewFromConfig("--SERVER="+s.Addr+"\x00", pr.opts...)
			assert.Nil(t, c2)
			assert.Error(t, err)
		})
	}
}

// ---------------------------------------------------------------------------
// Misses and refused stores

func TestClientMisses(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			absent := ctKey(t, "absent")
			cases := []struct {
				op   string
				call func() error
			}{
				{"get", func() error { _, err := c.Get(absent); return err }},
				{"delete", func() error { return c.Delete(absent) }},
				{"touch", func() error { return c.Touch(absent, 10) }},
				{"incr", func() error { _, err := c.Increment(absent, 1); return err }},
				{"decr", func() error { _, err := c.Decrement(absent, 1); return err }},
				{"cas", func() error {
					return c.CompareAndSwap(&Item{Key: absent, Value: []byte("x"), CasID: 12345})
				}},
			}
			for _, tc := range cases {
				err := tc.call()
				assert.ErrorIs(t, err, ErrCacheMiss, tc.op)
				e := ctErr(t, err)
				assert.Equal(t, tc.op, e.Op)
				assert.Equal(t, absent, e.Key)
				assert.False(t, e.Temporary(), "a miss is not temporary (%s)", tc.op)
			}
			// Still absent: none of them created it.
			_, err := c.Get(absent)
			assert.ErrorIs(t, err, ErrCacheMiss)
		})
	}
}

func TestClientNotStored(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			present := ctKey(t, "present")
			absent := ctKey(t, "absent")
			require.NoError(t, c.Set(&Item{Key: present, Value: []byte("orig")}))
			binary := pr.name == "binary"
			cases := []struct {
				op           string
				call         func() error
				binaryOrigin ReturnCode // libmemcached's own code in binary mode
			}{
				{"add", func() error { return c.Add(&Item{Key: present, Value: []byte("new")}) }, ReturnDataExists},
				{"replace", func() error { return c.Replace(&Item{Key: absent, Value: []byte("new")}) }, ReturnNotFound},
				{"append", func() error { return c.Append(&Item{Key: absent, Value: []byte("new")}) }, ReturnNotStored},
				{"prepend", func() error { return c.Prepend(&Item{Key: absent, Value: []byte("new")}) }, ReturnNotStored},
			}
			for _, tc := range cases {
				err := tc.call()
				assert.ErrorIs(t, err, ErrNotStored, tc.op)
				assert.NotErrorIs(t, err, ErrCacheMiss, tc.op)
				e := ctErr(t, err)
				assert.Equal(t, ReturnNotStored, e.Code, tc.op)
				assert.Equal(t, tc.op, e.Op)
				if binary {
					assert.Equal(t, tc.binaryOrigin, e.Original, "%s: Original keeps libmemcached's code", tc.op)
				} else {
					assert.Equal(t, ReturnNotStored, e.Original, tc.op)
				}
			}
			it, err := c.Get(present)
			require.NoError(t, err)
			assert.Equal(t, []byte("orig"), it.Value, "failed add must not overwrite")
			_, err = c.Get(absent)
			assert.ErrorIs(t, err, ErrCacheMiss, "failed replace/append/prepend must not create")
		})
	}
}

// ---------------------------------------------------------------------------
// Values

func TestClientValues(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i/251)
		}
		return b
	}
	values := []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
		{"one byte", []byte{'x'}},
		{"bytes 0..255", all},
		{"crlf inside", []byte("a\r\nEND\r\nVALUE x 0 1\r\nb")},
		{"100KB", big(100 << 10)},
		{"1MB-1KB", big(1<<20 - 1<<10)},
	}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			for _, v := range values {
				t.Run(v.name, func(t *testing.T) {
					k := ctKey(t, "v")
					require.NoError(t, c.Set(&Item{Key: k, Value: v.value}))
					it, err := c.Get(k)
					require.NoError(t, err)
					assert.Equal(t, k, it.Key)
					assert.Len(t, it.Value, len(v.value))
					assert.True(t, bytes.Equal(v.value, it.Value), "value differs")
					m, err := c.GetMulti([]string{k})
					require.NoError(t, err)
					require.Contains(t, m, k)
					assert.True(t, bytes.Equal(v.value, m[k].Value), "GetMulti value differs")
				})
			}
		})
	}
}

func TestClientFlags(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			for _, f := range []uint32{0, 1, 0xFFFFFFFF, 0x80000000, 12345} {
				k := ctKey(t, strconv.FormatUint(uint64(f), 10))
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("f"), Flags: f}))
				it, err := c.Get(k)
				require.NoError(t, err)
				assert.Equal(t, f, it.Flags)
				m, err := c.GetMulti([]string{k})
				require.NoError(t, err)
				require.Contains(t, m, k)
				assert.Equal(t, f, m[k].Flags)
			}
		})
	}
}

// TestClientExpiration sleeps once: every case is set up first (under both
// protocols), then all are checked after about 2.5 s.
func TestClientExpiration(t *testing.T) {
	type expCase struct {
		name    string
		setup   func(c *Client, k string) error
		present bool // after the wait
	}
	cases := []expCase{
		{"expires", func(c *Client, k string) error {
			return c.Set(&Item{Key: k, Value: []byte("v"), Expiration: 1})
		}, false},
		{"touch shortens", func(c *Client, k string) error {
			if err := c.Set(&Item{Key: k, Value: []byte("v")}); err != nil {
				return err
			}
			return c.Touch(k, 1)
		}, false},
		{"touch extends", func(c *Client, k string) error {
			if err := c.Set(&Item{Key: k, Value: []byte("v"), Expiration: 1}); err != nil {
				return err
			}
			return c.Touch(k, 60)
		}, true},
		{"never", func(c *Client, k string) error {
			return c.Set(&Item{Key: k, Value: []byte("v")})
		}, true},
	}
	type pending struct {
		name    string
		c       *Client
		key     string
		present bool
	}
	var checks []pending
	for _, pr := range protocols {
		c := newTestClient(t, pr.opts...)
		for _, tc := range cases {
			k := ctKey(t, pr.name+":"+strings.ReplaceAll(tc.name, " ", "_"))
			require.NoError(t, tc.setup(c, k), "%s/%s", pr.name, tc.name)
			_, err := c.Get(k)
			require.NoError(t, err, "%s/%s: present right after setup", pr.name, tc.name)
			checks = append(checks, pending{pr.name + "/" + tc.name, c, k, tc.present})
		}
	}
	time.Sleep(2500 * time.Millisecond)
	for _, ck := range checks {
		t.Run(ck.name, func(t *testing.T) {
			it, err := ck.c.Get(ck.key)
			if ck.present {
				require.NoError(t, err, "still there")
				assert.Equal(t, []byte("v"), it.Value)
			} else {
				assert.ErrorIs(t, err, ErrCacheMiss, "expired")
			}
		})
	}
}

func TestClientAppendPrepend(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			k := ctKey(t, "k")
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte("mid"), Flags: 7}))
			require.NoError(t, c.Append(&Item{Key: k, Value: []byte("-end"), Flags: 9}))
			require.NoError(t, c.Prepend(&Item{Key: k, Value: []byte("start-"), Flags: 9}))
			require.NoError(t, c.Append(&Item{Key: k, Value: nil}))
			it, err := c.Get(k)
			require.NoError(t, err)
			assert.Equal(t, "start-mid-end", string(it.Value))
			assert.Equal(t, uint32(7), it.Flags, "append/prepend leave the flags as they are")
			absent := ctKey(t, "absent")
			assert.ErrorIs(t, c.Append(&Item{Key: absent, Value: []byte("x")}), ErrNotStored)
			assert.ErrorIs(t, c.Prepend(&Item{Key: absent, Value: []byte("x")}), ErrNotStored)
		})
	}
}

func TestClientValueTooBig(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			known := ctKey(t, "known")
			require.NoError(t, c.Set(&Item{Key: known, Value: []byte("known value")}))
			k := ctKey(t, "big")
			err := c.Set(&Item{Key: k, Value: bytes.Repeat([]byte{'z'}, 2<<20)})
			assert.ErrorIs(t, err, ErrE2BIG)
			e := ctErr(t, err)
			assert.Equal(t, "set", e.Op)
			assert.Equal(t, k, e.Key)
			assert.False(t, e.Temporary(), "an item too big is not a connection error")
			_, err = c.Get(k)
			assert.ErrorIs(t, err, ErrCacheMiss)

			// The client keeps working, in sync.
			it, err := c.Get(known)
			require.NoError(t, err)
			assert.Equal(t, []byte("known value"), it.Value)
			k2 := ctKey(t, "after")
			require.NoError(t, c.Set(&Item{Key: k2, Value: []byte("after")}))
			it, err = c.Get(k2)
			require.NoError(t, err)
			assert.Equal(t, []byte("after"), it.Value)
		})
	}
}

// ---------------------------------------------------------------------------
// CAS and counters

func TestClientCAS(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			k := ctKey(t, "k")
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte("v1")}))
			it, err := c.Get(k)
			require.NoError(t, err)
			require.NotZero(t, it.CasID, "Get fills CasID")
			m, err := c.GetMulti([]string{k})
			require.NoError(t, err)
			require.Contains(t, m, k)
			assert.NotZero(t, m[k].CasID, "GetMulti fills CasID")
			assert.Equal(t, it.CasID, m[k].CasID, "same item, same CasID")

			// Fresh CasID: swap succeeds.
			it.Value = []byte("v2")
			require.NoError(t, c.CompareAndSwap(it))
			got, err := c.Get(k)
			require.NoError(t, err)
			assert.Equal(t, []byte("v2"), got.Value)
			assert.NotEqual(t, it.CasID, got.CasID, "a write changes the CasID")

			// Stale CasID after another Set: conflict, value untouched.
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte("v3")}))
			got.Value = []byte("v4")
			err = c.CompareAndSwap(got)
			assert.ErrorIs(t, err, ErrCASConflict)
			assert.Equal(t, "cas", ctErr(t, err).Op)
			now, err := c.Get(k)
			require.NoError(t, err)
			assert.Equal(t, []byte("v3"), now.Value)

			// CasID 0 is refused before the server: even a dead one.
			err = c.CompareAndSwap(&Item{Key: k, Value: []byte("v5")})
			assert.ErrorIs(t, err, ErrInvalidArguments)
			dead := ctNew(t, []string{ctDeadAddr(t)}, pr.opts...)
			err = dead.CompareAndSwap(&Item{Key: k, Value: []byte("v5")})
			assert.ErrorIs(t, err, ErrInvalidArguments)
			now, err = c.Get(k)
			require.NoError(t, err)
			assert.Equal(t, []byte("v3"), now.Value)
		})
	}
}

func TestClientCounters(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			cases := []struct {
				name    string
				initial string
				incr    bool
				delta   uint64
				want    uint64
			}{
				{"incr", "10", true, 5, 15},
				{"incr zero", "10", true, 0, 10},
				{"incr max delta", "0", true, math.MaxUint32, math.MaxUint32},
				{"decr", "10", false, 3, 7},
				{"decr to zero", "10", false, 10, 0},
				{"decr stops at zero", "5", false, 10, 0},
				{"decr at zero", "0", false, 1, 0},
				{"incr wraps at 2^64", "18446744073709551615", true, 1, 0},
				{"incr wraps past 2^64", "18446744073709551610", true, 10, 4},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					k := ctKey(t, "n")
					require.NoError(t, c.Set(&Item{Key: k, Value: []byte(tc.initial)}))
					var got uint64
					var err error
					if tc.incr {
						got, err = c.Increment(k, tc.delta)
					} else {
						got, err = c.Decrement(k, tc.delta)
					}
					require.NoError(t, err)
					assert.Equal(t, tc.want, got)
					it, err := c.Get(k)
					require.NoError(t, err)
					assert.Equal(t, strconv.FormatUint(tc.want, 10), strings.TrimSpace(string(it.Value)),
						"the stored value is the returned one")
				})
			}
			t.Run("sequence", func(t *testing.T) {
				k := ctKey(t, "seq")
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("0")}))
				for i := uint64(1); i <= 20; i++ {
					got, err := c.Increment(k, 1)
					require.NoError(t, err)
					require.Equal(t, i, got)
				}
			})
			t.Run("delta over 32 bits", func(t *testing.T) {
				// memcached_increment takes a 32-bit offset; the binding
				// uses the 64-bit one of memcached_increment_by_key.
				k := ctKey(t, "n")
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("1")}))
				v, err := c.Increment(k, 1<<40)
				require.NoError(t, err)
				assert.Equal(t, uint64(1+1<<40), v)
				v, err = c.Increment(k, math.MaxUint64) // + (2^64 - 1): one less, wrapped
				require.NoError(t, err)
				assert.Equal(t, uint64(1<<40), v)
				v, err = c.Decrement(k, 1<<40-5)
				require.NoError(t, err)
				assert.Equal(t, uint64(5), v)
				v, err = c.Decrement(k, math.MaxUint64)
				require.NoError(t, err)
				assert.Equal(t, uint64(0), v, "decr stops at 0")
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("18446744073709551615")}))
				v, err = c.Increment(k, 1)
				require.NoError(t, err)
				assert.Equal(t, uint64(0), v, "incr wraps at 2^64")
				it, err := c.Get(k)
				require.NoError(t, err)
				assert.Equal(t, "0", strings.TrimRight(string(it.Value), " "))
			})
			t.Run("with initial", func(t *testing.T) {
				k := ctKey(t, "init")
				c.DeleteMulti([]string{k, ctKey(t, "initd"), ctKey(t, "inite")}) // fresh keys, also under -count
				v, err := c.IncrementWithInitial(k, 5, 100, 0)
				require.NoError(t, err)
				assert.Equal(t, uint64(100), v, "an absent key is created with the initial value")
				v, err = c.IncrementWithInitial(k, 5, 100, 0)
				require.NoError(t, err)
				assert.Equal(t, uint64(105), v, "a present key is changed by delta")
				v, err = c.DecrementWithInitial(k, 1<<40, 7, 0)
				require.NoError(t, err)
				assert.Equal(t, uint64(0), v)
				d := ctKey(t, "initd")
				v, err = c.DecrementWithInitial(d, 1, 1<<50, 0)
				require.NoError(t, err)
				assert.Equal(t, uint64(1<<50), v)
				it, err := c.Get(d)
				require.NoError(t, err)
				assert.Equal(t, strconv.FormatUint(1<<50, 10), string(it.Value), "the initial value is stored as a decimal number")
				v, err = c.Increment(d, 1)
				require.NoError(t, err)
				assert.Equal(t, uint64(1<<50+1), v, "and counts on as one")
				// An expiration applies to the created item.
				e := ctKey(t, "inite")
				_, err = c.IncrementWithInitial(e, 1, 1, 1)
				require.NoError(t, err)
				time.Sleep(2100 * time.Millisecond)
				_, err = c.Get(e)
				assert.ErrorIs(t, err, ErrCacheMiss, "the created counter expired")
			})
			t.Run("non-numeric", func(t *testing.T) {
				k := ctKey(t, "text")
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("abc")}))
				for _, incr := range []bool{true, false} {
					var err error
					if incr {
						_, err = c.Increment(k, 1)
					} else {
						_, err = c.Decrement(k, 1)
					}
					e := ctErr(t, err)
					assert.NotErrorIs(t, err, ErrCacheMiss)
					// A bad value is a data error, the same in both
					// protocols: retrying cannot help, so it is not
					// Temporary, and its class is ASCII's CLIENT_ERROR.
					assert.False(t, e.Temporary(), "non-numeric incr/decr reported as a connection-class error: %v (code %v)", e, e.Code)
					assert.ErrorIs(t, err, ErrClientError, "non-numeric incr/decr: got code %v", e.Code)
				}
				it, err := c.Get(k)
				require.NoError(t, err, "client keeps working")
				assert.Equal(t, []byte("abc"), it.Value)
			})
		})
	}
}

// ---------------------------------------------------------------------------
// Multi-key operations

func TestClientGetMulti(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			t.Run("empty and nil", func(t *testing.T) {
				for _, keys := range [][]string{nil, {}} {
					m, err := c.GetMulti(keys)
					require.NoError(t, err)
					require.NotNil(t, m)
					assert.Empty(t, m)
				}
			})
			t.Run("misses and duplicates", func(t *testing.T) {
				a, b, miss := ctKey(t, "a"), ctKey(t, "b"), ctKey(t, "miss")
				require.NoError(t, c.Set(&Item{Key: a, Value: []byte("A"), Flags: 1}))
				require.NoError(t, c.Set(&Item{Key: b, Value: []byte("B"), Flags: 2}))
				m, err := c.GetMulti([]string{a, miss, b, a, miss, b})
				require.NoError(t, err, "misses are not errors")
				require.Len(t, m, 2)
				assert.NotContains(t, m, miss)
				assert.Equal(t, []byte("A"), m[a].Value)
				assert.Equal(t, []byte("B"), m[b].Value)
				m, err = c.GetMulti([]string{miss})
				require.NoError(t, err)
				assert.NotNil(t, m)
				assert.Empty(t, m)
			})
			t.Run("1000 keys", func(t *testing.T) {
				keys := make([]string, 1000)
				items := make([]*Item, 1000)
				for i := range keys {
					keys[i] = ctKey(t, strconv.Itoa(i))
					items[i] = &Item{Key: keys[i], Value: []byte("value of " + keys[i]), Flags: uint32(i)}
				}
				failed, err := c.SetMulti(items)
				require.NoError(t, err)
				require.Nil(t, failed)
				m, err := c.GetMulti(keys)
				require.NoError(t, err)
				require.Len(t, m, len(keys))
				for i, k := range keys {
					it := m[k]
					require.NotNil(t, it, k)
					assert.Equal(t, k, it.Key)
					assert.Equal(t, "value of "+k, string(it.Value))
					assert.Equal(t, uint32(i), it.Flags)
					assert.NotZero(t, it.CasID)
				}
			})
			t.Run("fields", func(t *testing.T) {
				k := ctKey(t, "k")
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("v"), Flags: 0xABCD}))
				single, err := c.Get(k)
				require.NoError(t, err)
				m, err := c.GetMulti([]string{k})
				require.NoError(t, err)
				require.Contains(t, m, k)
				assert.Equal(t, k, m[k].Key)
				assert.Equal(t, uint32(0xABCD), m[k].Flags)
				assert.Equal(t, single.CasID, m[k].CasID)
				assert.NotZero(t, m[k].CasID)
			})
			t.Run("items do not alias", func(t *testing.T) {
				keys := []string{ctKey(t, "a"), ctKey(t, "b"), ctKey(t, "c"), ctKey(t, "empty")}
				want := map[string]string{keys[0]: "aaaa", keys[1]: "bbbb", keys[2]: "cccc", keys[3]: ""}
				for _, k := range keys {
					require.NoError(t, c.Set(&Item{Key: k, Value: []byte(want[k])}))
				}
				m, err := c.GetMulti(keys)
				require.NoError(t, err)
				require.Len(t, m, len(keys))
				for _, k := range keys {
					m[k].Value = append(m[k].Value, "XXXXXXXX"...)
				}
				m[keys[1]].Value[0] = 'Z'
				for _, k := range keys {
					exp := want[k] + "XXXXXXXX"
					if k == keys[1] {
						exp = "Z" + exp[1:]
					}
					assert.Equal(t, exp, string(m[k].Value), "item %s corrupted by another's append", k)
				}
			})
		})
	}
}

func TestClientSetMulti(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			t.Run("all stored", func(t *testing.T) {
				var items []*Item
				var keys []string
				for i := 0; i < 20; i++ {
					k := ctKey(t, strconv.Itoa(i))
					keys = append(keys, k)
					items = append(items, &Item{Key: k, Value: []byte("v" + strconv.Itoa(i)), Flags: uint32(i)})
				}
				failed, err := c.SetMulti(items)
				assert.NoError(t, err)
				assert.Nil(t, failed)
				m, err := c.GetMulti(keys)
				require.NoError(t, err)
				for i, k := range keys {
					require.Contains(t, m, k)
					assert.Equal(t, "v"+strconv.Itoa(i), string(m[k].Value))
					assert.Equal(t, uint32(i), m[k].Flags)
				}
				failed, err = c.SetMulti(nil)
				assert.NoError(t, err)
				assert.Nil(t, failed)
			})
			t.Run("one too big", func(t *testing.T) {
				a, big, b := ctKey(t, "a"), ctKey(t, "big"), ctKey(t, "b")
				failed, err := c.SetMulti([]*Item{
					{Key: a, Value: []byte("A")},
					{Key: big, Value: bytes.Repeat([]byte{'z'}, 2<<20)},
					{Key: b, Value: []byte("B")},
				})
				assert.Equal(t, []string{big}, failed)
				assert.ErrorIs(t, err, ErrSomeErrors)
				assert.ErrorIs(t, err, ErrE2BIG, "the per-key code is reachable")
				assert.Equal(t, "set_multi", ctErr(t, err).Op)
				m, gerr := c.GetMulti([]string{a, big, b})
				require.NoError(t, gerr)
				assert.Equal(t, []byte("A"), m[a].Value)
				assert.Equal(t, []byte("B"), m[b].Value)
				assert.NotContains(t, m, big)
			})
			t.Run("invalid input stores nothing", func(t *testing.T) {
				for name, bad := range map[string]*Item{
					"nil item":            nil,
					"empty key":           {Key: "", Value: []byte("x")},
					"long key":            {Key: strings.Repeat("k", 251), Value: []byte("x")},
					"negative expiration": {Key: ctKey(t, "neg"), Value: []byte("x"), Expiration: -1},
				} {
					first := ctKey(t, "first "+name)
					first = strings.ReplaceAll(first, " ", "_")
					failed, err := c.SetMulti([]*Item{{Key: first, Value: []byte("x")}, bad})
					assert.Error(t, err, name)
					assert.Nil(t, failed, name)
					_, gerr := c.Get(first)
					assert.ErrorIs(t, gerr, ErrCacheMiss, "%s: the valid item before it must not be stored", name)
				}
			})
		})
	}
}

func TestClientDeleteMulti(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			var keys []string
			for i := 0; i < 10; i++ {
				k := ctKey(t, strconv.Itoa(i))
				keys = append(keys, k)
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("x")}))
			}
			require.NoError(t, c.DeleteMulti(keys[:5]))
			m, err := c.GetMulti(keys)
			require.NoError(t, err)
			assert.Len(t, m, 5)
			for _, k := range keys[:5] {
				assert.NotContains(t, m, k)
			}
			// Some absent (the first five), some present.
			err = c.DeleteMulti(keys)
			assert.ErrorIs(t, err, ErrSomeErrors)
			assert.ErrorIs(t, err, ErrCacheMiss)
			assert.Equal(t, "delete_multi", ctErr(t, err).Op)
			m, err = c.GetMulti(keys)
			require.NoError(t, err)
			assert.Empty(t, m, "the present keys were deleted despite the misses")
			assert.NoError(t, c.DeleteMulti(nil))
			// A bad key is refused before anything is deleted.
			k := ctKey(t, "kept")
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte("x")}))
			assert.ErrorIs(t, c.DeleteMulti([]string{k, ""}), ErrBadKeyProvided)
			_, err = c.Get(k)
			assert.NoError(t, err)
		})
	}
}

// ---------------------------------------------------------------------------
// Error model

func TestClientErrorModel(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s := sharedServer(t)
			c := newTestClient(t, pr.opts...)
			deadAddr := ctDeadAddr(t)
			dead := ctNew(t, []string{deadAddr}, pr.opts...)
			present, absent := ctKey(t, "present"), ctKey(t, "absent")
			require.NoError(t, c.Set(&Item{Key: present, Value: []byte("1")}))
			it, err := c.Get(present)
			require.NoError(t, err)
			stale := *it
			require.NoError(t, c.Set(&Item{Key: present, Value: []byte("2")}))
			cases := []struct {
				name     string
				call     func() error
				op, key  string
				server   string
				sentinel error
				temp     bool
			}{
				{"get miss", func() error { _, err := c.Get(absent); return err }, "get", absent, s.Addr, ErrCacheMiss, false},
				{"delete miss", func() error { return c.Delete(absent) }, "delete", absent, s.Addr, ErrCacheMiss, false},
				{"touch miss", func() error { return c.Touch(absent, 1) }, "touch", absent, s.Addr, ErrCacheMiss, false},
				{"incr miss", func() error { _, err := c.Increment(absent, 1); return err }, "incr", absent, s.Addr, ErrCacheMiss, false},
				{"decr miss", func() error { _, err := c.Decrement(absent, 1); return err }, "decr", absent, s.Addr, ErrCacheMiss, false},
				{"add present", func() error { return c.Add(&Item{Key: present}) }, "add", present, s.Addr, ErrNotStored, false},
				{"replace absent", func() error { return c.Replace(&Item{Key: absent}) }, "replace", absent, s.Addr, ErrNotStored, false},
				{"append absent", func() error { return c.Append(&Item{Key: absent}) }, "append", absent, s.Addr, ErrNotStored, false},
				{"prepend absent", func() error { return c.Prepend(&Item{Key: absent}) }, "prepend", absent, s.Addr, ErrNotStored, false},
				{"cas conflict", func() error { return c.CompareAndSwap(&stale) }, "cas", present, s.Addr, ErrCASConflict, false},
				{"set too big", func() error { return c.Set(&Item{Key: absent, Value: make([]byte, 2<<20)}) }, "set", absent, s.Addr, ErrE2BIG, false},
				{"bad key", func() error { _, err := c.Get(""); return err }, "get", "", "", ErrBadKeyProvided, false},
				{"negative expiration", func() error { _, err := c.IncrementWithInitial(present, 1, 0, -1); return err }, "incr", present, "", ErrInvalidArguments, false},
				{"negative touch", func() error { return c.Touch(present, -1) }, "touch", present, "", ErrInvalidArguments, false},
				{"refused get", func() error { _, err := dead.Get(absent); return err }, "get", absent, deadAddr, nil, true},
				{"refused set", func() error { return dead.Set(&Item{Key: absent}) }, "set", absent, deadAddr, nil, true},
				{"refused delete", func() error { return dead.Delete(absent) }, "delete", absent, deadAddr, nil, true},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.call()
					e := ctErr(t, err)
					assert.Equal(t, tc.op, e.Op)
					assert.Equal(t, tc.key, e.Key)
					if tc.server != "" {
						assert.Equal(t, tc.server, e.Server)
					}
					if tc.sentinel != nil {
						assert.ErrorIs(t, err, tc.sentinel)
						assert.Equal(t, tc.sentinel, e.Code.Err())
					}
					assert.Equal(t, tc.temp, e.Temporary(), "Temporary() for %v", e.Code)
					assert.False(t, e.Timeout())
					msg := err.Error()
					assert.Contains(t, msg, tc.op)
					if tc.key != "" {
						assert.Contains(t, msg, strconv.Quote(tc.key))
					}
					// Wrapping keeps it reachable.
					wrapped := fmt.Errorf("context: %w", err)
					var e2 *Error
					require.True(t, errors.As(wrapped, &e2))
					assert.Same(t, e, e2)
					if tc.sentinel != nil {
						assert.ErrorIs(t, wrapped, tc.sentinel)
					}
				})
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Bad input

func TestClientBadKeys(t *testing.T) {
	controlKeys := map[string]string{
		"space": "a b", "newline": "a\nb", "cr": "a\rb", "tab": "a\tb", "nul": "a\x00b", "del": "a\x7fb",
	}
	for _, pr := range protocols {
		binary := pr.name == "binary"
		t.Run(pr.name, func(t *testing.T) {
			c := newTestClient(t, pr.opts...)
			good := ctKey(t, "good")
			require.NoError(t, c.Set(&Item{Key: good, Value: []byte("good")}))
			refused := map[string]string{"empty": "", "251 bytes": strings.Repeat("k", 251)}
			if !binary {
				for n, k := range controlKeys {
					refused[n] = ctKey(t, k)
				}
			}
			for name, key := range refused {
				t.Run("refused "+name, func(t *testing.T) {
					k2 := strings.ReplaceAll(ctKey(t, "multi"), " ", "_")
					ops := map[string]func() error{
						"get":     func() error { _, err := c.Get(key); return err },
						"set":     func() error { return c.Set(&Item{Key: key, Value: []byte("x")}) },
						"add":     func() error { return c.Add(&Item{Key: key, Value: []byte("x")}) },
						"replace": func() error { return c.Replace(&Item{Key: key, Value: []byte("x")}) },
						"append":  func() error { return c.Append(&Item{Key: key, Value: []byte("x")}) },
						"prepend": func() error { return c.Prepend(&Item{Key: key, Value: []byte("x")}) },
						"cas":     func() error { return c.CompareAndSwap(&Item{Key: key, Value: []byte("x"), CasID: 1}) },
						"delete":  func() error { return c.Delete(key) },
						"incr":    func() error { _, err := c.Increment(key, 1); return err },
						"decr":    func() error { _, err := c.Decrement(key, 1); return err },
						"touch":   func() error { return c.Touch(key, 1) },
						"get_multi": func() error {
							_, err := c.GetMulti([]string{good, key})
							return err
						},
						"set_multi": func() error {
							_, err := c.SetMulti([]*Item{{Key: k2, Value: []byte("x")}, {Key: key, Value: []byte("x")}})
							return err
						},
						"delete_multi": func() error { return c.DeleteMulti([]string{good, key}) },
						"server_for":   func() error { _, err := c.ServerFor(key); return err },
					}
					for op, call := range ops {
						var err error
						require.NotPanics(t, func() { err = call() }, op)
						assert.ErrorIs(t, err, ErrBadKeyProvided, "%s %q", op, key)
						if e := ctErr(t, err); e != nil {
							assert.Equal(t, op, e.Op)
						}
					}
					_, err := c.Get(k2)
					assert.ErrorIs(t, err, ErrCacheMiss, "set_multi stored an item despite a bad key")
					// Nothing reached the server: the client is in sync and
					// the good key (in every multi call above) is intact.
					it, err := c.Get(good)
					require.NoError(t, err)
					assert.Equal(t, []byte("good"), it.Value)
				})
			}
			if binary {
				t.Run("control bytes work", func(t *testing.T) {
					keys := []string{ctKey(t, "a b\n\x00c")}
					for _, k := range controlKeys {
						keys = append(keys, ctKey(t, k))
					}
					for i, k := range keys {
						v := []byte("value " + strconv.Itoa(i))
						require.NoError(t, c.Set(&Item{Key: k, Value: v}), "%q", k)
						it, err := c.Get(k)
						require.NoError(t, err, "%q", k)
						assert.Equal(t, v, it.Value, "%q", k)
						assert.Equal(t, k, it.Key)
					}
					m, err := c.GetMulti(keys)
					require.NoError(t, err)
					require.Len(t, m, len(keys))
					for i, k := range keys {
						assert.Equal(t, "value "+strconv.Itoa(i), string(m[k].Value), "%q", k)
					}
					_, err = c.ServerFor(keys[0])
					assert.NoError(t, err)
					require.NoError(t, c.Delete(keys[0]))
					_, err = c.Get(keys[0])
					assert.ErrorIs(t, err, ErrCacheMiss)
					// The same key without its control bytes is another key.
					_, err = c.Get(strings.NewReplacer(" ", "", "\n", "", "\x00", "").Replace(keys[0]))
					assert.ErrorIs(t, err, ErrCacheMiss)
				})
			}
			t.Run("250 bytes", func(t *testing.T) {
				k := ctKey(t, "")
				k += strings.Repeat("x", 250-len(k))
				require.Len(t, k, 250)
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("250")}))
				it, err := c.Get(k)
				require.NoError(t, err)
				assert.Equal(t, []byte("250"), it.Value)
				m, err := c.GetMulti([]string{k})
				require.NoError(t, err)
				assert.Contains(t, m, k)
				require.NoError(t, c.Delete(k))
			})
			t.Run("namespace counts", func(t *testing.T) {
				ns := newTestClient(t, ctOpts(pr.opts, WithNamespace("ns:"))...)
				raw := c
				k := ctKey(t, "")
				k247 := k + strings.Repeat("y", 247-len(k))
				require.NoError(t, ns.Set(&Item{Key: k247, Value: []byte("247")}))
				it, err := ns.Get(k247)
				require.NoError(t, err)
				assert.Equal(t, []byte("247"), it.Value)
				it, err = raw.Get("ns:" + k247)
				require.NoError(t, err, "stored as the 250-byte ns:key")
				assert.Equal(t, []byte("247"), it.Value)
				k248 := k247 + "y"
				assert.ErrorIs(t, ns.Set(&Item{Key: k248, Value: []byte("248")}), ErrBadKeyProvided)
				_, err = ns.Get(k248)
				assert.ErrorIs(t, err, ErrBadKeyProvided)
				_, err = ns.GetMulti([]string{k248})
				assert.ErrorIs(t, err, ErrBadKeyProvided)
			})
		})
	}
}

func TestClientBadInput(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			live := newTestClient(t, pr.opts...)
			// The dead client proves the input is refused before any I/O:
			// reaching the server would give a connection error instead.
			dead := ctNew(t, []string{ctDeadAddr(t)}, pr.opts...)
			for name, c := range map[string]*Client{"live": live, "dead": dead} {
				t.Run(name, func(t *testing.T) {
					k := ctKey(t, "k")
					nilItem := map[string]func(*Item) error{
						"set": c.Set, "add": c.Add, "replace": c.Replace, "append": c.Append,
						"prepend": c.Prepend, "cas": c.CompareAndSwap,
					}
					for op, store := range nilItem {
						var err error
						require.NotPanics(t, func() { err = store(nil) }, op)
						assert.ErrorIs(t, err, ErrInvalidArguments, "%s(nil)", op)
						err = store(&Item{Key: k, Value: []byte("x"), Expiration: -1, CasID: 1})
						assert.ErrorIs(t, err, ErrInvalidArguments, "%s with negative expiration", op)
					}
					_, err := c.SetMulti([]*Item{nil})
					assert.ErrorIs(t, err, ErrInvalidArguments)
					assert.ErrorIs(t, c.Touch(k, -1), ErrInvalidArguments)
					assert.ErrorIs(t, c.Touch(k, math.MinInt32), ErrInvalidArguments)
					assert.ErrorIs(t, c.CompareAndSwap(&Item{Key: k, Value: []byte("x")}), ErrInvalidArguments)
					_, err = c.IncrementWithInitial(k, 1, 0, -1)
					assert.ErrorIs(t, err, ErrInvalidArguments, "negative expiration")
					_, err = c.StatsArg("items\n")
					assert.ErrorIs(t, err, ErrInvalidArguments)
				})
			}
			_, err := live.Get(ctKey(t, "k"))
			assert.ErrorIs(t, err, ErrCacheMiss, "nothing was stored")
		})
	}
	t.Run("namespace with a space", func(t *testing.T) {
		s := sharedServer(t)
		for _, ns := range []string{"a b:", "a\n", "\x00"} {
			c, err := New([]string{s.Addr}, WithNamespace(ns))
			assert.Nil(t, c, "%q", ns)
			assert.Error(t, err, "%q", ns)
		}
	})
}

func TestClientClosed(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s := sharedServer(t)
			c, err := New([]string{s.Addr}, pr.opts...)
			require.NoError(t, err)
			k := ctKey(t, "k")
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte("v")}))
			require.NoError(t, c.Close())
			require.NoError(t, c.Close(), "Close twice")
			it := &Item{Key: k, Value: []byte("v"), CasID: 1}
			calls := map[string]func() error{
				"Get":            func() error { _, err := c.Get(k); return err },
				"GetMulti":       func() error { _, err := c.GetMulti([]string{k}); return err },
				"GetMulti empty": func() error { _, err := c.GetMulti(nil); return err },
				"Set":            func() error { return c.Set(it) },
				"Add":            func() error { return c.Add(it) },
				"Replace":        func() error { return c.Replace(it) },
				"Append":         func() error { return c.Append(it) },
				"Prepend":        func() error { return c.Prepend(it) },
				"CompareAndSwap": func() error { return c.CompareAndSwap(it) },
				"Delete":         func() error { return c.Delete(k) },
				"Increment":      func() error { _, err := c.Increment(k, 1); return err },
				"Decrement":      func() error { _, err := c.Decrement(k, 1); return err },
				"Touch":          func() error { return c.Touch(k, 1) },
				"SetMulti":       func() error { _, err := c.SetMulti([]*Item{it}); return err },
				"SetMulti empty": func() error { _, err := c.SetMulti(nil); return err },
				"DeleteMulti":    func() error { return c.DeleteMulti([]string{k}) },
				"FlushAll":       func() error { return c.FlushAll() },
				"Ping":           func() error { return c.Ping() },
				"Stats":          func() error { _, err := c.Stats(); return err },
				"StatsArg":       func() error { _, err := c.StatsArg("settings"); return err },
				"Version":        func() error { _, err := c.Version(); return err },
				"ServerFor":      func() error { _, err := c.ServerFor(k); return err },
				"Clone":          func() error { _, err := c.Clone(); return err },
				"Behavior":       func() error { _, err := c.Behavior(BehaviorBinaryProtocol); return err },
				"SetBehavior":    func() error { return c.SetBehavior(BehaviorTCPNoDelay, 1) },
				"SetBehaviors":   func() error { return c.SetBehaviors(map[string]any{"tcp_nodelay": true}) },
			}
			for name, call := range calls {
				var err error
				require.NotPanics(t, func() { err = call() }, name)
				assert.ErrorIs(t, err, ErrClosed, name)
			}
			assert.NotPanics(t, func() {
				assert.Nil(t, c.Servers())
				assert.Nil(t, c.Behaviors())
				c.DisconnectAll()
			})
			assert.NoError(t, c.Close())
			// The data is still there for others.
			other := newTestClient(t, pr.opts...)
			got, err := other.Get(k)
			require.NoError(t, err)
			assert.Equal(t, []byte("v"), got.Value)
		})
	}
}

// ---------------------------------------------------------------------------
// Namespace

func TestClientNamespace(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			ns := newTestClient(t, ctOpts(pr.opts, WithNamespace("app:"))...)
			raw := newTestClient(t, pr.opts...)
			a, b, miss := ctKey(t, "a"), ctKey(t, "b"), ctKey(t, "miss")
			require.NoError(t, ns.Set(&Item{Key: a, Value: []byte("A")}))
			require.NoError(t, ns.Set(&Item{Key: b, Value: []byte("B")}))

			it, err := raw.Get("app:" + a)
			require.NoError(t, err, "stored under app:key on the wire")
			assert.Equal(t, []byte("A"), it.Value)
			_, err = raw.Get(a)
			assert.ErrorIs(t, err, ErrCacheMiss, "not stored under the bare key")

			it, err = ns.Get(a)
			require.NoError(t, err)
			assert.Equal(t, a, it.Key)
			assert.Equal(t, []byte("A"), it.Value)

			m, err := ns.GetMulti([]string{a, b, miss})
			require.NoError(t, err)
			require.Len(t, m, 2)
			for k, want := range map[string]string{a: "A", b: "B"} {
				require.Contains(t, m, k, "GetMulti keyed without the prefix")
				assert.Equal(t, k, m[k].Key)
				assert.Equal(t, want, string(m[k].Value))
			}

			// Writes by the raw client under app:... are seen by ns.
			require.NoError(t, raw.Set(&Item{Key: "app:" + miss, Value: []byte("M")}))
			it, err = ns.Get(miss)
			require.NoError(t, err)
			assert.Equal(t, []byte("M"), it.Value)

			n, err := ns.Increment(ctKey(t, "counter"), 1)
			assert.ErrorIs(t, err, ErrCacheMiss)
			assert.Zero(t, n)
			require.NoError(t, ns.Delete(a))
			_, err = raw.Get("app:" + a)
			assert.ErrorIs(t, err, ErrCacheMiss)
		})
	}
}

// ---------------------------------------------------------------------------
// Servers

var ctVersionRE = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

func TestClientServerInfo(t *testing.T) {
	bin, err := memcachedBinary()
	require.NoError(t, err)
	out, err := exec.Command(bin, "-V").Output()
	require.NoError(t, err)
	installed := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "memcached"))

	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for _, n := range []int{1, 2} {
				t.Run(strconv.Itoa(n)+" servers", func(t *testing.T) {
					servers := make([]*memcachedServer, n)
					addrs := make([]string, n)
					for i := range servers {
						servers[i] = newServer(t)
						addrs[i] = servers[i].Addr
					}
					c := ctNew(t, addrs, pr.opts...)
					assert.ElementsMatch(t, addrs, c.Servers())
					require.NoError(t, c.Ping())

					// Store keys and count where they go.
					perServer := map[string]int{}
					const nkeys = 40
					for i := 0; i < nkeys; i++ {
						k := ctKey(t, strconv.Itoa(i))
						require.NoError(t, c.Set(&Item{Key: k, Value: []byte("x")}))
						srv, err := c.ServerFor(k)
						require.NoError(t, err)
						require.Contains(t, addrs, srv)
						perServer[srv]++
					}

					st, err := c.Stats()
					require.NoError(t, err)
					require.Len(t, st, n)
					for _, s := range servers {
						m := st[s.Addr]
						require.NotNil(t, m, "stats keyed by %s", s.Addr)
						assert.Equal(t, strconv.Itoa(s.Pid()), m["pid"])
						assert.Equal(t, strconv.Itoa(perServer[s.Addr]), m["curr_items"])
					}

					set, err := c.StatsArg("settings")
					require.NoError(t, err)
					require.Len(t, set, n)
					for _, s := range servers {
						mb, err := strconv.Atoi(ctArg(t, s, "-m"))
						require.NoError(t, err)
						assert.Equal(t, strconv.Itoa(mb<<20), set[s.Addr]["maxbytes"])
					}

					items, err := c.StatsArg("items")
					require.NoError(t, err)
					for _, s := range servers {
						if perServer[s.Addr] == 0 {
							continue
						}
						total := 0
						for k, v := range items[s.Addr] {
							if strings.HasPrefix(k, "items:") && strings.HasSuffix(k, ":number") {
								x, err := strconv.Atoi(v)
								require.NoError(t, err)
								total += x
							}
						}
						assert.Equal(t, perServer[s.Addr], total, "items:*:number of %s", s.Addr)
					}
					_, err = c.StatsArg("items\n")
					assert.ErrorIs(t, err, ErrInvalidArguments)
					_, err = c.StatsArg("items\r\nflush_all")
					assert.ErrorIs(t, err, ErrInvalidArguments)

					v, err := c.Version()
					require.NoError(t, err)
					require.Len(t, v, n)
					for _, a := range addrs {
						assert.Regexp(t, ctVersionRE, v[a])
						assert.Equal(t, installed, v[a])
					}
					require.NoError(t, c.Ping())
				})
			}
		})
	}
}

// TestClientDeadServerReported stops one of two servers after a first call
// has talked to both, then checks the next call reports it.
func TestClientDeadServerReported(t *testing.T) {
	calls := []struct {
		name string
		run  func(c *Client) (map[string]bool, error) // servers that answered
	}{
		{"Ping", func(c *Client) (map[string]bool, error) { return nil, c.Ping() }},
		{"Stats", func(c *Client) (map[string]bool, error) {
			m, err := c.Stats()
			out := map[string]bool{}
			for k := range m {
				out[k] = true
			}
			return out, err
		}},
		{"StatsArg", func(c *Client) (map[string]bool, error) {
			m, err := c.StatsArg("settings")
			out := map[string]bool{}
			for k := range m {
				out[k] = true
			}
			return out, err
		}},
		{"Version", func(c *Client) (map[string]bool, error) {
			m, err := c.Version()
			out := map[string]bool{}
			for k := range m {
				out[k] = true
			}
			return out, err
		}},
	}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for _, call := range calls {
				t.Run(call.name, func(t *testing.T) {
					s1, s2 := newServer(t), newServer(t)
					c := ctNew(t, []string{s1.Addr, s2.Addr}, pr.opts...)
					answered, err := call.run(c)
					require.NoError(t, err)
					if answered != nil {
						require.Equal(t, map[string]bool{s1.Addr: true, s2.Addr: true}, answered)
					}
					s2.Stop()
					for i := 1; i <= 2; i++ {
						var answered map[string]bool
						var err error
						ctWithin(t, 10*time.Second, call.name, func() { answered, err = call.run(c) })
						assert.Error(t, err, "call %d after %s was stopped", i, s2.Addr)
						if answered != nil {
							assert.True(t, answered[s1.Addr], "call %d: the live server's answer must be returned with the error", i)
							assert.False(t, answered[s2.Addr], "call %d: the stopped server cannot have answered", i)
						}
					}
				})
			}
		})
	}
}

func TestClientServerForRouting(t *testing.T) {
	s1, s2 := newServer(t), newServer(t)
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			// tcp_nodelay: in the binary protocol every miss otherwise
			// waits out a delayed ACK (about 40 ms), and this test misses
			// 200 times.
			opts := ctOpts(pr.opts, WithBehaviors(map[string]any{"tcp_nodelay": true}))
			both := ctNew(t, []string{s1.Addr, s2.Addr}, opts...)
			single := map[string]*Client{
				s1.Addr: ctNew(t, []string{s1.Addr}, opts...),
				s2.Addr: ctNew(t, []string{s2.Addr}, opts...),
			}
			other := map[string]string{s1.Addr: s2.Addr, s2.Addr: s1.Addr}
			count := map[string]int{}
			for i := 0; i < 200; i++ {
				k := ctKey(t, strconv.Itoa(i))
				require.NoError(t, both.Set(&Item{Key: k, Value: []byte(k)}))
				srv, err := both.ServerFor(k)
				require.NoError(t, err)
				require.Contains(t, single, srv)
				count[srv]++
				it, err := single[srv].Get(k)
				if assert.NoError(t, err, "%s not on %s, which ServerFor named", k, srv) {
					assert.Equal(t, k, string(it.Value))
				}
				_, err = single[other[srv]].Get(k)
				assert.ErrorIs(t, err, ErrCacheMiss, "%s also on %s", k, other[srv])
				if i%50 == 0 {
					// A keyed error names the server ServerFor gives.
					miss := ctKey(t, "miss"+strconv.Itoa(i))
					msrv, err := both.ServerFor(miss)
					require.NoError(t, err)
					_, err = both.Get(miss)
					assert.Equal(t, msrv, ctErr(t, err).Server)
				}
			}
			assert.Positive(t, count[s1.Addr], "no key went to %s", s1.Addr)
			assert.Positive(t, count[s2.Addr], "no key went to %s", s2.Addr)
		})
	}
}

func TestClientFlushAll(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s1, s2 := newServer(t), newServer(t)
			c := ctNew(t, []string{s1.Addr, s2.Addr}, ctOpts(pr.opts, WithBehaviors(map[string]any{"tcp_nodelay": true}))...)
			var keys []string
			for i := 0; i < 20; i++ {
				k := ctKey(t, strconv.Itoa(i))
				keys = append(keys, k)
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte("x")}))
			}
			m, err := c.GetMulti(keys)
			require.NoError(t, err)
			require.Len(t, m, len(keys))
			require.NoError(t, c.FlushAll())
			for _, k := range keys {
				_, err := c.Get(k)
				assert.ErrorIs(t, err, ErrCacheMiss, k)
			}
			m, err = c.GetMulti(keys)
			require.NoError(t, err)
			assert.Empty(t, m)
			require.NoError(t, c.Set(&Item{Key: keys[0], Value: []byte("again")}))
			it, err := c.Get(keys[0])
			require.NoError(t, err)
			assert.Equal(t, []byte("again"), it.Value)
		})
	}
}

func TestClientClone(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s1, s2 := newServer(t), newServer(t)
			orig, err := New([]string{s1.Addr, s2.Addr}, ctOpts(pr.opts,
				WithBehaviors(map[string]any{
					"tcp_nodelay": true, "connect_timeout": 1234, "retry_timeout": 7, "hash": "md5", "cas": false,
				}),
				WithNamespace("cl:"))...)
			require.NoError(t, err)
			defer orig.Close()
			clone, err := orig.Clone()
			require.NoError(t, err)
			defer clone.Close()
			assert.Equal(t, orig.Servers(), clone.Servers())
			ob, cb := orig.Behaviors(), clone.Behaviors()
			assert.Equal(t, ob, cb, "a clone has the same behaviors")
			for _, b := range []Behavior{BehaviorBinaryProtocol, BehaviorSupportCAS, BehaviorConnectTimeout} {
				ov, err := orig.Behavior(b)
				require.NoError(t, err)
				cv, err := clone.Behavior(b)
				require.NoError(t, err)
				assert.Equal(t, ov, cv, "behavior %v", b)
			}

			k := ctKey(t, "k")
			require.NoError(t, clone.Set(&Item{Key: k, Value: []byte("from clone")}))
			it, err := orig.Get(k)
			require.NoError(t, err, "same servers, same namespace")
			assert.Equal(t, []byte("from clone"), it.Value)
			cs, err := clone.ServerFor(k)
			require.NoError(t, err)
			osrv, err := orig.ServerFor(k)
			require.NoError(t, err)
			assert.Equal(t, osrv, cs, "same distribution")

			// Independent: a behavior change on one does not reach the other.
			require.NoError(t, clone.SetBehavior(BehaviorConnectTimeout, 4321))
			ov, err := orig.Behavior(BehaviorConnectTimeout)
			require.NoError(t, err)
			assert.Equal(t, uint64(1234), ov)

			require.NoError(t, orig.Close())
			require.NoError(t, clone.Set(&Item{Key: k, Value: []byte("after close")}))
			it, err = clone.Get(k)
			require.NoError(t, err, "closing the original leaves the clone working")
			assert.Equal(t, []byte("after close"), it.Value)
		})
	}
}

func TestClientDisconnectAll(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s := newServer(t)
			c := ctNew(t, []string{s.Addr}, pr.opts...)
			k := ctKey(t, "k")
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte("v")}))
			// Stats asks over a connection of its own, so each reading
			// counts one connection itself.
			before := ctStat(t, c, "total_connections")
			_, err := c.Get(k)
			require.NoError(t, err)
			mid := ctStat(t, c, "total_connections")
			assert.Equal(t, before+1, mid, "control: no reconnect without DisconnectAll")

			c.DisconnectAll()
			it, err := c.Get(k)
			require.NoError(t, err, "the next operation reconnects")
			assert.Equal(t, []byte("v"), it.Value)
			assert.Equal(t, mid+2, ctStat(t, c, "total_connections"), "one reconnect, one stats connection")
			c.DisconnectAll()
			c.DisconnectAll()
			require.NoError(t, c.Ping())
		})
	}
}

// ---------------------------------------------------------------------------
// Concurrency and faults

func TestClientConcurrentShared(t *testing.T) {
	const goroutines, ops = 32, 200
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			// tcp_nodelay: see TestClientServerForRouting; misses are
			// frequent here and the client is shared, so each would stall
			// all 32 goroutines.
			c := newTestClient(t, ctOpts(pr.opts, WithBehaviors(map[string]any{"tcp_nodelay": true}))...)
			prefix := ctKey(t, "")
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*ops)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					key := func(i int) string { return fmt.Sprintf("%sg%d:k%d", prefix, g, i%8) }
					counter := fmt.Sprintf("%sg%d:counter", prefix, g)
					want := map[string]string{}
					var count uint64
					if err := c.Set(&Item{Key: counter, Value: []byte("0")}); err != nil {
						errs <- err
						return
					}
					fail := func(format string, args ...any) { errs <- fmt.Errorf(format, args...) }
					for i := 0; i < ops; i++ {
						k := key(i)
						switch i % 6 {
						case 0, 3:
							v := fmt.Sprintf("%s=%d", k, i)
							if err := c.Set(&Item{Key: k, Value: []byte(v), Flags: uint32(g)}); err != nil {
								fail("set %s: %w", k, err)
								continue
							}
							want[k] = v
						case 1, 4:
							it, err := c.Get(k)
							if w, ok := want[k]; ok {
								if err != nil {
									fail("get %s: %w", k, err)
								} else if string(it.Value) != w || it.Key != k || it.Flags != uint32(g) {
									fail("get %s: got %q flags %d, want %q flags %d", k, it.Value, it.Flags, w, g)
								}
							} else if !errors.Is(err, ErrCacheMiss) {
								fail("get %s: want a miss, got %v", k, err)
							}
						case 2:
							n, err := c.Increment(counter, 1)
							count++
							if err != nil {
								fail("incr %s: %w", counter, err)
							} else if n != count {
								fail("incr %s: got %d, want %d", counter, n, count)
							}
						case 5:
							keys := []string{key(0), key(1), key(2), key(3)}
							m, err := c.GetMulti(keys)
							if err != nil {
								fail("get_multi: %w", err)
								continue
							}
							for _, mk := range keys {
								w, ok := want[mk]
								it, got := m[mk]
								if ok != got {
									fail("get_multi %s: present %v, want %v", mk, got, ok)
								} else if ok && string(it.Value) != w {
									fail("get_multi %s: got %q, want %q", mk, it.Value, w)
								}
							}
							if i%4 == 1 {
								dk := key(i + 1)
								if _, ok := want[dk]; ok {
									if err := c.Delete(dk); err != nil {
										fail("delete %s: %w", dk, err)
									}
									delete(want, dk)
								}
							}
						}
					}
				}(g)
			}
			wg.Wait()
			close(errs)
			n := 0
			for err := range errs {
				if n < 20 {
					t.Error(err)
				}
				n++
			}
			assert.Zero(t, n, "errors in concurrent use")
		})
	}
}

// TestClientServerKilled kills the server between two operations of a
// client that is connected to it: the next operation must fail with a
// connection-class error (Temporary), not hang, crash or report a miss.
func TestClientServerKilled(t *testing.T) {
	ops := []struct {
		name string
		call func(c *Client, k string) error
	}{
		{"Get", func(c *Client, k string) error { _, err := c.Get(k); return err }},
		{"GetMulti", func(c *Client, k string) error { _, err := c.GetMulti([]string{k, k + "2"}); return err }},
		{"Set", func(c *Client, k string) error { return c.Set(&Item{Key: k, Value: []byte("x")}) }},
		{"Delete", func(c *Client, k string) error { return c.Delete(k) }},
		{"Increment", func(c *Client, k string) error { _, err := c.Increment(k, 1); return err }},
		{"Touch", func(c *Client, k string) error { return c.Touch(k, 10) }},
		{"SetMulti", func(c *Client, k string) error { _, err := c.SetMulti([]*Item{{Key: k}}); return err }},
	}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for _, op := range ops {
				t.Run(op.name, func(t *testing.T) {
					s := newServer(t)
					c := ctNew(t, []string{s.Addr}, pr.opts...)
					k := ctKey(t, "k")
					require.NoError(t, c.Set(&Item{Key: k, Value: []byte("1")}))
					s.Stop()
					var err error
					ctWithin(t, 10*time.Second, op.name, func() { err = op.call(c, k) })
					e := ctErr(t, err)
					assert.NotErrorIs(t, err, ErrCacheMiss)
					assert.True(t, e.Temporary(), "%s on a killed server: %v (code %v) is not Temporary", op.name, e, e.Code)
					ctWithin(t, 10*time.Second, op.name, func() { err = op.call(c, k) })
					assert.Error(t, err, "second call")
				})
			}
		})
	}
}

// TestClientServerRestart kills the server, then starts a new one on the
// same port: the same client must use it again.
func TestClientServerRestart(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s := newServer(t)
			c := ctNew(t, []string{s.Addr}, ctOpts(pr.opts,
				WithBehaviors(map[string]any{"retry_timeout": 1, "connect_timeout": 500}))...)
			k := ctKey(t, "k")
			require.NoError(t, c.Set(&Item{Key: k, Value: []byte("old")}))
			_, err := c.Get(k)
			require.NoError(t, err)

			s.Stop()
			ctWithin(t, 10*time.Second, "set on a stopped server", func() {
				err = c.Set(&Item{Key: k, Value: []byte("lost")})
			})
			assert.True(t, ctErr(t, err).Temporary(), "%v", err)

			// Same address, new process: the same client uses it again.
			ctStartOnPort(t, s.Port)
			deadline := time.Now().Add(8 * time.Second)
			attempts := 0
			for {
				attempts++
				err = c.Set(&Item{Key: k, Value: []byte("new")})
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			require.NoError(t, err, "the restarted server is used again within retry_timeout (%d attempts)", attempts)
			it, err := c.Get(k)
			require.NoError(t, err)
			assert.Equal(t, []byte("new"), it.Value)
			_, err = c.Get(ctKey(t, "other"))
			assert.ErrorIs(t, err, ErrCacheMiss, "a fresh server")
			m, err := c.GetMulti([]string{k})
			require.NoError(t, err)
			assert.Equal(t, []byte("new"), m[k].Value)
			require.NoError(t, c.Ping())
		})
	}
}
