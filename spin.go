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
