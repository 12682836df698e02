// The C floor of memctl bench: see bench_cfloor.h.

#include "bench_cfloor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Items written by the benchmark expire after an hour, as in bench.go.
#define CF_EXPIRATION 3600

static int64_t cf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// cf_bucket mirrors bucketOf in hist.go.
static inline size_t cf_bucket(uint64_t v) {
  if (v < 64) {
    return (size_t)v;
  }
  int e = 64 - __builtin_clzll(v) - 6;
  return 64 + (size_t)(e - 1) * 32 + (size_t)((v >> e) - 32);
}

const char *cf_lib_version(void) { return memcached_lib_version(); }

cf_client *cf_open(const char *config, int noreply, char *err, size_t errlen) {
  memcached_st *memc = memcached(config, strlen(config));
  if (memc == NULL) {
    char buf[256];
    memcached_return_t rc = libmemcached_check_configuration(config, strlen(config), buf, sizeof buf);
    snprintf(err, errlen, "libmemcached configuration %s: %s", config,
             rc == MEMCACHED_SUCCESS ? "cannot make a handle" : buf);
    return NULL;
  }
  memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
  memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
  if (noreply) {
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
  }
  cf_client *c = calloc(1, sizeof *c);
  if (c == NULL) {
    memcached_free(memc);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->memc = memc;
  memcached_result_create(memc, &c->result);
  return c;
}

static cf_client *cf_clone(cf_client *base) {
  memcached_st *memc = memcached_clone(NULL, base->memc);
  if (memc == NULL) {
    return NULL;
  }
  cf_client *c = calloc(1, sizeof *c);
  if (c == NULL) {
    memcached_free(memc);
    return NULL;
  }
  c->memc = memc;
  memcached_result_create(memc, &c->result);
  return c;
}

void cf_close(cf_client *c) {
  if (c == NULL) {
    return;
  }
  for (int i = 0; i < c->nclones; i++) {
    cf_close(c->clones[i]);
  }
  free(c->clones);
  memcached_result_free(&c->result);
  memcached_free(c->memc);
  free(c);
}

// cf_key_index returns i for a key ending in ":<i>", or (size_t)-1.
static size_t cf_key_index(const char *key, size_t len) {
  size_t i = len, v = 0, mul = 1;
  while (i > 0 && key[i - 1] >= '0' && key[i - 1] <= '9') {
    v += (size_t)(key[i - 1] - '0') * mul;
    mul *= 10;
    i--;
  }
  if (i == len || i == 0 || key[i - 1] != ':') {
    return (size_t)-1;
  }
  return v;
}

// A thread's share of a job: its counters, histogram and first error.
typedef struct cf_worker {
  uint64_t ops, keys_done, errors;
  uint64_t *hist;
  uint64_t rng;
  char err[256];
} cf_worker;

static void cf_fail(cf_worker *w, const char *what, const char *key, size_t klen, const char *msg) {
  w->errors++;
  if (w->err[0] == '\0') {
    snprintf(w->err, sizeof w->err, "C floor %s %.*s: %s", what, (int)klen, key, msg);
  }
}

static void cf_fail_rc(cf_worker *w, cf_client *c, const char *what, const char *key, size_t klen,
                       memcached_return_t rc) {
  const char *msg = memcached_last_error_message(c->memc);
  if (msg == NULL || *msg == '\0') {
    msg = memcached_strerror(c->memc, rc);
  }
  cf_fail(w, what, key, klen, msg);
}

// cf_fetch reads the replies of a multi-get (or a one-key get), checks
// each value against the job's and returns how many keys came back.
static size_t cf_fetch(cf_client *c, const cf_job *job, cf_worker *w, const char *first_key, size_t first_len) {
  size_t found = 0;
  memcached_return_t rc;
  memcached_result_st *r;
  while ((r = memcached_fetch_result(c->memc, &c->result, &rc)) != NULL) {
    const char *k = memcached_result_key_value(r);
    size_t kl = memcached_result_key_length(r);
    size_t idx = cf_key_index(k, kl);
    if (idx >= job->nkeys) {
      cf_fail(w, "get", k, kl, "a reply for a key that was not asked for");
      continue;
    }
    if (memcached_result_length(r) != job->val_lens[idx]
        || memcmp(memcached_result_value(r), job->vals[idx], job->val_lens[idx]) != 0) {
      cf_fail(w, "get", k, kl, "wrong value");
      continue;
    }
    found++;
  }
  if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
    cf_fail_rc(w, c, "fetch", first_key, first_len, rc);
    memcached_quit(c->memc);
  }
  return found;
}

