package libmemcached

// The Go side of conns.c: a handle's server sockets.

/*
#include "conns.h"
*/
import "C"

// layoutOK is lmc_layout_ok: 1 when libmemcached's instance layout matched
// the prefix conns.c reads sockets from, 0 when it did not (the busy wait
// and the Pool's check for stale connections are then off), -1 before the
// first read.
func layoutOK() int { return int(C.lmc_layout_ok()) }

// connState describes the connections of the handle, not in use (see
// lmc_conn_state): stale, one its server closed or reset; missing, a
// server it has none to.
func (h *handle) connState() (stale, missing bool) {
	st := C.lmc_conn_state(h.memc)
	return st&C.LMC_CONN_STALE != 0, st&C.LMC_CONN_MISSING != 0
}

// serverFD is the socket of the handle's i-th server: -1 when it is not
// connected, -2 when sockets cannot be read here (tests).
func (h *handle) serverFD(i int) int { return int(C.lmc_server_fd(h.memc, C.uint32_t(i))) }
