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
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool hands out up to size clients, each over its own libmemcached handle
// and connections, so that many goroutines can talk to memcached in
// parallel. It wraps libmemcachedutil's memcached_pool: the handles are
// clones of one master and follow behavior changes made through the Pool.
//
// A Pool is safe for concurrent use. Goroutines wait for a free client in
// Go (Acquire honours its context), never inside C. The Pool's own methods
// (Get, Set, ...) each take a handle for one call and give it back.
//
// A Pool that is dropped without Close is closed when the garbage
// collector finds it; its handles are freed once the clients acquired from
// it are released.
type Pool struct {
	commands
	p       *pool
	created origin // where the pool was made (build tag libmemcached_leakcheck)
}

// pool is the Pool's state. The coalescer and the handles point at it, not
// at the Pool, so that the Pool can have a finalizer.
type pool struct {
	size int
	sem  chan struct{} // one token per handle out
	done chan struct{} // closed by close

	mu     sync.Mutex
	cur    *handlePool // where handles come from; SetServers replaces it
	out    int         // handles out, of every handlePool
	closed bool

	bmu sync.RWMutex // behavior and server changes (writers) against handle fetches and reads of the master

	coal *coalescer  // nil when coalescing is off
	obs  func(Event) // WithObserver, for the coalescer and acquired clients

	// warm is autoWarm's and respread's state for the current server
	// list: warmNever (until the first take, and again after SetServers),
	// warmRunning, warmDone, or warmAgain (a fault asks for a respread, at
	// a take from respreadAt on, unix nanoseconds; respreadTries is the
	// number of tries that failed so far).
	warm          atomic.Int32
	respreadAt    atomic.Int64
	respreadTries atomic.Int32
	respreadQuiet atomic.Int64 // until then (unix ns) a lost connection is no sign of a restart

	waiting atomic.Int32  // takers waiting for a handle (sticky.go)
	kick    chan struct{} // wakes one of them when the coalescer keeps one

	splits atomic.Int64 // GetMultis split over more handles (tests)
}

// handlePool is one libmemcachedutil memcached_pool: a master handle for
// one server list and the clones made of it. A Pool has one at a time;
// SetServers retires it, and a retired one is freed when its last handle
// comes back.
type handlePool struct {
	p       *pool
	master  *handle              // the template handle; owned
	cpool   *C.memcached_pool_st // libmemcachedutil's pool of clones of master.memc
	free    []*handle            // idle slots: C halves (results, scratch) kept between uses (p.mu)
	out     int                  // its handles out (p.mu)
	retired bool                 // (p.mu)
}

// master is the current master handle (callers hold bmu).
func (p *pool) master() *handle { return p.cur.master }

// NewPool returns a pool of up to size clients for servers, configured by
// opts as New does. Handles are created as they are first needed; like New,
// NewPool does not connect. At the pool's first use it connects its free
// handles in the background, back to back, and does so again after a
// server restarts (see Warm).
func NewPool(servers []string, size int, opts ...Option) (*Pool, error) {
	if err := checkPoolSize(size); err != nil {
		return nil, err
	}
	o := collect(opts)
	master, err := openServers(servers, o)
	if err != nil {
		return nil, err
	}
	return newPool(master, size, o)
}

// NewPoolFromConfig is NewPool with libmemcached's configuration language,
// as NewFromConfig.
func NewPoolFromConfig(config string, size int, opts ...Option) (*Pool, error) {
	if err := checkPoolSize(size); err != nil {
		return nil, err
	}
	o := collect(opts)
	master, err := openConfig(config, o)
	if err != nil {
		return nil, err
	}
	return newPool(master, size, o)
}

func checkPoolSize(size int) error {
	if size <= 0 || uint64(size) > math.MaxUint32 {
		return inputError("new_pool", "", ReturnInvalidArguments, fmt.Sprintf("pool size %d: it must be from 1 to %d", size, uint32(math.MaxUint32)))
	}
	return nil
}

func newPool(master *handle, size int, o *options) (*Pool, error) {
	p := &pool{
		size: size,
		sem:  make(chan struct{}, size),
		done: make(chan struct{}),
		kick: make(chan struct{}, 1),
	}
	hp, err := p.newHandlePool(master)
	if err != nil {
		return nil, err
	}
	p.cur = hp
	if !o.noCoalesce {
		p.coal = newCoalescer(p, coalesceInFlight)
	}
	pl := &Pool{commands: commands{src: p, obs: o.observer}, p: p, created: here()}
	p.obs = o.observer
	runtime.SetFinalizer(pl, (*Pool).finalize)
	return pl, nil
}

