package libmemcached

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Allocation targets of the hot paths, measured against a live server
// (the shared test server): Get at most 2 allocations per call (the Item
// and its value), Set at most 1, GetMulti of 100 keys at most 110. They
// hold in both protocols; this test keeps them from regressing. The
// benchmarks in bench_test.go show the same numbers with -benchmem.
const (
	allocTargetGet       = 2
	allocTargetSet       = 1
	allocTargetGetMulti  = 110
	allocGetMultiKeys    = 100
	allocValueSize       = 100
	allocRunsPerMeasured = 200
	// allocTargetSplit bounds a Pool GetMulti split in two parts: a
	// constant, whatever the number of keys (measured: about 11).
	allocTargetSplit = 24
)

func TestAllocationTargets(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			c := newTestClient(t, proto.opts...)
			keys := make([]string, allocGetMultiKeys)
			value := bytes.Repeat([]byte("v"), allocValueSize)
			for i := range keys {
				keys[i] = "alloc_test:" + proto.name + ":" + strconv.Itoa(i)
				if err := c.Set(&Item{Key: keys[i], Value: value}); err != nil {
					t.Fatalf("set %s: %v", keys[i], err)
				}
			}

			var failed error
			get := testing.AllocsPerRun(allocRunsPerMeasured, func() {
				it, err := c.Get(keys[7])
				switch {
				case err != nil:
					failed = err
				case !bytes.Equal(it.Value, value):
					failed = fmt.Errorf("get %s: wrong value %q", keys[7], it.Value)
				}
			})
			item := &Item{Key: keys[8], Value: value}
			set := testing.AllocsPerRun(allocRunsPerMeasured, func() {
				if err := c.Set(item); err != nil {
					failed = err
				}
			})
			multi := testing.AllocsPerRun(allocRunsPerMeasured/4, func() {
				items, err := c.GetMulti(keys)
				switch {
				case err != nil:
					failed = err
				case len(items) != len(keys):
					failed = fmt.Errorf("get_multi: %d of %d items", len(items), len(keys))
				}
			})
			if failed != nil {
				t.Fatalf("an operation failed while measuring: %v", failed)
			}
			t.Logf("allocations per call: Get %.1f (target <= %d), Set %.1f (<= %d), GetMulti(%d) %.1f (<= %d)",
				get, allocTargetGet, set, allocTargetSet, allocGetMultiKeys, multi, allocTargetGetMulti)
			if get > allocTargetGet {
				t.Errorf("Get: %.1f allocations per call, target <= %d", get, allocTargetGet)
			}
			if set > allocTargetSet {
				t.Errorf("Set: %.1f allocations per call, target <= %d", set, allocTargetSet)
			}
			if multi > allocTargetGetMulti {
				t.Errorf("GetMulti(%d): %.1f allocations per call, target <= %d", allocGetMultiKeys, multi, allocTargetGetMulti)
			}
		})
	}
}

// mallocsPer is testing.AllocsPerRun without its GOMAXPROCS 1 (a split
// GetMulti runs on more than one): heap allocations per call of f, over
// runs calls after one warm-up call. It counts every goroutine's (other
// tests' leftovers too, and a GC empties the coalescer's sync.Pool), so it
// reports the least of three measurements: noise only adds.
func mallocsPer(runs int, f func()) float64 {
	f()
	best := -1.0
	for round := 0; round < 3; round++ {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for i := 0; i < runs; i++ {
			f()
		}
		runtime.ReadMemStats(&m1)
		if per := float64(m1.Mallocs-m0.Mallocs) / float64(runs); best < 0 || per < best {
			best = per
		}
	}
	return best
}

// The same targets on a Pool, coalescing on and off, with two CPUs so that
// GetMulti(100) is split over handles (the parts' goroutines count).
func TestPoolAllocationTargets(t *testing.T) {
	withProcs(t, 2)
	for _, proto := range protocols {
		for _, coalesce := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/coalescing=%v", proto.name, coalesce), func(t *testing.T) {
				p := newTestPool(t, []string{sharedServer(t).Addr}, 4, append([]Option{WithCoalescing(coalesce)}, proto.opts...)...)
				require.NoError(t, p.Warm(context.Background()))
				keys := make([]string, allocGetMultiKeys)
				value := bytes.Repeat([]byte("v"), allocValueSize)
				for i := range keys {
					keys[i] = fmt.Sprintf("alloc_pool:%s:%v:%d", proto.name, coalesce, i)
					require.NoError(t, p.Set(&Item{Key: keys[i], Value: value}))
				}
				var failed error
				get := mallocsPer(allocRunsPerMeasured, func() {
					if it, err := p.Get(keys[7]); err != nil || !bytes.Equal(it.Value, value) {
						failed = fmt.Errorf("get: %v", err)
					}
				})
				item := &Item{Key: keys[8], Value: value}
				set := mallocsPer(allocRunsPerMeasured, func() {
					if err := p.Set(item); err != nil {
						failed = err
					}
				})
				multi := mallocsPer(allocRunsPerMeasured/4, func() {
					if items, err := p.GetMulti(keys); err != nil || len(items) != len(keys) {
						failed = fmt.Errorf("get_multi: %d items, %v", len(items), err)
					}
				})
				// A GetMulti large enough to be split in two: the parts'
				// goroutines and lists cost a few allocations, not some per key.
				big := make([]string, 2*splitKeys)
				for i := range big {
					big[i] = fmt.Sprintf("alloc_pool_big:%s:%v:%d", proto.name, coalesce, i)
					require.NoError(t, p.Set(&Item{Key: big[i], Value: value}))
				}
				splits := p.p.splits.Load()
				split := mallocsPer(allocRunsPerMeasured/8, func() {
					if items, err := p.GetMulti(big); err != nil || len(items) != len(big) {
						failed = fmt.Errorf("get_multi: %d items, %v", len(items), err)
					}
				})
				require.NoError(t, failed)
				assert.Greater(t, p.p.splits.Load(), splits, "GetMulti(%d) with two CPUs is split", len(big))
				t.Logf("allocations per call: Get %.1f (target <= %d), Set %.1f (<= %d), GetMulti(%d) %.1f (<= %d), split GetMulti(%d) %.1f (<= %d)",
					get, allocTargetGet, set, allocTargetSet, allocGetMultiKeys, multi, allocTargetGetMulti, len(big), split, allocTargetSplit)
				assert.LessOrEqual(t, split, float64(allocTargetSplit), "split GetMulti")
				if coalesce && raceEnabled {
					// The coalescer's waiters come from a sync.Pool, which the
					// race detector drains at random: checked without -race
					// (make asan).
					t.Log("coalesced Get's count not checked under -race")
				} else {
					assert.LessOrEqual(t, get, float64(allocTargetGet), "Get")
				}
				assert.LessOrEqual(t, set, float64(allocTargetSet), "Set")
				assert.LessOrEqual(t, multi, float64(allocTargetGetMulti), "GetMulti")
			})
		}
	}
}
