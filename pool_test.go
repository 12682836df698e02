package libmemcached

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolRunID returns a fresh tag for keys, so that tests expecting absent
// keys do not meet an earlier run's on the shared server (go test
// -count=N, or a server kept across runs).
func poolRunID() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36) + "_" + strconv.FormatInt(poolRunSeq.Add(1), 10)
}

var poolRunSeq atomic.Int64

// newSharedPool returns a pool of the shared server, closed at the test's end.
func newSharedPool(t testing.TB, size int, opts ...Option) *Pool {
	t.Helper()
	s := sharedServer(t)
	p, err := NewPool([]string{s.Addr}, size, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// poolAcquireN takes n clients, none of which may block.
func poolAcquireN(t *testing.T, p *Pool, n int) []*Client {
	t.Helper()
	out := make([]*Client, 0, n)
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := p.Acquire(ctx)
		cancel()
		require.NoError(t, err, "acquiring client %d of %d", i+1, n)
		out = append(out, c)
	}
	return out
}

// assertPoolExhausted checks that one more Acquire waits until its deadline.
func assertPoolExhausted(t *testing.T, p *Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c, err := p.Acquire(ctx)
	if !assert.ErrorIs(t, err, context.DeadlineExceeded, "the pool should be exhausted") {
		p.Release(c)
	}
}

// waitGoroutinesAtMost waits for the goroutine count to fall back to want.
func waitGoroutinesAtMost(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > want {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: %d, want at most %d\n%s", n, want, buf)
	}
}

func TestNewPoolBadSize(t *testing.T) {
	s := sharedServer(t)
	for _, size := range []int{0, -1, -100} {
		p, err := NewPool([]string{s.Addr}, size)
		assert.Nil(t, p, "size %d", size)
		assert.ErrorIs(t, err, ErrInvalidArguments, "size %d", size)
		p, err = NewPoolFromConfig("--SERVER="+s.Addr, size)
		assert.Nil(t, p, "size %d", size)
		assert.ErrorIs(t, err, ErrInvalidArguments, "size %d", size)
	}
	_, err := NewPool(nil, 4)
	assert.Error(t, err, "no servers")
	_, err = NewPool([]string{"bad host:1"}, 4)
	assert.Error(t, err)
}

// An idle pool hands out all size clients without waiting, each over its
// own handle, and no more.
func TestPoolAcquireAll(t *testing.T) {
	const size = 5
	p := newSharedPool(t, size)
	assert.Equal(t, size, p.Size())
	clients := poolAcquireN(t, p, size)
	handles := map[any]bool{}
	for i, c := range clients {
		handles[c.lh.h.memc] = true
		key := "pool_acquire_all_" + strconv.Itoa(i)
		require.NoError(t, c.Set(&Item{Key: key, Value: []byte(key)}))
		it, err := c.Get(key)
		require.NoError(t, err)
		assert.Equal(t, key, string(it.Value))
	}
	assert.Len(t, handles, size, "each client has its own handle")
	assertPoolExhausted(t, p)
	for _, c := range clients {
		p.Release(c)
	}
	// All back: again all of them, and again no more.
	clients = poolAcquireN(t, p, size)
	assertPoolExhausted(t, p)
	for _, c := range clients {
		require.NoError(t, c.Close(), "Close of an acquired client releases it")
	}
	clients = poolAcquireN(t, p, size)
	for _, c := range clients {
		p.Release(c)
	}
}

// Acquire waits while every client is out, and honours its context.
func TestPoolAcquireDeadline(t *testing.T) {
	p := newSharedPool(t, 2)
	clients := poolAcquireN(t, p, 2)

	const wait = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	c, err := p.Acquire(ctx)
	elapsed := time.Since(start)
	assert.Nil(t, c)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	assert.Equal(t, ctx.Err(), err, "Acquire returns ctx.Err()")
	assert.GreaterOrEqual(t, elapsed, wait-5*time.Millisecond, "it waited for the deadline")
	assert.Less(t, elapsed, 5*time.Second, "bounded: it gave up at the deadline")

	// Cancellation while waiting.
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		c, err := p.Acquire(ctx2)
		p.Release(c)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Acquire returned %v while the pool was exhausted", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel2()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not return after its context was cancelled")
	}

	// An already-cancelled context fails at once, even with clients free.
	for _, c := range clients {
		p.Release(c)
	}
	_, err = p.Acquire(ctx2)
	assert.ErrorIs(t, err, context.Canceled)
	// ... and took nothing.
	for _, c := range poolAcquireN(t, p, 2) {
		p.Release(c)
	}
}

