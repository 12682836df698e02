package libmemcached

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// contextStore is what both Client and Pool offer with contexts.
type contextStore interface {
	Store
	GetContext(ctx context.Context, key string) (*Item, error)
	GetMultiContext(ctx context.Context, keys []string) (map[string]*Item, error)
	SetContext(ctx context.Context, item *Item) error
	AddContext(ctx context.Context, item *Item) error
	ReplaceContext(ctx context.Context, item *Item) error
	AppendContext(ctx context.Context, item *Item) error
	PrependContext(ctx context.Context, item *Item) error
	CompareAndSwapContext(ctx context.Context, item *Item) error
	DeleteContext(ctx context.Context, key string) error
	IncrementContext(ctx context.Context, key string, delta uint64) (uint64, error)
	DecrementContext(ctx context.Context, key string, delta uint64) (uint64, error)
	TouchContext(ctx context.Context, key string, seconds int32) error
	SetMultiContext(ctx context.Context, items []*Item) ([]string, error)
	DeleteMultiContext(ctx context.Context, keys []string) error
}

var (
	_ contextStore = (*Client)(nil)
	_ contextStore = (*Pool)(nil)
)

// contextCalls runs every context form on s with ctx, by name.
func contextCalls(s contextStore, ctx context.Context, key string) map[string]error {
	it := &Item{Key: key, Value: []byte("1"), CasID: 1}
	out := map[string]error{}
	var err error
	_, out["Get"] = s.GetContext(ctx, key)
	_, out["GetMulti"] = s.GetMultiContext(ctx, []string{key, key + "2"})
	out["Set"] = s.SetContext(ctx, it)
	out["Add"] = s.AddContext(ctx, it)
	out["Replace"] = s.ReplaceContext(ctx, it)
	out["Append"] = s.AppendContext(ctx, it)
	out["Prepend"] = s.PrependContext(ctx, it)
	out["CompareAndSwap"] = s.CompareAndSwapContext(ctx, it)
	out["Delete"] = s.DeleteContext(ctx, key)
	_, out["Increment"] = s.IncrementContext(ctx, key, 1)
	_, out["Decrement"] = s.DecrementContext(ctx, key, 1)
	out["Touch"] = s.TouchContext(ctx, key, 10)
	_, err = s.SetMultiContext(ctx, []*Item{it})
	out["SetMulti"] = err
	out["DeleteMulti"] = s.DeleteMultiContext(ctx, []string{key})
	return out
}

// serverCommands is the number of commands the server has seen.
func serverCommands(t *testing.T, addr string) int {
	t.Helper()
	c := newClientOf(t, []string{addr})
	st, err := c.Stats()
	require.NoError(t, err)
	total := 0
	for _, m := range st {
		for _, k := range []string{"cmd_get", "cmd_set", "cmd_touch", "delete_misses", "delete_hits",
			"incr_misses", "incr_hits", "decr_misses", "decr_hits", "cas_misses", "cas_hits", "cas_badval"} {
			n, err := strconv.Atoi(m[k])
			require.NoError(t, err, k)
			total += n
		}
	}
	return total
}

// A context already done returns its error and touches no server, on
// every context form of Client and Pool.
func TestContextDoneTouchesNothing(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			s := newServer(t)
			c, p := clientAndPool(t, s.Addr, 2, proto.opts...)
			before := serverCommands(t, s.Addr)
			canceled, cancel := context.WithCancel(context.Background())
			cancel()
			expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel2()
			for name, st := range map[string]contextStore{"client": c, "pool": p} {
				for op, err := range contextCalls(st, canceled, ctKey(t, "k")) {
					assert.ErrorIs(t, err, context.Canceled, "%s %s", name, op)
					assert.Equal(t, context.Canceled, err, "%s %s: the context's own error", name, op)
				}
				for op, err := range contextCalls(st, expired, ctKey(t, "k")) {
					assert.ErrorIs(t, err, context.DeadlineExceeded, "%s %s", name, op)
				}
			}
			assert.Equal(t, before, serverCommands(t, s.Addr), "no command reached the server")
		})
	}
}

