// Package libmemcached is a memcached client for Go: a thin cgo binding over
// libmemcached (1.0.18 to 1.1.4), doing for Go what pylibmc does for
// Python. libmemcached speaks the protocol (ASCII or binary), hashes keys,
// spreads them over servers (modula or consistent ketama), fails over,
// replicates and authenticates with SASL; this package hands it Go memory
// inside each call and copies results out once.
//
//	mc, err := libmemcached.New([]string{"10.0.0.1:11211", "10.0.0.2:11211"},
//		libmemcached.WithBehaviors(map[string]any{"ketama": true}))
//	...
//	err = mc.Set(&libmemcached.Item{Key: "greeting", Value: []byte("hello")})
//	it, err := mc.Get("greeting")
//	if errors.Is(err, libmemcached.ErrCacheMiss) { ... }
//
// # Concurrency
//
// A [Client] wraps one libmemcached handle (memcached_st). It is safe for
// concurrent use, but its calls are serialized: one request at a time. A
// [Pool] wraps libmemcachedutil's memcached_pool and gives parallelism: up
// to size handles, each with its own connections; goroutines wait for a
// free handle in Go ([Pool.Acquire] honours its context), never inside C.
// The Pool's own [Pool.Get] and [Pool.GetMulti] fold the Gets that
// goroutines make at the same time into shared multi-gets (see
// [WithCoalescing]); each caller still gets exactly its own item, miss or
// error. A Pool connects its free handles back to back in the background
// at its first use, which spreads them over the server's worker threads,
// and again after a server restarts; [Pool.Warm] connects every handle up
// front. A Pool's GetMulti of 512
// keys or more is split over free handles to parse on more than one core.
//
// A Get or GetMulti that is the only one of this package's calls in
// progress busy-waits briefly for its reply before blocking
// ([WithSpinWait]), which makes one request at a time about as quick as a
// pure-Go client's on a nearby server; concurrent calls never spin: they
// wait for their replies in Go's netpoller, holding no OS thread, while
// libmemcached still does all the reading (stores wait in C: libmemcached
// sends them and reads the reply in one call). The binding keeps a
// duplicate descriptor of each connection that such a wait used.
//
// Close a Client or Pool when done with it. One that is dropped without
// Close is freed by a finalizer when the garbage collector finds it (a
// client from [Pool.Acquire] goes back to its pool), so a forgotten Close
// costs connections and memory only until then; build with -tags
// libmemcached_leakcheck to have each such finalizer print where the
// Client or Pool was made.
//
// # Contexts
//
// Client and Pool have a context form of each item operation, as
// database/sql does: [Client.GetContext], GetMultiContext, SetContext,
// AddContext, ReplaceContext, AppendContext, PrependContext,
// CompareAndSwapContext, DeleteContext, IncrementContext,
// DecrementContext, TouchContext, SetMultiContext and DeleteMultiContext;
// the plain forms behave as before. A context that is already done
// returns ctx.Err() and touches no server. A deadline bounds the whole
// call: the wait for a busy Client, for a Pool handle or for a coalesced
// batch (a caller whose context ends leaves at once, and the batch goes on
// for the others), and libmemcached's connect and poll timeouts for that
// call, which are lowered to the time left (in whole milliseconds) and
// restored after. A cancellation without a deadline ends the waits;
// libmemcached's own call cannot be interrupted, so it ends within the
// handle's timeouts. The error of a call cut short by its context
// satisfies errors.Is(err, ctx.Err()) (and, for a timeout inside
// libmemcached, [Error.Timeout] too).
//
// # Observing
//
// [WithObserver] gives an [Event] per operation (its name, keys, hits,
// server, duration, the time spent waiting, the callers that shared a
// coalesced batch, the error) to a function of the caller's, for metrics
// and traces; the otelmemcached module turns them into OpenTelemetry
// metrics and spans. Without an observer nothing is measured.
//
// # Errors
//
// Every failure is an [*Error] with libmemcached's return code ([Error.Code],
// normalised across protocols) and the operation, key and server involved.
// Test for the common ones with errors.Is and the generated sentinels, one
// per memcached_return_t value: [ErrCacheMiss], [ErrNotStored],
// [ErrCASConflict], [ErrTimeout], [ErrConnectionFailure], ...
// [Error.Timeout] and [Error.Temporary] classify connection faults; a
// command a proxy refuses by closing the connection (twemproxy: stats,
// flush_all, the binary protocol) is [ErrNotSupported] naming the command,
// not a connection fault. Calls on
// a closed Client or Pool return [ErrClosed]. Invalid input (a key too long
// or, in the ASCII protocol, with spaces or control bytes) is refused in Go
// before it reaches libmemcached.
//
// # Behaviors
//
// [Client.SetBehaviors] and [Client.Behaviors] use pylibmc's behavior names
// ("tcp_nodelay", "ketama", "hash", "distribution", ...) and apply them in
// pylibmc's order; [Client.SetBehavior] takes libmemcached's constants
// ([BehaviorPollTimeout], ...). With the same server list and behaviors,
// libmemcached puts every key on the same server as pylibmc does.
//
// # Values shared with Python
//
// An [Item] holds bytes and flags. Package
// github.com/libmemcached-go/libmemcached/pylibmc stores Go values in
// pylibmc's format (its flags, pickles and zlib compression) over a Client
// or a Pool, which both implement [Store], so that Go and Python processes
// read each other's values with their types.
//
// # Versions
//
// The package builds against the libmemcached headers it finds through
// pkg-config, from 1.0.18 (macOS Homebrew, Ubuntu 22.04) through 1.1.0
// (RHEL 9) to 1.1.4 (Debian 12, Ubuntu 24.04), and behaves the same on
// each: it guards against the bugs of the library it loads (a hung server
// is a timeout and never a miss; no late reply answers another request; a
// hash the library cannot compute as named is refused) and refuses to run
// against a library whose major.minor release differs from the headers'
// ([ErrLibraryMismatch]). [LibraryVersion] and [RuntimeVersion] tell which
// is which.
package libmemcached
