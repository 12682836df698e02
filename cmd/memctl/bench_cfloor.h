// The "C floor" of memctl bench: the benchmark's loops written in C
// straight against libmemcached, so that the table shows how close a Go
// binding gets to the C library itself. Compiled into memctl only, never
// into the library package.
#ifndef MEMCTL_BENCH_CFLOOR_H
#define MEMCTL_BENCH_CFLOOR_H

#include <stddef.h>
#include <stdint.h>
#include <libmemcached-1.0/memcached.h>

// Latency histogram: the same log-linear buckets as hist.go (values in ns;
// exact below 64, then 32 sub-buckets per power of two: under 3.2% error).
#define CF_HIST_BUCKETS 1920

// Job modes.
enum { CF_GET = 1, CF_SET = 2, CF_MGET = 3, CF_MIX = 4 };

// cf_client is one libmemcached handle with a result kept in storage it
// owns, so fetching never allocates a result (see libmemcached-pitfalls.md,
// item 1).
typedef struct cf_client {
  memcached_st *memc;
  memcached_result_st result;
  struct cf_client **clones; // for threaded jobs, kept (and connected) between jobs
  int nclones;
} cf_client;

// cf_job is one measured window (or, with max_ops, a bounded run such as
// the preload).
typedef struct cf_job {
  // inputs
  int mode;
  const char **keys;      // nkeys keys; keys[i] ends in ":<i>"
  const size_t *key_lens;
  const char **vals;      // the value stored under (and expected for) keys[i]
  const size_t *val_lens;
  size_t nkeys;
  size_t batch;           // keys per multi-get (CF_MGET)
  int64_t window_ns;      // run this long (0 with max_ops: no limit)
  uint64_t max_ops;       // stop after this many ops (0: no limit)
  int threads;            // 0: run in the calling thread; else this many pthreads
  int handles;            // pthreads share this many handles (a pool)
  uint64_t *hist;         // CF_HIST_BUCKETS counters per thread (one set if threads == 0)
  // outputs
  uint64_t ops;           // operations done (multi-gets count once)
  uint64_t keys_done;     // keys asked for (multi-gets count each key)
  uint64_t errors;        // failed operations and missing or wrong values
  int64_t elapsed_ns;
  char err[256];          // the first error
} cf_job;

// cf_open makes a client from a libmemcached configuration string, with the
// Go binding's defaults (TCP_NODELAY and CAS support on) and, if noreply,
// MEMCACHED_BEHAVIOR_NOREPLY. It returns NULL with a message in err.
cf_client *cf_open(const char *config, int noreply, char *err, size_t errlen);
void cf_close(cf_client *c);

// cf_run runs the job on c (or, with threads, on job->handles clones of c)
// and fills its outputs.
void cf_run(cf_client *c, cf_job *job);

// cf_lib_version is libmemcached's run-time version.
const char *cf_lib_version(void);

#endif
