package libmemcached

/*
#include <stdlib.h>
#include <string.h>
#include <libmemcached-1.0/memcached.h>
#include "cgo_helpers.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
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

// lockedHandle is a Client's handle behind the Client's mutex. It is kept
// apart from the Client so that the Client can have a finalizer: nothing
// points back at the Client.
type lockedHandle struct {
	mu sync.Mutex
	h  *handle // nil after Close, or once released to its pool
}

// acquire locks the handle for one operation; release unlocks it.
func (l *lockedHandle) acquire() (*handle, error) {
	l.mu.Lock()
	if l.h == nil {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	return l.h, nil
}

func (l *lockedHandle) release(h *handle) {
	h.resetAfterTimeout()
	l.mu.Unlock()
}

// detach takes the handle from the Client, waiting for an operation in
// progress; later calls return ErrClosed.
func (l *lockedHandle) detach() *handle {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.h
	l.h = nil
	return h
}

// newClient makes the Client view of h.
func newClient(h *handle) *Client {
	lh := &lockedHandle{h: h}
	c := &Client{commands: commands{src: lh}, lh: lh, created: here()}
	runtime.SetFinalizer(c, (*Client).finalize)
	return c
}

// finalize is the safety net for a Client nobody closed.
func (c *Client) finalize() {
	if h := c.lh.detach(); h != nil {
		c.created.report("Client")
		drop(h)
	}
}

// drop disposes of a detached handle: back to its pool, or freed.
func drop(h *handle) {
	if h.pool != nil {
		h.pool.put(h)
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
	return newClient(h), nil
}

// openServers is New's handle.
func openServers(servers []string, o *options) (*handle, error) {
	if err := checkLoadedLibrary(); err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, &Error{Code: ReturnNoServers, Original: ReturnNoServers, Op: "new", Message: "no servers given"}
	}
	specs := make([]serverSpec, 0, len(servers))
	for _, s := range servers {
		sp, err := parseServer(s)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	// pylibmc's "udp:" servers: all or none.
	udp := specs[0].udp
	for _, sp := range specs {
		if sp.udp != udp {
			return nil, &Error{Code: ReturnInvalidHostProtocol, Original: ReturnInvalidHostProtocol, Op: "new", Server: sp.String(),
				Message: "cannot mix UDP servers with TCP or socket servers"}
		}
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
	for _, sp := range specs {
		host := C.CString(sp.host)
		var rc C.memcached_return_t
		if sp.socket {
			rc = C.memcached_server_add_unix_socket_with_weight(memc, host, C.uint32_t(sp.weight))
		} else {
			rc = C.memcached_server_add_with_weight(memc, host, C.in_port_t(sp.port), C.uint32_t(sp.weight))
		}
		C.free(unsafe.Pointer(host))
		if rc != C.MEMCACHED_SUCCESS {
			err := handleError(memc, "new", "", rc)
			err.Server = sp.String()
			C.memcached_free(memc)
			return nil, err
		}
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
	return newClient(h), nil
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
	if h := c.lh.detach(); h != nil {
		runtime.SetFinalizer(c, nil)
		drop(h)
	}
	return nil
}

// DisconnectAll closes every connection of the client (memcached_quit); the
// next operation reconnects.
func (c *Client) DisconnectAll() {
	do0(&c.commands, func(h *handle) error {
		C.memcached_quit(h.memc)
		return nil
	})
}

// Clone returns a new, independent Client with the same servers, behaviors,
// namespace and credentials (memcached_clone), and no connections yet.
func (c *Client) Clone() (*Client, error) {
	h, err := do(&c.commands, (*handle).clone)
	if err != nil {
		return nil, err
	}
	return newClient(h), nil
}

// ---------------------------------------------------------------------------
// The operations Client and Pool share

// handleSource lends a handle for one operation: a Client its own, under
// its mutex; a Pool one of its handles.
type handleSource interface {
	acquire() (*handle, error)
	release(*handle)
}

// commands are the operations Client and Pool share, written once over a
// handleSource (as go-redis's cmdable is over a process function) and
// promoted to both; Pool replaces Get and GetMulti with coalescing forms.
type commands struct{ src handleSource }

// do runs fn on a handle lent for the call.
func do[T any](c *commands, fn func(*handle) (T, error)) (T, error) {
	h, err := c.src.acquire()
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.src.release(h)
	return fn(h)
}

// do0 is do for an operation with no result.
func do0(c *commands, fn func(*handle) error) error {
	h, err := c.src.acquire()
	if err != nil {
		return err
	}
	defer c.src.release(h)
	return fn(h)
}

// Get gets the item for key. A miss returns an error for which
// errors.Is(err, ErrCacheMiss) is true. The item's CasID is filled.
func (c *commands) Get(key string) (*Item, error) {
	return do(c, func(h *handle) (*Item, error) { return h.get(key) })
}

// GetMulti gets the items for keys in one round trip per server. Keys that
// miss are absent from the map; they are not errors. An empty or nil list
// returns an empty map. If a server fails, the items from the others are
// returned together with the error.
func (c *commands) GetMulti(keys []string) (map[string]*Item, error) {
	return do(c, func(h *handle) (map[string]*Item, error) { return h.getMulti(keys) })
}

// store runs one of the storage commands.
func (c *commands) store(op storeOp, item *Item) error {
	return do0(c, func(h *handle) error { return h.store(op, item) })
}

// Set writes the item unconditionally.
func (c *commands) Set(item *Item) error { return c.store(opSet, item) }

// Add writes the item only if its key is absent; otherwise errors.Is(err,
// ErrNotStored).
func (c *commands) Add(item *Item) error { return c.store(opAdd, item) }

// Replace writes the item only if its key is present; otherwise
// errors.Is(err, ErrNotStored).
func (c *commands) Replace(item *Item) error { return c.store(opReplace, item) }

// Append appends the item's value to the stored value of its key (flags and
// expiration are left as they are); if the key is absent, errors.Is(err,
// ErrNotStored).
func (c *commands) Append(item *Item) error { return c.store(opAppend, item) }

// Prepend is Append at the front of the stored value.
func (c *commands) Prepend(item *Item) error { return c.store(opPrepend, item) }

// CompareAndSwap writes the item only if it is unchanged since item.CasID
// was read by Get or GetMulti. A change in between gives errors.Is(err,
// ErrCASConflict); an absent key errors.Is(err, ErrCacheMiss).
func (c *commands) CompareAndSwap(item *Item) error { return c.store(opCAS, item) }

// Delete deletes the item for key; a miss gives errors.Is(err,
// ErrCacheMiss).
func (c *commands) Delete(key string) error {
	return do0(c, func(h *handle) error { return h.delete(key) })
}

// Increment adds delta to the decimal number stored at key and returns the
// new value (wrapping at 2^64, as memcached does). A miss gives
// errors.Is(err, ErrCacheMiss). libmemcached takes a 32-bit delta: a larger
// delta returns ErrInvalidArguments.
func (c *commands) Increment(key string, delta uint64) (uint64, error) {
	return do(c, func(h *handle) (uint64, error) { return h.incr("incr", key, delta, 0) })
}

// Decrement subtracts delta from the decimal number stored at key and
// returns the new value; it stops at 0. Otherwise as Increment.
//
// memcached rewrites the number in place, so after a decrement to fewer
// digits a Get returns it padded with trailing spaces ("9 "): use the value
// Decrement returns, or trim.
func (c *commands) Decrement(key string, delta uint64) (uint64, error) {
	return do(c, func(h *handle) (uint64, error) { return h.incr("decr", key, delta, 1) })
}

// Touch sets a new expiration, in seconds, on the item for key without
// fetching it. A miss gives errors.Is(err, ErrCacheMiss).
func (c *commands) Touch(key string, seconds int32) error {
	return do0(c, func(h *handle) error { return h.touch(key, seconds) })
}

// SetMulti sets every item in one cgo call. It returns the keys that were
// not stored, and an error for which errors.Is(err, ErrSomeErrors) holds
// and which wraps each key's own error (so errors.Is(err,
// ErrConnectionFailure), say, also works). Invalid input (a nil item, a bad
// key) is reported before anything is sent.
func (c *commands) SetMulti(items []*Item) (failed []string, err error) {
	return do(c, func(h *handle) ([]string, error) { return h.setMulti(items) })
}

// DeleteMulti deletes every key in one cgo call. If some keys were not
// deleted, the error satisfies errors.Is(err, ErrSomeErrors) and wraps each
// key's error: errors.Is(err, ErrCacheMiss) tells that some were absent.
func (c *commands) DeleteMulti(keys []string) error {
	return do0(c, func(h *handle) error { return h.deleteMulti(keys) })
}

// FlushAll invalidates every item on every server. Through a proxy that
// refuses it (twemproxy) it returns ErrNotSupported naming the command.
func (c *commands) FlushAll() error { return do0(c, (*handle).flushAll) }

// Ping asks every server for its version over a fresh connection (with
// the client's timeouts and credentials) and returns an error if any of
// them does not answer; the error names the server. A server whose VERSION
// line is not a number (mcrouter: "VERSION mcrouter 0.41.0"), which
// libmemcached cannot parse, has answered.
func (c *commands) Ping() error {
	_, err := do(c, func(h *handle) (map[string]string, error) { return h.versions("ping") })
	return err
}

// Stats returns every server's general statistics: "host:port" -> stat
// name -> value. If a server fails, the others' statistics are returned
// together with the error.
func (c *commands) Stats() (map[string]map[string]string, error) {
	return do(c, func(h *handle) (map[string]map[string]string, error) { return h.stats("") })
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
	return do(c, func(h *handle) (map[string]map[string]string, error) { return h.stats(arg) })
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
	return do(c, func(h *handle) (map[string]string, error) { return h.versions("version") })
}

// Servers returns the servers as "host:port" (or socket path), in
// libmemcached's order; nil once closed.
func (c *commands) Servers() []string {
	out, _ := do(c, func(h *handle) ([]string, error) { return h.servers(), nil })
	return out
}

// ServerFor returns the server ("host:port" or socket path) that key maps
// to under the hash and distribution in use (memcached_server_by_key).
func (c *commands) ServerFor(key string) (string, error) {
	return do(c, func(h *handle) (string, error) { return h.serverFor(key) })
}
