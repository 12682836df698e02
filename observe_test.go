package libmemcached

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder collects Events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) observe(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// take returns the events so far and forgets them.
func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// One Event per operation, with what the operation was, on a Client, a
// Pool (coalesced or not) and a client acquired from the Pool, in both
// protocols.
func TestObserverEvents(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			servers := trio(t)
			var rec recorder
			opts := append([]Option{WithObserver(rec.observe)}, proto.opts...)
			c, p := clientAndPoolOn(t, servers, 2, opts...)
			pNoCoal, err := NewPool(servers, 2, append(opts, WithCoalescing(false))...)
			require.NoError(t, err)
			t.Cleanup(func() { pNoCoal.Close() })
			acq, err := pNoCoal.Acquire(context.Background())
			require.NoError(t, err)
			t.Cleanup(func() { pNoCoal.Release(acq) })
			clone, err := c.Clone()
			require.NoError(t, err)
			t.Cleanup(func() { clone.Close() })

			for name, st := range map[string]contextStore{"client": c, "pool": p, "pool without coalescing": pNoCoal, "acquired": acq, "clone": clone} {
				k := ctKey(t, strings.ReplaceAll(name, " ", "_"))
				server, err := st.ServerFor(k)
				require.NoError(t, err)
				rec.take()
				require.NoError(t, st.Set(&Item{Key: k, Value: []byte("1")}))
				_, err = st.Get(k)
				require.NoError(t, err)
				_, err = st.Get(k + "-miss")
				require.ErrorIs(t, err, ErrCacheMiss)
				_, err = st.GetMulti([]string{k, k + "-miss", k + "-miss2"})
				require.NoError(t, err)
				_, err = st.IncrementContext(context.Background(), k, 1)
				require.NoError(t, err)
				require.NoError(t, st.Ping())
				st.Servers()
				st.ServerFor(k)
				canceled, cancel := context.WithCancel(context.Background())
				cancel()
				_, err = st.GetContext(canceled, k)
				require.ErrorIs(t, err, context.Canceled)

				evs := rec.take()
				ops := make([]string, len(evs))
				for i, ev := range evs {
					ops[i] = ev.Op
					assert.Greater(t, ev.Duration, time.Duration(0), "%s %s", name, ev.Op)
					assert.LessOrEqual(t, ev.Wait, ev.Duration, "%s %s", name, ev.Op)
					assert.Equal(t, 1, ev.Batch, "%s %s: one caller", name, ev.Op)
				}
				require.Equal(t, []string{"Set", "Get", "Get", "GetMulti", "Increment", "Ping", "Get"}, ops,
					"%s: one Event per operation that reaches a server, none for Servers and ServerFor", name)
				set, hit, miss, multi, incr, ping, done := evs[0], evs[1], evs[2], evs[3], evs[4], evs[5], evs[6]
				assert.Equal(t, Event{Op: "Set", Keys: 1, Server: server, Batch: 1}, zeroTimes(set), name)
				assert.Equal(t, Event{Op: "Get", Keys: 1, Hits: 1, Server: server, Batch: 1}, zeroTimes(hit), name)
				assert.Equal(t, 1, miss.Keys, name)
				assert.Equal(t, 0, miss.Hits, name)
				assert.ErrorIs(t, miss.Err, ErrCacheMiss, name)
				missServer, _ := st.ServerFor(k + "-miss")
				assert.Equal(t, missServer, miss.Server, name)
				assert.Equal(t, Event{Op: "GetMulti", Keys: 3, Hits: 1, Batch: 1}, zeroTimes(multi), name)
				assert.Equal(t, Event{Op: "Increment", Keys: 1, Server: server, Batch: 1}, zeroTimes(incr), name)
				assert.Equal(t, Event{Op: "Ping", Batch: 1}, zeroTimes(ping), name)
				assert.ErrorIs(t, done.Err, context.Canceled, name)
			}
		})
	}
}

// zeroTimes clears an Event's durations and context, for comparing the
// rest.
func zeroTimes(ev Event) Event {
	ev.Duration, ev.Wait, ev.Context = 0, 0, nil
	return ev
}

type ctxKey struct{}

