package libmemcached

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestPool(t testing.TB, servers []string, size int, opts ...Option) *Pool {
	t.Helper()
	p, err := NewPool(servers, size, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// Many goroutines at once: every caller gets exactly its own item, miss or
// value, and the Gets really were folded into fewer multi-gets.
//
// The goroutines start while the server is paused, so the first batches
// wait in C long enough for the runtime to run the others (a cgo call
// gives up its P only when it blocks): without that, on an idle machine
// whose round trips are short, two goroutines could take turns alone and
// no Get would ever find company.
func TestCoalescedGetsEachGetTheirOwn(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			s := newServer(t)
			p := newTestPool(t, []string{s.Addr}, 16, pr.opts...)
			prefix := "coal-" + pr.name + "-"
			const keys = 100
			for i := 0; i < keys; i++ {
				require.NoError(t, p.Set(&Item{Key: fmt.Sprint(prefix, i), Value: []byte(fmt.Sprint("value-", i)), Flags: uint32(i)}))
			}
			require.NoError(t, s.Signal(syscall.SIGSTOP))
			time.Sleep(50 * time.Millisecond) // SIGSTOP is asynchronous
			resumed := false
			defer func() {
				if !resumed {
					s.Signal(syscall.SIGCONT)
				}
			}()
			const goroutines, rounds = 128, 40
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for r := 0; r < rounds; r++ {
						i := (g*7 + r) % (keys + 10) // some keys are never set
						key := fmt.Sprint(prefix, i)
						it, err := p.Get(key)
						if i >= keys {
							if !errors.Is(err, ErrCacheMiss) {
								errs <- fmt.Errorf("get %s: want a miss, got %v, %v", key, it, err)
								return
							}
							continue
						}
						if err != nil {
							errs <- fmt.Errorf("get %s: %v", key, err)
							return
						}
						if it.Key != key || string(it.Value) != fmt.Sprint("value-", i) || it.Flags != uint32(i) || it.CasID == 0 {
							errs <- fmt.Errorf("get %s: got someone else's item %+v", key, it)
							return
						}
						it.Value[0] = 'X' // our copy only
					}
				}(g)
			}
			time.Sleep(100 * time.Millisecond) // every goroutine has queued
			require.NoError(t, s.Signal(syscall.SIGCONT))
			resumed = true
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			batches, calls := p.p.coal.batches.Load(), p.p.coal.calls.Load()
			t.Logf("FIGURE coalesced_gets_per_batch=%.1f (%d calls in %d batches)", float64(calls)/float64(batches), calls, batches)
			assert.Greater(t, calls, batches, "concurrent Gets must share multi-gets")
		})
	}
}

// A caller alone gets its item from a batch of one, on its own goroutine.
func TestCoalescerLoneGet(t *testing.T) {
	s := sharedServer(t)
	p := newTestPool(t, []string{s.Addr}, 4)
	require.NoError(t, p.Set(&Item{Key: "coal-lone", Value: []byte("v")}))
	for i := 0; i < 10; i++ {
		it, err := p.Get("coal-lone")
		require.NoError(t, err)
		assert.Equal(t, "v", string(it.Value))
	}
	assert.Equal(t, int64(10), p.p.coal.batches.Load())
	assert.Equal(t, int64(10), p.p.coal.calls.Load())
	_, err := p.Get("coal-lone-missing")
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.True(t, errors.Is(err, ErrCacheMiss))
	assert.Equal(t, s.Addr, e.Server)
	_, err = p.Get("bad key")
	assert.True(t, errors.Is(err, ErrBadKeyProvided))
}

// Gets and GetMultis of the same keys in one batch get separate items.
func TestCoalescedGetMultiAndGetShareNothing(t *testing.T) {
	s := sharedServer(t)
	p := newTestPool(t, []string{s.Addr}, 4)
	keys := []string{"coal-m1", "coal-m2", "coal-m3"}
	for _, k := range keys {
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte(k)}))
	}
	var wg sync.WaitGroup
	results := make([]map[string]*Item, 32)
	singles := make([]*Item, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			if g%2 == 0 {
				m, err := p.GetMulti(append([]string{"coal-absent"}, keys...))
				assert.NoError(t, err)
				results[g] = m
			} else {
				it, err := p.Get(keys[g%3])
				assert.NoError(t, err)
				singles[g] = it
			}
		}(g)
	}
	wg.Wait()
	seen := map[*byte]bool{}
	for g := 0; g < 32; g++ {
		if g%2 == 0 {
			require.Len(t, results[g], 3, "the absent key is not in the map")
			for _, k := range keys {
				it := results[g][k]
				require.NotNil(t, it)
				assert.Equal(t, k, string(it.Value))
				assert.False(t, seen[&it.Value[0]], "two callers share one value")
				seen[&it.Value[0]] = true
			}
		} else {
			it := singles[g]
			require.NotNil(t, it)
			assert.Equal(t, keys[g%3], string(it.Value))
			assert.False(t, seen[&it.Value[0]], "two callers share one value")
			seen[&it.Value[0]] = true
		}
	}
	m, err := p.GetMulti(nil)
	require.NoError(t, err)
	assert.NotNil(t, m)
	assert.Empty(t, m)
}