// newHandlePool makes the memcached_pool of master's clones; on failure it
// frees master.
func (p *pool) newHandlePool(master *handle) (*handlePool, error) {
	cp := C.memcached_pool_create(master.memc, 1, C.uint32_t(p.size))
	if cp == nil {
		master.free()
		return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "new_pool"}
	}
	hp := &handlePool{p: p, master: master, cpool: cp}
	master.pool = hp
	return hp, nil
}

// finalize is the safety net for a Pool nobody closed.
func (p *Pool) finalize() {
	if p.p.close() {
		p.created.report("Pool")
	}
}

// Size returns the most clients the pool hands out at once.
func (p *Pool) Size() int { return p.p.size }

// acquire and release lend a handle to one of the Pool's operations.
func (p *pool) acquire(ctx context.Context) (*handle, error) { return p.take(ctx) }

func (p *pool) release(h *handle) { p.put(h) }

// take waits for a free handle and returns a slot bound to it.
func (p *pool) take(ctx context.Context) (*handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.startAutoWarm()
	select {
	case p.sem <- struct{}{}:
		return p.takeSlot()
	default:
	}
	// None free: the handles the coalescer keeps between batches are
	// the caller's to use (sticky.go), now or when one is kept.
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	for {
		if p.coal != nil {
			if s := p.coal.borrow(); s != nil {
				return s, nil
			}
		}
		select {
		case p.sem <- struct{}{}:
			return p.takeSlot()
		case <-p.kick:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.done:
			return nil, ErrClosed
		}
	}
}

// tryTake takes a handle only if one is free at once; nil if none is (or
// the pool is closed, or a handle cannot be made).
func (p *pool) tryTake() *handle {
	select {
	case p.sem <- struct{}{}:
	default:
		return nil
	}
	s, err := p.takeSlot()
	if err != nil {
		return nil
	}
	return s
}

// takeSlot binds a slot to a handle for the token its caller took.
func (p *pool) takeSlot() (*handle, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, ErrClosed
	}
	p.out++
	p.mu.Unlock()

	p.bmu.RLock()
	p.mu.Lock()
	hp := p.cur
	var s *handle
	if n := len(hp.free); n > 0 {
		s, hp.free = hp.free[n-1], hp.free[:n-1]
	}
	hp.out++
	p.mu.Unlock()
	f := C.lmc_pool_fetch(hp.cpool)
	binary, nsLen := hp.master.binary, hp.master.nsLen
	p.bmu.RUnlock()
	if f.memc == nil {
		p.untake(hp, s)
		code := ReturnCode(f.rc)
		if code == ReturnSuccess || code == ReturnNotFound {
			// A failed grow reports success; exhaustion (impossible
			// while we hold a token) reports NOTFOUND: neither is a miss.
			code = ReturnMemoryAllocationFailure
		}
		return nil, &Error{Code: code, Original: ReturnCode(f.rc), Op: "acquire", Message: "memcached_pool_fetch returned no handle"}
	}
	if s == nil {
		s = &handle{pool: hp, counting: hp.master.counting, sasl: hp.master.sasl}
		s.c = C.lmc_client_new(hp.master.memc, f.memc, boolInt(hp.master.counting))
		if s.c == nil {
			C.memcached_pool_release(hp.cpool, f.memc)
			p.untake(hp, nil)
			return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "acquire"}
		}
		s.c.spin.budget_ns = hp.master.c.spin.budget_ns
	}
	s.c.memc = f.memc
	s.memc = f.memc
	s.binary, s.nsLen = binary, nsLen
	s.setAuthGuard()
	return s, nil
}

// untake gives back a token taken by take, with slot s (if any) of hp,
// idle again; it frees hp if it is retired and this was its last handle,
// and everything if the pool is closed and this was the last handle out.
func (p *pool) untake(hp *handlePool, s *handle) {
	p.mu.Lock()
	if s != nil {
		hp.free = append(hp.free, s)
	}
	hp.out--
	gone := hp.retired && hp.out == 0
	p.out--
	last := p.closed && p.out == 0
	p.mu.Unlock()
	<-p.sem
	if gone {
		hp.destroy()
	}
	if last {
		p.destroy()
	}
}

