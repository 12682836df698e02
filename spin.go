package libmemcached

// The Go side of spin.c, for the tests.

/*
#include "spin.h"
*/
import "C"

// spinCounts returns the busy waits so far (all handles) that saw their
// reply, and those that ran out first.
func spinCounts() (hits, misses uint64) {
	var h, m C.uint64_t
	C.lmc_spin_counts(&h, &m)
	return uint64(h), uint64(m)
}

// spinLayoutOK is lmc_spin_layout_ok: 1 when libmemcached's instance
// layout matched the prefix spin.c reads the socket from, 0 when it did
// not (busy waiting is then off), -1 before the first busy wait.
func spinLayoutOK() int { return int(C.lmc_spin_layout_ok()) }
