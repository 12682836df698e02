// A server connection's socket, read from libmemcached's instance struct,
// and the checks built on it (see conns.c).
#ifndef LMC_CONNS_H
#define LMC_CONNS_H

#include <libmemcached-1.0/memcached.h>

// lmc_instance_fd returns the socket of one server of a handle: -1 when it
// has none (not connected), -2 when the instance layout check failed (the
// socket cannot be read safely in this process).
int lmc_instance_fd(const memcached_instance_st *in);

// lmc_layout_ok reports whether the instance layout check passed on the
// reads so far (1), failed (0: no socket is read again), or has not run
// yet (-1).
int lmc_layout_ok(void);

// lmc_server_fd is lmc_instance_fd of memc's i-th server (-1 when there is
// no such server), for the tests.
int lmc_server_fd(const memcached_st *memc, uint32_t i);

// lmc_conn_state describes the connections of a handle that is not in
// use: LMC_CONN_STALE when the server closed or reset one of them (its
// socket is readable, end of file or an error, although no request is
// outstanding), LMC_CONN_MISSING when it has none to a server. 0 when
// sockets cannot be read (layout check failed).
enum { LMC_CONN_STALE = 1, LMC_CONN_MISSING = 2 };
int lmc_conn_state(const memcached_st *memc);

#endif