// A batch that fails on one server fails only the keys on that server;
// the others' keys are answered, and their misses stay misses.
func TestCoalescedBatchFailsOnlyItsServer(t *testing.T) {
	live := newServer(t)
	dead := newServer(t)
	p := newTestPool(t, []string{live.Addr, dead.Addr}, 4,
		WithBehaviors(map[string]any{"connect_timeout": 200, "_poll_timeout": 200, "retry_timeout": 1}))
	var onLive, onDead []string
	for i := 0; len(onLive) < 20 || len(onDead) < 20; i++ {
		k := fmt.Sprint("coal-f", i)
		srv, err := p.ServerFor(k)
		require.NoError(t, err)
		if srv == live.Addr {
			onLive = append(onLive, k)
		} else {
			onDead = append(onDead, k)
		}
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte(k)}))
	}
	dead.Stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < 5; r++ {
				if g%2 == 0 {
					k := onLive[(g+r)%len(onLive)]
					it, err := p.Get(k)
					if err != nil || string(it.Value) != k {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("live key %s: %v", k, err))
						mu.Unlock()
					}
				} else {
					k := onDead[(g+r)%len(onDead)]
					_, err := p.Get(k)
					var e *Error
					if !errors.As(err, &e) || errors.Is(err, ErrCacheMiss) || !e.Temporary() {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("dead key %s: want a connection-class error, got %v", k, err))
						mu.Unlock()
					}
				}
			}
		}(g)
	}
	wg.Wait()
	assert.Empty(t, problems)
	m, err := p.GetMulti(append(append([]string{}, onLive[:5]...), onDead[:5]...))
	require.Error(t, err, "keys on the dead server must not read as misses")
	assert.Len(t, m, 5, "the live server's items still come back")
	for _, k := range onLive[:5] {
		assert.Contains(t, m, k)
	}

	// The same holds for a plain Client: libmemcached's mget skips the
	// server it cannot reach and reports success; the binding does not.
	c, err := New([]string{live.Addr, dead.Addr}, WithBehaviors(map[string]any{"connect_timeout": 200, "retry_timeout": 1}))
	require.NoError(t, err)
	defer c.Close()
	m, err = c.GetMulti(append(append([]string{}, onLive[:5]...), onDead[:5]...))
	var e *Error
	require.True(t, errors.As(err, &e), "GetMulti with a dead server: %v", err)
	assert.True(t, e.Temporary(), "%v", err)
	assert.Len(t, m, 5)
}

// The coalescer holds no handle while nothing is in flight.
func TestCoalescerHoldsNoIdleHandle(t *testing.T) {
	s := sharedServer(t)
	p := newTestPool(t, []string{s.Addr}, 4)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 20; r++ {
				p.Get("coal-idle")
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var got []*Client
	for i := 0; i < 4; i++ {
		c, err := p.Acquire(ctx)
		require.NoError(t, err, "client %d of 4 on an idle pool", i+1)
		got = append(got, c)
	}
	for _, c := range got {
		p.Release(c)
	}
}

// WithCoalescing(false) sends each Get on its own handle.
func TestCoalescingOff(t *testing.T) {
	s := sharedServer(t)
	p := newTestPool(t, []string{s.Addr}, 4, WithCoalescing(false))
	assert.Nil(t, p.p.coal)
	require.NoError(t, p.Set(&Item{Key: "coal-off", Value: []byte("v")}))
	it, err := p.Get("coal-off")
	require.NoError(t, err)
	assert.Equal(t, "v", string(it.Value))
	m, err := p.GetMulti([]string{"coal-off", "coal-off-absent"})
	require.NoError(t, err)
	assert.Len(t, m, 1)
}

// Closing the pool while coalesced Gets run gives them ErrClosed or their
// answer, never a hang.
func TestCoalescerClose(t *testing.T) {
	s := sharedServer(t)
	p, err := NewPool([]string{s.Addr}, 4)
	require.NoError(t, err)
	require.NoError(t, p.Set(&Item{Key: "coal-close", Value: []byte("v")}))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				it, err := p.Get("coal-close")
				if err != nil {
					assert.ErrorIs(t, err, ErrClosed)
					return
				}
				assert.Equal(t, "v", string(it.Value))
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, p.Close())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(stop)
		t.Fatal("coalesced Gets hung after Close")
	}
	close(stop)
	_, err = p.Get("coal-close")
	assert.ErrorIs(t, err, ErrClosed)
}