// Release lets a waiting Acquire proceed, with the released handle.
func TestPoolReleaseWakesWaiter(t *testing.T) {
	p := newSharedPool(t, 1)
	c := poolAcquireN(t, p, 1)[0]
	require.NoError(t, c.Set(&Item{Key: "pool_release_wakes", Value: []byte("1")}))

	got := make(chan *Client, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := p.Acquire(context.Background())
		if err != nil {
			errc <- err
			return
		}
		got <- c
	}()
	select {
	case <-got:
		t.Fatal("Acquire did not wait while the only client was out")
	case err := <-errc:
		t.Fatalf("Acquire: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	p.Release(c)
	select {
	case c2 := <-got:
		it, err := c2.Get("pool_release_wakes")
		require.NoError(t, err)
		assert.Equal(t, "1", string(it.Value))
		p.Release(c2)
	case err := <-errc:
		t.Fatalf("Acquire: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Release did not wake the waiting Acquire")
	}
}

// A released client refuses every call with ErrClosed; releasing twice (or
// closing after release) is harmless and does not give the pool an extra
// client.
func TestPoolReleasedClient(t *testing.T) {
	p := newSharedPool(t, 2)
	c := poolAcquireN(t, p, 1)[0]
	require.NoError(t, c.Set(&Item{Key: "pool_released", Value: []byte("v")}))
	p.Release(c)

	_, err := c.Get("pool_released")
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, c.Set(&Item{Key: "pool_released", Value: []byte("w")}), ErrClosed)
	assert.ErrorIs(t, c.Delete("pool_released"), ErrClosed)
	_, err = c.Increment("pool_released", 1)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = c.GetMulti([]string{"pool_released"})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = c.SetMulti([]*Item{{Key: "pool_released", Value: []byte("w")}})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = c.Stats()
	assert.ErrorIs(t, err, ErrClosed)
	_, err = c.Version()
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, c.Ping(), ErrClosed)
	_, err = c.Behavior(BehaviorPollTimeout)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = c.Clone()
	assert.ErrorIs(t, err, ErrClosed)
	assert.Nil(t, c.Servers())
	assert.Nil(t, c.Behaviors())

	// Double release, Close after release, release of nil or of another
	// pool's client: all harmless.
	p.Release(c)
	require.NoError(t, c.Close())
	p.Release(nil)
	other := newSharedPool(t, 1)
	oc := poolAcquireN(t, other, 1)[0]
	p.Release(oc) // not p's: ignored
	it, err := oc.Get("pool_released")
	require.NoError(t, err, "a client released to the wrong pool stays out")
	assert.Equal(t, "v", string(it.Value))
	other.Release(oc)
	standalone := newTestClient(t)
	p.Release(standalone) // not a pool client: ignored
	_, err = standalone.Get("pool_released")
	require.NoError(t, err)

	// Still exactly two clients in p.
	clients := poolAcquireN(t, p, 2)
	assertPoolExhausted(t, p)
	for _, c := range clients {
		p.Release(c)
		p.Release(c)
	}
	clients = poolAcquireN(t, p, 2)
	assertPoolExhausted(t, p)
	for _, c := range clients {
		p.Release(c)
	}
}

// Do releases its client even when fn fails or panics, and returns fn's
// error.
func TestPoolDo(t *testing.T) {
	p := newSharedPool(t, 1)
	sentinel := errors.New("from fn")
	err := p.Do(context.Background(), func(c *Client) error {
		require.NoError(t, c.Set(&Item{Key: "pool_do", Value: []byte("d")}))
		return sentinel
	})
	assert.Same(t, sentinel, err)

	func() {
		defer func() { assert.Equal(t, "boom", recover()) }()
		_ = p.Do(context.Background(), func(c *Client) error { panic("boom") })
	}()
	var got []byte
	require.NoError(t, p.Do(context.Background(), func(c *Client) error {
		it, err := c.Get("pool_do")
		if err == nil {
			got = it.Value
		}
		return err
	}), "the client came back after the panic")
	assert.Equal(t, "d", string(got))

	// Do waits like Acquire.
	c := poolAcquireN(t, p, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	called := false
	err = p.Do(ctx, func(*Client) error { called = true; return nil })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, called)
	p.Release(c)
}

