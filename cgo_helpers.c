// C helpers for the Go binding; see cgo_helpers.h.
#include "cgo_helpers.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char lmc_empty[1] = {0};

// ---------------------------------------------------------------------------
// Counting allocator: a registry of live blocks, so a test can prove that
// everything libmemcached (and these helpers) allocated was freed. Blocks
// allocated before the allocator was installed are not registered, and
// freeing them does not count, so the figure is exact either way.

#define LMC_BUCKETS 4096

typedef struct lmc_node {
  void *ptr;
  struct lmc_node *next;
} lmc_node;

static lmc_node *lmc_live[LMC_BUCKETS];
static long lmc_live_count;
static pthread_mutex_t lmc_live_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t lmc_bucket(void *p) {
  uintptr_t v = (uintptr_t) p;
  v ^= v >> 17;
  v *= 0x9E3779B97F4A7C15ull;
  return (size_t)(v >> 40) % LMC_BUCKETS;
}

static void lmc_register(void *p) {
  if (p == NULL) {
    return;
  }
  lmc_node *n = malloc(sizeof *n);
  if (n == NULL) {
    abort();
  }
  n->ptr = p;
  pthread_mutex_lock(&lmc_live_mu);
  size_t b = lmc_bucket(p);
  n->next = lmc_live[b];
  lmc_live[b] = n;
  lmc_live_count++;
  pthread_mutex_unlock(&lmc_live_mu);
}

static void lmc_unregister(void *p) {
  if (p == NULL) {
    return;
  }
  pthread_mutex_lock(&lmc_live_mu);
  lmc_node **pp = &lmc_live[lmc_bucket(p)];
  while (*pp != NULL) {
    if ((*pp)->ptr == p) {
      lmc_node *dead = *pp;
      *pp = dead->next;
      lmc_live_count--;
      free(dead);
      break;
    }
    pp = &(*pp)->next;
  }
  pthread_mutex_unlock(&lmc_live_mu);
}

long lmc_counting_live(void) {
  pthread_mutex_lock(&lmc_live_mu);
  long n = lmc_live_count;
  pthread_mutex_unlock(&lmc_live_mu);
  return n;
}

static void *lmc_count_malloc(const memcached_st *memc, const size_t size, void *ctx) {
  (void) memc;
  (void) ctx;
  void *p = malloc(size);
  lmc_register(p);
  return p;
}

static void lmc_count_free(const memcached_st *memc, void *mem, void *ctx) {
  (void) memc;
  (void) ctx;
  lmc_unregister(mem);
  free(mem);
}

static void *lmc_count_realloc(const memcached_st *memc, void *mem, const size_t size, void *ctx) {
  (void) memc;
  (void) ctx;
  void *p = realloc(mem, size);
  if (p != NULL || size == 0) {
    lmc_unregister(mem);
    lmc_register(p);
  }
  return p;
}

static void *lmc_count_calloc(const memcached_st *memc, size_t nelem, const size_t elsize,
                              void *ctx) {
  (void) memc;
  (void) ctx;
  void *p = calloc(nelem, elsize);
  lmc_register(p);
  return p;
}

memcached_return_t lmc_use_counting_allocator(memcached_st *memc) {
  return memcached_set_memory_allocators(memc, lmc_count_malloc, lmc_count_free,
                                         lmc_count_realloc, lmc_count_calloc, NULL);
}

// The helpers' own scratch memory follows the client's counting flag.
static void *lmc_realloc(int counting, void *p, size_t n) {
  return counting ? lmc_count_realloc(NULL, p, n, NULL) : realloc(p, n);
}

static void lmc_free(int counting, void *p) {
  if (counting) {
    lmc_count_free(NULL, p, NULL);
  } else {
    free(p);
  }
}

// ---------------------------------------------------------------------------
// Client

static void lmc_release_held(lmc_client *c);

lmc_client *lmc_client_new(memcached_st *root, memcached_st *memc, int counting) {
  lmc_client *c = counting ? lmc_count_calloc(NULL, 1, sizeof *c, NULL) : calloc(1, sizeof *c);
  if (c == NULL) {
    return NULL;
  }
  c->counting = counting;
  c->memc = memc;
  // Results in our own storage: memcached_fetch_result only resets them at
  // the end of a fetch, instead of freeing them.
  memcached_result_create(root, &c->result);
  memcached_result_create(root, &c->drain);
  return c;
}

