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
	"math"
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
type Client struct {
	mu       sync.Mutex
	c        *C.lmc_client   // C half: handle, reused results, scratch; nil after Close
	memc     *C.memcached_st // == c.memc
	binary   bool            // binary protocol: keys may hold any bytes
	nsLen    int             // namespace length, counted against MaxKeyLength
	counting bool            // C allocations go through the counting allocator
	sasl     bool            // the handle has SASL credentials
	pool     *Pool           // the Pool this client was acquired from, if any
	slot     *Client         // for a client from Pool.Acquire: the pool's slot it borrows
	scratch  *batchScratch   // a pool slot's memory for coalesced batches
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
	o := collect(opts)
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
	return newClient(memc, memc, o)
}

// NewFromConfig returns a client configured with libmemcached's
// configuration language, for example
// `--SERVER=10.0.0.1:11211/?2 --SERVER=10.0.0.2 --BINARY-PROTOCOL
// --NAMESPACE="app:"` (values with punctuation need the quotes). A string libmemcached cannot parse returns an error
// (ErrParseError) carrying libmemcached's parse message. Options apply after
// the configuration.
func NewFromConfig(config string, opts ...Option) (*Client, error) {
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
	o := collect(opts)
	if o.counting {
		C.lmc_use_counting_allocator(memc)
	}
	if C.memcached_server_count(memc) == 0 {
		C.memcached_free(memc)
		return nil, &Error{Code: ReturnNoServers, Original: ReturnNoServers, Op: "new", Message: "the configuration names no server"}
	}
	return newClient(memc, memc, o)
}

// newClient wraps memc (whose results are rooted at root) and applies the
// options; on failure it frees memc.
func newClient(memc, root *C.memcached_st, o *options) (*Client, error) {
	counting := C.int(0)
	if o.counting {
		counting = 1
	}
	lc := C.lmc_client_new(root, memc, counting)
	if lc == nil {
		C.memcached_free(memc)
		return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "new"}
	}
	c := &Client{c: lc, memc: memc, counting: o.counting}
	if err := c.configure(o); err != nil {
		c.free()
		return nil, err
	}
	return c, nil
}

// configure applies the options to a new handle and reads back the state
// the Go side caches (protocol, namespace length).
func (c *Client) configure(o *options) error {
	if !o.clone {
		// Defaults that differ from libmemcached's (and pylibmc's): CAS
		// support, so Get and GetMulti fill CasID in both protocols, and
		// TCP_NODELAY, without which every binary-protocol miss waits out
		// the peer's delayed ACK (about 40 ms). Options can turn them off.
		if err := c.setBehavior(BehaviorSupportCAS, 1); err != nil {
			return err
		}
		if err := c.setBehavior(BehaviorTCPNoDelay, 1); err != nil {
			return err
		}
	}
	if o.binary {
		if err := c.setBehavior(BehaviorBinaryProtocol, 1); err != nil {
			return err
		}
	}
	for _, set := range o.settings {
		if err := set(c); err != nil {
			return err
		}
	}
	if o.namespace != nil {
		if err := c.setNamespace(*o.namespace); err != nil {
			return err
		}
	}
	if o.sasl {
		if C.memcached_behavior_get(c.memc, C.MEMCACHED_BEHAVIOR_BINARY_PROTOCOL) == 0 {
			return inputError("new", "", ReturnInvalidArguments, "SASL needs the binary protocol")
		}
		user, pass := C.CString(o.saslUser), C.CString(o.saslPass)
		rc := C.memcached_set_sasl_auth_data(c.memc, user, pass)
		C.free(unsafe.Pointer(user))
		C.free(unsafe.Pointer(pass))
		if rc != C.MEMCACHED_SUCCESS {
			return handleError(c.memc, "new", "", rc)
		}
		c.sasl = true
	}
	c.syncState()
	return nil
}

