package libmemcached

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
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