// The context forms do what the plain ones do.
func TestContextFormsWork(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			s := sharedServer(t)
			c, p := clientAndPool(t, s.Addr, 2, proto.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for name, st := range map[string]contextStore{"client": c, "pool": p} {
				k := ctKey(t, name)
				require.NoError(t, st.SetContext(ctx, &Item{Key: k, Value: []byte("10")}))
				require.ErrorIs(t, st.AddContext(ctx, &Item{Key: k, Value: []byte("x")}), ErrNotStored)
				require.NoError(t, st.ReplaceContext(ctx, &Item{Key: k, Value: []byte("1")}))
				require.NoError(t, st.AppendContext(ctx, &Item{Key: k, Value: []byte("2")}))
				require.NoError(t, st.PrependContext(ctx, &Item{Key: k, Value: []byte("3")}))
				it, err := st.GetContext(ctx, k)
				require.NoError(t, err)
				assert.Equal(t, "312", string(it.Value))
				it.Value = []byte("40")
				require.NoError(t, st.CompareAndSwapContext(ctx, it))
				v, err := st.IncrementContext(ctx, k, 2)
				require.NoError(t, err)
				assert.Equal(t, uint64(42), v)
				v, err = st.DecrementContext(ctx, k, 1<<33)
				require.NoError(t, err)
				assert.Equal(t, uint64(0), v)
				require.NoError(t, st.TouchContext(ctx, k, 100))
				failed, err := st.SetMultiContext(ctx, []*Item{{Key: k + "a", Value: []byte("a")}, {Key: k + "b", Value: []byte("b")}})
				require.NoError(t, err)
				assert.Empty(t, failed)
				items, err := st.GetMultiContext(ctx, []string{k + "a", k + "b", k + "none"})
				require.NoError(t, err)
				assert.Len(t, items, 2)
				require.NoError(t, st.DeleteMultiContext(ctx, []string{k + "a", k + "b"}))
				require.NoError(t, st.DeleteContext(ctx, k))
				_, err = st.GetContext(ctx, k)
				assert.ErrorIs(t, err, ErrCacheMiss)
			}
		})
	}
}

// On a hung server with a 5 s poll timeout, a call with a 100 ms deadline
// returns in about 100 ms with an error for which both errors.Is(err,
// context.DeadlineExceeded) and Timeout() hold; the handle's own timeout
// is back afterwards, and the next call works once the server does.
func TestContextDeadlineOnHungServer(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			s, pause := pausable(t)
			opts := append([]Option{WithBehavior(BehaviorPollTimeout, 5000)}, proto.opts...)
			c, p := clientAndPool(t, s.Addr, 2, opts...)
			pNoCoal, err := NewPool([]string{s.Addr}, 2, append(opts, WithCoalescing(false))...)
			require.NoError(t, err)
			t.Cleanup(func() { pNoCoal.Close() })
			k := ctKey(t, "k")
			for _, st := range []contextStore{c, p, pNoCoal} {
				require.NoError(t, st.Set(&Item{Key: k, Value: []byte("v")}))
			}
			resume := pause()
			for name, st := range map[string]contextStore{"client": c, "pool": p, "pool without coalescing": pNoCoal} {
				for op, call := range map[string]func(ctx context.Context) error{
					"Get": func(ctx context.Context) error { _, err := st.GetContext(ctx, k); return err },
					"Set": func(ctx context.Context) error { return st.SetContext(ctx, &Item{Key: k, Value: []byte("w")}) },
					"GetMulti": func(ctx context.Context) error {
						_, err := st.GetMultiContext(ctx, []string{k, k + "x"})
						return err
					},
				} {
					ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
					start := time.Now()
					err := call(ctx)
					took := time.Since(start)
					cancel()
					t.Logf("FIGURE %s %s %s on a hung server with a 100 ms deadline: returned in %v: %v", proto.name, name, op, took.Round(time.Millisecond), err)
					assert.Less(t, took, 300*time.Millisecond, "%s %s", name, op)
					assert.ErrorIs(t, err, context.DeadlineExceeded, "%s %s", name, op)
					assert.False(t, errors.Is(err, ErrCacheMiss), "%s %s: a hung server is never a miss", name, op)
				}
			}
			resume()
			for name, st := range map[string]contextStore{"client": c, "pool": p, "pool without coalescing": pNoCoal} {
				it, err := st.Get(k)
				require.NoError(t, err, name)
				assert.Contains(t, []string{"v", "w"}, string(it.Value), name)
			}
			ms, err := c.Behavior(BehaviorPollTimeout)
			require.NoError(t, err)
			assert.Equal(t, uint64(5000), ms, "the client's poll timeout is restored")
			cl, err := p.Acquire(context.Background())
			require.NoError(t, err)
			ms, err = cl.Behavior(BehaviorPollTimeout)
			p.Release(cl)
			require.NoError(t, err)
			assert.Equal(t, uint64(5000), ms, "the pool's handles' poll timeout is restored")
		})
	}
}