void lmc_client_free(lmc_client *c) {
  if (c == NULL) {
    return;
  }
  lmc_release_held(c);
  memcached_result_free(&c->result);
  memcached_result_free(&c->drain);
  lmc_free(c->counting, c->out.data);
  lmc_free(c->counting, (void *) c->keyptrs);
  lmc_free(c->counting, (void *) c->auth_ok);
  lmc_free(c->counting, c);
}

// Faults and late replies: after a fatal answer (a timeout, a reset, a
// short read) libmemcached closes that server's connection itself
// (memcached_io_reset in response.cc; the write paths likewise), so a late
// reply can never answer a later request. The binding adds no reset of its
// own: memcached_quit would close every server's connection and set every
// server's state back to new, defeating retry_timeout and failure_limit
// (each operation would reconnect to a dead server at once). The only
// reset here is for a reply the binding itself finds out of step (below).

// ---------------------------------------------------------------------------
// Output records

static int lmc_out_reserve(lmc_client *c, size_t more) {
  size_t need = c->out.len + more;
  if (need <= c->out.cap) {
    return 1;
  }
  size_t cap = c->out.cap ? c->out.cap : 4096;
  while (cap < need) {
    cap *= 2;
  }
  char *p = lmc_realloc(c->counting, c->out.data, cap);
  if (p == NULL) {
    return 0;
  }
  c->out.data = p;
  c->out.cap = cap;
  return 1;
}

static size_t lmc_align8(size_t n) {
  return (n + 7) & ~(size_t) 7;
}

static int lmc_out_str3(lmc_client *c, const char *a, size_t alen, const char *b, size_t blen,
                        const char *d, size_t dlen) {
  size_t total = lmc_align8(sizeof(lmc_str_rec) + alen + blen + dlen);
  if (!lmc_out_reserve(c, total)) {
    return 0;
  }
  char *p = c->out.data + c->out.len;
  lmc_str_rec rec = {{(uint32_t) alen, (uint32_t) blen, (uint32_t) dlen}, (int32_t) c->rec_rc};
  memcpy(p, &rec, sizeof rec);
  p += sizeof rec;
  if (alen) memcpy(p, a, alen);
  p += alen;
  if (blen) memcpy(p, b, blen);
  p += blen;
  if (dlen) memcpy(p, d, dlen);
  c->out.len += total;
  return 1;
}

// lmc_server_name formats an instance as "host:port", "[v6]:port" or a
// socket path.
static size_t lmc_server_name(const memcached_instance_st *in, char *buf, size_t size) {
  const char *host = memcached_server_name(in);
  in_port_t port = memcached_server_port(in);
  int n;
  if (host == NULL) {
    host = "";
  }
  if (strcmp(memcached_server_type(in), "SOCKET") == 0) {
    n = snprintf(buf, size, "%s", host);
  } else if (strchr(host, ':') != NULL) {
    n = snprintf(buf, size, "[%s]:%u", host, (unsigned) port);
  } else {
    n = snprintf(buf, size, "%s:%u", host, (unsigned) port);
  }
  if (n < 0) {
    return 0;
  }
  return (size_t) n < size ? (size_t) n : size - 1;
}

static int lmc_out_server(lmc_client *c, const memcached_instance_st *in, const char *b,
                          size_t blen, const char *d, size_t dlen) {
  char name[1100];
  size_t n = lmc_server_name(in, name, sizeof name);
  return lmc_out_str3(c, name, n, b, blen, d, dlen);
}

// ---------------------------------------------------------------------------
// The auth guard (see lmc_incr in cgo_helpers.h)