// syncState reads the protocol and namespace length back from the handle.
func (c *Client) syncState() {
	c.binary = C.memcached_behavior_get(c.memc, C.MEMCACHED_BEHAVIOR_BINARY_PROTOCOL) != 0
	c.setAuthGuard()
	var rc C.memcached_return_t
	ns := C.memcached_callback_get(c.memc, C.MEMCACHED_CALLBACK_NAMESPACE, &rc)
	c.nsLen = 0
	if ns != nil {
		c.nsLen = int(C.strlen((*C.char)(ns)))
	}
}

func (c *Client) setNamespace(prefix string) error {
	if prefix == "" {
		rc := C.memcached_callback_set(c.memc, C.MEMCACHED_CALLBACK_NAMESPACE, nil)
		if rc != C.MEMCACHED_SUCCESS {
			return handleError(c.memc, "namespace", "", rc)
		}
		return nil
	}
	if len(prefix) > maxNamespaceLength {
		return inputError("namespace", prefix, ReturnKeyTooBig,
			fmt.Sprintf("namespace is %d bytes; at most %d", len(prefix), maxNamespaceLength))
	}
	for i := 0; i < len(prefix); i++ {
		if b := prefix[i]; b <= ' ' || b >= 0x7f {
			return inputError("namespace", prefix, ReturnBadKeyProvided,
				fmt.Sprintf("namespace byte %d is %#x; only printable ASCII is allowed", i, b))
		}
	}
	p := C.CString(prefix)
	defer C.free(unsafe.Pointer(p))
	rc := C.memcached_callback_set(c.memc, C.MEMCACHED_CALLBACK_NAMESPACE, unsafe.Pointer(p))
	if rc != C.MEMCACHED_SUCCESS {
		return handleError(c.memc, "namespace", prefix, rc)
	}
	return nil
}

