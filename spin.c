// Busy waiting for a single get's reply.
//
// On a loopback or nearby server a get's reply comes back in 10 to 50 us.
// libmemcached reads once, finds nothing and blocks in poll(); the thread
// sleeps, its CPU idles, and the wake-up costs tens of microseconds more
// (on a virtual machine a halted vCPU's exit and re-entry: measured on
// the project's 2-core VM, a C loop of gets went from 104 us a get to 34
// us with a 50 us busy wait before the fetch, 29,600 of 30,000 replies
// arriving within it). Go's own runtime spins for the same reason before
// it parks a thread in the netpoller, which is why a pure-Go client's
// sequential gets are quicker than a blocking C loop's there.
//
// So after the request is sent and before libmemcached reads, the helper
// polls the server's socket with a zero timeout until it is readable or
// the budget is spent, then lets libmemcached read as always. It never
// waits longer than the budget, and backs off after misses (a far server,
// slow replies): a lone miss (a reply in the tail: 3 to 8% of them with
// the default budget on the project's VM) changes nothing, but after n
// misses in a row it skips the next 2^(n-1) requests (up to 1024), so a
// server whose replies take longer costs about one budget in a thousand
// requests. It runs only while its call is the only one of the
// binding's calls in progress in the process (checked again between
// polls: a call that starts meanwhile ends the wait) and there is more
// than one CPU: under concurrency a spinning thread would take a CPU
// another call (or a local memcached) needs. A Pool's coalesced batch
// waits too while it is the only one in flight: the callers queued behind
// it are parked goroutines, which need no CPU. Between polls it yields
// the CPU (sched_yield), so a thread woken on this CPU, memcached's worker
// on a shared machine, runs at once.
//
// The socket is read from libmemcached's instance struct (conns.c).
#include "spin.h"

#include "conns.h"

#include <poll.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

static int lmc_active; // helpers' calls in progress
static int lmc_cpus;   // online CPUs, read once
static uint64_t lmc_hits, lmc_misses;

void lmc_spin_enter(void) { __atomic_add_fetch(&lmc_active, 1, __ATOMIC_RELAXED); }

void lmc_spin_leave(void) { __atomic_sub_fetch(&lmc_active, 1, __ATOMIC_RELAXED); }

int lmc_spin_alone(void) { return __atomic_load_n(&lmc_active, __ATOMIC_RELAXED) <= 1; }

void lmc_spin_counts(uint64_t *hits, uint64_t *misses) {
  *hits = __atomic_load_n(&lmc_hits, __ATOMIC_RELAXED);
  *misses = __atomic_load_n(&lmc_misses, __ATOMIC_RELAXED);
}

static int64_t lmc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void lmc_spin_wait(lmc_spin *s, memcached_st *memc, const char *gkey, size_t gkey_len) {
  if (s->budget_ns <= 0 || lmc_layout_ok() == 0) {
    return;
  }
  if (s->skip > 0) {
    s->skip--;
    return;
  }
  int cpus = __atomic_load_n(&lmc_cpus, __ATOMIC_RELAXED);
  if (cpus == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpus = n > 0 ? (int) n : 1;
    __atomic_store_n(&lmc_cpus, cpus, __ATOMIC_RELAXED);
  }
  if (cpus < 2 || __atomic_load_n(&lmc_active, __ATOMIC_RELAXED) > 1) {
    return;
  }
  memcached_return_t rc;
  const memcached_instance_st *in = memcached_server_by_key(memc, gkey, gkey_len, &rc);
  if (in == NULL) {
    return;
  }
  int fd = lmc_instance_fd(in);
  if (fd < 0) {
    return;
  }
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int64_t end = lmc_now_ns() + s->budget_ns;
  for (;;) {
    int n = poll(&pfd, 1, 0);
    if (n != 0) { // readable, an error or hang-up: libmemcached's to read
      s->misses = 0;
      __atomic_add_fetch(&lmc_hits, 1, __ATOMIC_RELAXED);
      return;
    }
    if (lmc_now_ns() >= end) {
      break;
    }
    if (__atomic_load_n(&lmc_active, __ATOMIC_RELAXED) > 1) {
      return; // another call started: leave the CPU to it (not a miss)
    }
    // Let a thread that is runnable on this CPU go first: on a machine
    // whose cores memcached shares, its worker may be the one woken here.
    sched_yield();
  }
  if (s->misses < 11) {
    s->misses++;
  }
  // A lone miss (a reply in the tail) costs nothing more; from the second
  // in a row, skip 2, 4, ... 1024 requests.
  s->skip = s->misses > 1 ? 1u << (s->misses - 1) : 0;
  __atomic_add_fetch(&lmc_misses, 1, __ATOMIC_RELAXED);
}