// lmc_auth_guard returns MEMCACHED_SUCCESS when key's server is known, or
// now seen, to answer this handle without an auth error, and the server's
// error otherwise.
static memcached_return_t lmc_auth_guard(lmc_client *c, const char *key, size_t key_len) {
  if (!c->auth_guard) {
    return MEMCACHED_SUCCESS;
  }
  if (c->auth_memc != c->memc) { // a pool slot now on another handle
    c->auth_memc = c->memc;
    c->auth_n = 0;
  }
  uint32_t servers = memcached_server_count(c->memc);
  if (c->auth_n >= servers) {
    return MEMCACHED_SUCCESS; // every server checked
  }
  memcached_return_t rc = MEMCACHED_SUCCESS;
  const memcached_instance_st *in = memcached_server_by_key(c->memc, key, key_len, &rc);
  if (in == NULL) {
    return MEMCACHED_SUCCESS; // the operation itself reports it
  }
  for (uint32_t i = 0; i < c->auth_n; i++) {
    if (c->auth_ok[i] == in) {
      return MEMCACHED_SUCCESS;
    }
  }
  // Touching a key that is never stored, on key's server, changes nothing
  // and reports an auth error as one. (Not a delete: with replicas,
  // libmemcached sends quiet deletes to the replicas and does not read
  // their "not found" answers, which then answer later requests.)
  static const char probe[] = "lmc-go\0auth-probe";
  rc = lmc_touch(c->memc, key, key_len, probe, sizeof probe - 1, 0);
  if (rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED) {
    return rc;
  }
  if (c->auth_n == c->auth_cap) {
    uint32_t cap = servers > c->auth_cap ? servers : c->auth_cap + 1;
    const memcached_instance_st **p =
        lmc_realloc(c->counting, (void *) c->auth_ok, cap * sizeof *p);
    if (p == NULL) {
      return MEMCACHED_SUCCESS; // check again next time
    }
    c->auth_ok = p;
    c->auth_cap = cap;
  }
  c->auth_ok[c->auth_n++] = in;
  return MEMCACHED_SUCCESS;
}

// ---------------------------------------------------------------------------
// Reads

// lmc_drain reads the rest of a fetch (the END or NOOP that follows the
// items) so the next request starts on a clean connection.
static memcached_return_t lmc_drain(lmc_client *c) {
  memcached_return_t rc;
  while (memcached_fetch_result(c->memc, &c->drain, &rc) != NULL) {
  }
  return rc;
}

// lmc_release_held frees the value the last binary get allocated.
static void lmc_release_held(lmc_client *c) {
  if (c->held != NULL) {
    memcached_free_fn f = NULL;
    memcached_get_memory_allocators(c->held_memc, NULL, &f, NULL, NULL);
    if (f != NULL) {
      f(c->held_memc, c->held, memcached_get_memory_allocators_context(c->held_memc));
    } else {
      free(c->held);
    }
    c->held = NULL;
    c->held_memc = NULL;
  }
}

// lmc_get_binary gets one key in the binary protocol with memcached_get,
// which sends one GETK, where memcached_mget sends a quiet GETKQ and a NOOP
// in two writes: two packets, and on a loopback round trip a second wake-up.
// The price is one allocation by libmemcached, freed on the next call.
static memcached_return_t lmc_get_binary(lmc_client *c, const char *key, size_t key_len) {
  size_t len = 0;
  uint32_t flags = 0;
  memcached_return_t rc;
  char *v = memcached_get(c->memc, key, key_len, &len, &flags, &rc);
  if (rc != MEMCACHED_SUCCESS) { // (an empty value is NULL with success)
    return lmc_miss_or_failure(c->memc, rc);
  }
  c->held = v;
  c->held_memc = c->memc;
  // memcached_get reads into the handle's own result: check the key, as
  // lmc_get does, and take the CAS id from there.
  const memcached_result_st *r = &c->memc->result;
  if (memcached_result_key_length(r) != key_len
      || memcmp(memcached_result_key_value(r), key, key_len) != 0) {
    memcached_quit(c->memc);
    return MEMCACHED_PROTOCOL_ERROR;
  }
  c->out_value = v != NULL ? v : lmc_empty;
  c->out_len = len;
  c->out_flags = flags;
  c->out_u64 = memcached_result_cas(r);
  return MEMCACHED_SUCCESS;
}

