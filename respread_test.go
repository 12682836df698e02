package libmemcached

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stackThreads takes every free handle of the pool, top of
// libmemcachedutil's stack first (the order the pool hands them out in;
// the coalescer's kept handles, given back first, are on top), and
// returns, for each, the worker thread of srv (the pool's i-th server)
// that serves its connection (-1: not connected to it); it puts them back
// as they were. The pool must be idle.
func stackThreads(t *testing.T, p *Pool, srv *memcachedServer, i int) []int {
	t.Helper()
	p.p.releaseKept(false)
	var taken []*handle
	for s := p.p.tryTake(); s != nil; s = p.p.tryTake() {
		taken = append(taken, s)
	}
	defer func() {
		for j := len(taken) - 1; j >= 0; j-- {
			p.p.put(taken[j])
		}
	}()
	require.Len(t, taken, p.Size(), "the pool is idle")
	threads, err := srv.ClientThreads()
	require.NoError(t, err)
	out := make([]int, len(taken))
	for j, s := range taken {
		out[j] = handleThread(t, s, threads, i)
	}
	return out
}

// handleThread is the server thread (from srv.ClientThreads) serving the
// handle's connection to its i-th server, -1 if it has none.
func handleThread(t *testing.T, s *handle, threads map[int]int, i int) int {
	t.Helper()
	fd := s.serverFD(i)
	require.NotEqual(t, -2, fd, "the instance layout check (conns.c) passes on %s", loaded)
	if fd < 0 {
		return -1
	}
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	if th, ok := threads[sa.(*syscall.SockaddrInet4).Port]; ok {
		return th
	}
	return -1
}

// waitSettled waits until autoWarm or a respread has run and none is due.
func waitSettled(t *testing.T, p *Pool) {
	t.Helper()
	require.Eventually(t, func() bool { return p.p.warm.Load() == warmDone }, 10*time.Second, 5*time.Millisecond,
		"autoWarm/respread settles (state %d, tries %d)", p.p.warm.Load(), p.p.respreadTries.Load())
}

// assertSpread checks that every handle is connected, that the two the
// pool hands out first (the coalescer's) are served by different server
// threads, and that the handles are shared out evenly between the
// threads. (The order of the others on the stack is connect order too,
// unless a caller took one while a sweep was giving them back: the tests
// make requests while the pool sweeps.)
func assertSpread(t *testing.T, threads []int, when string) {
	t.Helper()
	per := map[int]int{}
	for j, th := range threads {
		require.NotEqual(t, -1, th, "%s: handle %d (from the top) is connected: %v", when, j, threads)
		per[th]++
	}
	require.GreaterOrEqual(t, len(threads), 2)
	assert.NotEqual(t, threads[0], threads[1], "%s: the two handles handed out first share a server thread: %v", when, threads)
	assert.Len(t, per, 2, "%s: both server threads serve handles: %v", when, threads)
	for th, n := range per {
		assert.InDelta(t, len(threads)/2, n, 1, "%s: thread %d serves %d of %d handles: %v", when, th, n, len(threads), threads)
	}
}

// A restarted server: the pool's idle handles are reconnected back to back
// (respread), so they are spread over the new process's threads as
// autoWarm spread them over the old one's, and no request fails on a
// connection the old process closed: only the one that found the restart.
func TestPoolRespreadsAfterRestart(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s := newServer(t)
			const size = 8
			p := newTestPool(t, []string{s.Addr}, size, pr.opts...)
			k := "respread:" + pr.name
			require.NoError(t, p.Set(&Item{Key: k, Value: []byte("old")}))
			waitSettled(t, p)
			assertSpread(t, stackThreads(t, p, s, 0), "after autoWarm")

			s.Stop()
			s2 := ctStartOnPort(t, s.Port)
			_, err := p.Get(k)
			require.Error(t, err, "the first request after the restart is made on a connection the old process closed")
			assert.True(t, err.(*Error).Temporary(), "%v", err)
			_, err = p.Get(k) // the take that starts the respread
			assert.ErrorIs(t, err, ErrCacheMiss, "the new process is empty")
			waitSettled(t, p)
			assertSpread(t, stackThreads(t, p, s2, 0), "after the restart")
			for i := 0; i < 3*size; i++ {
				_, err := p.Get(k)
				require.ErrorIs(t, err, ErrCacheMiss, "request %d after the respread", i)
			}
			require.NoError(t, p.Set(&Item{Key: k, Value: []byte("new")}))
			it, err := p.Get(k)
			require.NoError(t, err)
			assert.Equal(t, "new", string(it.Value))
		})
	}
}