// An Event carries the caller's context, on every path: a Client, a
// coalesced and an uncoalesced Pool, a done context.
func TestObserverContext(t *testing.T) {
	var rec recorder
	s := sharedServer(t)
	c, p := clientAndPool(t, s.Addr, 2, WithObserver(rec.observe))
	pNoCoal, err := NewPool([]string{s.Addr}, 2, WithObserver(rec.observe), WithCoalescing(false))
	require.NoError(t, err)
	t.Cleanup(func() { pNoCoal.Close() })
	ctx := context.WithValue(context.Background(), ctxKey{}, "caller")
	done, cancel := context.WithCancel(ctx)
	cancel()
	for name, st := range map[string]contextStore{"client": c, "pool": p, "pool without coalescing": pNoCoal} {
		rec.take()
		st.GetContext(ctx, ctKey(t, "k"))
		st.SetContext(ctx, &Item{Key: ctKey(t, "k"), Value: []byte("v")})
		st.GetMultiContext(ctx, []string{ctKey(t, "k")})
		st.GetContext(done, ctKey(t, "k"))
		st.Get(ctKey(t, "k"))
		evs := rec.take()
		require.Len(t, evs, 5, name)
		for _, ev := range evs[:4] {
			require.NotNil(t, ev.Context, "%s %s", name, ev.Op)
			assert.Equal(t, "caller", ev.Context.Value(ctxKey{}), "%s %s", name, ev.Op)
		}
		assert.Equal(t, context.Background(), evs[4].Context, "%s: the plain form's context", name)
	}
}

// Gets that share a coalesced round trip say so: Batch counts the callers,
// Wait the time before the batch got its handle.
func TestObserverCoalescedBatch(t *testing.T) {
	s, pause := pausable(t)
	var rec recorder
	p, err := NewPool([]string{s.Addr}, 1, WithObserver(rec.observe))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = ctKey(t, strconv.Itoa(i))
		require.NoError(t, p.Set(&Item{Key: keys[i], Value: []byte("v")}))
	}
	rec.take()
	resume := pause()
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func(k string) {
			defer wg.Done()
			_, err := p.Get(k)
			assert.NoError(t, err)
		}(k)
	}
	time.Sleep(200 * time.Millisecond)
	resume()
	wg.Wait()
	evs := rec.take()
	require.Len(t, evs, len(keys), "one Event per caller")
	batched, waited := 0, 0
	for _, ev := range evs {
		assert.Equal(t, "Get", ev.Op)
		assert.Equal(t, 1, ev.Hits)
		assert.Equal(t, s.Addr, ev.Server)
		if ev.Batch > 1 {
			batched++
		}
		if ev.Wait >= 100*time.Millisecond {
			waited++
		}
	}
	t.Logf("FIGURE %d Gets on a paused server: %d in batches of more than one, %d waited >= 100 ms for their batch", len(keys), batched, waited)
	// The first caller runs alone; a second may open a second batch
	// alone while batches are small (see coalescer).
	assert.GreaterOrEqual(t, batched, len(keys)-2, "all but the first callers shared a batch")
	assert.GreaterOrEqual(t, waited, len(keys)-1, "and waited for it while the first one hung")
}

// Without an observer nothing is measured, so the hot paths allocate no
// more than before (TestAllocationTargets); with one, an Event costs no
// allocation either for a Set.
func TestObserverAllocations(t *testing.T) {
	var n int
	c := newTestClient(t, WithObserver(func(ev Event) { n++ }))
	item := &Item{Key: ctKey(t, "k"), Value: []byte("v")}
	allocs := testing.AllocsPerRun(200, func() {
		if err := c.Set(item); err != nil {
			t.Fatal(err)
		}
	})
	assert.LessOrEqual(t, allocs, float64(allocTargetSet+1), "a Set with an observer (the Event's server name is one string)")
	assert.Equal(t, 201, n)
}

// IncrementWithInitial from many goroutines on a fresh key creates it once
// and counts every call, in both protocols (ASCII: incr, add, incr).
func TestIncrementWithInitialRace(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			p := newSharedPool(t, 8, append(proto.opts, WithCoalescing(false))...)
			for round := 0; round < 20; round++ {
				k := ctKey(t, strconv.Itoa(round))
				p.Delete(k) // a fresh key, also under -count
				const n = 16
				var wg sync.WaitGroup
				got := make([]uint64, n)
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						v, err := p.IncrementWithInitial(k, 1, 1000, 0)
						assert.NoError(t, err)
						got[i] = v
					}(i)
				}
				wg.Wait()
				seen := map[uint64]bool{}
				for _, v := range got {
					assert.False(t, seen[v], "round %d: %d returned twice: %v", round, v, got)
					seen[v] = true
				}
				for v := uint64(1000); v < 1000+n; v++ {
					assert.True(t, seen[v], "round %d: %d missing: %v", round, v, got)
				}
			}
		})
	}
}
