package libmemcached

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collectUntil runs the garbage collector (and so the finalizers) until
// done says so, for up to 10 s, and reports whether it did.
func collectUntil(done func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		if done() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done()
}

// currConnections is the server's count of open connections, read by c.
func currConnections(t *testing.T, c *Client) int {
	t.Helper()
	st, err := c.Stats()
	require.NoError(t, err)
	for _, m := range st {
		n, err := strconv.Atoi(m["curr_connections"])
		require.NoError(t, err)
		return n
	}
	t.Fatal("no stats")
	return 0
}

// dropClient makes a connected Client with the counting allocator and
// drops it without Close.
func dropClient(t *testing.T, addr string) {
	c, err := New([]string{addr}, withCountingAllocator())
	require.NoError(t, err)
	require.NoError(t, c.Set(&Item{Key: "finalize", Value: []byte("v")}))
	_, err = c.Get("finalize")
	require.NoError(t, err)
}

// dropPool makes a Pool with the counting allocator, uses two of its
// handles at once and drops it without Close.
func dropPool(t *testing.T, addr string) {
	p, err := NewPool([]string{addr}, 2, withCountingAllocator(), WithCoalescing(false))
	require.NoError(t, err)
	a, err := p.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Set(&Item{Key: "finalize_pool", Value: []byte("v")}))
	_, err = a.Get("finalize_pool")
	require.NoError(t, err)
	p.Release(a)
	_, err = p.Get("finalize_pool")
	require.NoError(t, err)
}

// A Client or Pool dropped without Close is freed by its finalizer: every
// C block it allocated (a Pool's master and handles too), and its
// connections to the server.
func TestDroppedIsFreed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drop  func(*testing.T, string)
		conns int // connections the dropped object holds
	}{
		{"client", dropClient, 1},
		{"pool", dropPool, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			watch := newClientOf(t, []string{s.Addr})
			idle := currConnections(t, watch)
			start, reported := liveCBlocks(), unclosed.Load()

			tc.drop(t, s.Addr)
			assert.Greater(t, liveCBlocks(), start, "the dropped %s's C memory is counted", tc.name)
			assert.Equal(t, idle+tc.conns, currConnections(t, watch), "the dropped %s is connected", tc.name)

			freed := collectUntil(func() bool { return liveCBlocks() == start && unclosed.Load() > reported })
			assert.True(t, freed, "after GC: %d live C blocks (%d before), %d unclosed reported (%d before)",
				liveCBlocks(), start, unclosed.Load(), reported)
			assert.True(t, collectUntil(func() bool { return currConnections(t, watch) == idle }),
				"the dropped %s's connections are closed: %d open, %d before", tc.name, currConnections(t, watch), idle)
		})
	}
}

// A client acquired from a Pool and dropped without Release goes back to
// the pool, so the pool does not run out of handles.
func TestDroppedAcquiredClientGoesBack(t *testing.T) {
	p := newSharedPool(t, 1)
	func() {
		c, err := p.Acquire(context.Background())
		require.NoError(t, err)
		require.NoError(t, c.Set(&Item{Key: "finalize_acquired", Value: []byte("v")}))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := p.Acquire(ctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "the only handle is out")

	var c *Client
	ok := collectUntil(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		c, err = p.Acquire(ctx)
		return err == nil
	})
	require.True(t, ok, "the dropped client's handle came back to the pool: %v", err)
	it, err := c.Get("finalize_acquired")
	require.NoError(t, err)
	assert.Equal(t, "v", string(it.Value))
	p.Release(c)
}

// closeAndDrop makes a Client and a Pool, closes both and drops them.
func closeAndDrop(t *testing.T, addr string) {
	c, err := New([]string{addr}, withCountingAllocator())
	require.NoError(t, err)
	p, err := NewPool([]string{addr}, 2, withCountingAllocator())
	require.NoError(t, err)
	require.NoError(t, c.Set(&Item{Key: "finalize_closed", Value: []byte("v")}))
	_, err = p.Get("finalize_closed")
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, p.Close())
	_, err = c.Get("finalize_closed")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = p.Get("finalize_closed")
	assert.ErrorIs(t, err, ErrClosed)
}