// Close is idempotent; afterwards every call returns ErrClosed, waiting
// Acquires return ErrClosed, and clients out at Close keep working until
// they are released.
func TestPoolClose(t *testing.T) {
	s := sharedServer(t)
	p, err := NewPool([]string{s.Addr}, 2)
	require.NoError(t, err)
	require.NoError(t, p.Set(&Item{Key: "pool_close", Value: []byte("c")}))
	clients := poolAcquireN(t, p, 2)

	waiter := make(chan error, 1)
	go func() {
		c, err := p.Acquire(context.Background())
		p.Release(c)
		waiter <- err
	}()
	select {
	case err := <-waiter:
		t.Fatalf("Acquire returned %v on an exhausted pool", err)
	case <-time.After(50 * time.Millisecond):
	}

	require.NoError(t, p.Close())
	select {
	case err := <-waiter:
		assert.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Acquire did not return when the pool closed")
	}
	require.NoError(t, p.Close(), "Close is idempotent")

	// Clients out at Close still work until released.
	it, err := clients[0].Get("pool_close")
	require.NoError(t, err)
	assert.Equal(t, "c", string(it.Value))

	_, err = p.Acquire(context.Background())
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, p.Do(context.Background(), func(*Client) error { return nil }), ErrClosed)
	_, err = p.Get("pool_close")
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, p.Set(&Item{Key: "pool_close", Value: []byte("x")}), ErrClosed)
	assert.ErrorIs(t, p.Ping(), ErrClosed)
	assert.ErrorIs(t, p.SetBehavior(BehaviorPollTimeout, 10), ErrClosed)
	assert.ErrorIs(t, p.SetBehaviors(map[string]any{"no_block": true}), ErrClosed)
	_, err = p.Behavior(BehaviorPollTimeout)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Nil(t, p.Behaviors())
	assert.Nil(t, p.Servers())

	// Releasing the clients that were out frees the pool; nothing crashes.
	for _, c := range clients {
		p.Release(c)
		_, err := c.Get("pool_close")
		assert.ErrorIs(t, err, ErrClosed)
		p.Release(c)
		require.NoError(t, c.Close())
	}
	require.NoError(t, p.Close())
	_, err = p.Get("pool_close")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = p.Acquire(context.Background())
	assert.ErrorIs(t, err, ErrClosed)
}