memcached_return_t lmc_get(lmc_client *c, const char *key, size_t key_len) {
  lmc_release_held(c);
  c->out_value = NULL;
  c->out_len = 0;
  c->out_flags = 0;
  c->out_u64 = 0;
  c->result.count = 0;
  memcached_return_t rc = lmc_auth_guard(c, key, key_len);
  if (rc != MEMCACHED_SUCCESS) {
    return rc;
  }
  if (memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL)
      && memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS) == 0) {
    return lmc_get_binary(c, key, key_len);
  }
  rc = memcached_mget(c->memc, &key, &key_len, 1);
  if (rc == MEMCACHED_SOME_ERRORS) {
    // One key, one server: its failure is the whole story.
    memcached_return_t last = memcached_last_error(c->memc);
    return last != MEMCACHED_SUCCESS ? last : rc;
  }
  if (memcached_failed(rc)) {
    return rc;
  }
  memcached_result_st *r = memcached_fetch_result(c->memc, &c->result, &rc);
  if (r == NULL) {
    return lmc_miss_or_failure(c->memc, rc);
  }
  // A reply for another key would be a desync: refuse it rather than hand
  // out a value that belongs to someone else.
  if (memcached_result_key_length(r) != key_len
      || memcmp(memcached_result_key_value(r), key, key_len) != 0) {
    memcached_quit(c->memc);
    return MEMCACHED_PROTOCOL_ERROR;
  }
  lmc_drain(c); // a failure here was already handled by libmemcached
  c->out_value = memcached_result_value(r);
  c->out_len = memcached_result_length(r);
  c->out_flags = memcached_result_flags(r);
  c->out_u64 = memcached_result_cas(r);
  return MEMCACHED_SUCCESS;
}

memcached_return_t lmc_mget(lmc_client *c, const char *keys, const size_t *lens, size_t n) {
  c->out_count = 0;
  c->out.len = 0;
  c->result.count = 0;
  if (n > c->keycap) {
    const char **p = lmc_realloc(c->counting, (void *) c->keyptrs, n * sizeof *p);
    if (p == NULL) {
      return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    }
    c->keyptrs = p;
    c->keycap = n;
  }
  for (size_t i = 0, off = 0; i < n; i++) {
    c->keyptrs[i] = keys + off;
    off += lens[i];
    memcached_return_t grc = lmc_auth_guard(c, c->keyptrs[i], lens[i]);
    if (grc != MEMCACHED_SUCCESS) {
      return grc;
    }
  }
  memcached_return_t mrc = memcached_mget(c->memc, c->keyptrs, lens, n);
  if (mrc != MEMCACHED_SUCCESS && mrc != MEMCACHED_SOME_ERRORS) {
    return mrc;
  }
  memcached_return_t rc;
  memcached_result_st *r;
  while ((r = memcached_fetch_result(c->memc, &c->result, &rc)) != NULL) {
    size_t klen = memcached_result_key_length(r);
    size_t vlen = memcached_result_length(r);
    size_t total = lmc_align8(sizeof(lmc_item_rec) + klen + vlen);
    if (!lmc_out_reserve(c, total)) {
      lmc_drain(c);
      return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    }
    char *p = c->out.data + c->out.len;
    lmc_item_rec rec = {memcached_result_cas(r), vlen, memcached_result_flags(r), (uint32_t) klen};
    memcpy(p, &rec, sizeof rec);
    p += sizeof rec;
    memcpy(p, memcached_result_key_value(r), klen);
    p += klen;
    if (vlen) {
      memcpy(p, memcached_result_value(r), vlen);
    }
    c->out.len += total;
    c->out_count++;
  }
  if (rc == MEMCACHED_END || rc == MEMCACHED_NOTFOUND || rc == MEMCACHED_SUCCESS) {
    // memcached_mget skips a server it cannot connect to (its keys would
    // read as misses) and still reports success when another server
    // answered; the failure is left as the handle's error for this query.
    if (mrc == MEMCACHED_SUCCESS && memcached_last_error(c->memc) != MEMCACHED_SUCCESS) {
      return MEMCACHED_SOME_ERRORS;
    }
    return mrc;
  }
  return rc;
}

// ---------------------------------------------------------------------------
// Writes

// Counters of 2^63 and more on memcached before 1.6.22 (Debian 12 ships
// 1.6.18): the server parses a counter with strtoull and, when the number
// is negative as a signed one, looks for a '-' with strchr from the start
// of the value. Item data is not NUL-terminated, so the scan runs on past
// the value's "\r\n" through whatever is in memory after it (what an
// earlier item left in the slab chunk, or the next chunk's header) until
// it meets a NUL; a '-' on the way makes the server refuse a valid number
// as non-numeric (memcached commit ea92c6c, "core: fix incr/decr/ma failing
// in some conditions"). Whether it happens depends on the server's memory,
// not on anything the client wrote.
//
// When the server refuses, lmc_incr reads the value; if it is a number a
// correct server takes and at least 2^63, it appends one NUL byte, which
// ends the server's scan (append keeps the flags and the expiration), and
// asks again: the server's own increment then rewrites the whole value (in
// place it pads with spaces over the NUL; otherwise it stores the bare
// number). Any other value gets the server's refusal, asked again so that
// the error and its message are the server's.

