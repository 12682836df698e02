package libmemcached

/*
#include <libmemcached-1.0/memcached.h>
*/
import "C"

import (
	"context"
	"time"
)

// The Pool keeps its handles spread over the servers' worker threads (see
// Warm) after its first use too.
//
// At the first use autoWarm connects the free handles back to back. A
// caller that connects a handle meanwhile (a request on a fresh pool)
// takes a turn in the servers' round robin in the middle of that
// sequence, so when a handle was in use during it, autoWarm sweeps once
// more: it closes and reconnects, back to back, every handle that is
// free, and those that come back while it runs.
//
// A restarted server leaves every idle handle with a connection the old
// process closed. Left alone, each handle finds out at its next request
// (which fails) and reconnects then, in whatever order traffic takes
// them, so the two handles the Pool uses most may share one thread of the
// new process. So a connection failure reported on a pool handle (a
// Temporary error) schedules a respread: at the next take, a goroutine
// takes the free handles and, if one has a socket the server closed or
// reset (readable while idle: conns.c), closes and reconnects back to
// back all of them, and those that come back while it runs (callers
// reconnected them out of turn); the reconnected go back in connect
// order, so the last connected is handed out first. A stale handle closed
// this way no longer fails the next request made on it.
//
// Under traffic the handles find the restart themselves, one failed
// request each, and libmemcached closes their sockets: so a handle with
// no connection to a server, found after a fault, counts as a restart
// too.
//
// A reconnection that fails (the server is not back yet) is tried again
// after respreadEvery<<tries (at most respreadMaxDelay apart, up to
// respreadMaxTries times: about half a minute): first with one handle,
// and only if that one connects, as a full sweep, since the handles that
// callers reconnected meanwhile did so out of turn. After the last try a
// lost connection counts for nothing for respreadQuietFor, so a server
// that stays dead costs a few reconnections of one handle every minute
// and a half; a fault that leaves no stale socket costs one check of the
// free handles' sockets, at most once per respreadEvery.
const (
	respreadEvery    = 250 * time.Millisecond
	respreadMaxDelay = 4 * time.Second
	respreadMaxTries = 10
	respreadQuietFor = time.Minute
)

// noteFault schedules a respread after a connection failure on one of the
// pool's handles, and closes the free handles' stale connections. It
// costs one atomic load otherwise.
func (p *pool) noteFault() {
	if p.warm.Load() == warmDone && p.warm.CompareAndSwap(warmDone, warmAgain) {
		// The coalescer's kept handles may be as stale as this one:
		// back to the pool, for the respread to see (sticky.go).
		p.releaseKept(false)
		p.closeStale()
	}
}

// closeStale closes, at once, the connections of the free handles that a
// server closed or reset, so that no request waiting for the respread is
// made on one (they reconnect at their next use); the handles go back in
// the order they were in.
func (p *pool) closeStale() {
	var taken []*handle
	for len(taken) < p.size {
		s := p.tryTake()
		if s == nil {
			break
		}
		taken = append(taken, s)
	}
	for _, s := range taken {
		if stale, _ := s.connState(); stale {
			C.memcached_quit(s.memc)
		}
	}
	for i := len(taken) - 1; i >= 0; i-- {
		p.put(taken[i])
	}
}

// respread is the goroutine startAutoWarm starts for a scheduled respread.
func (p *pool) respread() {
	next := warmDone
	defer func() { p.warm.CompareAndSwap(warmRunning, next) }()
	tries := p.respreadTries.Load()
	ctx, cancel := context.WithTimeout(context.Background(), autoWarmTimeout)
	defer cancel()

	var probe *handle
	if tries > 0 {
		// A retry: one handle first, so that a server still down costs
		// the other callers nothing.
		if probe = p.tryTake(); probe != nil && !reconnect(ctx, probe) {
			p.put(probe)
			next = p.retryRespread(tries)
			return
		}
	}
	res := p.spread(ctx, probe, tries > 0)
	switch {
	case res.took == 0:
		// Every handle is in use: try again later, as often as before.
		p.respreadAt.Store(time.Now().Add(respreadEvery).UnixNano())
		next = warmAgain
	case res.failed:
		next = p.retryRespread(tries)
	default:
		p.respreadTries.Store(0)
		p.respreadAt.Store(time.Now().Add(respreadEvery).UnixNano())
	}
}

