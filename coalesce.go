package libmemcached

/*
#include "cgo_helpers.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A coalescer folds the Gets and GetMultis that goroutines make on a Pool at
// the same time into one memcached_mget per batch.
//
// A blocking cgo call holds an OS thread, and one request in flight per
// connection is bounded by the round trip: a Pool of blocking handles
// serving many goroutines loses to a pure-Go client that parks goroutines
// on the netpoller. Batching turns N round trips into one. The first caller
// that finds fewer than max batches in flight leads: it takes a handle, gets
// every key waiting at that moment (its own included) with one mget, and
// hands the answers out. Callers that arrive meanwhile queue up; when a
// leader is done, the first of them leads the next batch, which by then
// holds everything that accumulated. So batches grow with the load, a lone
// caller runs its own Get at once on the caller's goroutine, and no handle
// is held while nothing is in flight.
//
// While one batch is in flight, a caller that finds nobody queued opens the
// second only while recent batches have been small (at most 1.5 callers on
// average: few goroutines, where a second round trip in parallel pays).
// Under more load it queues instead, and the next caller to come joins it:
// the second batch then carries at least two, which saves a round trip's
// system calls on both sides (measured: 2 goroutines unchanged, 4 about 30%
// faster, 16 to 64 a few per cent, and the 90/10 get/set mix at 16
// goroutines about 20% faster with half the p99).
type coalescer struct {
	p   *pool
	max int // batches in flight at once

	mu       sync.Mutex
	pending  []*waiter
	inflight int
	avg16    int // moving average of the callers per batch, times 16

	kept keptOf       // handles kept between batches (sticky.go; under mu)
	lent atomic.Int64 // kept handles lent to takers that found none free (tests)

	batches atomic.Int64 // batches run
	calls   atomic.Int64 // Gets and GetMultis answered by them
}

// waiter is one Get or GetMulti waiting for (or leading) a batch.
type waiter struct {
	key  string   // Get
	keys []string // GetMulti
	// multi tells a GetMulti (keys, possibly empty) from a Get (key).
	multi bool

	item  *Item
	items map[string]*Item
	err   error

	lead  []*waiter // set (under q.mu) with done: lead this batch (it contains this waiter)
	start int       // first index of this waiter's keys in the batch's unique list
	done  chan struct{}
	alone [1]*waiter // the batch of a caller that leads alone

	// For the observer only (the pool has one): when the batch got its
	// handle, how many callers it had, and a Get's server.
	started time.Time
	batch   int
	server  string
}

// coalesceInFlight is how many batches may be in flight at once. One lets
// batches grow largest; more overlap one batch's round trip with the next.
const coalesceInFlight = 2

// coalesceSmallAvg16 is the average batch size (times 16) below which a
// caller opens another batch alone rather than queue for company.
const coalesceSmallAvg16 = 24

// counted records a new batch of n callers in the moving average (q.mu held).
func (q *coalescer) counted(n int) {
	q.avg16 += n - q.avg16/16
}

// leadsNow reports whether a new caller leads a batch at once (q.mu held):
// when nothing is in flight, or a slot is free and either someone is
// already queued or batches have been small.
func (q *coalescer) leadsNow() bool {
	return q.inflight == 0 || (q.inflight < q.max && (len(q.pending) > 0 || q.avg16 < coalesceSmallAvg16))
}

var waiters = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

func newCoalescer(p *pool, max int) *coalescer {
	return &coalescer{p: p, max: max}
}

// get is Pool.Get through the coalescer.
func (q *coalescer) get(ctx context.Context, key string) (*Item, error) {
	cl, start := call{"Get", key, 1, false}, q.now()
	err := ctx.Err()
	if err == nil {
		err = q.p.checkKey("get", key)
	}
	if err != nil {
		q.report(ctx, cl, nil, start, 0, err)
		return nil, err
	}
	w := waiters.Get().(*waiter)
	w.key, w.multi = key, false
	if !q.submit(ctx, w) {
		q.report(ctx, cl, nil, start, 0, ctx.Err())
		return nil, ctx.Err()
	}
	it, err := w.item, w.err
	q.report(ctx, cl, w, start, hits(it), err)
	*w = waiter{done: w.done}
	waiters.Put(w)
	return it, err
}

// getMulti is Pool.GetMulti through the coalescer.
func (q *coalescer) getMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	cl, start := call{"GetMulti", "", len(keys), false}, q.now()
	err := ctx.Err()
	for i := 0; err == nil && i < len(keys); i++ {
		err = q.p.checkKey("get_multi", keys[i])
	}
	if err == nil && len(keys) == 0 {
		if err = q.p.checkOpen(); err == nil {
			q.report(ctx, cl, nil, start, 0, nil)
			return map[string]*Item{}, nil
		}
	}
	if err != nil {
		q.report(ctx, cl, nil, start, 0, err)
		return nil, err
	}
	w := waiters.Get().(*waiter)
	w.keys, w.multi = keys, true
	if !q.submit(ctx, w) {
		q.report(ctx, cl, nil, start, 0, ctx.Err())
		return nil, ctx.Err()
	}
	items, err := w.items, w.err
	q.report(ctx, cl, w, start, len(items), err)
	*w = waiter{done: w.done}
	waiters.Put(w)
	return items, err
}

// now reads the clock for the observer; without one it does not.
func (q *coalescer) now() time.Time {
	if q.p.obs == nil {
		return time.Time{}
	}
	return time.Now()
}

// report gives the observer the Event of a coalesced call: w is nil for
// a call that never joined a batch (or left it), whose wait was all of it.
func (q *coalescer) report(ctx context.Context, cl call, w *waiter, start time.Time, hits int, err error) {
	obs := q.p.obs
	if obs == nil {
		return
	}
	ev := Event{Op: cl.op, Keys: cl.keys, Hits: hits, Duration: time.Since(start), Batch: 1, Err: err, Context: ctx}
	switch {
	case w == nil:
		ev.Wait = ev.Duration
	case !w.started.IsZero():
		ev.Server, ev.Batch, ev.Wait = w.server, w.batch, w.started.Sub(start)
	}
	obs(ev)
}

// submit runs w in a batch: it leads one at once if leadsNow says so, else
// it queues and either gets its answer or is handed the next batch to lead.
// A caller whose context can end never leads a batch that holds others on
// its own goroutine (a goroutine does, so that it can leave): submit
// returns false when ctx ended first, and w is then never reused.
func (q *coalescer) submit(ctx context.Context, w *waiter) bool {
	q.mu.Lock()
	if q.leadsNow() {
		q.inflight++
		batch := q.pending
		q.pending = nil
		if batch == nil {
			batch = w.alone[:0] // a lone caller's batch allocates nothing
		}
		batch = append(batch, w)
		q.counted(len(batch))
		q.mu.Unlock()
		return q.takeLead(ctx, batch, w)
	}
	q.pending = append(q.pending, w)
	q.mu.Unlock()
	return q.wait(ctx, w)
}

// takeLead leads batch, which holds w: on w's goroutine if w alone is in
// it or w's context cannot end, else on a goroutine of its own while w
// waits.
func (q *coalescer) takeLead(ctx context.Context, batch []*waiter, w *waiter) bool {
	if ctx.Done() == nil || len(batch) == 1 {
		q.lead(ctx, batch, w)
		return true
	}
	go q.lead(context.Background(), batch, nil)
	return q.wait(ctx, w)
}

// wait waits for w's answer, or for the lead of the next batch, or for
// ctx to end (then w leaves: out of the queue, or its batch goes on
// without it).
func (q *coalescer) wait(ctx context.Context, w *waiter) bool {
	done := ctx.Done()
	if done == nil {
		<-w.done // a context that cannot end: no select
	} else {
		if !q.waitOrLeave(done, w) {
			return false
		}
	}
	if batch := w.lead; batch != nil {
		w.lead = nil
		return q.takeLead(ctx, batch, w)
	}
	return true
}

// waitOrLeave waits for w's signal or for done; when done comes first, w
// leaves (out of the queue, or its batch goes on without it) and
// waitOrLeave returns false.
func (q *coalescer) waitOrLeave(done <-chan struct{}, w *waiter) bool {
	select {
	case <-w.done:
		return true
	case <-done:
		q.mu.Lock()
		for i, p := range q.pending {
			if p == w {
				q.pending = append(q.pending[:i], q.pending[i+1:]...)
				q.mu.Unlock()
				return false
			}
		}
		batch := w.lead
		w.lead = nil
		q.mu.Unlock()
		if batch != nil {
			// Handed the lead as ctx ended: take the signal and let a
			// goroutine lead, so the batch goes on for the others.
			<-w.done
			go q.lead(context.Background(), batch, nil)
		}
		return false
	}
}

// lead runs batch, passes the lead to the first waiter that queued
// meanwhile, then wakes the batch's waiters other than self (all, when
// self is nil).
func (q *coalescer) lead(ctx context.Context, batch []*waiter, self *waiter) {
	q.run(ctx, batch)
	q.mu.Lock()
	if len(q.pending) > 0 {
		next := q.pending
		q.pending = nil
		q.counted(len(next))
		next[0].lead = next
		q.mu.Unlock()
		next[0].done <- struct{}{}
	} else {
		q.inflight--
		q.mu.Unlock()
	}
	for _, w := range batch {
		if w != self {
			w.done <- struct{}{}
		}
	}
}

// run answers every waiter of batch with one multi-get on one handle. ctx
// bounds the wait for the handle and the call only when the batch is its
// caller's alone (lead's callers pass the background otherwise).
func (q *coalescer) run(ctx context.Context, batch []*waiter) {
	q.batches.Add(1)
	q.calls.Add(int64(len(batch)))
	s, gen, err := q.takeHandle(ctx)
	if err != nil {
		for _, w := range batch {
			w.err = err
		}
		return
	}
	defer q.giveBack(s, gen)
	if dl, ok := ctx.Deadline(); ok {
		s.limitTimeouts(dl)
		defer func() { batch[0].err = s.restoreTimeouts(ctx, batch[0].err) }()
	}
	if q.p.obs != nil {
		now := time.Now()
		for _, w := range batch {
			w.started, w.batch = now, len(batch)
			if !w.multi {
				w.server, _ = s.serverFor(w.key)
			}
		}
	}
	if len(batch) == 1 {
		// A lone caller: exactly Client.Get, or GetMulti (split over more
		// handles when it is large), with no batching overhead.
		w := batch[0]
		if w.multi {
			w.items, w.err = q.p.splitGetMulti(ctx, s, w.keys)
		} else {
			w.item, w.err = s.get(w.key)
		}
		return
	}
	s.runBatch(batch)
}

// splitKeys is the fewest keys per part of a split GetMulti. Measured on
// the project's 2-core VM with memcached on the same cores (README,
// Performance): GetMulti(100) split in two parts of 50 ran at 0.8x the
// unsplit call (a part's round trip and a second thread cost more than
// its share of parsing saves when memcached needs the other core), and
// 1,000 keys in two parts at 1.0x to 1.1x; so only requests of 512 keys
// and more are split.
const splitKeys = 256

// splitGetMulti gets keys on s, and on more handles at once when there are
// many keys and more than one CPU: libmemcached's reply parsing is CPU
// work (about 2,500 instructions a key in ASCII), so a large multi-get
// split into parts, each on its own handle and OS thread, is answered in
// parallel. It splits into at most GOMAXPROCS parts of at least splitKeys
// keys, over the handles that are free at once (it never waits for one),
// and merges the parts' items into one map; the first part's error, in key
// order, is the call's (each part returns what it found either way).
func (p *pool) splitGetMulti(ctx context.Context, s *handle, keys []string) (map[string]*Item, error) {
	parts := min(runtime.GOMAXPROCS(0), len(keys)/splitKeys)
	if parts < 2 {
		return s.getMulti(keys)
	}
	var more [maxSplit - 1]*handle
	n := 0
	for n < min(parts, maxSplit)-1 {
		if more[n] = p.tryTake(); more[n] == nil {
			break
		}
		n++
	}
	if n == 0 {
		return s.getMulti(keys)
	}
	parts = n + 1
	p.splits.Add(1)
	var res [maxSplit]struct {
		items []Item
		err   error
	}
	per := (len(keys) + parts - 1) / parts
	dl, hasDL := ctx.Deadline()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 1; i < parts; i++ {
		h, part := more[i-1], keys[min(i*per, len(keys)):min((i+1)*per, len(keys))]
		go func() {
			defer wg.Done()
			defer p.put(h)
			if hasDL {
				h.limitTimeouts(dl)
			}
			res[i].items, res[i].err = h.getMultiList(part)
			if hasDL {
				res[i].err = h.restoreTimeouts(ctx, res[i].err)
			}
		}()
	}
	res[0].items, res[0].err = s.getMultiList(keys[:per])
	wg.Wait()
	found := 0
	for i := 0; i < parts; i++ {
		found += len(res[i].items)
	}
	m := make(map[string]*Item, found)
	var err error
	for i := 0; i < parts; i++ {
		items := res[i].items
		for j := range items {
			m[items[j].Key] = &items[j]
		}
		if err == nil {
			err = res[i].err
		}
	}
	return m, err
}

// maxSplit is the most parts splitGetMulti makes.
const maxSplit = 8

// runBatch sends the batch's unique keys as one mget on s and gives each
// waiter its own copies of its items.
func (s *handle) runBatch(batch []*waiter) {
	sc := s.keyScratch()
	sc.keys, sc.keybuf, sc.lens = sc.keys[:0], sc.keybuf[:0], sc.lens[:0]
	clear(sc.index)
	add := func(k string) {
		if _, dup := sc.index[k]; !dup {
			sc.index[k] = len(sc.keys)
			sc.keys = append(sc.keys, k)
			sc.keybuf = append(sc.keybuf, k...)
			sc.lens = append(sc.lens, C.size_t(len(k)))
		}
	}
	for _, w := range batch {
		if w.multi {
			for _, k := range w.keys {
				add(k)
			}
		} else {
			add(w.key)
		}
	}
	rc := s.mgetRun(nil, 0, cbytes(sc.keybuf), &sc.lens[0], len(sc.lens))
	if cap(sc.rec) < len(sc.keys) {
		sc.rec = make([]int, len(sc.keys))
	}
	sc.rec = sc.rec[:len(sc.keys)]
	for i := range sc.rec {
		sc.rec[i] = -1
	}
	buf := s.outBuf()
	for off := 0; off < len(buf); {
		r := itemRecAt(buf, off)
		if u, ok := sc.index[string(r.key)]; ok && sc.rec[u] < 0 {
			sc.rec[u] = off
		}
		off = r.next
	}
	var batchErr *Error
	if rc != C.MEMCACHED_SUCCESS {
		batchErr = s.fail("get_multi", "", rc)
	}
	for _, w := range batch {
		if w.multi {
			w.items, w.err = s.batchItems(sc, buf, w.keys, batchErr)
			continue
		}
		u := sc.index[w.key]
		if off := sc.rec[u]; off >= 0 {
			r := itemRecAt(buf, off)
			w.item = &Item{Key: w.key, Value: append([]byte(nil), r.value...), Flags: r.flags, CasID: r.cas}
		} else {
			w.err = s.missError("get", w.key, batchErr)
		}
	}
}

// batchItems builds one GetMulti waiter's map: its own Items and values,
// in two allocations besides the map.
func (s *handle) batchItems(sc *keyScratch, buf []byte, keys []string, batchErr *Error) (map[string]*Item, error) {
	found, total := 0, 0
	for _, k := range keys {
		if off := sc.rec[sc.index[k]]; off >= 0 {
			found++
			total += len(itemRecAt(buf, off).value)
		}
	}
	m := make(map[string]*Item, found)
	items := make([]Item, 0, found)
	values := make([]byte, 0, total)
	var err error
	for _, k := range keys {
		off := sc.rec[sc.index[k]]
		if off < 0 {
			if err == nil && batchErr != nil {
				if e := s.missError("get_multi", k, batchErr); !isMiss(e) {
					err = e
				}
			}
			continue
		}
		if _, dup := m[k]; dup {
			continue
		}
		r := itemRecAt(buf, off)
		vo := len(values)
		values = append(values, r.value...)
		items = append(items, Item{Key: k, Value: values[vo:len(values):len(values)], Flags: r.flags, CasID: r.cas})
		m[k] = &items[len(items)-1]
	}
	return m, err
}

func isMiss(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == ReturnNotFound
}

// missError is the error for a key a batch did not return: a miss, unless
// the batch failed on the server that key maps to (or that server has a
// failure on record, or the failed server is unknown), in which case it is
// the batch's error, for this key. In a fault window a true miss may so
// read as an error; a key on a failed server never reads as a miss.
func (s *handle) missError(op, key string, batchErr *Error) *Error {
	server := ""
	if C.lmc_server_for(s.c, cstr(key), C.size_t(len(key))) == C.MEMCACHED_SUCCESS {
		server = s.serverName()
	}
	if batchErr == nil || (batchErr.Server != "" && server != "" && server != batchErr.Server &&
		!isConnectionClass(ReturnCode(C.lmc_key_server_error(s.c, cstr(key), C.size_t(len(key)))))) {
		// No failure, or one on another server that has no failure of
		// its own on record: a miss.
		return &Error{Code: ReturnNotFound, Original: ReturnNotFound, Op: op, Key: key, Server: server}
	}
	e := *batchErr
	e.Op, e.Key = op, key
	if e.Server == "" {
		e.Server = server
	}
	return &e
}

// checkKey validates a key against the pool's protocol and namespace.
func (p *pool) checkKey(op, key string) error {
	p.bmu.RLock()
	err := p.master().checkKey(op, key)
	p.bmu.RUnlock()
	return err
}