// While one batch is in flight, a lone caller opens the second at once as
// long as batches have been small, and queues for company once they have
// not: the next caller leads both. A paused server (SIGSTOP) holds the
// batches in flight, so the coalescer's state can be read between arrivals.
func TestCoalescerSecondBatch(t *testing.T) {
	s := newServer(t)
	p := newTestPool(t, []string{s.Addr}, 4, WithBehavior(BehaviorPollTimeout, 10000))
	require.NoError(t, p.Warm(context.Background()))
	key := func(i int) string { return fmt.Sprint("second-", i) }
	for i := 0; i < 3; i++ {
		require.NoError(t, p.Set(&Item{Key: key(i), Value: []byte(key(i))}))
	}
	q := p.p.coal
	waitState := func(inflight, pending int, what string) {
		t.Helper()
		var gi, gp int
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			q.mu.Lock()
			gi, gp = q.inflight, len(q.pending)
			q.mu.Unlock()
			if gi == inflight && gp == pending {
				return
			}
		}
		t.Fatalf("%s: %d batches in flight and %d callers queued, want %d and %d", what, gi, gp, inflight, pending)
	}
	results := make(chan error, 3)
	get := func(i int) {
		go func() {
			it, err := p.Get(key(i))
			if err == nil && string(it.Value) != key(i) {
				err = fmt.Errorf("get %s: got %q", key(i), it.Value)
			}
			results <- err
		}()
	}
	collect := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			select {
			case err := <-results:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("a Get did not return after the server resumed")
			}
		}
	}
	pause := func() {
		require.NoError(t, s.Signal(syscall.SIGSTOP))
		time.Sleep(50 * time.Millisecond) // SIGSTOP is asynchronous
	}
	resume := func() { require.NoError(t, s.Signal(syscall.SIGCONT)) }
	defer resume()

	// No batch yet, so none was big: the second caller does not wait.
	pause()
	get(0)
	waitState(1, 0, "first caller")
	get(1)
	waitState(2, 0, "second caller, small batches so far")
	resume()
	collect(2)
	waitState(0, 0, "all answered")

	// Batches of three on average: the second caller waits for a third.
	q.mu.Lock()
	q.avg16 = 3 * 16
	q.mu.Unlock()
	batches := q.batches.Load()
	pause()
	get(0)
	waitState(1, 0, "first caller")
	get(1)
	waitState(1, 1, "second caller, big batches so far")
	get(2)
	waitState(2, 0, "third caller leads the second and itself")
	resume()
	collect(3)
	assert.Equal(t, batches+2, q.batches.Load(), "three Gets in two batches")
}

// A multi-get over several servers survives a flood of signals: memcached's
// multi-server wait gives up on EINTR, so the binding blocks asynchronous
// signals for such a call (lmc_mget). Before that, about one in a thousand
// of these GetMultis returned part of its keys with "Interrupted system
// call" (memctl bench, getmulti-10@3srv; a flood made it one in a few
// hundred).
func TestMultiServerGetMultiSurvivesSignals(t *testing.T) {
	servers := []string{newServer(t).Addr, newServer(t).Addr, newServer(t).Addr}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			c, err := New(servers, pr.opts...)
			require.NoError(t, err)
			defer c.Close()
			p := newTestPool(t, servers, 2, pr.opts...)
			var keys []string
			for i := 0; i < 30; i++ {
				k := fmt.Sprint("eintr:", pr.name, ":", i)
				keys = append(keys, k)
				require.NoError(t, c.Set(&Item{Key: k, Value: []byte(k)}))
			}
			stop := make(chan struct{})
			var flood sync.WaitGroup
			flood.Add(1)
			go func() {
				defer flood.Done()
				for {
					select {
					case <-stop:
						return
					default:
						_ = syscall.Kill(syscall.Getpid(), syscall.SIGURG)
					}
				}
			}()
			failures := 0
			var first error
			for r := 0; r < 3000; r++ {
				for _, get := range []func([]string) (map[string]*Item, error){c.GetMulti, p.GetMulti} {
					m, err := get(keys)
					if err != nil || len(m) != len(keys) {
						failures++
						if first == nil {
							first = fmt.Errorf("%d of %d items, %v", len(m), len(keys), err)
						}
					}
				}
			}
			close(stop)
			flood.Wait()
			assert.Zero(t, failures, "GetMultis over 3 servers under a signal flood that failed (first: %v)", first)
		})
	}
}