// A deadline bounds the wait for a busy Client and for a Pool handle: the
// caller leaves when its context ends, with the context's error.
func TestContextBoundsTheWait(t *testing.T) {
	s, pause := pausable(t)
	c, p := clientAndPool(t, s.Addr, 1, WithBehavior(BehaviorPollTimeout, 3000), WithCoalescing(false))
	k := ctKey(t, "k")
	require.NoError(t, c.Set(&Item{Key: k, Value: []byte("v")}))
	held, err := p.Acquire(context.Background())
	require.NoError(t, err)
	resume := pause()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // holds the Client's handle for up to 3 s
		defer wg.Done()
		c.Get(k)
	}()
	time.Sleep(50 * time.Millisecond)
	for name, st := range map[string]contextStore{"busy client": c, "pool with no free handle": p} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := st.GetContext(ctx, k)
		took := time.Since(start)
		cancel()
		assert.Equal(t, context.DeadlineExceeded, err, name)
		assert.Less(t, took, 300*time.Millisecond, name)

		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start = time.Now()
		err = st.SetContext(ctx, &Item{Key: k, Value: []byte("w")})
		assert.Equal(t, context.Canceled, err, name)
		assert.Less(t, time.Since(start), 300*time.Millisecond, name)
	}
	resume()
	p.Release(held)
	wg.Wait()
	it, err := p.Get(k)
	require.NoError(t, err)
	assert.Equal(t, "v", string(it.Value), "the abandoned Set never ran")
}

// A caller whose context ends while it waits for a coalesced batch leaves
// at once; the batch goes on for the others, who get their own items.
func TestContextLeavesCoalescedBatch(t *testing.T) {
	s, pause := pausable(t)
	p, err := NewPool([]string{s.Addr}, 1, WithBehavior(BehaviorPollTimeout, 3000))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	keys := make([]string, 8)
	for i := range keys {
		keys[i] = ctKey(t, strconv.Itoa(i))
		require.NoError(t, p.Set(&Item{Key: keys[i], Value: []byte(keys[i])}))
	}
	resume := pause()
	var wg sync.WaitGroup
	results := make([]error, len(keys))
	for i, k := range keys { // plain Gets: one leads a batch that hangs, the rest queue
		wg.Add(1)
		go func(i int, k string) {
			defer wg.Done()
			it, err := p.Get(k)
			if err == nil && string(it.Value) != k {
				err = errors.New("got " + string(it.Value) + " for " + k)
			}
			results[i] = err
		}(i, k)
	}
	time.Sleep(100 * time.Millisecond)
	var leavers sync.WaitGroup
	for i, k := range keys { // context callers queue behind them and leave
		leavers.Add(1)
		go func(i int, k string) {
			defer leavers.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(50+10*i)*time.Millisecond)
			defer cancel()
			start := time.Now()
			var err error
			if i%2 == 0 {
				_, err = p.GetContext(ctx, k)
			} else {
				_, err = p.GetMultiContext(ctx, []string{k, keys[0]})
			}
			assert.Equal(t, context.DeadlineExceeded, err, "caller %d", i)
			assert.Less(t, time.Since(start), 300*time.Millisecond, "caller %d left at once", i)
		}(i, k)
	}
	leavers.Wait()
	time.Sleep(200 * time.Millisecond)
	resume()
	wg.Wait()
	for i, err := range results {
		assert.NoError(t, err, "plain Get %d got its own item after the leavers left", i)
	}
	// The pool still works, for context callers too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	items, err := p.GetMultiContext(ctx, keys)
	require.NoError(t, err)
	assert.Len(t, items, len(keys))
}

// Many context callers with short deadlines, some ending mid-batch, on a
// busy pool: every caller gets its own item or its context's error, and
// nothing hangs.
func TestContextCoalescerStress(t *testing.T) {
	p := newSharedPool(t, 2)
	keys := make([]string, 32)
	for i := range keys {
		keys[i] = ctKey(t, strconv.Itoa(i))
		require.NoError(t, p.Set(&Item{Key: keys[i], Value: []byte(keys[i])}))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	ctWithin(t, 60*time.Second, "context callers on a busy pool", func() {
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					k := keys[(g+i)%len(keys)]
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*100*time.Microsecond)
					var err error
					var it *Item
					if i%3 == 0 {
						it, err = p.Get(k)
					} else {
						it, err = p.GetContext(ctx, k)
					}
					cancel()
					outcome := "hit"
					switch {
					case err == nil && string(it.Value) != k:
						outcome = "WRONG VALUE"
					case errors.Is(err, context.DeadlineExceeded):
						outcome = "deadline"
					case err != nil:
						outcome = "error: " + err.Error()
					}
					mu.Lock()
					outcomes[outcome]++
					mu.Unlock()
				}
			}(g)
		}
		wg.Wait()
	})
	t.Logf("FIGURE outcomes of 6400 gets with deadlines of 0-400 us on a pool of 2: %v", outcomes)
	for o := range outcomes {
		assert.Contains(t, []string{"hit", "deadline"}, o)
	}
	assert.Greater(t, outcomes["hit"], 2000)
}