// Behaviors set on the Pool reach its handles: idle ones at once, ones that
// are out when they come back (libmemcachedutil re-clones them on
// release). Behaviors cannot be changed on an acquired client.
func TestPoolBehaviors(t *testing.T) {
	p := newSharedPool(t, 2)
	for _, c := range poolAcquireN(t, p, 2) { // create both handles
		p.Release(c)
	}
	def, err := p.Behavior(BehaviorPollTimeout)
	require.NoError(t, err)
	assert.Equal(t, p.Behaviors()["_poll_timeout"], def)
	assert.Equal(t, uint64(1), p.Behaviors()["cas"])
	assert.Equal(t, uint64(1), p.Behaviors()["tcp_nodelay"])

	out := poolAcquireN(t, p, 1)[0]
	require.NoError(t, p.SetBehaviors(map[string]any{"_poll_timeout": 1234, "tcp_nodelay": false, "hash": "crc"}))
	v, err := p.Behavior(BehaviorPollTimeout)
	require.NoError(t, err)
	assert.Equal(t, uint64(1234), v)
	pb := p.Behaviors()
	assert.Equal(t, uint64(1234), pb["_poll_timeout"])
	assert.Equal(t, uint64(0), pb["tcp_nodelay"])
	assert.Equal(t, "crc", pb["hash"])

	idle := poolAcquireN(t, p, 1)[0]
	v, err = idle.Behavior(BehaviorPollTimeout)
	require.NoError(t, err)
	assert.Equal(t, uint64(1234), v, "an idle handle takes the change at once")
	assert.Equal(t, "crc", idle.Behaviors()["hash"])
	v, err = out.Behavior(BehaviorPollTimeout)
	require.NoError(t, err)
	assert.Equal(t, def, v, "a handle that is out keeps its value until released")

	// Refused on an acquired client, which is left unchanged.
	err = out.SetBehavior(BehaviorPollTimeout, 99)
	assert.ErrorIs(t, err, ErrInvalidArguments)
	assert.Contains(t, err.Error(), "Pool")
	err = out.SetBehaviors(map[string]any{"_poll_timeout": 99})
	assert.ErrorIs(t, err, ErrInvalidArguments)
	v, err = out.Behavior(BehaviorPollTimeout)
	require.NoError(t, err)
	assert.Equal(t, def, v)

	p.Release(out)
	p.Release(idle)
	for _, c := range poolAcquireN(t, p, 2) {
		v, err := c.Behavior(BehaviorPollTimeout)
		require.NoError(t, err)
		assert.Equal(t, uint64(1234), v, "after release every handle has it")
		assert.Equal(t, uint64(0), c.Behaviors()["tcp_nodelay"])
		p.Release(c)
	}

	// The binary protocol through the pool: keys with spaces become legal
	// on the pool's own methods and on acquired clients.
	const spaced = "pool behaviors binary key"
	assert.ErrorIs(t, p.Set(&Item{Key: spaced, Value: []byte("x")}), ErrBadKeyProvided)
	out = poolAcquireN(t, p, 1)[0]
	require.NoError(t, p.SetBehavior(BehaviorBinaryProtocol, 1))
	require.NoError(t, p.Set(&Item{Key: spaced, Value: []byte("bin")}))
	it, err := p.Get(spaced)
	require.NoError(t, err)
	assert.Equal(t, "bin", string(it.Value))
	assert.ErrorIs(t, out.Set(&Item{Key: spaced, Value: []byte("x")}), ErrBadKeyProvided,
		"the client that was out still speaks ASCII")
	p.Release(out)
	for _, c := range poolAcquireN(t, p, 2) {
		v, err := c.Behavior(BehaviorBinaryProtocol)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), v)
		it, err := c.Get(spaced)
		require.NoError(t, err)
		assert.Equal(t, "bin", string(it.Value))
		p.Release(c)
	}
	require.NoError(t, p.SetBehavior(BehaviorBinaryProtocol, 0))
	_, err = p.Get(spaced)
	assert.ErrorIs(t, err, ErrBadKeyProvided)

	// Bad input: nothing changes.
	assert.ErrorIs(t, p.SetBehavior(Behavior(9999), 1), ErrInvalidArguments)
	assert.ErrorIs(t, p.SetBehavior(Behavior(-1), 1), ErrInvalidArguments)
	_, err = p.Behavior(Behavior(9999))
	assert.ErrorIs(t, err, ErrInvalidArguments)
	before := p.Behaviors()
	assert.ErrorIs(t, p.SetBehaviors(map[string]any{"_poll_timeout": 5, "bogus": 1}), ErrInvalidArguments)
	assert.ErrorIs(t, p.SetBehaviors(map[string]any{"_poll_timeout": 5, "hash": "sha1"}), ErrInvalidArguments)
	assert.ErrorIs(t, p.SetBehaviors(map[string]any{"hash": "hsieh"}), ErrInvalidArguments)
	assert.Equal(t, before, p.Behaviors())
}

// WithBehaviors and WithBinaryProtocol given to NewPool apply to every
// handle.
func TestPoolOptions(t *testing.T) {
	p := newSharedPool(t, 3, WithBinaryProtocol(), WithBehaviors(map[string]any{"_poll_timeout": 2500}))
	for _, c := range poolAcquireN(t, p, 3) {
		b := c.Behaviors()
		assert.Equal(t, uint64(2500), b["_poll_timeout"])
		v, err := c.Behavior(BehaviorBinaryProtocol)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), v)
		require.NoError(t, c.Set(&Item{Key: "pool options key", Value: []byte("o")}))
		p.Release(c)
	}
}

