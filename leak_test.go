package libmemcached

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The leak tests route libmemcached's allocations (and the binding's own C
// scratch memory) through the counting allocator of cgo_helpers.c
// (memcached_set_memory_allocators), then check that every block is freed
// by Close. The counter is process-wide, so these tests do not run in
// parallel, and compare with the figure at their start.

// leakOps runs mixed operations on c until at least n item-operations were
// done, asserting their results so that a broken operation cannot pass for
// a leak-free one, and returns the number of calls it made. Single-key
// calls are one item-operation each; GetMulti, SetMulti and DeleteMulti
// count one per key (batches of 25): batching keeps 100k item-operations
// to a few seconds under -race, with tens of thousands of calls rather than
// 100k.
func leakOps(t *testing.T, c *Client, prefix string, n int) (calls int) {
	t.Helper()
	const batch = 25
	batchKeys := make([]string, batch)
	batchItems := make([]*Item, batch)
	for i := range batchKeys {
		batchKeys[i] = fmt.Sprintf("%sb%d", prefix, i)
		batchItems[i] = &Item{Key: batchKeys[i], Value: []byte(strings.Repeat("x", i*7)), Flags: uint32(i)}
	}
	missKeys := []string{prefix + "miss1", prefix + "miss2"}
	tooBig := make([]byte, 2<<20) // over memcached's 1 MB item limit
	ops := 0
	for i := 0; ops < n; i++ {
		k := prefix + strconv.Itoa(i%64)
		v := []byte("value-" + strconv.Itoa(i))
		require.NoError(t, c.Set(&Item{Key: k, Value: v, Flags: uint32(i)}))
		it, err := c.Get(k)
		require.NoError(t, err)
		require.Equal(t, v, it.Value)
		ops += 2
		calls += 2

		switch i % 8 {
		case 0:
			failed, err := c.SetMulti(batchItems)
			require.NoError(t, err)
			require.Empty(t, failed)
			items, err := c.GetMulti(append(batchKeys, missKeys...))
			require.NoError(t, err)
			require.Len(t, items, batch)
			ops += 2*batch + len(missKeys)
			calls += 2
		case 1:
			items, err := c.GetMulti(batchKeys)
			require.NoError(t, err)
			require.Len(t, items, batch)
			ops += batch
			calls++
		case 2:
			ck := prefix + "counter"
			require.NoError(t, c.Set(&Item{Key: ck, Value: []byte("100")}))
			nv, err := c.Increment(ck, 5)
			require.NoError(t, err)
			require.Equal(t, uint64(105), nv)
			nv, err = c.Decrement(ck, 200)
			require.NoError(t, err)
			require.Equal(t, uint64(0), nv)
			_, err = c.Increment(k, 1) // not a number: the server refuses
			require.Error(t, err)
			ops += 4
			calls += 4
		case 3:
			require.NoError(t, c.Append(&Item{Key: k, Value: []byte(">")}))
			require.NoError(t, c.Prepend(&Item{Key: k, Value: []byte("<")}))
			it, err := c.Get(k)
			require.NoError(t, err)
			require.Equal(t, "<"+string(v)+">", string(it.Value))
			it.Value = []byte("swapped")
			require.NoError(t, c.CompareAndSwap(it))
			require.ErrorIs(t, c.CompareAndSwap(it), ErrCASConflict)
			require.ErrorIs(t, c.Add(&Item{Key: k, Value: v}), ErrNotStored)
			require.NoError(t, c.Touch(k, 3600))
			ops += 7
			calls += 8
		case 4:
			require.NoError(t, c.Delete(k))
			require.ErrorIs(t, c.Delete(k), ErrCacheMiss)
			_, err := c.Get(k)
			require.ErrorIs(t, err, ErrCacheMiss)
			_, err = c.Increment(k, 1)
			require.ErrorIs(t, err, ErrCacheMiss)
			require.ErrorIs(t, c.Replace(&Item{Key: k, Value: v}), ErrNotStored)
			ops += 5
			calls += 5
		case 5:
			if i%40 == 5 {
				require.NoError(t, c.DeleteMulti(batchKeys))
				err := c.DeleteMulti(batchKeys[:5])
				require.ErrorIs(t, err, ErrCacheMiss)
				ops += batch + 5
				calls += 2
			}
			// Input errors never reach C; they must not allocate there
			// either.
			require.ErrorIs(t, c.Set(&Item{Key: "", Value: v}), ErrBadKeyProvided)
			_, err := c.Get(strings.Repeat("k", 251))
			require.ErrorIs(t, err, ErrBadKeyProvided)
			ops += 2
			calls += 2
		case 6:
			if i%200 == 6 {
				st, err := c.Stats()
				require.NoError(t, err)
				require.NotEmpty(t, st)
				st, err = c.StatsArg("settings")
				require.NoError(t, err)
				require.NotEmpty(t, st)
				vs, err := c.Version()
				require.NoError(t, err)
				require.Len(t, vs, 1)
				require.NoError(t, c.Ping())
				require.Len(t, c.Servers(), 1)
				_, err = c.ServerFor(k)
				require.NoError(t, err)
				_ = c.Behaviors()
				ops += 7
				calls += 8
			}
		case 7:
			if i%400 == 7 {
				// Over the item size limit: the server refuses it.
				err := c.Set(&Item{Key: k, Value: tooBig})
				require.Error(t, err)
				require.NotErrorIs(t, err, ErrBadKeyProvided)
				ops++
				calls++
			}
		}
	}
	return calls
}