static void cf_get(cf_client *c, const cf_job *job, cf_worker *w, size_t i) {
  const char *key = job->keys[i];
  size_t klen = job->key_lens[i];
  memcached_return_t rc = memcached_mget(c->memc, &key, &klen, 1);
  if (memcached_failed(rc)) {
    cf_fail_rc(w, c, "get", key, klen, rc);
    return;
  }
  if (cf_fetch(c, job, w, key, klen) != 1) {
    cf_fail(w, "get", key, klen, "missing");
  }
}

static void cf_set(cf_client *c, const cf_job *job, cf_worker *w, size_t i) {
  memcached_return_t rc = memcached_set(c->memc, job->keys[i], job->key_lens[i], job->vals[i],
                                        job->val_lens[i], CF_EXPIRATION, 0);
  if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED && rc != MEMCACHED_STORED) {
    cf_fail_rc(w, c, "set", job->keys[i], job->key_lens[i], rc);
  }
}

static void cf_mget(cf_client *c, const cf_job *job, cf_worker *w, size_t start) {
  const char *const *keys = job->keys + start;
  const size_t *lens = job->key_lens + start;
  memcached_return_t rc = memcached_mget(c->memc, keys, lens, job->batch);
  if (memcached_failed(rc)) {
    cf_fail_rc(w, c, "get_multi", keys[0], lens[0], rc);
    return;
  }
  size_t found = cf_fetch(c, job, w, keys[0], lens[0]);
  if (found < job->batch) {
    w->errors += job->batch - found - 1;
    cf_fail(w, "get_multi", keys[0], lens[0], "keys missing from the reply");
  }
}

static inline uint64_t cf_rand(cf_worker *w) {
  uint64_t x = w->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  w->rng = x;
  return x;
}

// cf_op does operation number n of a worker.
static void cf_op(cf_client *c, const cf_job *job, cf_worker *w, uint64_t n, int random) {
  size_t i = random ? (size_t)(cf_rand(w) % job->nkeys) : (size_t)(n % job->nkeys);
  switch (job->mode) {
  case CF_GET:
    cf_get(c, job, w, i);
    w->keys_done++;
    break;
  case CF_SET:
    cf_set(c, job, w, i);
    w->keys_done++;
    break;
  case CF_MIX:
    if (cf_rand(w) % 10 == 0) {
      cf_set(c, job, w, i);
    } else {
      cf_get(c, job, w, i);
    }
    w->keys_done++;
    break;
  case CF_MGET: {
    size_t groups = job->nkeys / job->batch;
    size_t g = random ? (size_t)(cf_rand(w) % groups) : (size_t)(n % groups);
    cf_mget(c, job, w, g * job->batch);
    w->keys_done += job->batch;
    break;
  }
  }
  w->ops++;
}

// ---------------------------------------------------------------------------
// One thread

static void cf_run_single(cf_client *c, cf_job *job) {
  cf_worker w;
  memset(&w, 0, sizeof w);
  w.hist = job->hist;
  w.rng = 0x9e3779b97f4a7c15ULL;
  int64_t start = cf_now(), deadline = start + job->window_ns;
  for (uint64_t n = 0;; n++) {
    if (job->max_ops != 0 && n >= job->max_ops) {
      break;
    }
    int64_t t0 = cf_now();
    if (job->window_ns > 0 && t0 >= deadline) {
      break;
    }
    cf_op(c, job, &w, n, 0);
    if (w.hist != NULL) {
      w.hist[cf_bucket((uint64_t)(cf_now() - t0))]++;
    }
  }
  // With noreply the writes may still be in flight: a get waits for the
  // server to have read them all, and counts in the window.
  if (memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_NOREPLY) && job->nkeys > 0) {
    cf_get(c, job, &w, 0);
  }
  job->elapsed_ns = cf_now() - start;
  job->ops = w.ops;
  job->keys_done = w.keys_done;
  job->errors = w.errors;
  memcpy(job->err, w.err, sizeof job->err);
}

// ---------------------------------------------------------------------------
// Threads sharing a pool of handles

typedef struct cf_shared {
  cf_job *job;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cf_client **free;
  int nfree;
  // the start gate: threads count themselves in and wait for go
  pthread_mutex_t gate_mu;
  pthread_cond_t gate_cv;
  int ready, go;
  atomic_int stop;
} cf_shared;

typedef struct cf_thread {
  cf_shared *sh;
  cf_worker w;
  pthread_t tid;
} cf_thread;

static cf_client *cf_acquire(cf_shared *sh) {
  pthread_mutex_lock(&sh->mu);
  while (sh->nfree == 0) {
    pthread_cond_wait(&sh->cv, &sh->mu);
  }
  cf_client *c = sh->free[--sh->nfree];
  pthread_mutex_unlock(&sh->mu);
  return c;
}

static void cf_release(cf_shared *sh, cf_client *c) {
  pthread_mutex_lock(&sh->mu);
  sh->free[sh->nfree++] = c;
  pthread_cond_signal(&sh->cv);
  pthread_mutex_unlock(&sh->mu);
}