// Every single-operation method of Pool works, in both protocols.
func TestPoolMethods(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			p := newSharedPool(t, 3, proto.opts...)
			id := poolRunID()
			k := func(s string) string { return "pool_methods_" + id + "_" + proto.name + "_" + s }

			require.NoError(t, p.Set(&Item{Key: k("a"), Value: []byte("va"), Flags: 7}))
			it, err := p.Get(k("a"))
			require.NoError(t, err)
			assert.Equal(t, "va", string(it.Value))
			assert.Equal(t, uint32(7), it.Flags)
			assert.NotZero(t, it.CasID)
			_, err = p.Get(k("missing"))
			assert.ErrorIs(t, err, ErrCacheMiss)

			assert.ErrorIs(t, p.Add(&Item{Key: k("a"), Value: []byte("x")}), ErrNotStored)
			require.NoError(t, p.Add(&Item{Key: k("b"), Value: []byte("vb")}))
			require.NoError(t, p.Replace(&Item{Key: k("b"), Value: []byte("mid")}))
			assert.ErrorIs(t, p.Replace(&Item{Key: k("missing"), Value: []byte("x")}), ErrNotStored)
			require.NoError(t, p.Append(&Item{Key: k("b"), Value: []byte(">")}))
			require.NoError(t, p.Prepend(&Item{Key: k("b"), Value: []byte("<")}))
			assert.ErrorIs(t, p.Append(&Item{Key: k("missing"), Value: []byte("x")}), ErrNotStored)
			it, err = p.Get(k("b"))
			require.NoError(t, err)
			assert.Equal(t, "<mid>", string(it.Value))

			it.Value = []byte("swapped")
			require.NoError(t, p.CompareAndSwap(it))
			assert.ErrorIs(t, p.CompareAndSwap(it), ErrCASConflict, "the CAS id is stale now")
			it, err = p.Get(k("b"))
			require.NoError(t, err)
			assert.Equal(t, "swapped", string(it.Value))

			items, err := p.GetMulti([]string{k("a"), k("b"), k("missing")})
			require.NoError(t, err)
			require.Len(t, items, 2)
			assert.Equal(t, "va", string(items[k("a")].Value))
			assert.Equal(t, "swapped", string(items[k("b")].Value))

			require.NoError(t, p.Set(&Item{Key: k("n"), Value: []byte("10")}))
			n, err := p.Increment(k("n"), 5)
			require.NoError(t, err)
			assert.Equal(t, uint64(15), n)
			n, err = p.Decrement(k("n"), 20)
			require.NoError(t, err)
			assert.Equal(t, uint64(0), n)
			_, err = p.Increment(k("missing"), 1)
			assert.ErrorIs(t, err, ErrCacheMiss)

			require.NoError(t, p.Touch(k("a"), 100))
			assert.ErrorIs(t, p.Touch(k("missing"), 100), ErrCacheMiss)

			failed, err := p.SetMulti([]*Item{{Key: k("m1"), Value: []byte("1")}, {Key: k("m2"), Value: []byte("2")}})
			require.NoError(t, err)
			assert.Empty(t, failed)
			items, err = p.GetMulti([]string{k("m1"), k("m2")})
			require.NoError(t, err)
			assert.Len(t, items, 2)
			require.NoError(t, p.DeleteMulti([]string{k("m1"), k("m2")}))
			err = p.DeleteMulti([]string{k("m1")})
			assert.ErrorIs(t, err, ErrSomeErrors)
			assert.ErrorIs(t, err, ErrCacheMiss)

			require.NoError(t, p.Delete(k("a")))
			assert.ErrorIs(t, p.Delete(k("a")), ErrCacheMiss)

			s := sharedServer(t)
			require.NoError(t, p.Ping())
			st, err := p.Stats()
			require.NoError(t, err)
			require.Contains(t, st, s.Addr)
			assert.NotEmpty(t, st[s.Addr]["pid"])
			st, err = p.StatsArg("settings")
			require.NoError(t, err)
			assert.Equal(t, strconv.Itoa(s.Port), st[s.Addr]["tcpport"])
			v, err := p.Version()
			require.NoError(t, err)
			assert.Equal(t, map[string]string{s.Addr: "1.6.18"}, v)
			assert.Equal(t, []string{s.Addr}, p.Servers())
			srv, err := p.ServerFor(k("a"))
			require.NoError(t, err)
			assert.Equal(t, s.Addr, srv)

			// Bad keys are refused before anything is sent.
			_, err = p.Get("")
			assert.ErrorIs(t, err, ErrBadKeyProvided)
			_, err = p.ServerFor("")
			assert.ErrorIs(t, err, ErrBadKeyProvided)
		})
	}
}

