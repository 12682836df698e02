package main

import "math/bits"

// histBuckets is the number of buckets of a latency histogram: values (in
// ns) below 64 each have their own bucket; above, every power of two is cut
// into 32 buckets, so a bucket's bounds are within 3.2% of each other. The
// C floor (bench_cfloor.c, cf_bucket) uses the same buckets.
const histBuckets = 1920

// hist is an HDR-style latency histogram of bounded size (15 KiB) that
// records without allocating. One goroutine writes each hist; they are
// merged after the window.
type hist [histBuckets]uint64

// bucketOf returns the bucket of a latency of v ns.
func bucketOf(v uint64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6
	return 64 + (e-1)*32 + int(v>>e) - 32
}

// bucketLow returns the smallest value in bucket i.
func bucketLow(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := (i-64)/32 + 1
	m := uint64((i-64)%32 + 32)
	return m << e
}

// bucketMid returns the middle of bucket i, the value reported for it.
func bucketMid(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := (i-64)/32 + 1
	lo := bucketLow(i)
	return lo + (uint64(1)<<e)/2
}

// record adds one latency of ns nanoseconds.
func (h *hist) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h[bucketOf(uint64(ns))]++
}

// add merges o into h.
func (h *hist) add(o *hist) {
	for i, n := range o {
		h[i] += n
	}
}

// count returns the number of latencies recorded.
func (h *hist) count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// quantile returns the latency (ns) below which the fraction q of the
// recorded ones lie, or 0 for an empty histogram.
func (h *hist) quantile(q float64) uint64 {
	total := h.count()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > total {
		rank = total
	}
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return bucketMid(i)
		}
	}
	return bucketMid(histBuckets - 1)
}
