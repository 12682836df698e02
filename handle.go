package libmemcached

// The handle: one libmemcached handle (memcached_st) with the binding's C
// half (lmc_client: reused results, output records, the auth guard) and
// the body of every operation. Client, the Pool's slots and the clients
// Pool.Acquire lends are all views on a handle; none of them adds state
// of its own to it.

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
	"unsafe"
)

// A handle is not safe for concurrent use: whoever holds it (a Client
// under its mutex, a Pool caller between take and put) is its only user.
type handle struct {
	c        *C.lmc_client   // C half; c.memc == memc
	memc     *C.memcached_st // nil while a pool slot is idle, and after free
	binary   bool            // binary protocol: keys may hold any bytes
	nsLen    int             // namespace length, counted against MaxKeyLength
	counting bool            // C allocations go through the counting allocator
	sasl     bool            // the handle has SASL credentials
	pool     *handlePool     // the pool that owns the handle; nil: the handle owns memc
	scratch  *keyScratch     // reusable memory for multi-key requests
}

// newHandle wraps memc (whose results are rooted at root) and applies the
// options; on failure it frees memc.
func newHandle(memc, root *C.memcached_st, o *options) (*handle, error) {
	lc := C.lmc_client_new(root, memc, boolInt(o.counting))
	if lc == nil {
		C.memcached_free(memc)
		return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "new"}
	}
	h := &handle{c: lc, memc: memc, counting: o.counting}
	if err := h.configure(o); err != nil {
		h.free()
		return nil, err
	}
	return h, nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// configure applies the options to a new handle and reads back the state
// the Go side caches (protocol, namespace length).
func (h *handle) configure(o *options) error {
	if !o.clone {
		// Defaults that differ from libmemcached's (and pylibmc's): CAS
		// support, so Get and GetMulti fill CasID in both protocols, and
		// TCP_NODELAY, without which every binary-protocol miss waits out
		// the peer's delayed ACK (about 40 ms). Options can turn them off.
		if err := h.setBehavior(BehaviorSupportCAS, 1); err != nil {
			return err
		}
		if err := h.setBehavior(BehaviorTCPNoDelay, 1); err != nil {
			return err
		}
	}
	if o.binary {
		if err := h.setBehavior(BehaviorBinaryProtocol, 1); err != nil {
			return err
		}
	}
	for _, set := range o.settings {
		if err := set(h); err != nil {
			return err
		}
	}
	if o.namespace != nil {
		if err := h.setNamespace(*o.namespace); err != nil {
			return err
		}
	}
	if o.sasl {
		if C.memcached_behavior_get(h.memc, C.MEMCACHED_BEHAVIOR_BINARY_PROTOCOL) == 0 {
			return inputError("new", "", ReturnInvalidArguments, "SASL needs the binary protocol")
		}
		user, pass := C.CString(o.saslUser), C.CString(o.saslPass)
		rc := C.memcached_set_sasl_auth_data(h.memc, user, pass)
		C.free(unsafe.Pointer(user))
		C.free(unsafe.Pointer(pass))
		if rc != C.MEMCACHED_SUCCESS {
			return handleError(h.memc, "new", "", rc)
		}
		h.sasl = true
	}
	h.syncState()
	return nil
}

// syncState reads the protocol and namespace length back from the handle.
func (h *handle) syncState() {
	h.binary = C.memcached_behavior_get(h.memc, C.MEMCACHED_BEHAVIOR_BINARY_PROTOCOL) != 0
	h.setAuthGuard()
	var rc C.memcached_return_t
	ns := C.memcached_callback_get(h.memc, C.MEMCACHED_CALLBACK_NAMESPACE, &rc)
	h.nsLen = 0
	if ns != nil {
		h.nsLen = int(C.strlen((*C.char)(ns)))
	}
}

