package libmemcached

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverSetter is what Client and Pool offer to change their servers.
type serverSetter interface {
	Store
	SetServers(servers []string) error
	Behaviors() map[string]any
}

var (
	_ serverSetter = (*Client)(nil)
	_ serverSetter = (*Pool)(nil)
)

// SetServers moves every later operation to the new list and keeps the
// behaviors, the namespace and the protocol; bad lists are refused and
// change nothing.
func TestSetServers(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			servers := trio(t)
			a, b, c3 := servers[0], servers[1], servers[2]
			opts := append([]Option{WithNamespace("ns:"), WithBehaviors(map[string]any{"ketama": true, "_poll_timeout": 1234})}, proto.opts...)
			c, p := clientAndPoolOn(t, []string{a, b}, 2, opts...)
			direct := map[string]*Client{}
			for _, s := range servers {
				direct[s] = newClientOf(t, []string{s}, append(proto.opts, WithNamespace("ns:"))...)
			}
			for name, st := range map[string]serverSetter{"client": c, "pool": p} {
				before := st.Behaviors()
				require.Equal(t, []string{a, b}, st.Servers())
				for _, bad := range [][]string{nil, {}, {"host:notaport"}, {b, "udp:" + c3}, {"udp:" + b}} {
					err := st.SetServers(bad)
					assert.Error(t, err, "%s: %q", name, bad)
					assert.Equal(t, []string{a, b}, st.Servers(), "%s: a refused list changes nothing", name)
				}
				require.NoError(t, st.SetServers([]string{b, c3}))
				assert.Equal(t, []string{b, c3}, st.Servers(), name)
				assert.Equal(t, before, st.Behaviors(), "%s: behaviors are kept", name)
				onB, onC := 0, 0
				for i := 0; i < 40; i++ {
					k := ctKey(t, name+strconv.Itoa(i))
					require.NoError(t, st.Set(&Item{Key: k, Value: []byte(k)}))
					it, err := st.Get(k)
					require.NoError(t, err)
					assert.Equal(t, k, string(it.Value))
					_, err = direct[a].Get(k)
					assert.ErrorIs(t, err, ErrCacheMiss, "%s: nothing goes to the dropped server", name)
					if _, err := direct[b].Get(k); err == nil {
						onB++
					}
					if _, err := direct[c3].Get(k); err == nil {
						onC++
					}
				}
				assert.Equal(t, 40, onB+onC, "%s: every key is on the new servers, under the namespace", name)
				assert.Greater(t, onC, 0, "%s: the new server gets keys", name)
				require.NoError(t, st.SetServers([]string{a, b}), name)
			}
			acq, err := p.Acquire(context.Background())
			require.NoError(t, err)
			assert.ErrorIs(t, acq.SetServers([]string{a}), ErrInvalidArguments, "an acquired client's servers are the pool's")
			p.Release(acq)
		})
	}
}

// 64 goroutines on a Pool while its servers change from 2 to 3 (and back,
// and again) see no error, and every Get gets its own value or, right
// across a change that moved its key, a miss; afterwards the retired
// handles are freed (the counting allocator's blocks all come back at
// Close).
func TestPoolSetServersUnderLoad(t *testing.T) {
	servers := trio(t)
	for _, coalescing := range []bool{true, false} {
		t.Run("coalescing="+strconv.FormatBool(coalescing), func(t *testing.T) {
			start := liveCBlocks()
			p, err := NewPool(servers[:2], 8, withCountingAllocator(), WithCoalescing(coalescing),
				WithBehaviors(map[string]any{"ketama": true}))
			require.NoError(t, err)
			var stop atomic.Bool
			var errs, wrong, misses, ops atomic.Int64
			var firstErr atomic.Value
			var wg sync.WaitGroup
			for g := 0; g < 64; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						k := "setservers:" + strconv.Itoa(g) + ":" + strconv.Itoa(i) // never reused: no stale value to read
						v := []byte(strconv.Itoa(g*1000000 + i))
						err := p.Set(&Item{Key: k, Value: v})
						var it *Item
						if err == nil {
							it, err = p.Get(k)
						}
						ops.Add(1)
						switch {
						case errors.Is(err, ErrCacheMiss):
							misses.Add(1)
						case err != nil:
							errs.Add(1)
							firstErr.CompareAndSwap(nil, err)
						case string(it.Value) != string(v):
							wrong.Add(1)
						}
					}
				}(g)
			}
			lists := [][]string{servers, servers[:2], servers, {servers[1], servers[2]}, servers}
			for _, list := range lists {
				time.Sleep(150 * time.Millisecond)
				require.NoError(t, p.SetServers(list))
				assert.Equal(t, list, p.Servers())
			}
			time.Sleep(150 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			t.Logf("FIGURE 64 goroutines, %d Set+Get pairs across %d server-list changes: %d errors, %d misses, %d wrong values",
				ops.Load(), len(lists), errs.Load(), misses.Load(), wrong.Load())
			assert.Zero(t, errs.Load(), "no operation failed because of the changes (first: %v)", firstErr.Load())
			assert.Zero(t, wrong.Load(), "no Get read another write's value")
			assert.LessOrEqual(t, misses.Load(), int64(64*len(lists)), "at most one miss per goroutine and change")
			assert.Greater(t, ops.Load(), int64(1000))
			require.NoError(t, p.Close())
			assert.Equal(t, start, liveCBlocks(), "every retired handle pool was freed")
		})
	}
}
