// A server's socket, read from libmemcached's instance struct.
//
// libmemcached (1.0.18 to 1.1.4) has no public accessor for a server
// connection's descriptor, but keeps it in its instance struct, whose
// first members have been the same in every release since 1.0.18
// (instance.hpp): an options struct of five bools, two shorts,
// cursor_active_, port_, fd. The prefix below mirrors them; every read
// checks that the port read there is the one memcached_server_port
// reports, and a mismatch turns the reads off for the process: their
// users (spin.c's busy wait, the Pool's reconnection of stale handles) are
// optimisations, and libmemcached's own I/O is unchanged either way.
#include "conns.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>

typedef struct lmc_instance_prefix {
  struct {
    bool is_allocated;
    bool is_initialized;
    bool is_shutting_down;
    bool is_dead;
    bool ready;
  } options;
  short events;
  short revents;
  uint32_t cursor_active;
  in_port_t port;
  int fd;
} lmc_instance_prefix;

static int lmc_layout = -1; // see lmc_layout_ok

int lmc_layout_ok(void) { return __atomic_load_n(&lmc_layout, __ATOMIC_RELAXED); }

int lmc_instance_fd(const memcached_instance_st *in) {
  if (__atomic_load_n(&lmc_layout, __ATOMIC_RELAXED) == 0) {
    return -2;
  }
  const lmc_instance_prefix *p = (const lmc_instance_prefix *) (const void *) in;
  if (p->port != memcached_server_port(in)) {
    __atomic_store_n(&lmc_layout, 0, __ATOMIC_RELAXED);
    return -2;
  }
  if (__atomic_load_n(&lmc_layout, __ATOMIC_RELAXED) < 0) {
    __atomic_store_n(&lmc_layout, 1, __ATOMIC_RELAXED);
  }
  return p->fd < 0 ? -1 : p->fd;
}

int lmc_server_fd(const memcached_st *memc, uint32_t i) {
  if (i >= memcached_server_count(memc)) {
    return -1;
  }
  const memcached_instance_st *in = memcached_server_instance_by_position(memc, i);
  return in == NULL ? -1 : lmc_instance_fd(in);
}

int lmc_conn_state(const memcached_st *memc) {
  int state = 0;
  uint32_t n = memcached_server_count(memc);
  for (uint32_t i = 0; i < n; i++) {
    int fd = lmc_server_fd(memc, i);
    if (fd == -2) {
      return 0;
    }
    if (fd < 0) {
      state |= LMC_CONN_MISSING;
      continue;
    }
    // Idle, a connection has nothing to read: readable means the server
    // closed it (a restart: end of file) or reset it.
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) > 0) {
      state |= LMC_CONN_STALE;
    }
  }
  return state;
}