static void *cf_thread_main(void *arg) {
  cf_thread *t = arg;
  cf_shared *sh = t->sh;
  pthread_mutex_lock(&sh->gate_mu);
  sh->ready++;
  pthread_cond_broadcast(&sh->gate_cv);
  while (!sh->go) {
    pthread_cond_wait(&sh->gate_cv, &sh->gate_mu);
  }
  pthread_mutex_unlock(&sh->gate_mu);
  for (uint64_t n = 0; !atomic_load_explicit(&sh->stop, memory_order_relaxed); n++) {
    int64_t t0 = cf_now();
    cf_client *c = cf_acquire(sh);
    cf_op(c, sh->job, &t->w, n, 1);
    cf_release(sh, c);
    t->w.hist[cf_bucket((uint64_t)(cf_now() - t0))]++;
  }
  return NULL;
}

static void cf_run_threads(cf_client *base, cf_job *job) {
  int nh = job->handles > 0 ? job->handles : 1;
  int nt = job->threads;
  cf_shared sh;
  memset(&sh, 0, sizeof sh);
  sh.job = job;
  pthread_mutex_init(&sh.mu, NULL);
  pthread_cond_init(&sh.cv, NULL);
  atomic_init(&sh.stop, 0);
  if (base->nclones < nh) {
    cf_client **cl = realloc(base->clones, (size_t)nh * sizeof *cl);
    if (cl == NULL) {
      snprintf(job->err, sizeof job->err, "C floor: out of memory");
      job->errors = 1;
      return;
    }
    base->clones = cl;
    while (base->nclones < nh) {
      cf_client *c = cf_clone(base);
      if (c == NULL) {
        snprintf(job->err, sizeof job->err, "C floor: memcached_clone failed");
        job->errors = 1;
        return;
      }
      base->clones[base->nclones++] = c;
    }
  }
  sh.free = calloc((size_t)nh, sizeof *sh.free);
  cf_thread *th = calloc((size_t)nt, sizeof *th);
  if (sh.free == NULL || th == NULL) {
    snprintf(job->err, sizeof job->err, "C floor: out of memory");
    job->errors = 1;
    free(sh.free);
    free(th);
    return;
  }
  for (int i = 0; i < nh; i++) {
    sh.free[sh.nfree++] = base->clones[i];
  }
  pthread_mutex_init(&sh.gate_mu, NULL);
  pthread_cond_init(&sh.gate_cv, NULL);
  int started = 0;
  for (int i = 0; i < nt; i++) {
    th[i].sh = &sh;
    th[i].w.hist = job->hist + (size_t)i * CF_HIST_BUCKETS;
    th[i].w.rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
    if (pthread_create(&th[i].tid, NULL, cf_thread_main, &th[i]) != 0) {
      break;
    }
    started++;
  }
  if (started < nt) {
    snprintf(job->err, sizeof job->err, "C floor: could only start %d of %d threads", started, nt);
    job->errors++;
    atomic_store(&sh.stop, 1);
  }
  pthread_mutex_lock(&sh.gate_mu);
  while (sh.ready < started) {
    pthread_cond_wait(&sh.gate_cv, &sh.gate_mu);
  }
  sh.go = 1;
  pthread_cond_broadcast(&sh.gate_cv);
  pthread_mutex_unlock(&sh.gate_mu);
  int64_t start = cf_now();
  if (started == nt) {
    struct timespec ts = {(time_t)(job->window_ns / 1000000000), (long)(job->window_ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    atomic_store(&sh.stop, 1);
  }
  for (int i = 0; i < started; i++) {
    pthread_join(th[i].tid, NULL);
  }
  job->elapsed_ns = cf_now() - start;
  for (int i = 0; i < started; i++) {
    job->ops += th[i].w.ops;
    job->keys_done += th[i].w.keys_done;
    job->errors += th[i].w.errors;
    if (job->err[0] == '\0' && th[i].w.err[0] != '\0') {
      memcpy(job->err, th[i].w.err, sizeof job->err);
    }
  }
  pthread_cond_destroy(&sh.gate_cv);
  pthread_mutex_destroy(&sh.gate_mu);
  pthread_cond_destroy(&sh.cv);
  pthread_mutex_destroy(&sh.mu);
  free(sh.free);
  free(th);
}

void cf_run(cf_client *c, cf_job *job) {
  job->ops = job->keys_done = job->errors = 0;
  job->elapsed_ns = 0;
  job->err[0] = '\0';
  if (job->nkeys == 0 || (job->mode == CF_MGET && (job->batch == 0 || job->batch > job->nkeys))) {
    snprintf(job->err, sizeof job->err, "C floor: bad job");
    job->errors = 1;
    return;
  }
  if (job->threads > 0) {
    cf_run_threads(c, job);
  } else {
    cf_run_single(c, job);
  }
}
