package libmemcached

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spinDelta runs f and returns the busy waits it added.
func spinDelta(f func()) (hits, misses uint64) {
	h0, m0 := spinCounts()
	f()
	h1, m1 := spinCounts()
	return h1 - h0, m1 - m0
}

// A sequential Get busy-waits for its reply (on more than one CPU), reads
// the socket from the instance layout this libmemcached really has, and
// still gets its own value; WithSpinWait(0) turns the wait off, a negative
// wait is refused.
func TestSpinWait(t *testing.T) {
	s := newServer(t)
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			cl, err := New([]string{s.Addr}, pr.opts...)
			require.NoError(t, err)
			defer cl.Close()
			for i := 0; i < 10; i++ {
				k := fmt.Sprint("spin:", pr.name, ":", i)
				require.NoError(t, cl.Set(&Item{Key: k, Value: []byte("v" + k)}))
			}
			getAll := func(c *Client) {
				for r := 0; r < 20; r++ {
					for i := 0; i < 10; i++ {
						k := fmt.Sprint("spin:", pr.name, ":", i)
						it, err := c.Get(k)
						require.NoError(t, err)
						require.Equal(t, "v"+k, string(it.Value))
					}
					m, err := c.GetMulti([]string{"spin:" + pr.name + ":1", "spin:" + pr.name + ":2"})
					require.NoError(t, err)
					require.Len(t, m, 2)
				}
			}
			hits, misses := spinDelta(func() { getAll(cl) })
			if runtime.NumCPU() < 2 {
				assert.Zero(t, hits+misses, "one CPU: no busy wait")
				return
			}
			assert.Equal(t, 1, layoutOK(), "the instance prefix in conns.c matches this libmemcached (%s)", loaded)
			assert.Positive(t, hits, "a local server's replies arrive within the default wait (%d misses)", misses)

			off, err := New([]string{s.Addr}, append([]Option{WithSpinWait(0)}, pr.opts...)...)
			require.NoError(t, err)
			defer off.Close()
			hits, misses = spinDelta(func() { getAll(off) })
			assert.Zero(t, hits+misses, "WithSpinWait(0)")

			// Clones and pool handles keep the setting.
			cp, err := off.Clone()
			require.NoError(t, err)
			defer cp.Close()
			p, err := NewPool([]string{s.Addr}, 2, append([]Option{WithSpinWait(0)}, pr.opts...)...)
			require.NoError(t, err)
			defer p.Close()
			hits, misses = spinDelta(func() {
				getAll(cp)
				for i := 0; i < 50; i++ {
					_, err := p.Get(fmt.Sprint("spin:", pr.name, ":", i%10))
					require.NoError(t, err)
				}
			})
			assert.Zero(t, hits+misses, "a clone and a pool of WithSpinWait(0)")
		})
	}
	_, err := New([]string{s.Addr}, WithSpinWait(-time.Microsecond))
	assert.ErrorIs(t, err, ErrInvalidArguments)
}

// Against a hung server the wait runs out, and the handle backs off: a
// few waits in twenty requests, every Get a timeout, then values again.
func TestSpinWaitBacksOff(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Log("one CPU: busy waiting never runs; checking only that Gets time out and recover")
	}
	s := newServer(t)
	c, err := New([]string{s.Addr}, WithBehaviors(map[string]any{"_poll_timeout": 20}))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Set(&Item{Key: "spin-hung", Value: []byte("there")}))
	require.NoError(t, s.Signal(syscall.SIGSTOP))
	time.Sleep(50 * time.Millisecond) // SIGSTOP is asynchronous
	_, misses := spinDelta(func() {
		for i := 0; i < 20; i++ {
			_, err := c.Get("spin-hung")
			var e *Error
			if assert.ErrorAs(t, err, &e) {
				assert.True(t, e.Timeout() || e.Temporary(), "a hung server: %v", err)
			}
		}
	})
	require.NoError(t, s.Signal(syscall.SIGCONT))
	if runtime.NumCPU() >= 2 {
		// 2 waits, 2 skipped, 1, 4 skipped, 1, 8 skipped, 1: 5 in 20 (after
		// the timeouts libmemcached reconnects, which may add one).
		assert.Positive(t, misses)
		assert.LessOrEqual(t, misses, uint64(6), "the handle backs off after waits that run out")
	}
	require.Eventually(t, func() bool {
		it, err := c.Get("spin-hung")
		return err == nil && string(it.Value) == "there"
	}, 5*time.Second, 20*time.Millisecond, "Gets work again once the server answers")
}

// While another of the package's calls is in progress, a Get does not
// busy-wait: it would take a CPU the other call (or memcached) needs.
func TestSpinWaitOnlyAlone(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: busy waiting never runs (TestSpinWait checks that)")
	}
	live, hung := newServer(t), newServer(t)
	a, err := New([]string{live.Addr})
	require.NoError(t, err)
	defer a.Close()
	b, err := New([]string{hung.Addr}, WithBehaviors(map[string]any{"_poll_timeout": 3000}))
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, a.Set(&Item{Key: "alone", Value: []byte("a")}))
	require.NoError(t, b.Set(&Item{Key: "alone", Value: []byte("b")}))
	require.NoError(t, hung.Signal(syscall.SIGSTOP))
	defer hung.Signal(syscall.SIGCONT)
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	inFlight := make(chan error, 1)
	go func() { _, err := b.GetContext(ctx, "alone"); inFlight <- err }()
	time.Sleep(100 * time.Millisecond) // b's Get is in C now, waiting
	hits, misses := spinDelta(func() {
		for i := 0; i < 50; i++ {
			it, err := a.Get("alone")
			require.NoError(t, err)
			require.Equal(t, "a", string(it.Value))
		}
	})
	assert.Zero(t, hits+misses, "no busy wait while another call is in progress")
	assert.Error(t, <-inFlight, "the hung server's Get")
}