// lmc_refused reports whether rc is the server's "non-numeric" answer to an
// incr or decr: CLIENT_ERROR in ASCII; in the binary protocol, which
// libmemcached does not map, an unknown read failure with no errno.
static int lmc_refused(lmc_client *c, memcached_return_t rc) {
  if (rc == MEMCACHED_CLIENT_ERROR) {
    return 1;
  }
  return rc == MEMCACHED_UNKNOWN_READ_FAILURE
      && memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL)
      && memcached_last_error_errno(c->memc) == 0;
}

// lmc_big_number reports whether the n bytes at p are a number that a
// correct memcached takes for incr and decr (what strtoull reads: white
// space, an optional '+', digits within 64 bits; then white space, a NUL or
// the end) and that is 2^63 or more, the only numbers the bug refuses.
static int lmc_big_number(const char *p, size_t n) {
  size_t i = 0;
  while (i < n && isspace((unsigned char) p[i])) {
    i++;
  }
  if (i < n && p[i] == '+') {
    i++;
  }
  size_t digits = i;
  uint64_t v = 0;
  for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
    unsigned d = (unsigned) (p[i] - '0');
    if (v > (UINT64_MAX - d) / 10) {
      return 0; // out of range: refused by every server
    }
    v = v * 10 + d;
  }
  if (i == digits || (i < n && p[i] != '\0' && !isspace((unsigned char) p[i]))) {
    return 0;
  }
  return v >= (UINT64_C(1) << 63);
}

// lmc_stored_big_number gets key and reports whether its value is a
// number lmc_big_number accepts.
static int lmc_stored_big_number(lmc_client *c, const char *key, size_t key_len) {
  c->result.count = 0;
  memcached_return_t rc = memcached_mget(c->memc, &key, &key_len, 1);
  if (memcached_failed(rc)) {
    return 0;
  }
  memcached_result_st *r = memcached_fetch_result(c->memc, &c->result, &rc);
  if (r == NULL) {
    return 0;
  }
  if (memcached_result_key_length(r) != key_len
      || memcmp(memcached_result_key_value(r), key, key_len) != 0) {
    memcached_quit(c->memc); // out of step, as in lmc_get
    return 0;
  }
  int big = lmc_big_number(memcached_result_value(r), memcached_result_length(r));
  lmc_drain(c);
  return big;
}

static memcached_return_t lmc_arith(lmc_client *c, const char *key, size_t key_len,
                                    uint32_t delta, int decr) {
  uint64_t v = 0;
  memcached_return_t rc = decr ? memcached_decrement(c->memc, key, key_len, delta, &v)
                               : memcached_increment(c->memc, key, key_len, delta, &v);
  c->out_u64 = v;
  return rc;
}

memcached_return_t lmc_incr(lmc_client *c, const char *key, size_t key_len, uint32_t delta,
                            int decr) {
  memcached_return_t grc = lmc_auth_guard(c, key, key_len);
  if (grc != MEMCACHED_SUCCESS) {
    return grc;
  }
  memcached_return_t rc = lmc_arith(c, key, key_len, delta, decr);
  // A second round only if another client rewrote the value in between.
  for (int round = 0; round < 2 && lmc_refused(c, rc); round++) {
    int big = lmc_stored_big_number(c, key, key_len);
    if (big) {
      // lmc_empty is one NUL byte.
      (void) memcached_append(c->memc, key, key_len, lmc_empty, 1, 0, 0);
    }
    rc = lmc_arith(c, key, key_len, delta, decr);
    if (!big) {
      break;
    }
  }
  return rc;
}

void lmc_set_multi(lmc_client *c, const lmc_item *items, size_t n, memcached_return_t *rcs) {
  for (size_t i = 0; i < n; i++) {
    const lmc_item *it = &items[i];
    rcs[i] = memcached_set(c->memc, it->key, it->key_len, it->value, it->value_len,
                           it->expiration, it->flags);
  }
}

void lmc_delete_multi(lmc_client *c, const char *keys, const size_t *lens, size_t n,
                      memcached_return_t *rcs) {
  for (size_t i = 0, off = 0; i < n; i++) {
    rcs[i] = memcached_delete(c->memc, keys + off, lens[i], 0);
    off += lens[i];
  }
}