// FlushAll through the pool, on a server of the test's own.
func TestPoolFlushAll(t *testing.T) {
	s := newServer(t)
	p, err := NewPool([]string{s.Addr}, 2)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Set(&Item{Key: "pool_flush_1", Value: []byte("1")}))
	require.NoError(t, p.Set(&Item{Key: "pool_flush_2", Value: []byte("2")}))
	require.NoError(t, p.FlushAll())
	items, err := p.GetMulti([]string{"pool_flush_1", "pool_flush_2"})
	require.NoError(t, err)
	assert.Empty(t, items)
	_, err = p.Get("pool_flush_1")
	assert.ErrorIs(t, err, ErrCacheMiss)
}

// 64 goroutines hammer a pool of 8 with mixed operations through the
// Pool's own methods and through Do and Acquire: no error, no crash, every
// read sees its own key's value; the goroutine count comes back after
// Close. Behaviors change on the pool meanwhile, so handles are re-cloned
// under load.
func TestPoolHammer(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			sharedServer(t) // started before counting goroutines
			runtime.GC()
			start := runtime.NumGoroutine()

			s := sharedServer(t)
			p, err := NewPool([]string{s.Addr}, 8, proto.opts...)
			require.NoError(t, err)

			const workers, rounds = 64, 100
			run := proto.name + "_" + poolRunID()
			var wg sync.WaitGroup
			stop := make(chan struct{})
			var tweaks sync.WaitGroup
			tweaks.Add(1)
			go func() { // behavior changes while the pool is busy
				defer tweaks.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					assert.NoError(t, p.SetBehavior(BehaviorPollTimeout, uint64(4000+i%2)))
				}
			}()
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					hammerWorker(t, p, run, w, rounds)
				}(w)
			}
			wg.Wait()
			close(stop)
			tweaks.Wait()

			// Every client came back.
			for _, c := range poolAcquireN(t, p, 8) {
				p.Release(c)
			}
			require.NoError(t, p.Close())
			waitGoroutinesAtMost(t, start)
		})
	}
}

func hammerWorker(t *testing.T, p *Pool, run string, w, rounds int) {
	prefix := fmt.Sprintf("pool_hammer_%s_%d_", run, w)
	key := func(i int) string { return prefix + strconv.Itoa(i%4) }
	model := map[string]string{} // what this worker last stored
	counter := prefix + "ctr"
	if !assert.NoError(t, p.Set(&Item{Key: counter, Value: []byte("0")})) {
		return
	}
	count := uint64(0)
	check := func(k string, it *Item, err error) {
		want, ok := model[k]
		if !ok {
			assert.ErrorIs(t, err, ErrCacheMiss, "worker %d key %s", w, k)
			return
		}
		if assert.NoError(t, err, "worker %d key %s", w, k) {
			assert.Equal(t, k, it.Key)
			assert.Equal(t, want, string(it.Value), "worker %d key %s", w, k)
		}
	}
	for i := 0; i < rounds; i++ {
		k := key(i)
		v := fmt.Sprintf("%s=%d", k, i)
		switch i % 5 {
		case 0: // the Pool's own methods
			if assert.NoError(t, p.Set(&Item{Key: k, Value: []byte(v)})) {
				model[k] = v
			}
			it, err := p.Get(k)
			check(k, it, err)
			n, err := p.Increment(counter, 1)
			if assert.NoError(t, err) {
				count++
				assert.Equal(t, count, n)
			}
		case 1: // Do: several calls on one client
			err := p.Do(context.Background(), func(c *Client) error {
				if err := c.Set(&Item{Key: k, Value: []byte(v)}); err != nil {
					return err
				}
				model[k] = v
				it, err := c.Get(k)
				check(k, it, err)
				items, err := c.GetMulti([]string{key(0), key(1), key(2), key(3)})
				if err != nil {
					return err
				}
				for kk, it := range items {
					check(kk, it, nil)
				}
				for kk := range model {
					assert.Contains(t, items, kk)
				}
				return nil
			})
			assert.NoError(t, err)
		case 2: // Acquire and Release
			c, err := p.Acquire(context.Background())
			if !assert.NoError(t, err) {
				return
			}
			n, err := c.Increment(counter, 2)
			if assert.NoError(t, err) {
				count += 2
				assert.Equal(t, count, n)
			}
			if err := c.Delete(k); err == nil {
				delete(model, k)
			} else {
				assert.ErrorIs(t, err, ErrCacheMiss)
				_, had := model[k]
				assert.False(t, had, "worker %d: delete of %s missed", w, k)
			}
			_, err = c.Get(k)
			assert.ErrorIs(t, err, ErrCacheMiss)
			p.Release(c)
		case 3: // multi-key calls through the Pool
			items := []*Item{{Key: k, Value: []byte(v)}, {Key: key(i + 1), Value: []byte(v + "+")}}
			failed, err := p.SetMulti(items)
			if assert.NoError(t, err) && assert.Empty(t, failed) {
				model[k], model[key(i+1)] = v, v+"+"
			}
			got, err := p.GetMulti([]string{key(0), key(1), key(2), key(3)})
			if assert.NoError(t, err) {
				assert.Len(t, got, len(model))
				for kk, it := range got {
					check(kk, it, nil)
				}
			}
		case 4: // CAS and append through the Pool
			if _, ok := model[k]; !ok {
				if assert.NoError(t, p.Set(&Item{Key: k, Value: []byte(v)})) {
					model[k] = v
				}
			}
			it, err := p.Get(k)
			check(k, it, err)
			if err == nil {
				it.Value = []byte(v + "cas")
				if assert.NoError(t, p.CompareAndSwap(it)) {
					model[k] = v + "cas"
				}
			}
			if assert.NoError(t, p.Append(&Item{Key: k, Value: []byte("!")})) {
				model[k] += "!"
			}
			it, err = p.Get(k)
			check(k, it, err)
		}
	}
	n, err := p.Decrement(counter, 0)
	if assert.NoError(t, err) {
		assert.Equal(t, count, n, "worker %d: counter", w)
	}
}

