package libmemcached

// Options: how a Client or Pool is configured at construction.

/*
#include <stdlib.h>
#include <libmemcached-1.0/memcached.h>
#include "cgo_helpers.h"
*/
import "C"

import (
	"fmt"
	"time"

	"github.com/libmemcached-go/libmemcached/internal/leakcheck"
)

// Option configures a Client or a Pool at construction.
type Option func(*options)

type options struct {
	binary     bool
	settings   []func(h *handle) error // behaviors, in the order given
	saslUser   string
	saslPass   string
	sasl       bool
	namespace  *string
	counting   bool
	noCoalesce bool
	clone      bool // the handle is a clone: it already has its settings
	observer   func(Event)
}

// WithBinaryProtocol makes the client speak memcached's binary protocol
// (BehaviorBinaryProtocol). Keys may then contain any bytes.
func WithBinaryProtocol() Option {
	return func(o *options) { o.binary = true }
}

// WithBehavior sets one behavior, as Client.SetBehavior does.
func WithBehavior(b Behavior, value uint64) Option {
	return func(o *options) {
		o.settings = append(o.settings, func(h *handle) error { return h.setBehavior(b, value) })
	}
}

// WithBehaviors sets behaviors by pylibmc's names, as Client.SetBehaviors
// does; an unknown name or bad value makes the constructor fail.
func WithBehaviors(m map[string]any) Option {
	return func(o *options) {
		o.settings = append(o.settings, func(h *handle) error { return h.setBehaviors(m) })
	}
}

// WithSASL authenticates to every server with SASL PLAIN using user and
// password. SASL needs the binary protocol, which this option turns on.
func WithSASL(user, password string) Option {
	return func(o *options) {
		o.sasl, o.saslUser, o.saslPass, o.binary = true, user, password, true
	}
}

// WithNamespace prefixes every key with prefix on the wire
// (MEMCACHED_CALLBACK_NAMESPACE). Keys in results come back without it. The
// prefix counts against MaxKeyLength.
func WithNamespace(prefix string) Option {
	return func(o *options) { o.namespace = &prefix }
}

// WithCoalescing turns a Pool's coalescing of concurrent Get and GetMulti
// calls into shared multi-gets on (the default) or off. It does not affect
// a Client.
func WithCoalescing(on bool) Option {
	return func(o *options) { o.noCoalesce = !on }
}

// DefaultSpinWait is how long a Get busy-waits for its reply before it
// blocks, unless WithSpinWait says otherwise.
const DefaultSpinWait = 50 * time.Microsecond

// WithSpinWait sets how long a Get or GetMulti busy-waits for the server's
// first reply (polling its socket without blocking) before libmemcached
// blocks in poll; 0 turns busy waiting off. The default is
// DefaultSpinWait.
//
// A reply from a loopback or nearby server comes back in tens of
// microseconds, and a thread that blocks for it pays a wake-up of about as
// long again (more on a virtual machine, where the idle CPU halts): with
// the busy wait a sequential Get on the project's 2-core VM took a third
// of the time it took without (README, Performance). The wait runs only
// while the call is the only one of this package's calls in progress in
// the process, and only on a machine with more than one CPU, so it never
// takes a CPU from concurrent calls; after two waits in a row that end
// before the reply (a far or slow server) a handle skips the wait for the
// next 2, then 4, ... up to 1024 requests, so such a server costs about
// one wait in a thousand.
// The price is CPU time: a waiting thread spins instead of sleeping, for
// at most d per request. A negative d makes the constructor fail.
func WithSpinWait(d time.Duration) Option {
	return func(o *options) {
		o.settings = append(o.settings, func(h *handle) error {
			if d < 0 {
				return inputError("new", "", ReturnInvalidArguments, fmt.Sprintf("WithSpinWait(%v): a wait cannot be negative", d))
			}
			h.c.spin.budget_ns = C.int64_t(d.Nanoseconds())
			return nil
		})
	}
}

// withCountingAllocator routes the client's C allocations (libmemcached's
// and the binding's own) through a counting allocator, for leak tests:
// liveCAllocations reports how many blocks are outstanding. It costs a
// mutex per allocation. Tests outside this package reach both through
// internal/leakcheck.
func withCountingAllocator() Option {
	return func(o *options) { o.counting = true }
}

// liveCAllocations returns the number of C blocks allocated through the
// counting allocator and not yet freed, over all clients.
func liveCAllocations() int {
	return int(C.lmc_counting_live())
}

func init() {
	leakcheck.Option = func() any { return withCountingAllocator() }
	leakcheck.Live = liveCAllocations
}

func collect(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}