// ---------------------------------------------------------------------------
// Server-wide calls

typedef struct lmc_stat_ctx {
  lmc_client *c;
  size_t count;
  int oom;
} lmc_stat_ctx;

static memcached_return_t lmc_stat_cb(const memcached_instance_st *server, const char *key,
                                      size_t key_length, const char *value, size_t value_length,
                                      void *context) {
  lmc_stat_ctx *ctx = context;
  if (!lmc_out_server(ctx->c, server, key, key_length, value, value_length)) {
    ctx->oom = 1;
    return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
  }
  ctx->count++;
  return MEMCACHED_SUCCESS;
}

// lmc_single returns a clone of memc (behaviors, timeouts, credentials)
// that talks to the one server in, over its own new connection.
static memcached_st *lmc_single(memcached_st *memc, const memcached_instance_st *in,
                                memcached_return_t *rc) {
  memcached_st *one = memcached_clone(NULL, memc);
  if (one == NULL) {
    *rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
    return NULL;
  }
  memcached_servers_reset(one);
  // Version and stats need the server's answer: with noreply,
  // memcached_version sends its request and reads nothing. (A UDP handle
  // refuses this; it cannot be asked anyway.)
  (void) memcached_behavior_set(one, MEMCACHED_BEHAVIOR_NOREPLY, 0);
  const char *host = memcached_server_name(in);
  if (strcmp(memcached_server_type(in), "SOCKET") == 0) {
    *rc = memcached_server_add_unix_socket(one, host);
  } else {
    *rc = memcached_server_add(one, host, memcached_server_port(in));
  }
  if (memcached_failed(*rc)) {
    memcached_free(one);
    return NULL;
  }
  return one;
}

// lmc_out_failure appends an error record for server in.
static void lmc_out_failure(lmc_client *c, const memcached_instance_st *in, memcached_return_t rc,
                            const memcached_st *from) {
  const char *msg = "";
  if (from != NULL && memcached_last_error(from) != MEMCACHED_SUCCESS) {
    msg = memcached_last_error_message(from);
  }
  c->rec_rc = rc;
  lmc_out_server(c, in, msg, strlen(msg), NULL, 0);
  c->rec_rc = MEMCACHED_SUCCESS;
}

// lmc_per_server_fn asks one server (through one, a single-server clone)
// and appends its records; it returns the server's code.
typedef memcached_return_t (*lmc_per_server_fn)(lmc_client *c, memcached_st *one,
                                                const memcached_instance_st *in, const void *arg);

// lmc_each_server runs fn for every server of the handle, each over a
// fresh single-server clone, and appends an error record for each server
// that failed. It returns the last failure, or MEMCACHED_SUCCESS.
static memcached_return_t lmc_each_server(lmc_client *c, lmc_per_server_fn fn, const void *arg) {
  c->out.len = 0;
  c->out_count = 0;
  memcached_return_t worst = MEMCACHED_SUCCESS;
  uint32_t n = memcached_server_count(c->memc);
  for (uint32_t i = 0; i < n; i++) {
    const memcached_instance_st *in = memcached_server_instance_by_position(c->memc, i);
    if (in == NULL) {
      continue;
    }
    memcached_return_t rc;
    memcached_st *one = lmc_single(c->memc, in, &rc);
    if (one != NULL) {
      rc = fn(c, one, in, arg);
      if (memcached_failed(rc) && (rc == MEMCACHED_SOME_ERRORS || rc == MEMCACHED_FAILURE)
          && memcached_last_error(one) != MEMCACHED_SUCCESS) {
        rc = memcached_last_error(one); // the server's own failure
      }
    }
    if (memcached_failed(rc)) {
      lmc_out_failure(c, in, rc, one);
      c->out_count++;
      worst = rc;
    }
    if (one != NULL) {
      lmc_reset_after_timeout(one); // before memcached_free: see compat.h
      memcached_free(one);
    }
  }
  return worst;
}

static memcached_return_t lmc_stats_one(lmc_client *c, memcached_st *one,
                                        const memcached_instance_st *in, const void *arg) {
  (void) in;
  lmc_stat_ctx ctx = {c, 0, 0};
  memcached_return_t rc = memcached_stat_execute(one, arg, lmc_stat_cb, &ctx);
  c->out_count += ctx.count;
  if (ctx.oom) {
    return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
  }
  if (rc == MEMCACHED_SUCCESS && memcached_last_error(one) != MEMCACHED_SUCCESS) {
    return memcached_last_error(one); // memcached_server_execute drops it
  }
  return rc;
}