func (h *handle) setNamespace(prefix string) error {
	if prefix == "" {
		rc := C.memcached_callback_set(h.memc, C.MEMCACHED_CALLBACK_NAMESPACE, nil)
		if rc != C.MEMCACHED_SUCCESS {
			return handleError(h.memc, "namespace", "", rc)
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
	rc := C.memcached_callback_set(h.memc, C.MEMCACHED_CALLBACK_NAMESPACE, unsafe.Pointer(p))
	if rc != C.MEMCACHED_SUCCESS {
		return handleError(h.memc, "namespace", prefix, rc)
	}
	return nil
}

// free frees the C half and, unless a pool holds it, the memcached_st.
// An idle pool slot has no memc, so free leaves the pool's handles alone.
func (h *handle) free() {
	if h.c == nil {
		return
	}
	C.lmc_client_free(h.c)
	h.c = nil
	if h.memc != nil {
		C.memcached_free(h.memc)
		h.memc = nil
		releasePollConns()
	}
}

// setAuthGuard turns the C side's auth guard on for a binary-protocol
// handle without credentials (see lmc_incr in cgo_helpers.h).
func (h *handle) setAuthGuard() {
	if h.c != nil {
		h.c.auth_guard = 0
		if h.binary && !h.sasl {
			h.c.auth_guard = 1
		}
	}
}

// resetAfterTimeout ends an operation. On a library that keeps a timed-out
// connection open (libmemcached 1.1.0 to 1.1.3; see compat.go), it closes
// the handle's connections if the operation timed out, so that no late
// reply answers a later request.
func (h *handle) resetAfterTimeout() {
	if resetsAfterTimeout() && h.memc != nil {
		C.lmc_reset_after_timeout(h.memc)
	}
}

// limitTimeouts and restoreTimeouts are the C side of
// handle.limitTimeouts (observe.go).
func limitTimeouts(h *handle, ms int32) { C.lmc_limit_timeouts(h.c, C.int32_t(ms)) }

func restoreTimeouts(h *handle) { C.lmc_restore_timeouts(h.c) }

// ---------------------------------------------------------------------------
// Input checks: nothing reaches libmemcached unchecked.

func inputError(op, key string, code ReturnCode, msg string) *Error {
	return &Error{Code: code, Original: code, Op: op, Key: key, Message: msg}
}

// checkKey validates a key for the handle's protocol and namespace.
func (h *handle) checkKey(op, key string) error { return h.checkBytes(op, "key", key, h.nsLen) }

// checkServerKey validates a server key (the ByKey operations): it is
// only hashed, never sent, but libmemcached holds it to the key rules of
// the protocol, without the namespace.
func (h *handle) checkServerKey(op, serverKey string) error {
	return h.checkBytes(op, "server key", serverKey, 0)
}

// checkBytes applies the key rules to key (what names it in messages),
// counting ns bytes of namespace against MaxKeyLength.
func (h *handle) checkBytes(op, what, key string, ns int) error {
	n := len(key)
	if n == 0 {
		return inputError(op, key, ReturnBadKeyProvided, "empty "+what)
	}
	if n+ns > MaxKeyLength {
		msg := fmt.Sprintf("%s is %d bytes; at most %d", what, n, MaxKeyLength-ns)
		if ns > 0 {
			msg += fmt.Sprintf(" with the %d-byte namespace", ns)
		}
		return inputError(op, key, ReturnBadKeyProvided, msg)
	}
	if !h.binary {
		for i := 0; i < n; i++ {
			if b := key[i]; b <= ' ' || b == 0x7f {
				return inputError(op, key, ReturnBadKeyProvided,
					fmt.Sprintf("%s byte %d is %#x: the ASCII protocol forbids spaces and control bytes (use the binary protocol for binary keys)", what, i, b))
			}
		}
	}
	return nil
}

// checkKeys checks key and, for a *ByKey operation, its server key; it
// returns the key to hash (the server key, or the key itself).
func (h *handle) checkKeys(op, serverKey, key string) (string, error) {
	if err := h.checkKey(op, key); err != nil {
		return "", err
	}
	if serverKey == "" {
		return key, nil
	}
	return serverKey, h.checkServerKey(op, serverKey)
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

// fail builds the error for rc, with the server involved where it can be
// told. (After a timeout or an I/O failure libmemcached has already closed
// that server's connection; see cgo_helpers.c.)
func (h *handle) fail(op, key string, rc C.memcached_return_t) *Error {
	return h.failOn(op, key, key, rc)
}

// failOn is fail for an operation that sent key to serverKey's server.
func (h *handle) failOn(op, key, serverKey string, rc C.memcached_return_t) *Error {
	e := handleError(h.memc, op, key, rc)
	if rc == C.MEMCACHED_SOME_ERRORS {
		// A multi-server call: the last error says what went wrong.
		if last := C.memcached_last_error(h.memc); last != C.MEMCACHED_SUCCESS && last != C.MEMCACHED_SOME_ERRORS {
			cause := handleError(h.memc, op, "", last)
			e.errs = append(e.errs, cause)
			e.Message = cause.Message
		}
	}
	if serverKey != "" && e.Server == "" && h.checkServerKey(op, serverKey) == nil {
		if C.lmc_server_for(h.c, cstr(serverKey), C.size_t(len(serverKey))) == C.MEMCACHED_SUCCESS {
			e.Server = h.serverName()
		}
	} else if e.Server == "" && isConnectionClass(e.Code) && C.lmc_last_server(h.c) == 1 {
		e.Server = h.serverName()
	}
	h.explainRefusal(op, e)
	if h.pool != nil && e.Temporary() {
		h.pool.p.noteFault()
	}
	return e
}

// serverName returns the server name the last lmc_server_for or
// lmc_last_server call found.
func (h *handle) serverName() string {
	return C.GoStringN(&h.c.server[0], C.int(h.c.server_len))
}

// ---------------------------------------------------------------------------
// Reads

func (h *handle) get(key string) (*Item, error) { return h.getBy("", key) }

// getBy gets key from serverKey's server ("": the key's own).
func (h *handle) getBy(serverKey, key string) (*Item, error) {
	sk, err := h.checkKeys("get", serverKey, key)
	if err != nil {
		return nil, err
	}
	rc := C.lmc_get_start(h.c, cstr(sk), C.size_t(len(sk)), cstr(key), C.size_t(len(key)))
	if h.c.pending != 0 {
		rc = C.lmc_get_finish(h.c, cstr(key), C.size_t(len(key)), h.awaitReply())
	}
	if rc != C.MEMCACHED_SUCCESS {
		return nil, h.failOn("get", key, sk, rc)
	}
	lc := h.c
	it := &Item{Key: key, Flags: uint32(lc.out_flags), CasID: uint64(lc.out_u64)}
	it.Value = C.GoBytes(unsafe.Pointer(lc.out_value), C.int(lc.out_len))
	return it, nil
}

// keyScratch is a handle's reusable memory for the keys of multi-key
// requests (GetMulti, DeleteMulti, coalesced batches).
type keyScratch struct {
	keys   []string // a batch's unique keys, in request order
	keybuf []byte
	lens   []C.size_t
	rec    []int // offset of each unique key's record in the output, or -1
	index  map[string]int
}

// packKeys checks keys and lays them out for the C helpers in the
// handle's scratch memory: the bytes back to back, and their lengths.
func (h *handle) packKeys(op string, keys []string) (*C.char, *C.size_t, error) {
	if uint64(len(keys)) > math.MaxUint32 {
		return nil, nil, inputError(op, "", ReturnInvalidArguments, "too many keys")
	}
	sc := h.keyScratch()
	sc.keybuf, sc.lens = sc.keybuf[:0], sc.lens[:0]
	for _, k := range keys {
		if err := h.checkKey(op, k); err != nil {
			return nil, nil, err
		}
		sc.keybuf = append(sc.keybuf, k...)
		sc.lens = append(sc.lens, C.size_t(len(k)))
	}
	return cbytes(sc.keybuf), &sc.lens[0], nil
}

func (h *handle) keyScratch() *keyScratch {
	if h.scratch == nil {
		h.scratch = &keyScratch{index: make(map[string]int)}
	}
	return h.scratch
}

func (h *handle) getMulti(keys []string) (map[string]*Item, error) { return h.getMultiBy("", keys) }

// getMultiBy gets keys from serverKey's server ("": each key's own).
func (h *handle) getMultiBy(serverKey string, keys []string) (map[string]*Item, error) {
	if serverKey != "" {
		if err := h.checkServerKey("get_multi", serverKey); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return map[string]*Item{}, nil
	}
	rc, err := h.mget(serverKey, keys)
	if err != nil {
		return nil, err
	}
	items := h.decodeItems(keys, int(h.c.out_count))
	if rc != C.MEMCACHED_SUCCESS {
		return items, h.failOn("get_multi", "", serverKey, rc)
	}
	return items, nil
}

// getMultiList is getMulti's items as a list (request order per server),
// for callers that merge several.
func (h *handle) getMultiList(keys []string) ([]Item, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rc, err := h.mget("", keys)
	if err != nil {
		return nil, err
	}
	items := h.decodeList(keys, int(h.c.out_count))
	if rc != C.MEMCACHED_SUCCESS {
		return items, h.failOn("get_multi", "", "", rc)
	}
	return items, nil
}

// mget checks and packs keys and runs one lmc_mget of them on serverKey's
// server ("": each key's own), leaving the records in the output buffer;
// err is a bad key (nothing sent), rc libmemcached's answer.
func (h *handle) mget(serverKey string, keys []string) (C.memcached_return_t, error) {
	kp, lp, err := h.packKeys("get_multi", keys)
	if err != nil {
		return 0, err
	}
	var gp *C.char
	if serverKey != "" {
		gp = cstr(serverKey)
	}
	return h.mgetRun(gp, len(serverKey), kp, lp, len(keys)), nil
}

// mgetRun is one lmc_mget_start, and lmc_mget_finish after the wait for
// the reply when it was left pending.
func (h *handle) mgetRun(gp *C.char, gn int, kp *C.char, lp *C.size_t, n int) C.memcached_return_t {
	rc := C.lmc_mget_start(h.c, gp, C.size_t(gn), kp, lp, C.size_t(n))
	if h.c.pending != 0 {
		rc = C.lmc_mget_finish(h.c, h.awaitReply())
	}
	return rc
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

func (h *handle) store(op storeOp, it *Item) error { return h.storeBy(op, "", it) }

// storeBy stores it on serverKey's server ("": its key's own).
func (h *handle) storeBy(op storeOp, serverKey string, it *Item) error {
	name := storeOpNames[op]
	if err := checkItem(name, it); err != nil {
		return err
	}
	sk, err := h.checkKeys(name, serverKey, it.Key)
	if err != nil {
		return err
	}
	if op == opCAS && it.CasID == 0 {
		return inputError(name, it.Key, ReturnInvalidArguments, "CasID is 0: CompareAndSwap needs the CasID of an item from Get")
	}
	g, gl := cstr(sk), C.size_t(len(sk))
	k, kl := cstr(it.Key), C.size_t(len(it.Key))
	v, vl := cbytes(it.Value), C.size_t(len(it.Value))
	exp, flags := C.time_t(it.Expiration), C.uint32_t(it.Flags)
	var rc C.memcached_return_t
	switch op {
	case opSet:
		rc = C.memcached_set_by_key(h.memc, g, gl, k, kl, v, vl, exp, flags)
	case opAdd:
		rc = C.memcached_add_by_key(h.memc, g, gl, k, kl, v, vl, exp, flags)
	case opReplace:
		rc = C.memcached_replace_by_key(h.memc, g, gl, k, kl, v, vl, exp, flags)
	case opAppend:
		rc = C.memcached_append_by_key(h.memc, g, gl, k, kl, v, vl, exp, flags)
	case opPrepend:
		rc = C.memcached_prepend_by_key(h.memc, g, gl, k, kl, v, vl, exp, flags)
	case opCAS:
		rc = C.memcached_cas_by_key(h.memc, g, gl, k, kl, v, vl, exp, flags, C.uint64_t(it.CasID))
	}
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED || rc == C.MEMCACHED_STORED {
		return nil
	}
	return h.storeError(op, it.Key, sk, rc)
}

// storeError normalises the binary protocol's answers to the ASCII ones:
// a refused add, replace, append or prepend is ErrNotStored in both.
func (h *handle) storeError(op storeOp, key, serverKey string, rc C.memcached_return_t) error {
	e := h.failOn(storeOpNames[op], key, serverKey, rc)
	switch {
	case op == opAdd && e.Code == ReturnDataExists,
		op != opSet && op != opCAS && e.Code == ReturnNotFound:
		e.Code = ReturnNotStored
	}
	return e
}

func (h *handle) delete(key string) error { return h.deleteBy("", key) }

// deleteBy deletes key on serverKey's server ("": its own).
func (h *handle) deleteBy(serverKey, key string) error {
	sk, err := h.checkKeys("delete", serverKey, key)
	if err != nil {
		return err
	}
	rc := C.memcached_delete_by_key(h.memc, cstr(sk), C.size_t(len(sk)), cstr(key), C.size_t(len(key)), 0)
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED || rc == C.MEMCACHED_DELETED {
		return nil
	}
	return h.failOn("delete", key, sk, rc)
}

// incr is Increment and Decrement, of key on serverKey's server ("": its
// own); with initial, an absent key is created holding *initial.
func (h *handle) incr(op, serverKey, key string, delta uint64, decr bool, initial *uint64, expiration int32) (uint64, error) {
	sk, err := h.checkKeys(op, serverKey, key)
	if err != nil {
		return 0, err
	}
	if expiration < 0 {
		return 0, inputError(op, key, ReturnInvalidArguments, fmt.Sprintf("negative expiration %d", expiration))
	}
	hasInitial, init := C.int(0), C.uint64_t(0)
	if initial != nil {
		hasInitial, init = 1, C.uint64_t(*initial)
	}
	rc := C.lmc_incr(h.c, cstr(sk), C.size_t(len(sk)), cstr(key), C.size_t(len(key)), C.uint64_t(delta), boolInt(decr), hasInitial, init, C.time_t(expiration))
	if rc != C.MEMCACHED_SUCCESS && rc != C.MEMCACHED_BUFFERED && rc != C.MEMCACHED_STORED {
		e := h.failOn(op, key, sk, rc)
		if h.binary && e.Code == ReturnUnknownReadFailure && e.errno == 0 {
			// libmemcached does not map the binary protocol's "non-numeric
			// value" status (0x06); ASCII reports it as CLIENT_ERROR.
			e.Code = ReturnClientError
			e.Message = "cannot increment or decrement a non-numeric value"
		}
		return 0, e
	}
	return uint64(h.c.out_u64), nil
}

func (h *handle) touch(key string, seconds int32) error { return h.touchBy("", key, seconds) }

// touchBy touches key on serverKey's server ("": its own).
func (h *handle) touchBy(serverKey, key string, seconds int32) error {
	sk, err := h.checkKeys("touch", serverKey, key)
	if err != nil {
		return err
	}
	if seconds < 0 {
		return inputError("touch", key, ReturnInvalidArguments, fmt.Sprintf("negative expiration %d", seconds))
	}
	rc := C.lmc_touch(h.memc, cstr(sk), C.size_t(len(sk)), cstr(key), C.size_t(len(key)), C.time_t(seconds))
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED {
		return nil
	}
	return h.failOn("touch", key, sk, rc)
}

func (h *handle) setMulti(items []*Item) (failed []string, err error) {
	if len(items) == 0 {
		return nil, nil
	}
	for _, it := range items {
		if err := checkItem("set_multi", it); err != nil {
			return nil, err
		}
		if err := h.checkKey("set_multi", it.Key); err != nil {
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
	C.lmc_set_multi(h.c, &arr[0], C.size_t(len(arr)), &rcs[0])
	var errs []error
	for i, rc := range rcs {
		if rc != C.MEMCACHED_SUCCESS && rc != C.MEMCACHED_BUFFERED && rc != C.MEMCACHED_STORED {
			failed = append(failed, items[i].Key)
			errs = append(errs, &Error{Code: ReturnCode(rc), Original: ReturnCode(rc), Op: "set", Key: items[i].Key})
		}
	}
	if len(errs) > 0 {
		return failed, multiError("set_multi", len(items), errs)
	}
	return nil, nil
}

func (h *handle) deleteMulti(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	kp, lp, err := h.packKeys("delete_multi", keys)
	if err != nil {
		return err
	}
	rcs := make([]C.memcached_return_t, len(keys))
	C.lmc_delete_multi(h.c, kp, lp, C.size_t(len(keys)), &rcs[0])
	var errs []error
	for i, rc := range rcs {
		if rc != C.MEMCACHED_SUCCESS && rc != C.MEMCACHED_BUFFERED && rc != C.MEMCACHED_DELETED {
			errs = append(errs, &Error{Code: ReturnCode(rc), Original: ReturnCode(rc), Op: "delete", Key: keys[i]})
		}
	}
	if len(errs) > 0 {
		return multiError("delete_multi", len(keys), errs)
	}
	return nil
}

func multiError(op string, n int, errs []error) *Error {
	return &Error{
		Code: ReturnSomeErrors, Original: ReturnSomeErrors, Op: op,
		Message: fmt.Sprintf("%d of %d keys failed; first: %v", len(errs), n, errs[0]),
		errs:    errs,
	}
}

func (h *handle) flushAll() error {
	rc := C.memcached_flush(h.memc, 0)
	if rc == C.MEMCACHED_SUCCESS && h.binary && C.memcached_last_error(h.memc) != C.MEMCACHED_SUCCESS {
		// libmemcached reads the binary flushes' answers and discards the
		// outcome: a server that failed (or a proxy that refused, closing
		// the connection) is only in the handle's last error.
		rc = C.MEMCACHED_SOME_ERRORS
	}
	if rc == C.MEMCACHED_SUCCESS || rc == C.MEMCACHED_BUFFERED {
		return nil
	}
	return h.fail("flush_all", "", rc)
}

// ---------------------------------------------------------------------------
// Servers

func (h *handle) stats(arg string) (map[string]map[string]string, error) {
	var argp *C.char
	if arg != "" {
		argp = cstr(arg)
	}
	out := make(map[string]map[string]string)
	err := h.perServer("stats", C.lmc_stats(h.c, argp, C.size_t(len(arg))), func(r strRec) {
		m := out[r.s[0]]
		if m == nil {
			m = make(map[string]string)
			out[r.s[0]] = m
		}
		m[r.s[1]] = r.s[2]
	})
	return out, err
}

func (h *handle) versions(op string) (map[string]string, error) {
	out := make(map[string]string)
	err := h.perServer(op, C.lmc_versions(h.c, boolInt(op == "version")), func(r strRec) { out[r.s[0]] = r.s[1] })
	return out, err
}

// perServer reads the records of the per-server C helper that returned
// rc, hands each data record to add, and returns the failed servers'
// errors.
func (h *handle) perServer(op string, rc C.memcached_return_t, add func(strRec)) error {
	recs := h.records(int(h.c.out_count))
	for _, r := range recs {
		if r.rc == ReturnSuccess {
			add(r)
		}
	}
	if err := serverErrors(op, recs); err != nil {
		if e, ok := err.(*Error); ok {
			h.explainRefusal(op, e)
		}
		return err
	}
	if rc != C.MEMCACHED_SUCCESS {
		return h.fail(op, "", rc)
	}
	return nil
}

func (h *handle) servers() []string {
	n := C.lmc_servers(h.c)
	out := make([]string, 0, int(n))
	for _, r := range h.records(int(n)) {
		out = append(out, r.s[0])
	}
	return out
}

func (h *handle) serverFor(key string) (string, error) {
	if err := h.checkKey("server_for", key); err != nil {
		return "", err
	}
	rc := C.lmc_server_for(h.c, cstr(key), C.size_t(len(key)))
	if rc != C.MEMCACHED_SUCCESS {
		return "", handleError(h.memc, "server_for", key, rc)
	}
	return h.serverName(), nil
}

// connect connects the handle to every server (Pool.Warm).
func (h *handle) connect(op string) error {
	if C.memcached_behavior_get(h.memc, C.MEMCACHED_BEHAVIOR_USE_UDP) != 0 {
		return nil
	}
	// A version request goes to every server whose version the handle
	// has not read yet, connecting as it goes.
	rc := C.memcached_version(h.memc)
	if rc != C.MEMCACHED_SUCCESS && C.lmc_version_unparsed(h.memc) != 0 {
		return nil // a server with a VERSION line of words answered (mcrouter)
	}
	if rc == C.MEMCACHED_SOME_ERRORS {
		// Some server failed: report its error (the handle's last).
		if last := C.memcached_last_error(h.memc); last != C.MEMCACHED_SUCCESS && last != C.MEMCACHED_SOME_ERRORS {
			e := h.fail(op, "", last)
			e.Original = ReturnSomeErrors
			return e
		}
	}
	if rc != C.MEMCACHED_SUCCESS {
		return h.fail(op, "", rc)
	}
	return nil
}

// reconnect closes the handle's connections and connects it to every
// server again (see connect).
func (h *handle) reconnect(op string) error {
	C.memcached_quit(h.memc)
	return h.connect(op)
}

// clone returns a new, unshared handle with the same servers, behaviors,
// namespace and credentials (memcached_clone), and no connections yet.
func (h *handle) clone() (*handle, error) {
	memc := C.memcached_clone(nil, h.memc)
	if memc == nil {
		return nil, &Error{Code: ReturnMemoryAllocationFailure, Original: ReturnMemoryAllocationFailure, Op: "clone"}
	}
	cl, err := newHandle(memc, memc, &options{counting: h.counting, clone: true})
	if err == nil {
		cl.c.spin.budget_ns = h.c.spin.budget_ns
		cl.sasl = h.sasl // memcached_clone copies the credentials
		cl.setAuthGuard()
	}
	return cl, err
}