// retryRespread schedules the next try after a failed one and returns the
// state to leave (warmAgain, or warmDone once the tries are used up).
func (p *pool) retryRespread(tries int32) int32 {
	tries++
	if tries > respreadMaxTries {
		p.respreadTries.Store(0)
		p.respreadAt.Store(time.Now().Add(respreadEvery).UnixNano())
		p.respreadQuiet.Store(time.Now().Add(respreadQuietFor).UnixNano())
		return warmDone
	}
	delay := respreadEvery << tries
	if delay > respreadMaxDelay {
		delay = respreadMaxDelay
	}
	p.respreadTries.Store(tries)
	p.respreadAt.Store(time.Now().Add(delay).UnixNano())
	return warmAgain
}

// sweep takes the free handles, and in passes those that come back while
// it runs (within ctx), reconnects back to back those that need it, and
// gives them all back, the reconnected last, in connect order. With full,
// or from the first pass that finds a stale connection or (outside the
// quiet time) a handle without one (a restart), every handle needs it;
// before that, none. first, if not nil, is a
// handle already reconnected (a retry's probe). It returns the number of
// handles it saw and whether a reconnection failed; after a failure it
// tries no more (a stale handle is still closed, so that no caller's
// request fails on it).
func (p *pool) sweep(ctx context.Context, first *handle, full bool) sweepResult {
	gen := p.releaseKept(false)
	var keep, connected, broken []*handle
	res := sweepResult{firstPass: -1}
	if first != nil {
		connected = append(connected, first)
	}
	lost := time.Now().UnixNano() >= p.respreadQuiet.Load()
	for len(keep)+len(connected)+len(broken) < p.size {
		var pass, redo []*handle
		for len(keep)+len(connected)+len(broken)+len(pass) < p.size {
			s := p.tryTake()
			if s == nil {
				break
			}
			pass = append(pass, s)
		}
		if res.firstPass < 0 {
			res.firstPass = len(pass)
		}
		if len(pass) == 0 {
			break
		}
		if !full {
			// A stale socket means a restart, and so does a lost
			// connection after a fault (under traffic the handles find
			// the restart themselves, and libmemcached closes their
			// sockets): every handle's turn in the new process is to be
			// taken again, the ones callers reconnected meanwhile too.
			for _, s := range pass {
				if stale, missing := s.connState(); stale || (lost && missing) {
					full = true
					break
				}
			}
		}
		if full {
			redo = pass
		} else {
			keep = append(keep, pass...)
		}
		for _, s := range redo {
			if len(broken) == 0 && reconnect(ctx, s) {
				connected = append(connected, s)
				continue
			}
			if stale, _ := s.connState(); stale {
				C.memcached_quit(s.memc)
			}
			broken = append(broken, s)
		}
		if ctx.Err() != nil {
			break
		}
	}
	// Back in turn: the untouched in their old order (the bottom one
	// first), the failed, then the reconnected, the last one connected
	// on top.
	for i := len(keep) - 1; i >= 0; i-- {
		p.put(keep[i])
	}
	for _, s := range broken {
		p.put(s)
	}
	p.handBack(connected, gen)
	res.took, res.failed, res.full = len(keep)+len(connected)+len(broken), len(broken) > 0, full
	return res
}

// sweepResult is what a sweep saw: took handles in all, firstPass of them
// at once (fewer than the pool's size: some were in use, and their
// callers may have connected them out of turn), whether it reconnected
// every handle (full) and whether a reconnection failed.
type sweepResult struct {
	took, firstPass int
	full, failed    bool
}

// spread is a sweep, and when it reconnected handles while others were in
// use (their callers' connections may have taken turns in the middle),
// one full sweep more, with a time limit of its own: once every handle is
// connected, no caller connects one, and the second sweep's turns are its
// own.
func (p *pool) spread(ctx context.Context, first *handle, full bool) sweepResult {
	res := p.sweep(ctx, first, full)
	atOnce := res.firstPass
	if first != nil {
		atOnce++
	}
	if res.full && !res.failed && atOnce < p.size {
		again, cancel := context.WithTimeout(context.Background(), autoWarmTimeout)
		defer cancel()
		res = p.sweep(again, nil, true)
	}
	return res
}

// reconnect closes the handle's connections and connects it to every
// server again, within ctx's deadline; it reports whether every server
// answered.
func reconnect(ctx context.Context, s *handle) bool {
	if ctx.Err() != nil {
		return false
	}
	dl, _ := ctx.Deadline()
	s.limitTimeouts(dl)
	err := s.reconnect("respread")
	_ = s.restoreTimeouts(ctx, nil)
	return err == nil
}