// Closing the pool while goroutines use it: every call either works or
// returns ErrClosed, and nothing crashes or leaks goroutines.
func TestPoolCloseWhileBusy(t *testing.T) {
	s := sharedServer(t)
	runtime.GC()
	start := runtime.NumGoroutine()
	p, err := NewPool([]string{s.Addr}, 4)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			k := "pool_close_busy_" + strconv.Itoa(w)
			for i := 0; ; i++ {
				var err error
				if i%2 == 0 {
					err = p.Set(&Item{Key: k, Value: []byte(k)})
				} else {
					err = p.Do(context.Background(), func(c *Client) error {
						it, err := c.Get(k)
						if err == nil && string(it.Value) != k {
							return fmt.Errorf("got %q for %s", it.Value, k)
						}
						if errors.Is(err, ErrCacheMiss) {
							return nil
						}
						return err
					})
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				assert.NoError(t, err)
			}
		}(w)
	}
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, p.Close())
	wg.Wait()
	waitGoroutinesAtMost(t, start)
}

// clientConns counts the client connections memcached at addr has open,
// not counting the one that asks (Stats runs over a connection of its own,
// closed after; a just-closed one may linger a moment, hence the retries
// of the callers).
func clientConns(t *testing.T, addr string) int {
	t.Helper()
	c, err := New([]string{addr})
	require.NoError(t, err)
	defer c.Close()
	st, err := c.StatsArg("conns")
	require.NoError(t, err)
	n := 0
	for _, server := range st {
		for k := range server {
			if strings.HasSuffix(k, ":listen_addr") {
				n++
			}
		}
	}
	return n - 1
}

// assertConns waits for addr to show want client connections.
func assertConns(t *testing.T, addr string, want int, msg string) {
	t.Helper()
	got := -1
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = clientConns(t, addr); got == want {
			return
		}
	}
	t.Errorf("%s: %s has %d client connections, want %d", msg, addr, got, want)
}

