// The wait for a single get's reply: a short busy wait before libmemcached
// blocks in poll(). See spin.c.
#ifndef LMC_SPIN_H
#define LMC_SPIN_H

#include <libmemcached-1.0/memcached.h>
#include <stdint.h>

// LMC_SPIN_DEFAULT_NS is a new handle's budget (WithSpinWait changes it).
#define LMC_SPIN_DEFAULT_NS 50000

// lmc_spin is one handle's state.
typedef struct lmc_spin {
  int64_t budget_ns; // the longest busy wait; 0: never
  uint32_t skip;     // requests left to run without one (after a miss)
  uint32_t misses;   // busy waits in a row that ended before the reply
} lmc_spin;

// lmc_spin_enter and lmc_spin_leave count the helpers' calls in progress
// in the process: a busy wait runs only while its call is the only one.
void lmc_spin_enter(void);
void lmc_spin_leave(void);

// lmc_spin_alone reports whether the calling one is the only call in
// progress.
int lmc_spin_alone(void);

// lmc_spin_wait waits up to s->budget_ns for the reply to a request just
// sent to key's server (group key gkey when gkey_len > 0) to become
// readable, polling its socket without blocking; it returns at once when
// busy waiting is off, does not pay (other calls in progress, one CPU,
// recent misses), or the socket cannot be found. It never reads: the
// reply is libmemcached's to read.
void lmc_spin_wait(lmc_spin *s, memcached_st *memc, const char *gkey, size_t gkey_len);

// lmc_spin_counts returns the busy waits so far that saw the reply
// (hits) and that ran out (misses), for tests.
void lmc_spin_counts(uint64_t *hits, uint64_t *misses);

#endif
