package libmemcached

/*
#include <stdlib.h>
#include <string.h>
#include <libmemcached-1.0/memcached.h>
#include "cgo_helpers.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// MaxKeyLength is the longest key memcached accepts, in bytes, namespace
// included.
const MaxKeyLength = 250

// maxNamespaceLength is libmemcached's longest namespace less its NUL
// (MEMCACHED_MAX_NAMESPACE; see compat.h).
const maxNamespaceLength = C.LMC_MAX_NAMESPACE - 1

// Item is an item to be stored in, or read from, memcached.
type Item struct {
	// Key is the item's key: 1 to 250 bytes (namespace included). In the
	// ASCII protocol it may not contain spaces or control bytes; in the
	// binary protocol any bytes are allowed.
	Key string
	// Value is the item's value.
	Value []byte
	// Flags are 32 opaque bits stored with the value.
	Flags uint32
	// Expiration is the expiry in seconds: 0 for never, up to 30 days
	// relative, larger values as a Unix time. Negative values are refused.
	Expiration int32
	// CasID is the compare-and-swap token, filled by Get and GetMulti and
	// required by CompareAndSwap.
	CasID uint64
}

// Client is a memcached client over one libmemcached handle (memcached_st).
//
// A Client is safe for concurrent use by multiple goroutines: its calls are
// serialized on the handle, so one Client does one request at a time. For
// parallel requests, use a Pool, or Clone a Client per goroutine.
//
// A Client that is dropped without Close is closed when the garbage
// collector finds it (a client from Pool.Acquire goes back to its pool);
// Close it to free its handle and connections without waiting for that.
type Client struct {
	commands
	lh      *lockedHandle
	created origin // where the client was made (build tag libmemcached_leakcheck)
}

// lockedHandle is a Client's handle behind the Client's lock (a channel,
// so that waiting for it can honour a context). It is kept apart from the
// Client so that the Client can have a finalizer: nothing points back at
// the Client.
type lockedHandle struct {
	sem chan struct{} // holds a token while an operation has the handle
	h   *handle       // nil after Close, or once released to its pool
}

// acquire locks the handle for one operation; release unlocks it.
func (l *lockedHandle) acquire(ctx context.Context) (*handle, error) {
	if done := ctx.Done(); done == nil {
		l.sem <- struct{}{}
	} else {
		select {
		case l.sem <- struct{}{}:
		case <-done:
			return nil, ctx.Err()
		}
	}
	if l.h == nil {
		<-l.sem
		return nil, ErrClosed
	}
	return l.h, nil
}

func (l *lockedHandle) release(h *handle) {
	h.resetAfterTimeout()
	<-l.sem
}

// detach takes the handle from the Client, waiting for an operation in
// progress; later calls return ErrClosed. With keep, it detaches only a
// handle that keep accepts.
func (l *lockedHandle) detach(keep func(*handle) bool) *handle {
	l.sem <- struct{}{}
	defer func() { <-l.sem }()
	h := l.h
	if h == nil || (keep != nil && !keep(h)) {
		return nil
	}
	l.h = nil
	return h
}

// newClient makes the Client view of h; obs is its observer, or nil.
func newClient(h *handle, obs func(Event)) *Client {
	lh := &lockedHandle{sem: make(chan struct{}, 1), h: h}
	c := &Client{commands: commands{src: lh, obs: obs}, lh: lh, created: here()}
	runtime.SetFinalizer(c, (*Client).finalize)
	return c
}

// finalize is the safety net for a Client nobody closed.
func (c *Client) finalize() {
	if h := c.lh.detach(nil); h != nil {
		c.created.report("Client")
		drop(h)
	}
}

// drop disposes of a detached handle: back to its pool, or freed.
func drop(h *handle) {
	if h.pool != nil {
		h.pool.p.put(h)
		return
	}
	h.free()
}

// New returns a client for the given servers. Each server is "host:port",
// "host" (port 11211), "[ipv6]:port", "[ipv6]", or the path of a Unix
// socket ("/path/to.sock"); a TCP server may carry a weight after its port
// ("host:port:2"), used by weighted ketama. pylibmc's "udp:host:port"
// forms are accepted too; UDP servers cannot be mixed with others, and
// libmemcached only sends storage commands and deletes over UDP (a get
// returns ErrNotSupported), as with pylibmc. New does not connect:
// libmemcached connects on first use, so a server that is down surfaces as
// an error from the first operation that needs it.
func New(servers []string, opts ...Option) (*Client, error) {
	o := collect(opts)
	h, err := openServers(servers, o)
	if err != nil {
		return nil, err
	}
	return newClient(h, o.observer), nil
}

// openServers is New's handle.
func openServers(servers []string, o *options) (*handle, error) {
	if err := checkLoadedLibrary(); err != nil {
		return nil, err
	}
	specs, udp, err := parseServers("new", servers)
	if err != nil {
		return nil, err
	}
	memc := C.memcached_create(nil)
	if memc == nil {
		return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "new"}
	}
	if o.counting {
		C.lmc_use_counting_allocator(memc)
	}
	if udp { // as pylibmc: USE_UDP makes memcached_server_add_with_weight add UDP servers
		if rc := C.memcached_behavior_set(memc, C.MEMCACHED_BEHAVIOR_USE_UDP, 1); rc != C.MEMCACHED_SUCCESS {
			err := handleError(memc, "new", "", rc)
			C.memcached_free(memc)
			return nil, err
		}
	}
	if err := addServers(memc, "new", specs); err != nil {
		C.memcached_free(memc)
		return nil, err
	}
	return newHandle(memc, memc, o)
}

// NewFromConfig returns a client configured with libmemcached's
// configuration language, for example
// `--SERVER=10.0.0.1:11211/?2 --SERVER=10.0.0.2 --BINARY-PROTOCOL
// --NAMESPACE="app:"` (values with punctuation need the quotes). A string libmemcached cannot parse returns an error
// (ErrParseError) carrying libmemcached's parse message. Options apply after
// the configuration.
func NewFromConfig(config string, opts ...Option) (*Client, error) {
	o := collect(opts)
	h, err := openConfig(config, o)
	if err != nil {
		return nil, err
	}
	return newClient(h, o.observer), nil
}

// openConfig is NewFromConfig's handle.
func openConfig(config string, o *options) (*handle, error) {
	if err := checkLoadedLibrary(); err != nil {
		return nil, err
	}
	if strings.IndexByte(config, 0) >= 0 {
		return nil, inputError("new", "", ReturnInvalidArguments, "configuration contains a NUL byte")
	}
	cfg := C.CString(config)
	defer C.free(unsafe.Pointer(cfg))
	var msg [2048]C.char
	rc := C.libmemcached_check_configuration(cfg, C.size_t(len(config)), &msg[0], C.size_t(len(msg)))
	if rc != C.MEMCACHED_SUCCESS {
		return nil, &Error{Code: ReturnCode(rc), Original: ReturnCode(rc), Op: "new", Message: C.GoString(&msg[0])}
	}
	memc := C.memcached(cfg, C.size_t(len(config)))
	if memc == nil {
		return nil, &Error{Code: ReturnParseError, Original: ReturnParseError, Op: "new", Message: "libmemcached rejected the configuration"}
	}
	if o.counting {
		C.lmc_use_counting_allocator(memc)
	}
	if C.memcached_server_count(memc) == 0 {
		C.memcached_free(memc)
		return nil, &Error{Code: ReturnNoServers, Original: ReturnNoServers, Op: "new", Message: "the configuration names no server"}
	}
	return newHandle(memc, memc, o)
}

// Close frees the client's handle and closes its connections. Calls after
// Close return ErrClosed; Close itself is idempotent. Closing a client that
// came from Pool.Acquire releases it to the pool instead.
func (c *Client) Close() error {
	if h := c.lh.detach(nil); h != nil {
		runtime.SetFinalizer(c, nil)
		drop(h)
	}
	return nil
}

// DisconnectAll closes every connection of the client (memcached_quit); the
// next operation reconnects.
func (c *Client) DisconnectAll() {
	do0(c.local(), context.Background(), call{}, func(h *handle) error {
		C.memcached_quit(h.memc)
		return nil
	})
}

// Clone returns a new, independent Client with the same servers, behaviors,
// namespace and credentials (memcached_clone), and no connections yet.
func (c *Client) Clone() (*Client, error) {
	h, err := do(c.local(), context.Background(), call{}, (*handle).clone)
	if err != nil {
		return nil, err
	}
	return newClient(h, c.obs), nil
}

// SetServers replaces the client's servers, given as New takes them and
// checked as New checks them (UDP servers only replace UDP servers). On
// success every later operation uses the new list, with the same
// behaviors, namespace and credentials, and new connections; an operation
// in progress finishes on the old one first. On a client acquired from a
// Pool it returns an error: use Pool.SetServers.
func (c *Client) SetServers(servers []string) error {
	specs, udp, err := parseServers("set_servers", servers)
	if err != nil {
		return err
	}
	var old *handle
	err = do0(c.local(), context.Background(), call{}, func(h *handle) error {
		if h.pool != nil {
			return inputError("set_servers", "", ReturnInvalidArguments, "client belongs to a Pool: use Pool.SetServers")
		}
		nh, err := h.withServers("set_servers", specs, udp)
		if err != nil {
			return err
		}
		old, c.lh.h = h, nh
		return nil
	})
	if old != nil {
		old.free() // detached: nothing else can reach it
	}
	return err
}

// ---------------------------------------------------------------------------
// The operations Client and Pool share

// handleSource lends a handle for one operation: a Client its own, under
// its lock; a Pool one of its handles. acquire honours ctx while it waits.
type handleSource interface {
	acquire(ctx context.Context) (*handle, error)
	release(*handle)
}

// commands are the operations Client and Pool share, written once over a
// handleSource (as go-redis's cmdable is over a process function) and
// promoted to both; Pool replaces Get and GetMulti with coalescing forms.
type commands struct {
	src handleSource
	obs func(Event) // WithObserver; nil: nothing is measured
}

// call describes an operation for its Event.
type call struct {
	op    string // Event.Op
	key   string // the key of a single-key operation, or the server key, for Event.Server
	keys  int    // Event.Keys
	byKey bool   // a ByKey operation: key is its server key, which may not be empty
}

// do runs fn on a handle lent for the call, within ctx: a context already
// done returns its error and touches no server; a deadline bounds the wait
// for the handle and libmemcached's connect and poll timeouts for the call.
func do[T any](c *commands, ctx context.Context, cl call, fn func(*handle) (T, error)) (v T, err error) {
	if cl.byKey && cl.key == "" {
		err := inputError(snakeCase(cl.op), "", ReturnBadKeyProvided, "empty server key")
		c.observe(ctx, cl, nil, time.Time{}, 0, err)
		return v, err
	}
	if err := ctx.Err(); err != nil {
		c.observe(ctx, cl, nil, time.Time{}, 0, err)
		return v, err
	}
	var start time.Time
	if c.obs != nil {
		start = time.Now()
	}
	h, err := c.src.acquire(ctx)
	if err != nil {
		c.observe(ctx, cl, nil, start, 0, err)
		return v, err
	}
	var wait time.Duration
	if c.obs != nil {
		wait = time.Since(start)
	}
	defer func() {
		var ev Event
		if c.obs != nil {
			ev = cl.event(h, start, wait, err)
			ev.Hits, ev.Context = hits(v), ctx
		}
		c.src.release(h)
		if c.obs != nil {
			c.obs(ev)
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		h.limitTimeouts(dl)
		defer func() { err = h.restoreTimeouts(ctx, err) }()
	}
	return fn(h)
}

// do0 is do for an operation with no result.
func do0(c *commands, ctx context.Context, cl call, fn func(*handle) error) error {
	_, err := do(c, ctx, cl, func(h *handle) (struct{}, error) { return struct{}{}, fn(h) })
	return err
}

// Get gets the item for key. A miss returns an error for which
// errors.Is(err, ErrCacheMiss) is true. The item's CasID is filled.
func (c *commands) Get(key string) (*Item, error) { return c.GetContext(context.Background(), key) }

// GetContext is Get within ctx (see the package's section on contexts).
func (c *commands) GetContext(ctx context.Context, key string) (*Item, error) {
	return do(c, ctx, call{"Get", key, 1, false}, func(h *handle) (*Item, error) { return h.get(key) })
}

// GetMulti gets the items for keys in one round trip per server. Keys that
// miss are absent from the map; they are not errors. An empty or nil list
// returns an empty map. If a server fails, the items from the others are
// returned together with the error.
func (c *commands) GetMulti(keys []string) (map[string]*Item, error) {
	return c.GetMultiContext(context.Background(), keys)
}

// GetMultiContext is GetMulti within ctx.
func (c *commands) GetMultiContext(ctx context.Context, keys []string) (map[string]*Item, error) {
	return do(c, ctx, call{"GetMulti", "", len(keys), false}, func(h *handle) (map[string]*Item, error) { return h.getMulti(keys) })
}

// store runs one of the storage commands.
func (c *commands) store(ctx context.Context, op storeOp, item *Item) error {
	key := ""
	if item != nil {
		key = item.Key
	}
	return do0(c, ctx, call{storeOpEvents[op], key, 1, false}, func(h *handle) error { return h.store(op, item) })
}

// Set writes the item unconditionally.
func (c *commands) Set(item *Item) error { return c.store(context.Background(), opSet, item) }

// SetContext is Set within ctx.
func (c *commands) SetContext(ctx context.Context, item *Item) error {
	return c.store(ctx, opSet, item)
}

// Add writes the item only if its key is absent; otherwise errors.Is(err,
// ErrNotStored).
func (c *commands) Add(item *Item) error { return c.store(context.Background(), opAdd, item) }

// AddContext is Add within ctx.
func (c *commands) AddContext(ctx context.Context, item *Item) error {
	return c.store(ctx, opAdd, item)
}

// Replace writes the item only if its key is present; otherwise
// errors.Is(err, ErrNotStored).
func (c *commands) Replace(item *Item) error { return c.store(context.Background(), opReplace, item) }

// ReplaceContext is Replace within ctx.
func (c *commands) ReplaceContext(ctx context.Context, item *Item) error {
	return c.store(ctx, opReplace, item)
}

// Append appends the item's value to the stored value of its key (flags and
// expiration are left as they are); if the key is absent, errors.Is(err,
// ErrNotStored).
func (c *commands) Append(item *Item) error { return c.store(context.Background(), opAppend, item) }

// AppendContext is Append within ctx.
func (c *commands) AppendContext(ctx context.Context, item *Item) error {
	return c.store(ctx, opAppend, item)
}

// Prepend is Append at the front of the stored value.
func (c *commands) Prepend(item *Item) error { return c.store(context.Background(), opPrepend, item) }

// PrependContext is Prepend within ctx.
func (c *commands) PrependContext(ctx context.Context, item *Item) error {
	return c.store(ctx, opPrepend, item)
}

// CompareAndSwap writes the item only if it is unchanged since item.CasID
// was read by Get or GetMulti. A change in between gives errors.Is(err,
// ErrCASConflict); an absent key errors.Is(err, ErrCacheMiss).
func (c *commands) CompareAndSwap(item *Item) error {
	return c.store(context.Background(), opCAS, item)
}

// CompareAndSwapContext is CompareAndSwap within ctx.
func (c *commands) CompareAndSwapContext(ctx context.Context, item *Item) error {
	return c.store(ctx, opCAS, item)
}

// Delete deletes the item for key; a miss gives errors.Is(err,
// ErrCacheMiss).
func (c *commands) Delete(key string) error { return c.DeleteContext(context.Background(), key) }

// DeleteContext is Delete within ctx.
func (c *commands) DeleteContext(ctx context.Context, key string) error {
	return do0(c, ctx, call{"Delete", key, 1, false}, func(h *handle) error { return h.delete(key) })
}

// Increment adds delta (any uint64) to the decimal number stored at key and
// returns the new value, wrapping at 2^64 as memcached does. A miss gives
// errors.Is(err, ErrCacheMiss); IncrementWithInitial creates the key
// instead.
func (c *commands) Increment(key string, delta uint64) (uint64, error) {
	return c.IncrementContext(context.Background(), key, delta)
}

// IncrementContext is Increment within ctx.
func (c *commands) IncrementContext(ctx context.Context, key string, delta uint64) (uint64, error) {
	return do(c, ctx, call{"Increment", key, 1, false}, func(h *handle) (uint64, error) { return h.incr("incr", "", key, delta, false, nil, 0) })
}

// Decrement subtracts delta from the decimal number stored at key and
// returns the new value; it stops at 0. Otherwise as Increment.
//
// memcached rewrites the number in place, so after a decrement to fewer
// digits a Get returns it padded with trailing spaces ("9 "): use the value
// Decrement returns, or trim.
func (c *commands) Decrement(key string, delta uint64) (uint64, error) {
	return c.DecrementContext(context.Background(), key, delta)
}

// DecrementContext is Decrement within ctx.
func (c *commands) DecrementContext(ctx context.Context, key string, delta uint64) (uint64, error) {
	return do(c, ctx, call{"Decrement", key, 1, false}, func(h *handle) (uint64, error) { return h.incr("decr", "", key, delta, true, nil, 0) })
}

// IncrementWithInitial is Increment, except that an absent key is created
// holding initial, with the given expiration (seconds, as in Item), and
// initial is returned. The binary protocol does this in one command. The
// ASCII protocol has none: the client sends incr, then on a miss add, then
// incr again if another client's add won the race, so a present key is
// always changed by delta and an absent one created once.
func (c *commands) IncrementWithInitial(key string, delta, initial uint64, expiration int32) (uint64, error) {
	return do(c, context.Background(), call{"IncrementWithInitial", key, 1, false}, func(h *handle) (uint64, error) {
		return h.incr("incr", "", key, delta, false, &initial, expiration)
	})
}

// DecrementWithInitial is Decrement with an initial value for an absent
// key, as IncrementWithInitial.
func (c *commands) DecrementWithInitial(key string, delta, initial uint64, expiration int32) (uint64, error) {
	return do(c, context.Background(), call{"DecrementWithInitial", key, 1, false}, func(h *handle) (uint64, error) {
		return h.incr("decr", "", key, delta, true, &initial, expiration)
	})
}

// Touch sets a new expiration, in seconds, on the item for key without
// fetching it. A miss gives errors.Is(err, ErrCacheMiss).
func (c *commands) Touch(key string, seconds int32) error {
	return c.TouchContext(context.Background(), key, seconds)
}

// TouchContext is Touch within ctx.
func (c *commands) TouchContext(ctx context.Context, key string, seconds int32) error {
	return do0(c, ctx, call{"Touch", key, 1, false}, func(h *handle) error { return h.touch(key, seconds) })
}

// SetMulti sets every item in one cgo call. It returns the keys that were
// not stored, and an error for which errors.Is(err, ErrSomeErrors) holds
// and which wraps each key's own error (so errors.Is(err,
// ErrConnectionFailure), say, also works). Invalid input (a nil item, a bad
// key) is reported before anything is sent.
func (c *commands) SetMulti(items []*Item) (failed []string, err error) {
	return c.SetMultiContext(context.Background(), items)
}

// SetMultiContext is SetMulti within ctx.
func (c *commands) SetMultiContext(ctx context.Context, items []*Item) (failed []string, err error) {
	return do(c, ctx, call{"SetMulti", "", len(items), false}, func(h *handle) ([]string, error) { return h.setMulti(items) })
}

// DeleteMulti deletes every key in one cgo call. If some keys were not
// deleted, the error satisfies errors.Is(err, ErrSomeErrors) and wraps each
// key's error: errors.Is(err, ErrCacheMiss) tells that some were absent.
func (c *commands) DeleteMulti(keys []string) error {
	return c.DeleteMultiContext(context.Background(), keys)
}

// DeleteMultiContext is DeleteMulti within ctx.
func (c *commands) DeleteMultiContext(ctx context.Context, keys []string) error {
	return do0(c, ctx, call{"DeleteMulti", "", len(keys), false}, func(h *handle) error { return h.deleteMulti(keys) })
}

// FlushAll invalidates every item on every server. Through a proxy that
// refuses it (twemproxy) it returns ErrNotSupported naming the command.
func (c *commands) FlushAll() error {
	return do0(c, context.Background(), call{op: "FlushAll"}, (*handle).flushAll)
}

// Ping asks every server for its version over a fresh connection (with
// the client's timeouts and credentials) and returns an error if any of
// them does not answer; the error names the server. A server whose VERSION
// line is not a number (mcrouter: "VERSION mcrouter 0.41.0"), which
// libmemcached cannot parse, has answered.
func (c *commands) Ping() error {
	_, err := do(c, context.Background(), call{op: "Ping"}, func(h *handle) (map[string]string, error) { return h.versions("ping") })
	return err
}

// Stats returns every server's general statistics: "host:port" -> stat
// name -> value. If a server fails, the others' statistics are returned
// together with the error.
func (c *commands) Stats() (map[string]map[string]string, error) {
	return c.stats("Stats", "")
}

// StatsArg returns the statistics group arg ("items", "slabs", "settings",
// "sizes", "conns", ...) of every server, as Stats does.
func (c *commands) StatsArg(arg string) (map[string]map[string]string, error) {
	for i := 0; i < len(arg); i++ {
		if b := arg[i]; b < ' ' || b == 0x7f {
			return nil, inputError("stats", "", ReturnInvalidArguments, fmt.Sprintf("stats argument byte %d is %#x", i, b))
		}
	}
	if len(arg) > 200 {
		return nil, inputError("stats", "", ReturnInvalidArguments, "stats argument is longer than 200 bytes")
	}
	return c.stats("StatsArg", arg)
}

func (c *commands) stats(op, arg string) (map[string]map[string]string, error) {
	return do(c, context.Background(), call{op: op}, func(h *handle) (map[string]map[string]string, error) { return h.stats(arg) })
}

// Version returns each server's version: "host:port" -> "1.6.18", asked
// over a fresh connection to each. If a server fails, the others' versions
// are returned together with the error.
//
// The version is libmemcached's reading of the server's VERSION line as
// major.minor.micro numbers. A server whose line is not a number (a proxy:
// mcrouter answers "VERSION mcrouter 0.41.0") gets its own text
// ("mcrouter 0.41.0"): libmemcached cannot parse it and keeps no copy, so
// Version asks that server once more over a connection of its own, with
// the client's protocol, connect timeout and poll timeout. Through
// twemproxy it is the version of the memcached twemproxy asked.
func (c *commands) Version() (map[string]string, error) {
	return do(c, context.Background(), call{op: "Version"}, func(h *handle) (map[string]string, error) { return h.versions("version") })
}

// Servers returns the servers as "host:port" (or socket path), in
// libmemcached's order; nil once closed. It sends nothing and reports no
// Event.
func (c *commands) Servers() []string {
	out, _ := do(c.local(), context.Background(), call{}, func(h *handle) ([]string, error) { return h.servers(), nil })
	return out
}

// ServerFor returns the server ("host:port" or socket path) that key maps
// to under the hash and distribution in use (memcached_server_by_key). It
// sends nothing and reports no Event.
func (c *commands) ServerFor(key string) (string, error) {
	return do(c.local(), context.Background(), call{}, func(h *handle) (string, error) { return h.serverFor(key) })
}

// local is c without its observer, for what sends nothing to a server.
func (c *commands) local() *commands { return &commands{src: c.src} }