// settleWithTakes makes one request whenever a respread is due (a take
// starts it) until none is running or due.
func settleWithTakes(t *testing.T, p *Pool, key string) {
	t.Helper()
	deadline := time.Now().Add(respreadMaxTries * respreadMaxDelay)
	for p.p.warm.Load() != warmDone {
		require.True(t, time.Now().Before(deadline), "the respread settles (state %d, tries %d)", p.p.warm.Load(), p.p.respreadTries.Load())
		if p.p.warm.Load() == warmAgain {
			_, _ = p.Get(key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A server that comes back a while after it went away: the first
// reconnection fails, later tries probe with one handle, and once the
// server is back the pool is spread over its threads.
func TestPoolRespreadRetries(t *testing.T) {
	s := newServer(t)
	const size = 6
	p := newTestPool(t, []string{s.Addr}, size)
	k := "respread-retry"
	require.NoError(t, p.Set(&Item{Key: k, Value: []byte("x")}))
	waitSettled(t, p)

	s.Stop()
	_, err := p.Get(k)
	require.Error(t, err)
	_, _ = p.Get(k) // starts the respread, which finds the server down
	require.Eventually(t, func() bool { return p.p.respreadTries.Load() > 0 }, 5*time.Second, time.Millisecond,
		"a failed reconnection is retried later")
	// Every stale connection was closed: no request is made on one.
	for i := 0; i < 2*size; i++ {
		_, err := p.Get(k)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "disconnected", "request %d while the server is down", i)
	}
	time.Sleep(time.Second)
	s2 := ctStartOnPort(t, s.Port)
	settleWithTakes(t, p, k)
	assert.Zero(t, p.p.respreadTries.Load())
	assertSpread(t, stackThreads(t, p, s2, 0), "after the server came back")
	require.NoError(t, p.Set(&Item{Key: k, Value: []byte("y")}))
}

// A server that stays dead does not keep the pool reconnecting: the tries
// are bounded, the live server's handles stay usable, and a fault that
// leaves no stale socket starts no reconnection.
func TestPoolRespreadDeadServer(t *testing.T) {
	a, b := newServer(t), newServer(t)
	const size = 4
	p := newTestPool(t, []string{a.Addr, b.Addr}, size, WithBehaviors(map[string]any{"retry_timeout": 1}))
	var onA, onB string
	for i := 0; onA == "" || onB == ""; i++ {
		k := fmt.Sprint("respread-dead:", i)
		srv, err := p.ServerFor(k)
		require.NoError(t, err)
		if srv == a.Addr && onA == "" {
			onA = k
		} else if srv == b.Addr && onB == "" {
			onB = k
		}
	}
	require.NoError(t, p.Set(&Item{Key: onA, Value: []byte("a")}))
	require.NoError(t, p.Set(&Item{Key: onB, Value: []byte("b")}))
	waitSettled(t, p)
	watch, err := New([]string{a.Addr})
	require.NoError(t, err)
	defer watch.Close()
	before := ctStat(t, watch, "total_connections")

	b.Stop()
	start := time.Now()
	var slowest time.Duration
	for time.Since(start) < 2*time.Second {
		t0 := time.Now()
		it, err := p.Get(onA)
		if d := time.Since(t0); d > slowest {
			slowest = d
		}
		require.NoError(t, err, "a key of the live server")
		require.Equal(t, "a", string(it.Value))
		_, err = p.Get(onB)
		require.Error(t, err, "a key of the dead server")
		time.Sleep(2 * time.Millisecond)
	}
	// The first sweep reconnects the stale handles (failing at the first),
	// each try after it one probe: a few dozen connections at most, not
	// one per request.
	made := ctStat(t, watch, "total_connections") - before
	assert.LessOrEqual(t, made, int64(2*size+respreadMaxTries+2), "connections made to the live server in 2 s")
	assert.Less(t, slowest, autoWarmTimeout+100*time.Millisecond, "the slowest Get of a live key")
	t.Logf("connections to the live server: %d; slowest live Get %v; tries %d", made, slowest, p.p.respreadTries.Load())

	// Once the tries are used up (here: forced), in the quiet time, a
	// fault with no stale socket reconnects nothing.
	require.Eventually(t, func() bool { return p.p.warm.Load() != warmRunning }, 5*time.Second, time.Millisecond)
	p.p.respreadTries.Store(0)
	p.p.respreadQuiet.Store(time.Now().Add(respreadQuietFor).UnixNano())
	p.p.warm.Store(warmDone)
	mark := ctStat(t, watch, "total_connections")
	for i := 0; i < 20; i++ {
		_, err := p.Get(onB)
		require.Error(t, err)
		_, err = p.Get(onA)
		require.NoError(t, err)
		time.Sleep(respreadEvery / 10)
	}
	assert.Equal(t, mark+1, ctStat(t, watch, "total_connections"), "no reconnection without a stale socket (the +1: this stats request)")
}

// A restart under traffic: every caller gets its own value, a miss or an
// error; errors stop once the new process is up (and retry_timeout has
// passed); afterwards every handle is connected to the new process.
func TestPoolRespreadUnderTraffic(t *testing.T) {
	s := newServer(t)
	const size = 8
	p := newTestPool(t, []string{s.Addr}, size, WithBehaviors(map[string]any{"retry_timeout": 1}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]int, 8)
	lastErr := make([]time.Time, len(errs))
	for g := 0; g < len(errs); g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("respread-traffic:%d:%d", g, i%10)
				v := fmt.Sprint(g, "/", i)
				if err := p.Set(&Item{Key: k, Value: []byte(v)}); err != nil {
					errs[g]++
					lastErr[g] = time.Now()
					time.Sleep(time.Millisecond)
					continue
				}
				it, err := p.Get(k)
				switch {
				case err == nil:
					if string(it.Value) != v {
						t.Errorf("goroutine %d: %s holds %q, want %q", g, k, it.Value, v)
						return
					}
				case errors.Is(err, ErrCacheMiss):
				default:
					errs[g]++
					lastErr[g] = time.Now()
				}
			}
		}(g)
	}
	time.Sleep(100 * time.Millisecond)
	s.Stop()
	time.Sleep(50 * time.Millisecond)
	s2 := ctStartOnPort(t, s.Port)
	time.Sleep(3 * time.Second)
	close(stop)
	end := time.Now()
	wg.Wait()
	for g, at := range lastErr {
		assert.True(t, at.Before(end.Add(-time.Second)), "goroutine %d: an error %v before the end", g, end.Sub(at))
	}
	settleWithTakes(t, p, "respread-traffic:0:0")
	th := stackThreads(t, p, s2, 0)
	for j, x := range th {
		assert.NotEqual(t, -1, x, "handle %d is connected to the new process: %v", j, th)
	}
	t.Logf("errors per goroutine across the restart: %v; threads %v", errs, th)
}

