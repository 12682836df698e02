package main

// The Go side of the C floor (bench_cfloor.c): the benchmark's loops
// written in C against libmemcached, run in one cgo call per window.

/*
#cgo pkg-config: libmemcached
#cgo LDFLAGS: -lpthread
#include <stdlib.h>
#include "bench_cfloor.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// cfloorLibVersion is the run-time libmemcached version.
func cfloorLibVersion() string { return C.GoString(C.cf_lib_version()) }

// cfloorConfig turns memctl's server list into libmemcached's
// configuration language.
func cfloorConfig(servers []string) string {
	var b strings.Builder
	for i, s := range servers {
		if i > 0 {
			b.WriteByte(' ')
		}
		if strings.HasPrefix(s, "/") {
			fmt.Fprintf(&b, "--SOCKET=\"%s\"", s)
			continue
		}
		// host:port:weight becomes host:port/?weight.
		if !strings.HasPrefix(s, "[") && strings.Count(s, ":") == 2 {
			j := strings.LastIndexByte(s, ':')
			s = s[:j] + "/?" + s[j+1:]
		}
		b.WriteString("--SERVER=" + s)
	}
	return b.String()
}

// cfloorClient is one C handle (with its clones for threaded windows).
type cfloorClient struct {
	c       *C.cf_client
	noreply bool
}

func openCFloor(servers []string, noreply bool) (*cfloorClient, error) {
	cfg := C.CString(cfloorConfig(servers))
	defer C.free(unsafe.Pointer(cfg))
	var errbuf [256]C.char
	nr := C.int(0)
	if noreply {
		nr = 1
	}
	c := C.cf_open(cfg, nr, &errbuf[0], C.size_t(len(errbuf)))
	if c == nil {
		return nil, errors.New(C.GoString(&errbuf[0]))
	}
	return &cfloorClient{c: c, noreply: noreply}, nil
}

func (f *cfloorClient) close() {
	if f != nil && f.c != nil {
		C.cf_close(f.c)
		f.c = nil
	}
}

// cKeyset is a keyset copied into C memory, so that a job (itself in C
// memory) can point at it under cgo's rules.
type cKeyset struct {
	n                      int
	keys, vals             **C.char
	keyLens, valLens       *C.size_t
	keyBlocks, valueBlocks []unsafe.Pointer
}

func newCKeyset(ks *keyset) *cKeyset {
	n := len(ks.keys)
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	sizeSize := C.size_t(unsafe.Sizeof(C.size_t(0)))
	c := &cKeyset{
		n:       n,
		keys:    (**C.char)(C.calloc(C.size_t(n), ptrSize)),
		vals:    (**C.char)(C.calloc(C.size_t(n), ptrSize)),
		keyLens: (*C.size_t)(C.calloc(C.size_t(n), sizeSize)),
		valLens: (*C.size_t)(C.calloc(C.size_t(n), sizeSize)),
	}
	keys := unsafe.Slice(c.keys, n)
	vals := unsafe.Slice(c.vals, n)
	kl := unsafe.Slice(c.keyLens, n)
	vl := unsafe.Slice(c.valLens, n)
	for i := range ks.keys {
		kp := C.CBytes([]byte(ks.keys[i]))
		vp := C.CBytes(ks.values[i])
		c.keyBlocks = append(c.keyBlocks, kp)
		c.valueBlocks = append(c.valueBlocks, vp)
		keys[i] = (*C.char)(kp)
		vals[i] = (*C.char)(vp)
		kl[i] = C.size_t(len(ks.keys[i]))
		vl[i] = C.size_t(len(ks.values[i]))
	}
	return c
}

func (c *cKeyset) free() {
	for _, p := range c.keyBlocks {
		C.free(p)
	}
	for _, p := range c.valueBlocks {
		C.free(p)
	}
	C.free(unsafe.Pointer(c.keys))
	C.free(unsafe.Pointer(c.vals))
	C.free(unsafe.Pointer(c.keyLens))
	C.free(unsafe.Pointer(c.valLens))
}

// cfMode is the mode of a C job.
type cfMode int

// The modes.
const (
	cfGet  cfMode = C.CF_GET
	cfSet  cfMode = C.CF_SET
	cfMget cfMode = C.CF_MGET
	cfMix  cfMode = C.CF_MIX
)

// cfResult is what a C job measured.
type cfResult struct {
	ops, keys, errors uint64
	elapsed           time.Duration
	err               string
}

// run runs one job: for the window (or up to maxOps operations when
// maxOps > 0), in this thread (threads == 0) or in threads pthreads that
// share handles clones. Latencies are added to h when h is not nil.
func (f *cfloorClient) run(ks *cKeyset, mode cfMode, batch int, window time.Duration, maxOps uint64, threads, handles int, h *hist) cfResult {
	job := (*C.cf_job)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cf_job{}))))
	defer C.free(unsafe.Pointer(job))
	nh := max(threads, 1)
	hb := (*C.uint64_t)(C.calloc(C.size_t(nh*histBuckets), 8))
	defer C.free(unsafe.Pointer(hb))
	job.mode = C.int(mode)
	job.keys = ks.keys
	job.key_lens = ks.keyLens
	job.vals = ks.vals
	job.val_lens = ks.valLens
	job.nkeys = C.size_t(ks.n)
	job.batch = C.size_t(batch)
	job.window_ns = C.int64_t(window)
	job.max_ops = C.uint64_t(maxOps)
	job.threads = C.int(threads)
	job.handles = C.int(handles)
	job.hist = hb
	C.cf_run(f.c, job)
	if h != nil {
		counts := unsafe.Slice((*uint64)(unsafe.Pointer(hb)), nh*histBuckets)
		for t := 0; t < nh; t++ {
			for i, n := range counts[t*histBuckets : (t+1)*histBuckets] {
				h[i] += n
			}
		}
	}
	return cfResult{
		ops:     uint64(job.ops),
		keys:    uint64(job.keys_done),
		errors:  uint64(job.errors),
		elapsed: time.Duration(job.elapsed_ns),
		err:     C.GoString(&job.err[0]),
	}
}