// liveCBlocks is the number of C blocks allocated through the counting allocator
// and not yet freed, over the whole process.
func liveCBlocks() int { return liveCAllocations() }

func TestNoCLeaks(t *testing.T) {
	s := sharedServer(t)
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			start := liveCBlocks()
			opts := append([]Option{withCountingAllocator()}, proto.opts...)
			c, err := New([]string{s.Addr}, opts...)
			require.NoError(t, err)
			created := liveCBlocks()
			assert.Greater(t, created, start, "the counter sees the handle's allocations")

			calls := leakOps(t, c, "leak_"+proto.name+"_", 50_000)
			half := liveCBlocks()
			assert.Greater(t, half, start, "the counter sees libmemcached's allocations while open")
			calls += leakOps(t, c, "leak_"+proto.name+"_", 50_000)
			full := liveCBlocks()
			t.Logf("100k item-operations in %d calls; live C blocks: %d at start, %d open, %d after 50k, %d after 100k",
				calls, start, created, half, full)
			// Steady state: a second 50k operations leave as many live
			// blocks as the first (a per-operation leak would add
			// thousands, even one that Close happens to free).
			assert.InDelta(t, half, full, 4, "live blocks after 50k and 100k operations")

			require.NoError(t, c.Close())
			assert.Equal(t, start, liveCBlocks(), "blocks still allocated after Close")
			require.NoError(t, c.Close())
			assert.Equal(t, start, liveCBlocks())
		})
	}
}

