package libmemcached

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// Benchmarks of the hot paths against the shared test server (a memcached
// on loopback that the tests start), with allocations reported:
//
//	go test -run '^$' -bench . -benchmem
//
// Each reads back the values it wrote and fails on a wrong one. For the
// comparison with other clients and with C, see "memctl bench" (make bench).

// benchKeys writes n keys with values of size bytes through c and returns
// the keys and the value.
func benchKeys(b *testing.B, c *Client, n, size int) ([]string, []byte) {
	b.Helper()
	value := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench_test:%d:%d", size, i)
		if err := c.Set(&Item{Key: keys[i], Value: value}); err != nil {
			b.Fatalf("set %s: %v", keys[i], err)
		}
	}
	return keys, value
}

func benchGet(b *testing.B, size int, opts ...Option) {
	c := newTestClient(b, opts...)
	keys, value := benchKeys(b, c, 100, size)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	h0, m0 := spinCounts()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it, err := c.Get(keys[i%len(keys)])
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(it.Value, value) {
			b.Fatalf("get %s: wrong value", keys[i%len(keys)])
		}
	}
	b.StopTimer()
	// The busy waits (WithSpinWait) that saw their reply, per Get.
	h1, m1 := spinCounts()
	b.ReportMetric(float64(h1-h0)/float64(b.N), "spin-hits/op")
	b.ReportMetric(float64(m1-m0)/float64(b.N), "spin-misses/op")
}

func BenchmarkGet(b *testing.B)       { benchGet(b, 100) }
func BenchmarkGetBinary(b *testing.B) { benchGet(b, 100, WithBinaryProtocol()) }
func BenchmarkGet16KB(b *testing.B)   { benchGet(b, 16*1024) }

func benchSet(b *testing.B, size int, opts ...Option) {
	c := newTestClient(b, opts...)
	keys, value := benchKeys(b, c, 100, size)
	items := make([]Item, len(keys))
	for i := range items {
		items[i] = Item{Key: keys[i], Value: value}
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Set(&items[i%len(items)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B)       { benchSet(b, 100) }
func BenchmarkSetBinary(b *testing.B) { benchSet(b, 100, WithBinaryProtocol()) }
func BenchmarkSet16KB(b *testing.B)   { benchSet(b, 16*1024) }

// BenchmarkSetNoReply writes without waiting for replies; a Get at the end
// waits for the server to have read them all.
func BenchmarkSetNoReply(b *testing.B) {
	c := newTestClient(b, WithBehavior(BehaviorNoReply, 1))
	keys, value := benchKeys(b, c, 100, 100)
	item := &Item{Value: value}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		item.Key = keys[i%len(keys)]
		if err := c.Set(item); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := c.Get(keys[0]); err != nil {
		b.Fatal(err)
	}
}

// benchGetMulti reports keys/s as well as ns per multi-get.
func benchGetMulti(b *testing.B, n int, opts ...Option) {
	c := newTestClient(b, opts...)
	keys, value := benchKeys(b, c, n, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		items, err := c.GetMulti(keys)
		if err != nil {
			b.Fatal(err)
		}
		if len(items) != n {
			b.Fatalf("get_multi: %d of %d items", len(items), n)
		}
		if it := items[keys[i%n]]; !bytes.Equal(it.Value, value) {
			b.Fatalf("get_multi: wrong value for %s", keys[i%n])
		}
	}
	b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "keys/s")
}

func BenchmarkGetMulti10(b *testing.B)        { benchGetMulti(b, 10) }
func BenchmarkGetMulti100(b *testing.B)       { benchGetMulti(b, 100) }
func BenchmarkGetMulti100Binary(b *testing.B) { benchGetMulti(b, 100, WithBinaryProtocol()) }
func BenchmarkGetMulti1000(b *testing.B)      { benchGetMulti(b, 1000) }

// BenchmarkPoolGet is one goroutine's Get through a Pool.
func BenchmarkPoolGet(b *testing.B) {
	c := newTestClient(b)
	keys, value := benchKeys(b, c, 100, 100)
	p := newBenchPool(b, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it, err := p.Get(keys[i%len(keys)])
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(it.Value, value) {
			b.Fatalf("get %s: wrong value", keys[i%len(keys)])
		}
	}
}

func newBenchPool(b *testing.B, size int, opts ...Option) *Pool {
	b.Helper()
	p, err := NewPool([]string{sharedServer(b).Addr}, size, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Warm(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// benchPoolParallel runs goroutines goroutines (at least) through a Pool
// of 16, as memctl bench's concurrent scenarios do; setEvery > 0 makes
// one operation in setEvery a Set.
func benchPoolParallel(b *testing.B, goroutines, setEvery int) {
	c := newTestClient(b)
	keys, value := benchKeys(b, c, 100, 100)
	p := newBenchPool(b, 16)
	b.SetParallelism(max(1, (goroutines+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := seed.Add(1) * 0x9e3779b97f4a7c15
		for pb.Next() {
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			key := keys[rng%uint64(len(keys))]
			if setEvery > 0 && (rng>>32)%uint64(setEvery) == 0 {
				if err := p.Set(&Item{Key: key, Value: value}); err != nil {
					b.Error(err)
					return
				}
				continue
			}
			it, err := p.Get(key)
			if err != nil {
				b.Error(err)
				return
			}
			if !bytes.Equal(it.Value, value) {
				b.Errorf("get %s: wrong value", key)
				return
			}
		}
	})
	b.StopTimer()
	if p.p.coal != nil && p.p.coal.batches.Load() > 0 {
		// How many Gets each shared multi-get carried, on average.
		b.ReportMetric(float64(p.p.coal.calls.Load())/float64(p.p.coal.batches.Load()), "gets/batch")
	}
}

// BenchmarkPoolGetParallel: 4, 16, 64 and 256 goroutines doing Get.
func BenchmarkPoolGetParallel(b *testing.B) {
	for _, g := range []int{4, 16, 64, 256} {
		b.Run(strconv.Itoa(g), func(b *testing.B) { benchPoolParallel(b, g, 0) })
	}
}

// BenchmarkPoolMixParallel: 90% Get, 10% Set.
func BenchmarkPoolMixParallel(b *testing.B) {
	for _, g := range []int{16, 64, 256} {
		b.Run(strconv.Itoa(g), func(b *testing.B) { benchPoolParallel(b, g, 10) })
	}
}

// BenchmarkGetNoSpin is BenchmarkGet without the busy wait (WithSpinWait).
func BenchmarkGetNoSpin(b *testing.B) { benchGet(b, 100, WithSpinWait(0)) }
