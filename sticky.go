package libmemcached

/*
#include <libmemcached-1.0/memcached.h>
*/
import "C"

import "context"

// The coalescer keeps its batches' handles.
//
// memcached hands new connections to its worker threads in turn, and
// autoWarm, Warm and respread connect the pool's handles back to back, so
// two handles connected one after the other are served by different
// server threads (on every server, whatever its thread count). The two
// batches the coalescer has in flight at once are the pool's busiest
// handles; taken from libmemcachedutil's stack of free handles they would
// be whichever two are on top, and the Sets and other single-handle calls
// that interleave with the batches reorder that stack, so that after a
// while of mixed traffic the two batches may share one server thread. So
// a sweep hands the last two handles it connected to the coalescer, which
// owns them from then on: it keeps them between batches instead of giving
// them back, and one that a caller borrowed comes back to it rather than
// to the stack. A taker that finds the pool exhausted borrows a kept
// handle (take), and is woken when one is kept while it waits, so the
// pool's size is still every caller's to use. A change of
// behaviors or servers ends the ownership (until the next sweep: Warm, or
// a respread after a fault), and a sweep or Close takes the kept handles
// back first.

// keptOf is the coalescer's state for the handles it owns (under q.mu).
type keptOf struct {
	idle  []*handle         // owned handles not in use, the next one to use last
	owned []*C.memcached_st // the handles it owns (at most max)
	gen   uint64            // bumped when ownership ends (behaviors, servers, Close)
}

// owns reports whether memc is one of the coalescer's (q.mu held).
func (k *keptOf) owns(memc *C.memcached_st) bool {
	for _, m := range k.owned {
		if m == memc {
			return true
		}
	}
	return false
}

// takeHandle returns a kept handle, or one taken from the pool, and the
// generation to give it back under.
func (q *coalescer) takeHandle(ctx context.Context) (*handle, uint64, error) {
	q.p.startAutoWarm() // as take does: a respread may be due
	q.mu.Lock()
	gen := q.kept.gen
	if n := len(q.kept.idle); n > 0 {
		s := q.kept.idle[n-1]
		q.kept.idle = q.kept.idle[:n-1]
		q.mu.Unlock()
		return s, gen, nil
	}
	q.mu.Unlock()
	s, err := q.p.take(ctx)
	return s, gen, err
}

// giveBack keeps s for the next batch if the coalescer owns it, nothing
// changed since gen, nobody waits for a handle and no sweep runs;
// otherwise s goes back to the pool.
func (q *coalescer) giveBack(s *handle, gen uint64) {
	s.resetAfterTimeout()
	q.mu.Lock()
	kept := gen == q.kept.gen && q.keepLocked(s)
	q.mu.Unlock()
	if !kept {
		q.p.toStack(s)
	}
}

// keepLocked keeps s (reset after a timeout already) if the coalescer owns
// it, keeps fewer than max, no sweep runs and the pool is open (q.mu
// held); it wakes a waiting taker.
func (q *coalescer) keepLocked(s *handle) bool {
	if !q.kept.owns(s.memc) || len(q.kept.idle) >= q.max || q.p.warm.Load() != warmDone || q.p.isClosed() {
		return false
	}
	q.kept.idle = append(q.kept.idle, s)
	q.p.kickWaiter()
	return true
}

// reclaim takes back an owned handle that a caller borrowed, as the pool
// is given it back (put): it reports whether it kept it. (Ownership ends
// with every change that bumps the generation, so owning is enough.)
func (q *coalescer) reclaim(s *handle) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.keepLocked(s)
}

// adopt makes the last of handles (connected back to back, the last one
// last), up to max of them, the coalescer's: it keeps them; the others go
// back to the pool, in order. Under a gen that changed meanwhile, or with
// someone waiting for a handle, all go back.
func (q *coalescer) adopt(handles []*handle, gen uint64) {
	n := min(len(handles), q.max)
	rest, mine := handles[:len(handles)-n], handles[len(handles)-n:]
	for _, s := range rest {
		q.p.put(s)
	}
	q.mu.Lock()
	if gen != q.kept.gen || q.p.isClosed() || len(q.kept.idle) > 0 {
		q.mu.Unlock()
		for _, s := range mine {
			q.p.put(s)
		}
		return
	}
	q.kept.owned = q.kept.owned[:0]
	for _, s := range mine {
		q.kept.owned = append(q.kept.owned, s.memc)
	}
	// The last connected is used first, as on the stack.
	q.kept.idle = append(q.kept.idle, mine...)
	q.p.kickWaiter()
	q.mu.Unlock()
}

// release gives the kept handles back to the pool (the first kept at the
// bottom) and ends the ownership: a sweep makes a new one; with bump,
// handles in flight are not kept either when they come back (behaviors
// or servers changed, or the pool closed). It returns the generation a
// sweep adopts its handles under.
func (q *coalescer) release(bump bool) uint64 {
	q.mu.Lock()
	idle := q.kept.idle
	q.kept.idle = nil
	q.kept.owned = q.kept.owned[:0]
	if bump {
		q.kept.gen++
	}
	gen := q.kept.gen
	q.mu.Unlock()
	for _, s := range idle {
		q.p.put(s)
	}
	return gen
}

// borrow hands a kept handle to a taker that found none free (take); it
// stays the coalescer's and comes back to it when given back (put).
func (q *coalescer) borrow() *handle {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.kept.idle)
	if n == 0 {
		return nil
	}
	s := q.kept.idle[n-1]
	q.kept.idle = q.kept.idle[:n-1]
	if n > 1 {
		q.p.kickWaiter() // another may wait too
	}
	q.lent.Add(1)
	return s
}

// kickWaiter wakes a taker waiting for a handle to look at the kept ones.
func (p *pool) kickWaiter() {
	if p.waiting.Load() > 0 {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// releaseKept is release for the pool: nothing without a coalescer.
func (p *pool) releaseKept(bump bool) uint64 {
	if p.coal == nil {
		return 0
	}
	return p.coal.release(bump)
}

// handBack gives back the handles a sweep connected back to back (the
// last one last): the last ones to the coalescer (adopt), the others to
// the pool.
func (p *pool) handBack(handles []*handle, gen uint64) {
	if p.coal == nil {
		for _, s := range handles {
			p.put(s)
		}
		return
	}
	p.coal.adopt(handles, gen)
}

// isClosed reports whether Close was called.
func (p *pool) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