// A pool with the counting allocator, used from several goroutines
// through its own methods, Do and Acquire, frees everything at Close,
// including its handles' clones and the ones re-cloned after a behavior
// change.
func TestNoCLeaksPool(t *testing.T) {
	s := sharedServer(t)
	start := liveCBlocks()
	p, err := NewPool([]string{s.Addr}, 4, withCountingAllocator())
	require.NoError(t, err)
	assert.Greater(t, liveCBlocks(), start)

	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			prefix := fmt.Sprintf("leak_pool_%d_", w)
			for i := 0; i < 150; i++ {
				k := prefix + strconv.Itoa(i%8)
				v := []byte(k + "=" + strconv.Itoa(i))
				if !assert.NoError(t, p.Set(&Item{Key: k, Value: v})) {
					return
				}
				it, err := p.Get(k)
				if assert.NoError(t, err) {
					assert.Equal(t, v, it.Value)
				}
				_, err = p.Get(prefix + "miss")
				assert.ErrorIs(t, err, ErrCacheMiss)
				items, err := p.GetMulti([]string{k, prefix + "miss"})
				if assert.NoError(t, err) && assert.Len(t, items, 1) {
					assert.Equal(t, v, items[k].Value)
				}
				err = p.Do(context.Background(), func(c *Client) error {
					if _, err := c.SetMulti([]*Item{{Key: k, Value: v}}); err != nil {
						return err
					}
					_, err := c.Increment(k, 1)
					if err == nil {
						return fmt.Errorf("increment of a non-number worked")
					}
					return c.Delete(k)
				})
				assert.NoError(t, err)
				if i%50 == 0 {
					c, err := p.Acquire(context.Background())
					if assert.NoError(t, err) {
						_, err = c.Stats()
						assert.NoError(t, err)
						p.Release(c)
					}
					// Handles out now are re-cloned when released.
					assert.NoError(t, p.SetBehavior(BehaviorPollTimeout, uint64(3000+i)))
				}
			}
		}(w)
	}
	wg.Wait()
	assert.Greater(t, liveCBlocks(), start)
	require.NoError(t, p.Close())
	assert.Equal(t, start, liveCBlocks(), "blocks still allocated after Pool.Close")

	// Clients out at Close: freed when the last one is released.
	p, err = NewPool([]string{s.Addr}, 2, withCountingAllocator())
	require.NoError(t, err)
	c1 := poolAcquireN(t, p, 2)
	require.NoError(t, c1[0].Set(&Item{Key: "leak_pool_out", Value: []byte("x")}))
	require.NoError(t, p.Close())
	p.Release(c1[0])
	assert.Greater(t, liveCBlocks(), start, "a client is still out")
	_, err = c1[1].Get("leak_pool_out")
	require.NoError(t, err)
	p.Release(c1[1])
	assert.Equal(t, start, liveCBlocks(), "blocks still allocated after the last release")
}

// NewFromConfig and Clone with the counting allocator free everything too;
// so do constructors that fail after allocating.
func TestNoCLeaksConfigAndClone(t *testing.T) {
	s := sharedServer(t)
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			start := liveCBlocks()
			// libmemcached's parser wants a namespace with ':' quoted.
			cfg := "--SERVER=" + s.Addr + ` --NAMESPACE="leakcfg:" --TCP-NODELAY`
			if proto.name == "binary" {
				cfg += " --BINARY-PROTOCOL"
			}
			c, err := NewFromConfig(cfg, withCountingAllocator())
			require.NoError(t, err)
			leakOps(t, c, "leak_cfg_"+proto.name+"_", 3_000)
			assert.Greater(t, liveCBlocks(), start)

			cl, err := c.Clone()
			require.NoError(t, err)
			leakOps(t, cl, "leak_clone_"+proto.name+"_", 3_000)
			// The clone kept the namespace: the item is there under it.
			it, err := c.Get("leak_clone_" + proto.name + "_0")
			require.NoError(t, err)
			require.NotEmpty(t, it.Value)
			require.NoError(t, c.Close())
			assert.Greater(t, liveCBlocks(), start, "the clone still holds its own blocks")
			leakOps(t, cl, "leak_clone2_"+proto.name+"_", 500)
			require.NoError(t, cl.Close())
			assert.Equal(t, start, liveCBlocks(), "blocks still allocated after closing config client and clone")
		})
	}

	start := liveCBlocks()
	for _, opts := range [][]Option{
		{WithBehaviors(map[string]any{"no_such_behavior": 1})},
		{WithBehaviors(map[string]any{"tcp_nodelay": true, "hash": "hsieh"})},
		{WithNamespace(strings.Repeat("n", 300))},
		{WithBinaryProtocol(), WithBehaviors(map[string]any{"verify_keys": true})},
	} {
		c, err := New([]string{s.Addr, "127.0.0.1:1"}, append(opts, withCountingAllocator())...)
		require.Error(t, err)
		require.Nil(t, c)
		assert.Equal(t, start, liveCBlocks(), "a failed New leaked")
		p, err := NewPool([]string{s.Addr}, 2, append(opts, withCountingAllocator())...)
		require.Error(t, err)
		require.Nil(t, p)
		assert.Equal(t, start, liveCBlocks(), "a failed NewPool leaked")
	}
	_, err := NewFromConfig("--SERVER="+s.Addr+" --NO-SUCH-OPTION", withCountingAllocator())
	require.Error(t, err)
	assert.Equal(t, start, liveCBlocks())
}