// Close frees the client's handle and closes its connections. Calls after
// Close return ErrClosed; Close itself is idempotent. Closing a client that
// came from Pool.Acquire releases it to the pool instead.
func (c *Client) Close() error {
	if c.pool != nil {
		c.pool.Release(c)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.free()
	return nil
}

func (c *Client) free() {
	if c.c == nil {
		return
	}
	C.lmc_client_free(c.c)
	c.c = nil
	if c.memc != nil {
		C.memcached_free(c.memc)
		c.memc = nil
	}
}

// setAuthGuard turns the C side's auth guard on for a binary-protocol
// client without credentials (see lmc_incr in cgo_helpers.h).
func (c *Client) setAuthGuard() {
	if c.c != nil {
		c.c.auth_guard = 0
		if c.binary && !c.sasl {
			c.c.auth_guard = 1
		}
	}
}

// lock takes the client's lock and checks it is open (not closed, not
// released to its pool); callers unlock.
func (c *Client) lock(op string) error {
	c.mu.Lock()
	if c.memc == nil {
		c.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// unlock ends an operation on a client locked by lock. On a library that
// keeps a timed-out connection open (libmemcached 1.1.0 to 1.1.3; see
// compat.go), it first closes the handle's connections if the operation
// timed out, so that no late reply answers a later request.
func (c *Client) unlock() {
	if resetsAfterTimeout() && c.memc != nil {
		C.lmc_reset_after_timeout(c.memc)
	}
	c.mu.Unlock()
}

// ---------------------------------------------------------------------------
// Input checks: nothing reaches libmemcached unchecked.

func inputError(op, key string, code ReturnCode, msg string) *Error {
	return &Error{Code: code, Original: code, Op: op, Key: key, Message: msg}
}

// checkKey validates a key for this client's protocol and namespace.
func (c *Client) checkKey(op, key string) error {
	n := len(key)
	if n == 0 {
		return inputError(op, key, ReturnBadKeyProvided, "empty key")
	}
	if n+c.nsLen > MaxKeyLength {
		msg := fmt.Sprintf("key is %d bytes; at most %d", n, MaxKeyLength-c.nsLen)
		if c.nsLen > 0 {
			msg += fmt.Sprintf(" with the %d-byte namespace", c.nsLen)
		}
		return inputError(op, key, ReturnBadKeyProvided, msg)
	}
	if !c.binary {
		for i := 0; i < n; i++ {
			if b := key[i]; b <= ' ' || b == 0x7f {
				return inputError(op, key, ReturnBadKeyProvided,
					fmt.Sprintf("key byte %d is %#x: the ASCII protocol forbids spaces and control bytes (use the binary protocol for binary keys)", i, b))
			}
		}
	}
	return nil
}

func checkItem(op string, it *Item) error {
	if it == nil {
		return inputError(op, "", ReturnInvalidArguments, "nil *Item")
	}
	if it.Expiration < 0 {
		return inputError(op, it.Key, ReturnInvalidArguments,
			fmt.Sprintf("negative expiration %d", it.Expiration))
	}
	return nil
}

// ---------------------------------------------------------------------------
// Errors from libmemcached

// handleError builds the *Error for a failed call on memc.
func handleError(memc *C.memcached_st, op, key string, rc C.memcached_return_t) *Error {
	code := ReturnCode(rc)
	e := &Error{Code: code, Original: code, Op: op, Key: key}
	if memc != nil && C.memcached_last_error(memc) != C.MEMCACHED_SUCCESS {
		e.Message, e.Server = cleanMessage(C.GoString(C.memcached_last_error_message(memc)))
		e.errno = int(C.memcached_last_error_errno(memc))
	}
	return e
}

// fail builds the error for rc on c, with the server involved where it can
// be told. (After a timeout or an I/O failure libmemcached has already
// closed that server's connection; see cgo_helpers.c.) Called with c
// locked.
func (c *Client) fail(op, key string, rc C.memcached_return_t) *Error {
	e := handleError(c.memc, op, key, rc)
	if rc == C.MEMCACHED_SOME_ERRORS {
		// A multi-server call: the last error says what went wrong.
		if last := C.memcached_last_error(c.memc); last != C.MEMCACHED_SUCCESS && last != C.MEMCACHED_SOME_ERRORS {
			cause := handleError(c.memc, op, "", last)
			e.errs = append(e.errs, cause)
			e.Message = cause.Message
		}
	}
	if key != "" && e.Server == "" && c.checkKey(op, key) == nil {
		if C.lmc_server_for(c.c, cstr(key), C.size_t(len(key))) == C.MEMCACHED_SUCCESS {
			e.Server = c.serverName()
		}
	} else if e.Server == "" && isConnectionClass(e.Code) && C.lmc_last_server(c.c) == 1 {
		e.Server = c.serverName()
	}
	return e
}

// serverName returns the server name the last lmc_server_for or
// lmc_last_server call found.
func (c *Client) serverName() string {
	return C.GoStringN(&c.c.server[0], C.int(c.c.server_len))
}

// ---------------------------------------------------------------------------
// Reads

// Get gets the item for key. A miss returns an error for which
// errors.Is(err, ErrCacheMiss) is true. The item's CasID is filled.
func (c *Client) Get(key string) (*Item, error) {
	if err := c.lock("get"); err != nil {
		return nil, err
	}
	defer c.unlock()
	return c.getLocked(key)
}

// getLocked is Get on a locked, open client.
func (c *Client) getLocked(key string) (*Item, error) {
	if err := c.checkKey("get", key); err != nil {
		return nil, err
	}
	rc := C.lmc_get(c.c, cstr(key), C.size_t(len(key)))
	if rc != C.MEMCACHED_SUCCESS {
		return nil, c.fail("get", key, rc)
	}
	lc := c.c
	it := &Item{Key: key, Flags: uint32(lc.out_flags), CasID: uint64(lc.out_u64)}
	it.Value = C.GoBytes(unsafe.Pointer(lc.out_value), C.int(lc.out_len))
	return it, nil
}

// GetMulti gets the items for keys in one round trip per server. Keys that
// miss are absent from the map; they are not errors. An empty or nil list
// returns an empty map. If a server fails, the items from the others are
// returned together with the error.
func (c *Client) GetMulti(keys []string) (map[string]*Item, error) {
	if err := c.lock("get_multi"); err != nil {
		return nil, err
	}
	defer c.unlock()
	if len(keys) == 0 {
		return map[string]*Item{}, nil
	}
	total := 0
	for _, k := range keys {
		if err := c.checkKey("get_multi", k); err != nil {
			return nil, err
		}
		total += len(k)
	}
	if uint64(len(keys)) > math.MaxUint32 {
		return nil, inputError("get_multi", "", ReturnInvalidArguments, "too many keys")
	}
	keybuf := make([]byte, 0, total)
	lens := make([]C.size_t, len(keys))
	for i, k := range keys {
		keybuf = append(keybuf, k...)
		lens[i] = C.size_t(len(k))
	}
	rc := C.lmc_mget(c.c, cbytes(keybuf), &lens[0], C.size_t(len(keys)))
	items := c.decodeItems(keys, int(c.c.out_count))
	if rc != C.MEMCACHED_SUCCESS {
		return items, c.fail("get_multi", "", rc)
	}
	return items, nil
}

// ---------------------------------------------------------------------------
// Writes

type storeOp int

const (
	opSet storeOp = iota
	opAdd
	opReplace
	opAppend
	opPrepend
	opCAS
)

var storeOpNames = [...]string{"set", "add", "replace", "append", "prepend", "cas"}

func (c *Client) store(op storeOp, it *Item) error {
	name := storeOpNames[op]
	if err := c.lock(name); err != nil {
		return err
	}
	defer c.unlock()
	if err := checkItem(name, it); err != nil {
		return err
	}
	if err := c.checkKey(name, it.Key); err != nil {
		return err
	}
	if op == opCAS && it.CasID == 0 {
		return inputError(name, it.Key, ReturnInvalidArguments, "CasID is 0: CompareAndSwap needs the CasID of an item from Get")
	}
	k, kl := cstr(it.Key), C.size_t(len(it.Key))
	v, vl := cbytes(it.Value), C.size_t(len(it.Value))
	exp, flags := C.time_t(it.Expiration), C.uint32_t(it.Flags)
	var rc C.memcached_return_t
	switch op {
	case opSet:
		rc = C.memcached_set(c.memc, k, kl, v, vl, exp, flags)
	case opAdd:
		rc = C.memcached_add(c.memc, k, kl, v, vl, exp, flags)
	case opReplace:
		rc = C.memcached_replace(c.memc, k, kl, v, vl, exp, flags)
	case opAppend:
		rc = C.memcached_append(c.memc, k, kl, v, vl, exp, flags)
	case opPrepend:
		rc = C.memcached_prepend(c.memc, k, kl, v, vl, exp, flags)
	case opCAS:
		rc = C.memcached_cas(c.memc, k, kl, v, vl, exp, flags, C.uint64_t(it.CasID))
	}
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED || rc == C.MEMCACHED_STORED {
		return nil
	}
	return c.storeError(op, it.Key, rc)
}

// storeError normalises the binary protocol's answers to the ASCII ones:
// a refused add, replace, append or prepend is ErrNotStored in both.
func (c *Client) storeError(op storeOp, key string, rc C.memcached_return_t) error {
	e := c.fail(storeOpNames[op], key, rc)
	switch {
	case op == opAdd && e.Code == ReturnDataExists,
		op != opSet && op != opCAS && e.Code == ReturnNotFound:
		e.Code = ReturnNotStored
	}
	return e
}

// Set writes the item unconditionally.
func (c *Client) Set(item *Item) error { return c.store(opSet, item) }

// Add writes the item only if its key is absent; otherwise errors.Is(err,
// ErrNotStored).
func (c *Client) Add(item *Item) error { return c.store(opAdd, item) }

// Replace writes the item only if its key is present; otherwise
// errors.Is(err, ErrNotStored).
func (c *Client) Replace(item *Item) error { return c.store(opReplace, item) }

// Append appends the item's value to the stored value of its key (flags and
// expiration are left as they are); if the key is absent, errors.Is(err,
// ErrNotStored).
func (c *Client) Append(item *Item) error { return c.store(opAppend, item) }

// Prepend is Append at the front of the stored value.
func (c *Client) Prepend(item *Item) error { return c.store(opPrepend, item) }

// CompareAndSwap writes the item only if it is unchanged since item.CasID
// was read by Get or GetMulti. A change in between gives errors.Is(err,
// ErrCASConflict); an absent key errors.Is(err, ErrCacheMiss).
func (c *Client) CompareAndSwap(item *Item) error { return c.store(opCAS, item) }

// Delete deletes the item for key; a miss gives errors.Is(err,
// ErrCacheMiss).
func (c *Client) Delete(key string) error {
	if err := c.lock("delete"); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.checkKey("delete", key); err != nil {
		return err
	}
	rc := C.memcached_delete(c.memc, cstr(key), C.size_t(len(key)), 0)
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED || rc == C.MEMCACHED_DELETED {
		return nil
	}
	return c.fail("delete", key, rc)
}

// Increment adds delta to the decimal number stored at key and returns the
// new value (wrapping at 2^64, as memcached does). A miss gives
// errors.Is(err, ErrCacheMiss). libmemcached takes a 32-bit delta: a larger
// delta returns ErrInvalidArguments.
func (c *Client) Increment(key string, delta uint64) (uint64, error) {
	return c.incr("incr", key, delta, 0)
}

// Decrement subtracts delta from the decimal number stored at key and
// returns the new value; it stops at 0. Otherwise as Increment.
//
// memcached rewrites the number in place, so after a decrement to fewer
// digits a Get returns it padded with trailing spaces ("9 "): use the value
// Decrement returns, or trim.
func (c *Client) Decrement(key string, delta uint64) (uint64, error) {
	return c.incr("decr", key, delta, 1)
}

func (c *Client) incr(op, key string, delta uint64, decr C.int) (uint64, error) {
	if err := c.lock(op); err != nil {
		return 0, err
	}
	defer c.unlock()
	if err := c.checkKey(op, key); err != nil {
		return 0, err
	}
	if delta > math.MaxUint32 {
		return 0, inputError(op, key, ReturnInvalidArguments,
			fmt.Sprintf("delta %d exceeds libmemcached's 32-bit offset", delta))
	}
	rc := C.lmc_incr(c.c, cstr(key), C.size_t(len(key)), C.uint32_t(delta), decr)
	if rc != C.MEMCACHED_SUCCESS && rc != C.MEMCACHED_BUFFERED {
		e := c.fail(op, key, rc)
		if c.binary && e.Code == ReturnUnknownReadFailure && e.errno == 0 {
			// libmemcached does not map the binary protocol's "non-numeric
			// value" status (0x06); ASCII reports it as CLIENT_ERROR.
			e.Code = ReturnClientError
			e.Message = "cannot increment or decrement a non-numeric value"
		}
		return 0, e
	}
	return uint64(c.c.out_u64), nil
}

// Touch sets a new expiration, in seconds, on the item for key without
// fetching it. A miss gives errors.Is(err, ErrCacheMiss).
func (c *Client) Touch(key string, seconds int32) error {
	if err := c.lock("touch"); err != nil {
		return err
	}
	defer c.unlock()
	if err := c.checkKey("touch", key); err != nil {
		return err
	}
	if seconds < 0 {
		return inputError("touch", key, ReturnInvalidArguments, fmt.Sprintf("negative expiration %d", seconds))
	}
	k, kl := cstr(key), C.size_t(len(key))
	rc := C.lmc_touch(c.memc, k, kl, k, kl, C.time_t(seconds))
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED {
		return nil
	}
	return c.fail("touch", key, rc)
}

// SetMulti sets every item in one cgo call. It returns the keys that were
// not stored, and an error for which errors.Is(err, ErrSomeErrors) holds
// and which wraps each key's own error (so errors.Is(err,
// ErrConnectionFailure), say, also works). Invalid input (a nil item, a bad
// key) is reported before anything is sent.
func (c *Client) SetMulti(items []*Item) (failed []string, err error) {
	if err := c.lock("set_multi"); err != nil {
		return nil, err
	}
	defer c.unlock()
	if len(items) == 0 {
		return nil, nil
	}
	for _, it := range items {
		if err := checkItem("set_multi", it); err != nil {
			return nil, err
		}
		if err := c.checkKey("set_multi", it.Key); err != nil {
			return nil, err
		}
	}
	// The C array lives in Go memory and points at the keys and values,
	// which are pinned for the call.
	var pin pinner
	defer pin.Unpin()
	arr := make([]C.lmc_item, len(items))
	for i, it := range items {
		arr[i] = C.lmc_item{
			key:        pin.str(it.Key),
			key_len:    C.size_t(len(it.Key)),
			value:      pin.bytes(it.Value),
			value_len:  C.size_t(len(it.Value)),
			expiration: C.time_t(it.Expiration),
			flags:      C.uint32_t(it.Flags),
		}
	}
	rcs := make([]C.memcached_return_t, len(items))
	C.lmc_set_multi(c.c, &arr[0], C.size_t(len(arr)), &rcs[0])
	var errs []error
	for i, rc := range rcs {
		if rc != C.MEMCACHED_SUCCESS && rc != C.MEMCACHED_BUFFERED && rc != C.MEMCACHED_STORED {
			failed = append(failed, items[i].Key)
			errs = append(errs, &Error{Code: ReturnCode(rc), Original: ReturnCode(rc), Op: "set", Key: items[i].Key})
		}
	}
	if len(errs) > 0 {
		return failed, c.multiError("set_multi", len(items), errs)
	}
	return nil, nil
}

// DeleteMulti deletes every key in one cgo call. If some keys were not
// deleted, the error satisfies errors.Is(err, ErrSomeErrors) and wraps each
// key's error: errors.Is(err, ErrCacheMiss) tells that some were absent.
func (c *Client) DeleteMulti(keys []string) error {
	if err := c.lock("delete_multi"); err != nil {
		return err
	}
	defer c.unlock()
	if len(keys) == 0 {
		return nil
	}
	total := 0
	for _, k := range keys {
		if err := c.checkKey("delete_multi", k); err != nil {
			return err
		}
		total += len(k)
	}
	keybuf := make([]byte, 0, total)
	lens := make([]C.size_t, len(keys))
	for i, k := range keys {
		keybuf = append(keybuf, k...)
		lens[i] = C.size_t(len(k))
	}
	rcs := make([]C.memcached_return_t, len(keys))
	C.lmc_delete_multi(c.c, cbytes(keybuf), &lens[0], C.size_t(len(keys)), &rcs[0])
	var errs []error
	for i, rc := range rcs {
		if rc != C.MEMCACHED_SUCCESS && rc != C.MEMCACHED_BUFFERED && rc != C.MEMCACHED_DELETED {
			errs = append(errs, &Error{Code: ReturnCode(rc), Original: ReturnCode(rc), Op: "delete", Key: keys[i]})
		}
	}
	if len(errs) > 0 {
		return c.multiError("delete_multi", len(keys), errs)
	}
	return nil
}

func (c *Client) multiError(op string, n int, errs []error) *Error {
	return &Error{
		Code: ReturnSomeErrors, Original: ReturnSomeErrors, Op: op,
		Message: fmt.Sprintf("%d of %d keys failed; first: %v", len(errs), n, errs[0]),
		errs:    errs,
	}
}

// FlushAll invalidates every item on every server.
func (c *Client) FlushAll() error {
	if err := c.lock("flush_all"); err != nil {
		return err
	}
	defer c.unlock()
	rc := C.memcached_flush(c.memc, 0)
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED {
		return nil
	}
	return c.fail("flush_all", "", rc)
}

// ---------------------------------------------------------------------------
// Servers

// Ping asks every server for its version over a fresh connection (with
// the client's timeouts and credentials) and returns an error if any of
// them does not answer; the error names the server.
func (c *Client) Ping() error {
	_, err := c.versions("ping")
	return err
}

// Stats returns every server's general statistics: "host:port" -> stat
// name -> value. If a server fails, the others' statistics are returned
// together with the error.
func (c *Client) Stats() (map[string]map[string]string, error) {
	return c.stats("stats", "")
}

// StatsArg returns the statistics group arg ("items", "slabs", "settings",
// "sizes", "conns", ...) of every server, as Stats does.
func (c *Client) StatsArg(arg string) (map[string]map[string]string, error) {
	for i := 0; i < len(arg); i++ {
		if b := arg[i]; b < ' ' || b == 0x7f {
			return nil, inputError("stats", "", ReturnInvalidArguments, fmt.Sprintf("stats argument byte %d is %#x", i, b))
		}
	}
	if len(arg) > 200 {
		return nil, inputError("stats", "", ReturnInvalidArguments, "stats argument is longer than 200 bytes")
	}
	return c.stats("stats", arg)
}

func (c *Client) stats(op, arg string) (map[string]map[string]string, error) {
	var argp *C.char
	if arg != "" {
		argp = cstr(arg)
	}
	out := make(map[string]map[string]string)
	err := c.perServer(op, func() C.memcached_return_t {
		return C.lmc_stats(c.c, argp, C.size_t(len(arg)))
	}, func(r strRec) {
		m := out[r.s[0]]
		if m == nil {
			m = make(map[string]string)
			out[r.s[0]] = m
		}
		m[r.s[1]] = r.s[2]
	})
	if err == ErrClosed {
		return nil, err
	}
	return out, err
}

// Version returns each server's version: "host:port" -> "1.6.18", asked
// over a fresh connection to each. If a server fails, the others' versions
// are returned together with the error.
func (c *Client) Version() (map[string]string, error) {
	return c.versions("version")
}

func (c *Client) versions(op string) (map[string]string, error) {
	out := make(map[string]string)
	err := c.perServer(op, func() C.memcached_return_t { return C.lmc_versions(c.c) },
		func(r strRec) { out[r.s[0]] = r.s[1] })
	if err == ErrClosed {
		return nil, err
	}
	return out, err
}

// perServer runs one of the per-server C helpers, hands each data record
// to add, and returns the failed servers' errors.
func (c *Client) perServer(op string, call func() C.memcached_return_t, add func(strRec)) error {
	if err := c.lock(op); err != nil {
		return err
	}
	defer c.unlock()
	rc := call()
	recs := c.records(int(c.c.out_count))
	for _, r := range recs {
		if r.rc == ReturnSuccess {
			add(r)
		}
	}
	if err := serverErrors(op, recs); err != nil {
		return err
	}
	if rc != C.MEMCACHED_SUCCESS {
		return c.fail(op, "", rc)
	}
	return nil
}

// Servers returns the client's servers as "host:port" (or socket path), in
// libmemcached's order.
func (c *Client) Servers() []string {
	if c.lock("servers") != nil {
		return nil
	}
	defer c.unlock()
	n := C.lmc_servers(c.c)
	out := make([]string, 0, int(n))
	for _, r := range c.records(int(n)) {
		out = append(out, r.s[0])
	}
	return out
}

// ServerFor returns the server ("host:port" or socket path) that key maps
// to under the client's hash and distribution (memcached_server_by_key).
func (c *Client) ServerFor(key string) (string, error) {
	if err := c.lock("server_for"); err != nil {
		return "", err
	}
	defer c.unlock()
	if err := c.checkKey("server_for", key); err != nil {
		return "", err
	}
	rc := C.lmc_server_for(c.c, cstr(key), C.size_t(len(key)))
	if rc != C.MEMCACHED_SUCCESS {
		return "", handleError(c.memc, "server_for", key, rc)
	}
	return c.serverName(), nil
}

// DisconnectAll closes every connection of the client (memcached_quit); the
// next operation reconnects.
func (c *Client) DisconnectAll() {
	if c.lock("quit") != nil {
		return
	}
	defer c.unlock()
	C.memcached_quit(c.memc)
}

// Clone returns a new, independent Client with the same servers, behaviors,
// namespace and credentials (memcached_clone), and no connections yet.
func (c *Client) Clone() (*Client, error) {
	if err := c.lock("clone"); err != nil {
		return nil, err
	}
	defer c.unlock()
	memc := C.memcached_clone(nil, c.memc)
	if memc == nil {
		return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "clone"}
	}
	cl, err := newClient(memc, memc, &options{counting: c.counting, clone: true})
	if err == nil {
		cl.sasl = c.sasl // memcached_clone copies the credentials
		cl.setAuthGuard()
	}
	return cl, err
}