memcached_return_t lmc_stats(lmc_client *c, const char *args, size_t args_len) {
  char arg[256];
  const char *argp = NULL;
  if (args != NULL && args_len > 0) {
    if (args_len >= sizeof arg) {
      return MEMCACHED_INVALID_ARGUMENTS;
    }
    memcpy(arg, args, args_len);
    arg[args_len] = 0;
    argp = arg;
  }
  return lmc_each_server(c, lmc_stats_one, argp);
}

static memcached_return_t lmc_version_one(lmc_client *c, memcached_st *one,
                                          const memcached_instance_st *in, const void *arg) {
  (void) arg;
  memcached_return_t rc = memcached_version(one);
  const memcached_instance_st *o = memcached_server_instance_by_position(one, 0);
  if (rc != MEMCACHED_SUCCESS || o == NULL || memcached_server_major_version(o) == UINT8_MAX) {
    return rc == MEMCACHED_SUCCESS ? MEMCACHED_FAILURE : rc;
  }
  char v[32];
  int vn = snprintf(v, sizeof v, "%u.%u.%u", (unsigned) memcached_server_major_version(o),
                    (unsigned) memcached_server_minor_version(o),
                    (unsigned) memcached_server_micro_version(o));
  if (!lmc_out_server(c, in, v, (size_t) vn, NULL, 0)) {
    return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
  }
  c->out_count++;
  return MEMCACHED_SUCCESS;
}

memcached_return_t lmc_versions(lmc_client *c) {
  return lmc_each_server(c, lmc_version_one, NULL);
}

size_t lmc_servers(lmc_client *c) {
  c->out.len = 0;
  size_t count = 0;
  uint32_t n = memcached_server_count(c->memc);
  for (uint32_t i = 0; i < n; i++) {
    const memcached_instance_st *in = memcached_server_instance_by_position(c->memc, i);
    if (in != NULL && lmc_out_server(c, in, NULL, 0, NULL, 0)) {
      count++;
    }
  }
  return count;
}

memcached_return_t lmc_server_for(lmc_client *c, const char *key, size_t key_len) {
  c->server_len = 0;
  memcached_return_t rc = MEMCACHED_SUCCESS;
  const memcached_instance_st *in = memcached_server_by_key(c->memc, key, key_len, &rc);
  if (in == NULL) {
    return memcached_failed(rc) ? rc : MEMCACHED_NO_SERVERS;
  }
  c->server_len = lmc_server_name(in, c->server, sizeof c->server);
  return MEMCACHED_SUCCESS;
}

memcached_return_t lmc_key_server_error(lmc_client *c, const char *key, size_t key_len) {
  memcached_return_t rc = MEMCACHED_SUCCESS;
  const memcached_instance_st *in = memcached_server_by_key(c->memc, key, key_len, &rc);
  if (in == NULL) {
    return memcached_failed(rc) ? rc : MEMCACHED_NO_SERVERS;
  }
  return memcached_server_error_return(in);
}

int lmc_last_server(lmc_client *c) {
  c->server_len = 0;
  const memcached_instance_st *in = memcached_server_get_last_disconnect(c->memc);
  if (in == NULL) {
    return 0;
  }
  c->server_len = lmc_server_name(in, c->server, sizeof c->server);
  return 1;
}

lmc_fetched lmc_pool_fetch(memcached_pool_st *pool) {
  lmc_fetched f;
  f.rc = MEMCACHED_SUCCESS;
  f.memc = memcached_pool_fetch(pool, NULL, &f.rc);
  return f;
}

uint64_t lmc_behavior_get(memcached_st *memc, memcached_behavior_t flag) {
  if (flag == MEMCACHED_BEHAVIOR_SOCKET_SEND_SIZE) {
    return memc->send_size < 0 ? 0 : (uint64_t) memc->send_size;
  }
  if (flag == MEMCACHED_BEHAVIOR_SOCKET_RECV_SIZE) {
    return memc->recv_size < 0 ? 0 : (uint64_t) memc->recv_size;
  }
  if (flag == MEMCACHED_BEHAVIOR_KETAMA_HASH) {
    return lmc_distribution_hash(memc);
  }
  return memcached_behavior_get(memc, flag);
}
