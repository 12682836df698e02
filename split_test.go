package libmemcached

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withProcs runs the test with GOMAXPROCS n (the split depends on it).
func withProcs(t *testing.T, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// A large Pool.GetMulti is split over free handles when there is more than
// one CPU, and every key still gets exactly its own item: duplicates, keys
// at the parts' edges, misses, two servers, coalescing on and off.
func TestPoolGetMultiSplit(t *testing.T) {
	withProcs(t, 4)
	a, b := newServer(t), newServer(t)
	for _, pr := range protocols {
		for _, coalesce := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/coalescing=%v", pr.name, coalesce), func(t *testing.T) {
				opts := append([]Option{WithCoalescing(coalesce)}, pr.opts...)
				p := newTestPool(t, []string{a.Addr, b.Addr}, 4, opts...)
				var keys, absent []string
				for i := 0; i < 3*splitKeys; i++ {
					k := fmt.Sprintf("split:%s:%v:%d", pr.name, coalesce, i)
					keys = append(keys, k)
					require.NoError(t, p.Set(&Item{Key: k, Value: []byte("value of " + k), Flags: uint32(i)}))
				}
				for i := 0; i < 40; i++ {
					absent = append(absent, fmt.Sprintf("split-absent:%s:%v:%d", pr.name, coalesce, i))
				}
				ask := append(append(append([]string{}, keys...), absent...), keys[:50]...) // duplicates too
				check := func(m map[string]*Item) {
					t.Helper()
					require.Len(t, m, len(keys))
					for i, k := range keys {
						it := m[k]
						if assert.NotNil(t, it, k) {
							assert.Equal(t, k, it.Key)
							assert.Equal(t, "value of "+k, string(it.Value))
							assert.Equal(t, uint32(i), it.Flags)
						}
					}
					for _, k := range absent {
						assert.NotContains(t, m, k)
					}
				}

				before := p.p.splits.Load()
				m, err := p.GetMulti(ask)
				require.NoError(t, err)
				check(m)
				assert.Greater(t, p.p.splits.Load(), before, "3*splitKeys keys on a pool of 4 with 4 CPUs: split")

				// Every handle but one out: no split, the same answer.
				held := poolAcquireN(t, p, 3)
				before = p.p.splits.Load()
				m, err = p.GetMulti(ask)
				require.NoError(t, err)
				check(m)
				assert.Equal(t, before, p.p.splits.Load(), "no free handle: one part")
				for _, c := range held {
					p.Release(c)
				}

				// Small requests are not split.
				before = p.p.splits.Load()
				m, err = p.GetMulti(keys[:2*splitKeys-1])
				require.NoError(t, err)
				assert.Len(t, m, 2*splitKeys-1)
				assert.Equal(t, before, p.p.splits.Load(), "fewer than twice splitKeys keys: one part")

				// Many goroutines splitting at once share the handles.
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for g := 0; g < 8; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for r := 0; r < 10; r++ {
							m, err := p.GetMulti(keys)
							if err != nil {
								errs <- err
								return
							}
							for _, k := range keys {
								if it := m[k]; it == nil || string(it.Value) != "value of "+k {
									errs <- fmt.Errorf("key %s: %v", k, it)
									return
								}
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}

				// A bad key anywhere: nothing is sent, as Client.GetMulti.
				bad := append(append([]string{}, keys...), strings.Repeat("k", 251))
				m, err = p.GetMulti(bad)
				assert.ErrorIs(t, err, ErrBadKeyProvided)
				assert.Zero(t, len(m))
			})
		}
	}
}

// A split GetMulti with one server down returns the live server's items
// and an error for the rest, never misses for the dead server's keys.
func TestPoolGetMultiSplitFault(t *testing.T) {
	withProcs(t, 4)
	live, dead := newServer(t), newServer(t)
	p := newTestPool(t, []string{live.Addr, dead.Addr}, 4,
		WithBehaviors(map[string]any{"connect_timeout": 200, "_poll_timeout": 200, "retry_timeout": 1}))
	var onLive, all []string
	for i := 0; i < 3*splitKeys; i++ {
		k := fmt.Sprint("split-fault:", i)
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte(k)}))
		if srv, err := p.ServerFor(k); err == nil && srv == live.Addr {
			onLive = append(onLive, k)
		}
		all = append(all, k)
	}
	require.NotEmpty(t, onLive)
	require.Less(t, len(onLive), len(all))
	dead.Stop()
	before := p.p.splits.Load()
	m, err := p.GetMulti(all)
	var e *Error
	require.True(t, errors.As(err, &e), "a dead server: %v", err)
	assert.True(t, e.Temporary(), "%v", err)
	assert.False(t, errors.Is(err, ErrCacheMiss))
	assert.Greater(t, p.p.splits.Load(), before)
	assert.Len(t, m, len(onLive), "every live key comes back")
	for _, k := range onLive {
		if it := m[k]; assert.NotNil(t, it, k) {
			assert.Equal(t, k, string(it.Value))
		}
	}
}

