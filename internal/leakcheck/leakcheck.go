// Package leakcheck reaches the binding's counting C allocator from the
// tests of other packages of this repository (integration_test), without
// making it part of the binding's public API. Package libmemcached fills
// in both functions when it is initialised.
package leakcheck

var (
	// Option returns a libmemcached.Option that routes a client's C
	// allocations (libmemcached's and the binding's own) through the
	// counting allocator. It costs a mutex per allocation.
	Option func() any
	// Live returns the number of C blocks allocated through the counting
	// allocator and not yet freed, over all clients.
	Live func() int
)