// put returns a slot's handle to the pool, after resetting its connections
// if its last operation timed out (see handle.resetAfterTimeout), or to
// the coalescer if it owns the handle (sticky.go).
func (p *pool) put(s *handle) {
	s.resetAfterTimeout()
	if p.coal != nil && p.coal.reclaim(s) {
		return
	}
	p.toStack(s)
}

// toStack returns a slot's handle to libmemcachedutil's stack.
func (p *pool) toStack(s *handle) {
	memc := s.memc
	s.memc = nil
	s.c.memc = nil
	C.memcached_pool_release(s.pool.cpool, memc)
	p.untake(s.pool, s)
}

// Acquire returns a client for the caller's exclusive use, waiting until
// one is free or ctx is done (then it returns ctx.Err()). Give it back with
// Release (or its Close). After release the client returns ErrClosed.
// Behaviors cannot be changed on an acquired client: use the Pool's
// SetBehavior, which applies to every client.
func (p *Pool) Acquire(ctx context.Context) (*Client, error) {
	s, err := p.p.take(ctx)
	if err != nil {
		return nil, err
	}
	return newClient(s, p.obs), nil
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
// Concurrency model). A pool that is not warmed does the same by itself
// in the background at its first use (and at the first use after
// SetServers): it connects the handles that are free then, back to back,
// giving up after 250 ms; Warm is for connecting before the first request
// and for learning that a server cannot be reached. Either way, after a
// server restarts the pool reconnects its idle handles back to back again
// (see respread.go).
//
// Behavior changes made through the Pool later (SetBehavior) apply to the
// idle handles in place; the socket-level ones (the protocol, tcp_nodelay,
// keepalive, socket buffer sizes, no_block) make libmemcached close their
// connections: call Warm again after one if it matters. UDP pools have no
// connections: Warm takes and gives back the clients and returns nil.
func (p *Pool) Warm(ctx context.Context) error {
	p.p.warm.CompareAndSwap(warmNever, warmDone)
	gen := p.p.releaseKept(false)
	taken := make([]*handle, 0, p.p.size)
	defer func() {
		// Given back in the order taken: the last connected ends on top
		// of libmemcachedutil's stack of free handles, or with the
		// coalescer.
		p.p.handBack(taken, gen)
	}()
	for len(taken) < p.p.size {
		s, err := p.p.take(ctx)
		if err != nil {
			return err
		}
		taken = append(taken, s)
	}
	return connectInTurn(ctx, taken)
}

// connectInTurn connects handles one after another (see Warm), closing
// the connections of those that had some first, stopping at the first
// failure or when ctx ends.
func connectInTurn(ctx context.Context, handles []*handle) error {
	for _, s := range handles {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A handle connected before, out of turn (a caller's, at the
		// pool's first use), connects again in its turn.
		if err := s.reconnect("warm"); err != nil {
			return err
		}
	}
	return nil
}

// autoWarm's states.
const (
	warmNever int32 = iota
	warmRunning
	warmDone
	warmAgain
)

// autoWarmTimeout bounds the connections autoWarm makes: each handle's
// connect and poll timeouts are lowered to what is left of it, so a server
// that is down costs the pool's other callers at most this long a wait.
const autoWarmTimeout = 250 * time.Millisecond

// startAutoWarm starts autoWarm on the pool's first take for its current
// server list (not after Warm), and respread when a fault asked for one
// and its time has come.
func (p *pool) startAutoWarm() {
	var run func()
	switch p.warm.Load() {
	case warmNever:
		if p.warm.CompareAndSwap(warmNever, warmRunning) {
			run = p.autoWarm
		}
	case warmAgain:
		if time.Now().UnixNano() >= p.respreadAt.Load() && p.warm.CompareAndSwap(warmAgain, warmRunning) {
			run = p.respread
		}
	}
	if run == nil {
		return
	}
	if p.connectsLazily() {
		p.warm.Store(warmDone)
		return
	}
	go run()
}

// connectsLazily reports whether the pool's handles are left to connect
// at their first use: noreply pools (a version request on a handle whose
// noreply command's reply is still unread would read that reply as its
// own and leave VERSION for the next get; Warm right after NewPool is
// safe) and UDP pools (no connections).
func (p *pool) connectsLazily() bool {
	p.bmu.RLock()
	defer p.bmu.RUnlock()
	m := p.master().memc
	return C.memcached_behavior_get(m, C.MEMCACHED_BEHAVIOR_NOREPLY) != 0 ||
		C.memcached_behavior_get(m, C.MEMCACHED_BEHAVIOR_USE_UDP) != 0
}

// autoWarm is Warm in the background, at the pool's first use, so that a
// pool spreads over the servers' worker threads without a call to Warm
// (see Warm; without it a lazily connected pool's two busiest handles may
// share one memcached thread): it takes the handles that are free at that
// moment (never waiting for one), connects them back to back, and gives
// them back in turn; if a handle was in use meanwhile (its caller's
// connection took a turn in the middle), it sweeps once more (see
// respread.go). A failure stops it; those handles connect on first use as
// they would have. UDP pools have nothing to connect.
func (p *pool) autoWarm() {
	defer p.warm.CompareAndSwap(warmRunning, warmDone)
	ctx, cancel := context.WithTimeout(context.Background(), autoWarmTimeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	gen := p.releaseKept(false)
	var taken []*handle
	for len(taken) < p.size {
		s := p.tryTake()
		if s == nil {
			break
		}
		s.limitTimeouts(dl)
		taken = append(taken, s)
	}
	err := connectInTurn(ctx, taken)
	for _, s := range taken {
		_ = s.restoreTimeouts(ctx, nil)
	}
	p.handBack(taken, gen)
	if err == nil && len(taken) < p.size && ctx.Err() == nil {
		p.spread(ctx, nil, true)
	}
}

// Release gives a client from Acquire back to the pool. Releasing it again,
// releasing nil, or a client of another pool or none, does nothing.
func (p *Pool) Release(c *Client) {
	if c == nil {
		return
	}
	h := c.lh.detach(func(h *handle) bool { return h.pool != nil && h.pool.p == p.p })
	if h == nil {
		return
	}
	runtime.SetFinalizer(c, nil)
	p.p.put(h)
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
	runtime.SetFinalizer(p, nil)
	p.p.close()
	return nil
}

// close closes the pool and reports whether it was open.
func (p *pool) close() bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.closed = true
	close(p.done)
	last := p.out == 0
	p.mu.Unlock()
	if last {
		p.destroy()
	} else {
		p.releaseKept(true) // the last one back destroys (untake)
	}
	return true
}

// destroy frees every handle; called once, when closed and all are back.
func (p *pool) destroy() {
	p.bmu.Lock() // no reader of master while it goes
	defer p.bmu.Unlock()
	p.mu.Lock()
	hp := p.cur
	p.mu.Unlock()
	hp.destroy()
}

// destroy frees the handle pool's slots, its memcached_pool and its
// master, once none of its handles is out; a second call does nothing.
func (hp *handlePool) destroy() {
	hp.p.mu.Lock()
	slots := hp.free
	hp.free = nil
	cp := hp.cpool
	hp.cpool = nil
	hp.p.mu.Unlock()
	if cp == nil {
		return
	}
	// The slots' results are rooted at master: free them while it lives.
	for _, s := range slots {
		s.free()
	}
	C.memcached_pool_destroy(cp)
	hp.master.free()
	releasePollConns()
}

// SetServers replaces the pool's servers, checked as NewPool checks them.
// On success the pool hands out handles for the new list (with the same
// behaviors, namespace and credentials) to every later operation and
// Acquire; operations in progress, and clients acquired before, finish on
// the old handles, which are freed as they come back. No caller fails or
// waits longer than for one operation because of the change.
func (p *Pool) SetServers(servers []string) error {
	specs, udp, err := parseServers("set_servers", servers)
	if err != nil {
		return err
	}
	if err := p.p.lockOpen(); err != nil {
		return err
	}
	defer p.p.bmu.Unlock()
	master, err := p.p.master().withServers("set_servers", specs, udp)
	if err != nil {
		return err
	}
	hp, err := p.p.newHandlePool(master)
	if err != nil {
		return err
	}
	p.p.mu.Lock()
	old := p.p.cur
	p.p.cur = hp
	p.p.respreadTries.Store(0)
	p.p.respreadQuiet.Store(0)
	p.p.warm.Store(warmNever) // the new list's handles connect in turn too
	old.retired = true
	p.p.mu.Unlock()
	p.p.releaseKept(true) // the old list's
	p.p.mu.Lock()
	gone := old.out == 0 && old.cpool != nil
	p.p.mu.Unlock()
	if gone {
		old.destroy()
	}
	return nil
}

// Get is Get on a handle of the pool. Concurrent Gets and GetMultis are
// coalesced into shared multi-gets (see WithCoalescing); each caller still
// gets exactly its own item, miss or error.
func (p *Pool) Get(key string) (*Item, error) { return p.GetContext(context.Background(), key) }

// GetContext is Get within ctx. A caller whose context ends while it waits
// for a coalesced batch leaves at once; the batch goes on for the others.
func (p *Pool) GetContext(ctx context.Context, key string) (*Item, error) {
	if p.p.coal != nil {
		return p.p.coal.get(ctx, key)
	}
	return p.commands.GetContext(ctx, key)
}

// GetMulti is GetMulti on a handle of the pool, coalesced as Get is. Each
// caller gets its own Items.
func (p *Pool) GetMulti(keys []string) (map[string]*Item, error) {
	return p.GetMultiContext(context.Background(), keys)
}

// GetMultiContext is GetMulti within ctx, coalesced as GetContext is.
func (p *Pool) GetMultiContext(ctx context.Context, keys []string) (map[string]*Item, error) {
	if p.p.coal != nil {
		return p.p.coal.getMulti(ctx, keys)
	}
	return do(&p.commands, ctx, call{"GetMulti", "", len(keys), false}, func(h *handle) (map[string]*Item, error) {
		for _, k := range keys {
			if err := h.checkKey("get_multi", k); err != nil {
				return nil, err // nothing sent, as Client.GetMulti
			}
		}
		return p.p.splitGetMulti(ctx, h, keys)
	})
}

// SetBehavior sets a behavior on the pool's master handle and every idle
// handle (memcached_pool_behavior_set); handles that are out take it when
// released. Acquired clients keep the old value until then.
func (p *Pool) SetBehavior(b Behavior, value uint64) error {
	if err := p.p.lockOpen(); err != nil {
		return err
	}
	defer p.p.bmu.Unlock()
	return p.p.setBehavior("set_behavior", b, value)
}

func (p *pool) setBehavior(op string, b Behavior, value uint64) error {
	if err := checkBehaviorValue(op, b, value); err != nil {
		return err
	}
	p.releaseKept(true) // kept handles are idle ones: changed in place
	rc := C.memcached_pool_behavior_set(p.cur.cpool, libBehavior(b), C.uint64_t(value))
	if rc != C.MEMCACHED_SUCCESS {
		return handleError(p.master().memc, op, "", rc)
	}
	p.master().syncState()
	return nil
}

// SetBehaviors is Client.SetBehaviors for the whole pool, applied as
// SetBehavior does.
func (p *Pool) SetBehaviors(m map[string]any) error {
	settings, err := resolveBehaviors(m)
	if err != nil {
		return err
	}
	if err := p.p.lockOpen(); err != nil {
		return err
	}
	defer p.p.bmu.Unlock()
	for _, s := range settings {
		if err := p.p.setBehavior("set_behaviors", s.b, s.value); err != nil {
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
	p.p.bmu.RLock()
	defer p.p.bmu.RUnlock()
	if err := p.p.checkOpen(); err != nil {
		return 0, err
	}
	return behaviorGet(p.p.master().memc, b)
}

// Behaviors is Client.Behaviors for the pool's master handle.
func (p *Pool) Behaviors() map[string]any {
	p.p.bmu.RLock()
	defer p.p.bmu.RUnlock()
	if p.p.checkOpen() != nil {
		return nil
	}
	return behaviorsOf(p.p.master().memc)
}

// lockOpen takes bmu for a change of behaviors or servers, unless the pool
// is closed (then it returns ErrClosed, unlocked).
func (p *pool) lockOpen() error {
	p.bmu.Lock()
	if err := p.checkOpen(); err != nil {
		p.bmu.Unlock()
		return err
	}
	return nil
}

// checkOpen reports ErrClosed once Close was called; callers hold bmu, so
// the master cannot be destroyed while they use it.
func (p *pool) checkOpen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	return nil
}