// A split GetMulti within a context: a done one sends nothing, a deadline
// bounds every part.
func TestPoolGetMultiSplitContext(t *testing.T) {
	withProcs(t, 4)
	s := newServer(t)
	p := newTestPool(t, []string{s.Addr}, 4, WithBehaviors(map[string]any{"_poll_timeout": 5000}))
	var keys []string
	for i := 0; i < 3*splitKeys; i++ {
		k := fmt.Sprint("split-ctx:", i)
		keys = append(keys, k)
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte(k)}))
	}
	require.NoError(t, p.Warm(context.Background()))
	require.NoError(t, s.Signal(syscall.SIGSTOP))
	time.Sleep(50 * time.Millisecond) // SIGSTOP is asynchronous
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.GetMultiContext(ctx, keys)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, s.Signal(syscall.SIGCONT))
	m, err := p.GetMulti(keys)
	require.NoError(t, err)
	assert.Len(t, m, len(keys), "the handles that timed out work again")
}

// A pool connects its handles back to back at first use, without Warm
// (autoWarm), and again for a new server list after SetServers; a server
// that is down delays nobody for long.
func TestPoolConnectsInTurnWithoutWarm(t *testing.T) {
	a, b := newServer(t), newServer(t)
	const size = 4
	p := newTestPool(t, []string{a.Addr, b.Addr}, size)
	assertConns(t, a.Addr, 0, "NewPool does not connect")
	// The first use: a FlushAll, so that the handle it takes connects to
	// both servers too (autoWarm connects the others).
	require.NoError(t, p.FlushAll())
	require.NoError(t, p.Set(&Item{Key: "autowarm", Value: []byte("x")}))
	for _, s := range []*memcachedServer{a, b} {
		assertConns(t, s.Addr, size, "after the first use every handle is connected to every server")
	}
	it, err := p.Get("autowarm")
	require.NoError(t, err)
	assert.Equal(t, "x", string(it.Value))

	c := newServer(t)
	require.NoError(t, p.SetServers([]string{c.Addr}))
	assertConns(t, c.Addr, 0, "SetServers does not connect")
	require.NoError(t, p.Set(&Item{Key: "autowarm", Value: []byte("y")}))
	assertConns(t, c.Addr, size, "the new list's handles connect at its first use")

	// Warm first: autoWarm does not run after it.
	q := newTestPool(t, []string{a.Addr}, 2)
	require.NoError(t, q.Warm(context.Background()))
	assert.Equal(t, warmDone, q.p.warm.Load())

	// A hung server (paused: the kernel still completes connections):
	// autoWarm gives up within autoWarmTimeout rather than the pool's poll
	// timeout, and a caller of a live key waits at most that long for a
	// handle.
	hung := newServer(t)
	require.NoError(t, hung.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { hung.Signal(syscall.SIGCONT) })
	r := newTestPool(t, []string{a.Addr, hung.Addr}, size,
		WithBehaviors(map[string]any{"connect_timeout": 5000, "_poll_timeout": 5000, "retry_timeout": 1}))
	var live string
	for i := 0; live == ""; i++ {
		k := fmt.Sprint("autowarm-live:", i)
		if srv, err := r.ServerFor(k); err == nil && srv == a.Addr {
			live = k
		}
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		require.NoError(t, r.Set(&Item{Key: live, Value: []byte("z")}))
	}
	assert.Less(t, time.Since(start), 2*time.Second, "20 Sets of a live key while autoWarm met a dead server")
	assert.Eventually(t, func() bool { return r.p.warm.Load() == warmDone }, 5*time.Second, 10*time.Millisecond)
}
