package libmemcached

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"strconv"
	"strings"
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

// connCounter reads the server's count of open connections over one raw
// connection of its own, so that reading it opens and closes nothing.
type connCounter struct {
	conn net.Conn
	r    *bufio.Reader
}

func newConnCounter(t *testing.T, addr string) *connCounter {
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &connCounter{conn: conn, r: bufio.NewReader(conn)}
}

func (cc *connCounter) read(t *testing.T) int {
	t.Helper()
	_, err := cc.conn.Write([]byte("stats\r\n"))
	require.NoError(t, err)
	n := -1
	for {
		line, err := cc.r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimSpace(line)
		if line == "END" {
			break
		}
		if v, ok := strings.CutPrefix(line, "STAT curr_connections "); ok {
			n, err = strconv.Atoi(v)
			require.NoError(t, err)
		}
	}
	require.GreaterOrEqual(t, n, 0, "no curr_connections in stats")
	return n
}

// stable reads the count once it has stopped changing (a connection that
// closed just before, such as the launcher's readiness probe, may still
// be counted for a moment).
func (cc *connCounter) stable(t *testing.T) int {
	t.Helper()
	n, same := cc.read(t), 0
	for deadline := time.Now().Add(5 * time.Second); same < 4 && time.Now().Before(deadline); {
		time.Sleep(25 * time.Millisecond)
		if m := cc.read(t); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

// settles waits until the count is want (memcached counts a connection
// once a worker thread has taken it), and reports whether it came.
func (cc *connCounter) settles(t *testing.T, want int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for cc.read(t) != want && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	return cc.read(t) == want
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
			watch := newConnCounter(t, s.Addr)
			idle := watch.stable(t)
			start, reported := liveCBlocks(), unclosed.Load()

			tc.drop(t, s.Addr)
			assert.Greater(t, liveCBlocks(), start, "the dropped %s's C memory is counted", tc.name)
			assert.True(t, watch.settles(t, idle+tc.conns), "the dropped %s is connected: %d open, %d before",
				tc.name, watch.read(t), idle)

			freed := collectUntil(func() bool { return liveCBlocks() == start && unclosed.Load() > reported })
			assert.True(t, freed, "after GC: %d live C blocks (%d before), %d unclosed reported (%d before)",
				liveCBlocks(), start, unclosed.Load(), reported)
			assert.True(t, watch.settles(t, idle), "the dropped %s's connections are closed: %d open, %d before",
				tc.name, watch.read(t), idle)
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
