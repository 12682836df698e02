package libmemcached

/*
#include <libmemcached-1.0/memcached.h>
#include <libmemcachedutil-1.0/pool.h>
#include "cgo_helpers.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"sync"
)

// Pool hands out up to size clients, each over its own libmemcached handle
// and connections, so that many goroutines can talk to memcached in
// parallel. It wraps libmemcachedutil's memcached_pool: the handles are
// clones of one master and follow behavior changes made through the Pool.
//
// A Pool is safe for concurrent use. Goroutines wait for a free client in
// Go (Acquire honours its context), never inside C. The Pool's own methods
// (Get, Set, ...) each acquire a client for one call and release it.
type Pool struct {
	master *Client              // the template handle; owned
	cpool  *C.memcached_pool_st // libmemcachedutil's pool of clones of master.memc
	size   int
	sem    chan struct{} // one token per client out
	done   chan struct{} // closed by Close

	mu     sync.Mutex
	free   []*Client // idle slots: C halves (results, scratch) kept between uses
	out    int
	closed bool

	bmu sync.RWMutex // behavior changes (writers) against handle fetches and reads of master

	coal *coalescer // nil when coalescing is off
}

// NewPool returns a pool of up to size clients for servers, configured by
// opts as New does. Handles are created as they are first needed; like New,
// NewPool does not connect.
func NewPool(servers []string, size int, opts ...Option) (*Pool, error) {
	if err := checkPoolSize(size); err != nil {
		return nil, err
	}
	master, err := New(servers, opts...)
	if err != nil {
		return nil, err
	}
	return newPool(master, size, collect(opts))
}

// NewPoolFromConfig is NewPool with libmemcached's configuration language,
// as NewFromConfig.
func NewPoolFromConfig(config string, size int, opts ...Option) (*Pool, error) {
	if err := checkPoolSize(size); err != nil {
		return nil, err
	}
	master, err := NewFromConfig(config, opts...)
	if err != nil {
		return nil, err
	}
	return newPool(master, size, collect(opts))
}

func checkPoolSize(size int) error {
	if size <= 0 || uint64(size) > math.MaxUint32 {
		return inputError("new_pool", "", ReturnInvalidArguments, fmt.Sprintf("pool size %d: it must be from 1 to %d", size, uint32(math.MaxUint32)))
	}
	return nil
}

func newPool(master *Client, size int, o *options) (*Pool, error) {
	cp := C.memcached_pool_create(master.memc, 1, C.uint32_t(size))
	if cp == nil {
		master.free()
		return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "new_pool"}
	}
	p := &Pool{
		master: master,
		cpool:  cp,
		size:   size,
		sem:    make(chan struct{}, size),
		done:   make(chan struct{}),
	}
	if !o.noCoalesce {
		p.coal = newCoalescer(p, coalesceInFlight)
	}
	return p, nil
}

// Size returns the most clients the pool hands out at once.
func (p *Pool) Size() int { return p.size }

// take waits for a free handle and returns a slot bound to it.
func (p *Pool) take(ctx context.Context) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, ErrClosed
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, ErrClosed
	}
	var s *Client
	if n := len(p.free); n > 0 {
		s, p.free = p.free[n-1], p.free[:n-1]
	}
	p.out++
	p.mu.Unlock()

	p.bmu.RLock()
	f := C.lmc_pool_fetch(p.cpool)
	binary, nsLen := p.master.binary, p.master.nsLen
	p.bmu.RUnlock()
	if f.memc == nil {
		p.untake(s)
		code := ReturnCode(f.rc)
		if code == ReturnSuccess || code == ReturnNotFound {
			// A failed grow reports success; exhaustion (impossible
			// while we hold a token) reports NOTFOUND: neither is a miss.
			code = ReturnMemoryAllocationFailure
		}
		return nil, &Error{Code: code, Original: ReturnCode(f.rc), Op: "acquire", Message: "memcached_pool_fetch returned no handle"}
	}
	if s == nil {
		s = &Client{pool: p, counting: p.master.counting, sasl: p.master.sasl}
		s.c = C.lmc_client_new(p.master.memc, f.memc, boolInt(p.master.counting))
		if s.c == nil {
			C.memcached_pool_release(p.cpool, f.memc)
			p.untake(nil)
			return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "acquire"}
		}
	}
	s.mu.Lock()
	s.c.memc = f.memc
	s.memc = f.memc
	s.binary, s.nsLen = binary, nsLen
	s.setAuthGuard()
	s.mu.Unlock()
	return s, nil
}

// untake gives back a token taken by take when no handle came of it.
func (p *Pool) untake(s *Client) {
	p.mu.Lock()
	if s != nil {
		p.free = append(p.free, s)
	}
	p.out--
	last := p.closed && p.out == 0
	p.mu.Unlock()
	<-p.sem
	if last {
		p.destroy()
	}
}

// put returns a slot's handle to the pool.
func (p *Pool) put(s *Client) {
	s.mu.Lock()
	memc := s.memc
	s.memc = nil
	if s.c != nil {
		s.c.memc = nil
	}
	s.mu.Unlock()
	if memc == nil {
		return // already released
	}
	C.memcached_pool_release(p.cpool, memc)
	p.untake(s)
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Acquire returns a client for the caller's exclusive use, waiting until
// one is free or ctx is done (then it returns ctx.Err()). Give it back with
// Release (or its Close). After release the client returns ErrClosed.
// Behaviors cannot be changed on an acquired client: use the Pool's
// SetBehavior, which applies to every client.
func (p *Pool) Acquire(ctx context.Context) (*Client, error) {
	s, err := p.take(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	c := &Client{c: s.c, memc: s.memc, binary: s.binary, nsLen: s.nsLen, counting: s.counting, sasl: s.sasl, pool: p, slot: s}
	s.mu.Unlock()
	return c, nil
}

// Warm connects the pool's handles now rather than on first use. It takes
// every one of the pool's size clients (waiting for them as Acquire does,
// so call it while the pool is idle, typically right after NewPool, and not
// while holding a client of this pool), connects each to every server, one
// client after another, and gives them all back. It returns at the first
// failure, with that error (a server that cannot be reached, or ctx.Err());
// the clients taken so far go back either way.
//
// Besides taking connection set-up out of the first requests, connecting
// back to back spreads the pool over the server's worker threads:
// memcached hands new connections to its threads in turn, and the clients
// Warm connected last are the ones the pool hands out first, so two
// coalesced batches in flight at once (see WithCoalescing) land on
// different server threads. Connected lazily, a pool's busiest two handles
// may share one server thread; on a two-thread memcached that cost about a
// quarter of the Pool's Get throughput at 16 goroutines (README,
// Concurrency model).
//
// Behavior changes made through the Pool later (SetBehavior) apply to the
// idle handles in place; the socket-level ones (the protocol, tcp_nodelay,
// keepalive, socket buffer sizes, no_block) make libmemcached close their
// connections: call Warm again after one if it matters. UDP pools have no
// connections: Warm takes and gives back the clients and returns nil.
func (p *Pool) Warm(ctx context.Context) error {
	taken := make([]*Client, 0, p.size)
	defer func() {
		// Given back in the order taken: the last connected ends on top
		// of libmemcachedutil's stack of free handles.
		for _, s := range taken {
			p.put(s)
		}
	}()
	for len(taken) < p.size {
		s, err := p.take(ctx)
		if err != nil {
			return err
		}
		taken = append(taken, s)
	}
	for _, s := range taken {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.connect("warm"); err != nil {
			return err
		}
	}
	return nil
}

// connect connects the handle to every server (taken slot; not locked).
func (s *Client) connect(op string) error {
	s.mu.Lock()
	defer s.unlock()
	if C.memcached_behavior_get(s.memc, C.MEMCACHED_BEHAVIOR_USE_UDP) != 0 {
		return nil
	}
	// A version request goes to every server whose version the handle
	// has not read yet, connecting as it goes.
	rc := C.memcached_version(s.memc)
	if rc == C.MEMCACHED_SOME_ERRORS {
		// Some server failed: report its error (the handle's last).
		if last := C.memcached_last_error(s.memc); last != C.MEMCACHED_SUCCESS && last != C.MEMCACHED_SOME_ERRORS {
			e := s.fail(op, "", last)
			e.Original = ReturnSomeErrors
			return e
		}
	}
	if rc != C.MEMCACHED_SUCCESS {
		return s.fail(op, "", rc)
	}
	return nil
}

// Release gives a client from Acquire back to the pool. Releasing it again,
// or releasing nil, does nothing.
func (p *Pool) Release(c *Client) {
	if c == nil || c.pool != p || c.slot == nil {
		return
	}
	c.mu.Lock()
	released := c.memc == nil
	c.memc, c.c = nil, nil
	c.mu.Unlock()
	if !released {
		p.put(c.slot)
	}
}

// Do runs fn with a client acquired for it (waiting as Acquire does) and
// releases the client when fn returns. It returns fn's error.
func (p *Pool) Do(ctx context.Context, fn func(*Client) error) error {
	c, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer p.Release(c)
	return fn(c)
}

// Close closes the pool: later calls return ErrClosed. Handles are freed
// once every acquired client is released. Close is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	last := p.out == 0
	p.mu.Unlock()
	if last {
		p.destroy()
	}
	return nil
}

// destroy frees every handle; called once, when closed and all are back.
func (p *Pool) destroy() {
	p.bmu.Lock() // no reader of master while it goes
	defer p.bmu.Unlock()
	p.mu.Lock()
	slots := p.free
	p.free = nil
	cp := p.cpool
	p.cpool = nil
	p.mu.Unlock()
	if cp == nil {
		return
	}
	// The slots' results are rooted at master: free them while it lives.
	for _, s := range slots {
		C.lmc_client_free(s.c)
		s.c = nil
	}
	C.memcached_pool_destroy(cp)
	p.master.mu.Lock()
	p.master.free()
	p.master.mu.Unlock()
}

// poolDo runs fn on a slot taken for one call.
func poolDo[T any](p *Pool, fn func(*Client) (T, error)) (T, error) {
	s, err := p.take(context.Background())
	if err != nil {
		var zero T
		return zero, err
	}
	defer p.put(s)
	return fn(s)
}

func poolDo0(p *Pool, fn func(*Client) error) error {
	_, err := poolDo(p, func(c *Client) (struct{}, error) { return struct{}{}, fn(c) })
	return err
}

// Get is Client.Get on a client of the pool. Concurrent Gets and GetMultis
// are coalesced into shared multi-gets (see WithCoalescing); each caller
// still gets exactly its own item, miss or error.
func (p *Pool) Get(key string) (*Item, error) {
	if p.coal != nil {
		return p.coal.get(key)
	}
	return poolDo(p, func(c *Client) (*Item, error) { return c.Get(key) })
}

// GetMulti is Client.GetMulti on a client of the pool, coalesced as Get is.
// Each caller gets its own Items.
func (p *Pool) GetMulti(keys []string) (map[string]*Item, error) {
	if p.coal != nil {
		return p.coal.getMulti(keys)
	}
	return poolDo(p, func(c *Client) (map[string]*Item, error) { return c.GetMulti(keys) })
}

// Set is Client.Set on a client of the pool.
func (p *Pool) Set(item *Item) error { return poolDo0(p, func(c *Client) error { return c.Set(item) }) }

// Add is Client.Add on a client of the pool.
func (p *Pool) Add(item *Item) error { return poolDo0(p, func(c *Client) error { return c.Add(item) }) }

// Replace is Client.Replace on a client of the pool.
func (p *Pool) Replace(item *Item) error {
	return poolDo0(p, func(c *Client) error { return c.Replace(item) })
}

// Append is Client.Append on a client of the pool.
func (p *Pool) Append(item *Item) error {
	return poolDo0(p, func(c *Client) error { return c.Append(item) })
}

// Prepend is Client.Prepend on a client of the pool.
func (p *Pool) Prepend(item *Item) error {
	return poolDo0(p, func(c *Client) error { return c.Prepend(item) })
}

// CompareAndSwap is Client.CompareAndSwap on a client of the pool.
func (p *Pool) CompareAndSwap(item *Item) error {
	return poolDo0(p, func(c *Client) error { return c.CompareAndSwap(item) })
}

// Delete is Client.Delete on a client of the pool.
func (p *Pool) Delete(key string) error {
	return poolDo0(p, func(c *Client) error { return c.Delete(key) })
}

// Increment is Client.Increment on a client of the pool.
func (p *Pool) Increment(key string, delta uint64) (uint64, error) {
	return poolDo(p, func(c *Client) (uint64, error) { return c.Increment(key, delta) })
}

// Decrement is Client.Decrement on a client of the pool.
func (p *Pool) Decrement(key string, delta uint64) (uint64, error) {
	return poolDo(p, func(c *Client) (uint64, error) { return c.Decrement(key, delta) })
}

// Touch is Client.Touch on a client of the pool.
func (p *Pool) Touch(key string, seconds int32) error {
	return poolDo0(p, func(c *Client) error { return c.Touch(key, seconds) })
}

// SetMulti is Client.SetMulti on a client of the pool.
func (p *Pool) SetMulti(items []*Item) (failed []string, err error) {
	return poolDo(p, func(c *Client) ([]string, error) { return c.SetMulti(items) })
}

// DeleteMulti is Client.DeleteMulti on a client of the pool.
func (p *Pool) DeleteMulti(keys []string) error {
	return poolDo0(p, func(c *Client) error { return c.DeleteMulti(keys) })
}

// FlushAll is Client.FlushAll on a client of the pool.
func (p *Pool) FlushAll() error { return poolDo0(p, (*Client).FlushAll) }

// Ping is Client.Ping on a client of the pool.
func (p *Pool) Ping() error { return poolDo0(p, (*Client).Ping) }

// Stats is Client.Stats on a client of the pool.
func (p *Pool) Stats() (map[string]map[string]string, error) {
	return poolDo(p, (*Client).Stats)
}

// StatsArg is Client.StatsArg on a client of the pool.
func (p *Pool) StatsArg(arg string) (map[string]map[string]string, error) {
	return poolDo(p, func(c *Client) (map[string]map[string]string, error) { return c.StatsArg(arg) })
}

// Version is Client.Version on a client of the pool.
func (p *Pool) Version() (map[string]string, error) { return poolDo(p, (*Client).Version) }

// Servers is Client.Servers on a client of the pool.
func (p *Pool) Servers() []string {
	out, _ := poolDo(p, func(c *Client) ([]string, error) { return c.Servers(), nil })
	return out
}

// ServerFor is Client.ServerFor on a client of the pool.
func (p *Pool) ServerFor(key string) (string, error) {
	return poolDo(p, func(c *Client) (string, error) { return c.ServerFor(key) })
}

// SetBehavior sets a behavior on the pool's master handle and every idle
// handle (memcached_pool_behavior_set); handles that are out take it when
// released. Acquired clients keep the old value until then.
func (p *Pool) SetBehavior(b Behavior, value uint64) error {
	p.bmu.Lock()
	defer p.bmu.Unlock()
	if err := p.checkOpen(); err != nil {
		return err
	}
	return p.setBehavior("set_behavior", b, value)
}

func (p *Pool) setBehavior(op string, b Behavior, value uint64) error {
	if err := checkBehaviorValue(op, b, value); err != nil {
		return err
	}
	rc := C.memcached_pool_behavior_set(p.cpool, libBehavior(b), C.uint64_t(value))
	if rc != C.MEMCACHED_SUCCESS {
		return handleError(p.master.memc, op, "", rc)
	}
	p.master.syncState()
	return nil
}

// SetBehaviors is Client.SetBehaviors for the whole pool, applied as
// SetBehavior does.
func (p *Pool) SetBehaviors(m map[string]any) error {
	settings, err := resolveBehaviors(m)
	if err != nil {
		return err
	}
	p.bmu.Lock()
	defer p.bmu.Unlock()
	if err := p.checkOpen(); err != nil {
		return err
	}
	for _, s := range settings {
		if err := p.setBehavior("set_behaviors", s.b, s.value); err != nil {
			if e, ok := err.(*Error); ok {
				e.Key = s.name
			}
			return err
		}
	}
	return nil
}

// Behavior returns a behavior's value on the pool's master handle.
func (p *Pool) Behavior(b Behavior) (uint64, error) {
	p.bmu.RLock()
	defer p.bmu.RUnlock()
	if err := p.checkOpen(); err != nil {
		return 0, err
	}
	return behaviorGet(p.master.memc, b)
}

// Behaviors is Client.Behaviors for the pool's master handle.
func (p *Pool) Behaviors() map[string]any {
	p.bmu.RLock()
	defer p.bmu.RUnlock()
	if p.checkOpen() != nil {
		return nil
	}
	return behaviorsOf(p.master.memc)
}

// checkOpen reports ErrClosed once Close was called; callers hold bmu, so
// the master cannot be destroyed while they use it.
func (p *Pool) checkOpen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	return nil
}