func TestPoolWarm(t *testing.T) {
	for _, binary := range []bool{false, true} {
		t.Run(map[bool]string{false: "ascii", true: "binary"}[binary], func(t *testing.T) {
			a, b := newServer(t), newServer(t)
			const size = 4
			var opts []Option
			if binary {
				opts = append(opts, WithBinaryProtocol())
			}
			p, err := NewPool([]string{a.Addr, b.Addr}, size, opts...)
			require.NoError(t, err)
			defer p.Close()
			assertConns(t, a.Addr, 0, "NewPool does not connect")

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, p.Warm(ctx))
			for _, s := range []*memcachedServer{a, b} {
				assertConns(t, s.Addr, size, "after Warm every handle is connected to every server")
			}

			// All handles are back and work, over the connections Warm made.
			clients := poolAcquireN(t, p, size)
			assertPoolExhausted(t, p)
			for i, c := range clients {
				key := "warm_" + poolRunID() + "_" + strconv.Itoa(i)
				require.NoError(t, c.Set(&Item{Key: key, Value: []byte(key)}))
				it, err := c.Get(key)
				require.NoError(t, err)
				assert.Equal(t, key, string(it.Value))
				p.Release(c)
			}
			require.NoError(t, p.Warm(ctx), "a second Warm")
			for _, s := range []*memcachedServer{a, b} {
				assertConns(t, s.Addr, size, "a second Warm opens nothing more")
			}

			// Behavior changes apply to the idle handles in place: most keep
			// their connections, socket-level ones close them (as Warm's
			// documentation says), and Warm again restores them.
			require.NoError(t, p.SetBehavior(BehaviorPollTimeout, 3000))
			for _, s := range []*memcachedServer{a, b} {
				assertConns(t, s.Addr, size, "after a poll timeout change")
			}
			require.NoError(t, p.SetBehavior(BehaviorTCPNoDelay, 0))
			for _, s := range []*memcachedServer{a, b} {
				assertConns(t, s.Addr, 0, "after a tcp_nodelay change")
			}
			ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel2()
			require.NoError(t, p.Warm(ctx2))
			for _, s := range []*memcachedServer{a, b} {
				assertConns(t, s.Addr, size, "Warm after SetBehavior")
			}
		})
	}
}

// Warm fails on a server it cannot reach, honours its context, and gives
// back every client it took in all cases.
func TestPoolWarmFailures(t *testing.T) {
	live := newServer(t)
	dead := newServer(t)
	dead.Stop()
	const size = 3
	p, err := NewPool([]string{live.Addr, dead.Addr}, size)
	require.NoError(t, err)
	defer p.Close()
	err = p.Warm(context.Background())
	var e *Error
	require.ErrorAs(t, err, &e, "a dead server fails Warm")
	assert.ErrorIs(t, err, ErrConnectionFailure)
	assert.Equal(t, ReturnSomeErrors, e.Original, "libmemcached's own code is kept")
	assert.Equal(t, dead.Addr, e.Server, "the error names the dead server")
	assert.Equal(t, "warm", e.Op)
	for _, c := range poolAcquireN(t, p, size) {
		p.Release(c)
	}

	// A client held elsewhere: Warm waits for it until ctx is done.
	q := newSharedPool(t, size)
	held, err := q.Acquire(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, q.Warm(ctx), context.DeadlineExceeded)
	q.Release(held)
	for _, c := range poolAcquireN(t, q, size) {
		q.Release(c)
	}
	require.NoError(t, q.Warm(context.Background()))

	require.NoError(t, q.Close())
	assert.ErrorIs(t, q.Warm(context.Background()), ErrClosed)

	// A UDP pool has nothing to connect: Warm succeeds and the pool still
	// stores over UDP (memcached_version would refuse UDP handles).
	udpPort, err := freePort()
	require.NoError(t, err)
	us := newServer(t, "-U", strconv.Itoa(udpPort))
	u, err := NewPool([]string{"udp:127.0.0.1:" + strconv.Itoa(udpPort)}, size)
	require.NoError(t, err)
	defer u.Close()
	require.NoError(t, u.Warm(context.Background()))
	require.NoError(t, u.Set(&Item{Key: "warm/udp", Value: []byte("over udp")}))
	tcp, err := New([]string{us.Addr})
	require.NoError(t, err)
	defer tcp.Close()
	require.Eventually(t, func() bool {
		it, err := tcp.Get("warm/udp")
		return err == nil && string(it.Value) == "over udp"
	}, 2*time.Second, 10*time.Millisecond)
	for _, c := range poolAcquireN(t, u, size) {
		u.Release(c)
	}
}