// Mixed traffic: the Sets (a handle each) reorder libmemcachedutil's stack
// and, with more of them than handles, borrow the coalescer's; its two
// batches still run on the two handles autoWarm connected last, served by
// different server threads, and every caller gets its own value.
func TestPoolSpreadUnderMixedTraffic(t *testing.T) {
	s := newServer(t)
	const size = 6
	p := newTestPool(t, []string{s.Addr}, size)
	require.NoError(t, p.Set(&Item{Key: "mixed:0:0", Value: []byte("0/0")}))
	waitSettled(t, p)
	q := p.p.coal
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4*size; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("mixed:%d:%d", g, i%8)
				v := fmt.Sprint(g, "/", i)
				if g%3 == 0 {
					if err := p.Set(&Item{Key: k, Value: []byte(v)}); err != nil {
						t.Errorf("set %s: %v", k, err)
						return
					}
					continue
				}
				it, err := p.Get(k)
				if err != nil && !errors.Is(err, ErrCacheMiss) {
					t.Errorf("get %s: %v", k, err)
					return
				}
				if err == nil && !strings.HasPrefix(string(it.Value), fmt.Sprint(g, "/")) {
					t.Errorf("get %s: %q belongs to another caller", k, it.Value)
					return
				}
			}
		}(g)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	assert.Positive(t, q.lent.Load(), "takers borrowed the coalescer's handles")
	assert.Greater(t, q.batches.Load(), int64(20), "batches ran (about 80 in the 0.5 s under -asan)")

	threads, err := s.ClientThreads()
	require.NoError(t, err)
	q.mu.Lock()
	kept := append([]*handle(nil), q.kept.idle...)
	owned := len(q.kept.owned)
	q.mu.Unlock()
	require.Equal(t, 2, owned, "the coalescer owns two handles")
	require.Len(t, kept, 2, "both are back with the coalescer")
	a, b := handleThread(t, kept[0], threads, 0), handleThread(t, kept[1], threads, 0)
	assert.NotEqual(t, -1, a)
	assert.NotEqual(t, a, b, "the coalescer's two handles are served by different server threads")
}

// A pool of one with coalescing: Acquire, Sets and coalesced Gets at once
// never wait for the handle the coalescer keeps.
func TestPoolKeptHandleIsLent(t *testing.T) {
	s := newServer(t)
	p := newTestPool(t, []string{s.Addr}, 1)
	require.NoError(t, p.Set(&Item{Key: "lent", Value: []byte("v")}))
	waitSettled(t, p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					switch g % 3 {
					case 0:
						c, err := p.Acquire(context.Background())
						if err != nil {
							t.Error(err)
							return
						}
						_, err = c.Get("lent")
						p.Release(c)
						if err != nil {
							t.Error(err)
							return
						}
					case 1:
						if err := p.Set(&Item{Key: "lent", Value: []byte("v")}); err != nil {
							t.Error(err)
							return
						}
					default:
						if _, err := p.Get("lent"); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}(g)
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("callers of a pool of one still waiting after 20 s")
	}
	c, err := p.Acquire(context.Background())
	require.NoError(t, err, "the one handle can be acquired once all are done")
	p.Release(c)
}
