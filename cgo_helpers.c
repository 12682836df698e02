// C helpers for the Go binding; see cgo_helpers.h.
#include "cgo_helpers.h"
#include "conns.h"
#include <inttypes.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
  c->spin.budget_ns = LMC_SPIN_DEFAULT_NS;
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
static memcached_return_t lmc_get_binary(lmc_client *c, const char *gkey, size_t gkey_len,
                                         const char *key, size_t key_len) {
  size_t len = 0;
  uint32_t flags = 0;
  memcached_return_t rc;
  char *v = memcached_get_by_key(c->memc, gkey, gkey_len, key, key_len, &len, &flags, &rc);
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

// lmc_pend leaves a request sent on c for its caller to wait for: the call
// stays counted among those in progress (lmc_spin_enter) until the
// finishing call, and c->wait_fd is the socket of key's server (gkey when
// gkey_len > 0), -1 when it cannot be read (the finishing call then waits
// in C), c->wait_ms the handle's poll timeout (-1: none).
static void lmc_pend(lmc_client *c, const char *gkey, size_t gkey_len) {
  c->pending = 1;
  c->wait_fd = -1;
  uint64_t ms = memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT);
  c->wait_ms = ms > INT32_MAX ? -1 : (int32_t) ms;
  memcached_return_t rc;
  const memcached_instance_st *in = memcached_server_by_key(c->memc, gkey, gkey_len, &rc);
  if (in != NULL) {
    int fd = lmc_instance_fd(in);
    c->wait_fd = fd >= 0 ? fd : -1;
  }
}

// lmc_expire_begin and lmc_expire_end shorten the handle's poll timeout to
// 1 ms for a finishing call whose wait in Go ran out: libmemcached then
// reports the timeout (and handles it) as if its own poll had.
static int32_t lmc_expire_begin(lmc_client *c, int expired) {
  if (!expired) {
    return -2;
  }
  int32_t was = (int32_t) memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT);
  memcached_behavior_set(c->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 1);
  return was;
}

static void lmc_expire_end(lmc_client *c, int32_t was) {
  if (was != -2) {
    memcached_behavior_set(c->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)(int64_t) was);
  }
}

// lmc_get_fetch reads the reply to a get of key sent with mget.
static memcached_return_t lmc_get_fetch(lmc_client *c, const char *key, size_t key_len) {
  memcached_return_t rc;
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

memcached_return_t lmc_get_start(lmc_client *c, const char *gkey, size_t gkey_len, const char *key,
                                 size_t key_len) {
  lmc_spin_enter();
  c->pending = 0;
  lmc_release_held(c);
  c->out_value = NULL;
  c->out_len = 0;
  c->out_flags = 0;
  c->out_u64 = 0;
  c->result.count = 0;
  memcached_return_t rc = lmc_auth_guard(c, gkey, gkey_len);
  if (rc != MEMCACHED_SUCCESS) {
    goto done;
  }
  if (memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL)
      && memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS) == 0) {
    rc = lmc_get_binary(c, gkey, gkey_len, key, key_len);
    goto done;
  }
  rc = memcached_mget_by_key(c->memc, gkey, gkey_len, &key, &key_len, 1);
  if (rc == MEMCACHED_SOME_ERRORS) {
    // One key, one server: its failure is the whole story.
    memcached_return_t last = memcached_last_error(c->memc);
    rc = last != MEMCACHED_SUCCESS ? last : rc;
    goto done;
  }
  if (memcached_failed(rc)) {
    goto done;
  }
  if (!lmc_spin_alone()) {
    lmc_pend(c, gkey, gkey_len);
    return MEMCACHED_SUCCESS;
  }
  lmc_spin_wait(&c->spin, c->memc, gkey, gkey_len);
  rc = lmc_get_fetch(c, key, key_len);
done:
  lmc_spin_leave();
  return rc;
}

memcached_return_t lmc_get_finish(lmc_client *c, const char *key, size_t key_len, int expired) {
  c->pending = 0;
  int32_t was = lmc_expire_begin(c, expired);
  memcached_return_t rc = lmc_get_fetch(c, key, key_len);
  lmc_expire_end(c, was);
  lmc_spin_leave();
  return rc;
}

static memcached_return_t lmc_mget_send(lmc_client *c, const char *gkey, size_t gkey_len,
                                        const char *keys, const size_t *lens, size_t n);
static memcached_return_t lmc_mget_recv(lmc_client *c);

// A multi-get over several servers waits for them in one poll() inside
// memcached_io_get_readable_server, which gives up on EINTR: the fetch
// ends with "SYSTEM ERROR(Interrupted system call)" and the keys not read
// yet. Go's runtime sends SIGURG (preemption) to its threads all the time,
// so under load about one multi-server multi-get in a thousand failed so
// (memctl bench, getmulti-10@3srv). lmc_mget blocks the asynchronous
// signals on its thread for such a call (the kernel hands process signals
// to another thread meanwhile, thread-directed ones wait until the call
// returns, when Go's handler runs as usual) and restores the mask after.
// The signals a fault raises stay unblocked.
static int lmc_block_async_signals(sigset_t *old) {
  sigset_t set;
  sigfillset(&set);
  sigdelset(&set, SIGSEGV);
  sigdelset(&set, SIGBUS);
  sigdelset(&set, SIGFPE);
  sigdelset(&set, SIGILL);
  sigdelset(&set, SIGTRAP);
  sigdelset(&set, SIGABRT);
  sigdelset(&set, SIGSYS);
  return pthread_sigmask(SIG_BLOCK, &set, old) == 0;
}

// lmc_mget_start and lmc_mget_finish block the asynchronous signals (see
// above) while they run a multi-server multi-get's C part; pending, the
// signals are not blocked: the thread is Go's.
memcached_return_t lmc_mget_start(lmc_client *c, const char *gkey, size_t gkey_len, const char *keys,
                                  const size_t *lens, size_t n) {
  sigset_t old;
  int masked = gkey == NULL && memcached_server_count(c->memc) > 1 && lmc_block_async_signals(&old);
  lmc_spin_enter();
  c->pending = 0;
  memcached_return_t rc = lmc_mget_send(c, gkey, gkey_len, keys, lens, n);
  if (rc == MEMCACHED_SUCCESS && n > 0) {
    const char *k = gkey != NULL ? gkey : c->keyptrs[0];
    size_t kl = gkey != NULL ? gkey_len : lens[0];
    if (!lmc_spin_alone()) {
      lmc_pend(c, k, kl);
    } else {
      lmc_spin_wait(&c->spin, c->memc, k, kl); // the first reply, from the first key's server
    }
  }
  if (rc == MEMCACHED_SUCCESS && !c->pending) {
    rc = lmc_mget_recv(c);
  }
  if (!c->pending) {
    lmc_spin_leave();
  }
  if (masked) {
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  return rc;
}

memcached_return_t lmc_mget_finish(lmc_client *c, int expired) {
  sigset_t old;
  int masked = memcached_server_count(c->memc) > 1 && lmc_block_async_signals(&old);
  c->pending = 0;
  int32_t was = lmc_expire_begin(c, expired);
  memcached_return_t rc = lmc_mget_recv(c);
  lmc_expire_end(c, was);
  lmc_spin_leave();
  if (masked) {
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  return rc;
}

// lmc_mget_send checks the keys and sends the request; a failure to send
// is its answer (lmc_mget_recv is then not called).
static memcached_return_t lmc_mget_send(lmc_client *c, const char *gkey, size_t gkey_len,
                                        const char *keys, const size_t *lens, size_t n) {
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
    memcached_return_t grc = gkey != NULL ? MEMCACHED_SUCCESS : lmc_auth_guard(c, c->keyptrs[i], lens[i]);
    if (grc != MEMCACHED_SUCCESS) {
      return grc;
    }
  }
  memcached_return_t mrc;
  if (gkey != NULL) {
    mrc = lmc_auth_guard(c, gkey, gkey_len);
    if (mrc != MEMCACHED_SUCCESS) {
      return mrc;
    }
    mrc = memcached_mget_by_key(c->memc, gkey, gkey_len, c->keyptrs, lens, n);
  } else {
    mrc = memcached_mget(c->memc, c->keyptrs, lens, n);
  }
  if (mrc != MEMCACHED_SUCCESS && mrc != MEMCACHED_SOME_ERRORS) {
    return mrc;
  }
  c->sent_rc = mrc;
  return MEMCACHED_SUCCESS;
}

// lmc_mget_recv reads the replies lmc_mget_send asked for.
static memcached_return_t lmc_mget_recv(lmc_client *c) {
  memcached_return_t mrc = c->sent_rc;
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

// lmc_stored_big_number gets key (from gkey's server) and reports whether its value is a
// number lmc_big_number accepts.
static int lmc_stored_big_number(lmc_client *c, const char *gkey, size_t gkey_len,
                                 const char *key, size_t key_len) {
  c->result.count = 0;
  memcached_return_t rc = memcached_mget_by_key(c->memc, gkey, gkey_len, &key, &key_len, 1);
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

// lmc_arith is one increment or decrement of key on gkey's server.
static memcached_return_t lmc_arith(lmc_client *c, const char *gkey, size_t gkey_len,
                                    const char *key, size_t key_len, uint64_t delta, int decr,
                                    uint64_t *v) {
  return decr ? memcached_decrement_by_key(c->memc, gkey, gkey_len, key, key_len, delta, v)
              : memcached_increment_by_key(c->memc, gkey, gkey_len, key, key_len, delta, v);
}

// lmc_arith_guarded is lmc_arith with the retry for memcached's big-number
// bug (above).
static memcached_return_t lmc_arith_guarded(lmc_client *c, const char *gkey, size_t gkey_len,
                                            const char *key, size_t key_len, uint64_t delta,
                                            int decr, uint64_t *v) {
  memcached_return_t rc = lmc_arith(c, gkey, gkey_len, key, key_len, delta, decr, v);
  // A second round only if another client rewrote the value in between.
  for (int round = 0; round < 2 && lmc_refused(c, rc); round++) {
    int big = lmc_stored_big_number(c, gkey, gkey_len, key, key_len);
    if (big) {
      // lmc_empty is one NUL byte.
      (void) memcached_append_by_key(c->memc, gkey, gkey_len, key, key_len, lmc_empty, 1, 0, 0);
    }
    rc = lmc_arith(c, gkey, gkey_len, key, key_len, delta, decr, v);
    if (!big) {
      break;
    }
  }
  return rc;
}

memcached_return_t lmc_incr(lmc_client *c, const char *gkey, size_t gkey_len, const char *key,
                            size_t key_len, uint64_t delta, int decr, int has_initial,
                            uint64_t initial, time_t expiration) {
  memcached_return_t grc = lmc_auth_guard(c, gkey, gkey_len);
  if (grc != MEMCACHED_SUCCESS) {
    return grc;
  }
  uint64_t v = 0;
  memcached_return_t rc;
  if (has_initial && memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL)) {
    // The server creates an absent key with an add, which loses a race
    // with another client's (NOT STORED): then the key is there, and the
    // next attempt changes it.
    for (int attempt = 0; attempt < 3; attempt++) {
      rc = decr ? memcached_decrement_with_initial_by_key(c->memc, gkey, gkey_len, key, key_len,
                                                          delta, initial, expiration, &v)
                : memcached_increment_with_initial_by_key(c->memc, gkey, gkey_len, key, key_len,
                                                          delta, initial, expiration, &v);
      if (rc != MEMCACHED_NOTSTORED && rc != MEMCACHED_DATA_EXISTS) {
        break;
      }
    }
    if (lmc_refused(c, rc)) { // a present key: the bug's retry applies
      rc = lmc_arith_guarded(c, gkey, gkey_len, key, key_len, delta, decr, &v);
    }
    c->out_u64 = v;
    return rc;
  }
  for (int attempt = 0;; attempt++) {
    rc = lmc_arith_guarded(c, gkey, gkey_len, key, key_len, delta, decr, &v);
    if (!has_initial || rc != MEMCACHED_NOTFOUND || attempt == 2) {
      break;
    }
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRIu64, initial);
    rc = memcached_add_by_key(c->memc, gkey, gkey_len, key, key_len, buf, (size_t)n, expiration, 0);
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED || rc == MEMCACHED_BUFFERED) {
      v = initial;
      break;
    }
    if (rc != MEMCACHED_NOTSTORED && rc != MEMCACHED_DATA_EXISTS) {
      break; // a failure, not a lost race
    }
  }
  c->out_u64 = v;
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
  lmc_servers_reset(one); // (memcached_servers_reset crashes 1.0.18 on a ketama clone: compat.h)
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
  if (c->fail_msg[0] != 0) {
    msg = c->fail_msg;
  } else if (from != NULL && memcached_last_error(from) != MEMCACHED_SUCCESS) {
    msg = memcached_last_error_message(from);
  }
  c->rec_rc = rc;
  lmc_out_server(c, in, msg, strlen(msg), NULL, 0);
  c->rec_rc = MEMCACHED_SUCCESS;
  c->fail_msg[0] = 0;
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

// lmc_version_unparsed reports whether the last memcached_version on one
// failed only because the server's VERSION line does not start with a
// number (mcrouter answers "VERSION mcrouter 0.41.0"): libmemcached parses
// the line into major, minor and micro numbers, and reports text as
// UNKNOWN_READ_FAILURE "strtol() failed to parse major version" (the same
// on 1.0.18, 1.1.0 and 1.1.4). The server did answer.
int lmc_version_unparsed(const memcached_st *one) {
  if (memcached_last_error(one) != MEMCACHED_UNKNOWN_READ_FAILURE) {
    return 0;
  }
  const char *msg = memcached_last_error_message(one);
  return msg != NULL && strstr(msg, "failed to parse") != NULL && strstr(msg, "version") != NULL;
}

static memcached_return_t lmc_version_one(lmc_client *c, memcached_st *one,
                                          const memcached_instance_st *in, const void *arg) {
  int want_text = *(const int *) arg;
  memcached_return_t rc = memcached_version(one);
  const memcached_instance_st *o = memcached_server_instance_by_position(one, 0);
  char v[LMC_VERSION_TEXT_MAX];
  size_t vn = 0;
  if (rc != MEMCACHED_SUCCESS && o != NULL && lmc_version_unparsed(one)) {
    // The server answered in words. libmemcached keeps no copy of the
    // line (it is parsed in a buffer on its stack, and its message does
    // not quote it), so the text is asked for again over a connection of
    // our own (lmc_version_text); a ping needs only the answer.
    if (want_text) {
      rc = lmc_version_text(one, o, v, sizeof v, &vn, c->fail_msg, sizeof c->fail_msg);
      if (rc != MEMCACHED_SUCCESS) {
        return rc;
      }
    }
  } else if (rc != MEMCACHED_SUCCESS || o == NULL || memcached_server_major_version(o) == UINT8_MAX) {
    return rc == MEMCACHED_SUCCESS ? MEMCACHED_FAILURE : rc;
  } else {
    vn = (size_t) snprintf(v, sizeof v, "%u.%u.%u", (unsigned) memcached_server_major_version(o),
                           (unsigned) memcached_server_minor_version(o),
                           (unsigned) memcached_server_micro_version(o));
  }
  if (!lmc_out_server(c, in, v, vn, NULL, 0)) {
    return MEMCACHED_MEMORY_ALLOCATION_FAILURE;
  }
  c->out_count++;
  return MEMCACHED_SUCCESS;
}

memcached_return_t lmc_versions(lmc_client *c, int text) {
  return lmc_each_server(c, lmc_version_one, &text);
}

int lmc_answers(lmc_client *c, const char *server, size_t server_len, int binary) {
  uint32_t n = memcached_server_count(c->memc);
  for (uint32_t i = 0; i < n; i++) {
    const memcached_instance_st *in = memcached_server_instance_by_position(c->memc, i);
    char name[sizeof c->server];
    if (in == NULL || lmc_server_name(in, name, sizeof name) != server_len
        || memcmp(name, server, server_len) != 0) {
      continue;
    }
    memcached_return_t rc;
    memcached_st *one = lmc_single(c->memc, in, &rc);
    if (one == NULL) {
      return 0;
    }
    int answered = memcached_behavior_set(one, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, binary ? 1 : 0) == MEMCACHED_SUCCESS;
    if (answered) {
      answered = memcached_version(one) == MEMCACHED_SUCCESS || lmc_version_unparsed(one);
    }
    lmc_reset_after_timeout(one);
    memcached_free(one);
    return answered;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// The server's own version text (lmc_version_text): one version request
// over a socket of our own, for a server whose VERSION line libmemcached
// cannot parse. It honours the handle's connect timeout and, for the
// exchange, its poll timeout (both in ms; negative: none), and it retries
// the system calls Go's preemption signals interrupt (EINTR).

static int64_t lmc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// lmc_deadline returns the time ms from now, or -1 (never) for a negative
// timeout, which memcached_behavior_get returns as a huge number.
static int64_t lmc_deadline(uint64_t ms) {
  return ms > INT32_MAX ? -1 : lmc_now_ms() + (int64_t) ms;
}

// lmc_wait waits until fd is ready for events or the deadline passes: 1
// ready (or failed: the next call says how), 0 timed out, -1 error.
static int lmc_wait(int fd, short events, int64_t deadline) {
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - lmc_now_ms();
      ms = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
    }
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, ms);
    if (n > 0) {
      return 1;
    }
    if (n == 0) {
      return 0;
    }
    if (errno != EINTR) {
      return -1;
    }
  }
}

// lmc_connect_fd connects a new non-blocking socket for addr; it returns
// the socket, or -1 with errno set (ETIMEDOUT when the deadline passed).
static int lmc_connect_fd(int family, const struct sockaddr *addr, socklen_t len, int64_t deadline) {
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0) {
    return -1;
  }
  (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
  int err = 0;
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
    err = errno;
  } else if (connect(fd, addr, len) < 0) {
    err = errno;
    if (err == EINPROGRESS || err == EINTR) { // EINTR: the connect goes on
      int w = lmc_wait(fd, POLLOUT, deadline);
      socklen_t el = sizeof err;
      if (w == 0) {
        err = ETIMEDOUT;
      } else if (w < 0) {
        err = errno;
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) {
        err = errno;
      }
    }
  }
  if (err != 0) {
    close(fd);
    errno = err;
    return -1;
  }
#ifdef SO_NOSIGPIPE
  int one = 1;
  (void) setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return fd;
}

// lmc_dial connects to the server in (TCP, or a Unix socket); it returns
// the socket or -1, with what failed in msg.
static int lmc_dial(const memcached_instance_st *in, int64_t deadline, memcached_return_t *rc,
                    char *msg, size_t msgcap) {
  const char *host = memcached_server_name(in);
  *rc = MEMCACHED_CONNECTION_FAILURE;
  if (strcmp(memcached_server_type(in), "SOCKET") == 0) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(host) >= sizeof sa.sun_path) {
      snprintf(msg, msgcap, "socket path too long: %s", host);
      return -1;
    }
    strcpy(sa.sun_path, host);
    int fd = lmc_connect_fd(AF_UNIX, (const struct sockaddr *) &sa, sizeof sa, deadline);
    if (fd < 0) {
      *rc = errno == ETIMEDOUT ? MEMCACHED_TIMEOUT : MEMCACHED_CONNECTION_FAILURE;
      snprintf(msg, msgcap, "connecting to %s: %s", host, strerror(errno));
    }
    return fd;
  }
  char port[16];
  snprintf(port, sizeof port, "%u", (unsigned) memcached_server_port(in));
  struct addrinfo hints, *list = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int g = getaddrinfo(host, port, &hints, &list);
  if (g != 0) {
    *rc = MEMCACHED_HOST_LOOKUP_FAILURE;
    snprintf(msg, msgcap, "looking up %s: %s", host, gai_strerror(g));
    return -1;
  }
  int fd = -1;
  errno = ECONNREFUSED;
  for (struct addrinfo *a = list; a != NULL && fd < 0; a = a->ai_next) {
    fd = lmc_connect_fd(a->ai_family, a->ai_addr, a->ai_addrlen, deadline);
  }
  if (fd < 0) {
    *rc = errno == ETIMEDOUT ? MEMCACHED_TIMEOUT : MEMCACHED_CONNECTION_FAILURE;
    snprintf(msg, msgcap, "connecting to %s:%s: %s", host, port, strerror(errno));
  }
  freeaddrinfo(list);
  return fd;
}

// lmc_closed reports that the server closed the connection (err: 0 for an
// orderly close, else ECONNRESET or EPIPE).
static ssize_t lmc_closed(memcached_return_t *rc, char *msg, size_t msgcap, int err) {
  *rc = MEMCACHED_CONNECTION_FAILURE;
  snprintf(msg, msgcap, "the server closed the connection before answering the version request%s%s%s",
           err ? " (" : "", err ? strerror(err) : "", err ? ")" : "");
  return -1;
}

// lmc_exchange sends req and reads until done(buf, len) says the answer
// is complete (its length) or the buffer is full; it returns the answer's
// length, or -1 with *rc and msg set.
static ssize_t lmc_exchange(int fd, const char *req, size_t req_len, char *buf, size_t cap,
                            size_t (*done)(const char *, size_t), int64_t deadline,
                            memcached_return_t *rc, char *msg, size_t msgcap) {
#ifdef MSG_NOSIGNAL
  const int flags = MSG_NOSIGNAL;
#else
  const int flags = 0;
#endif
  for (size_t sent = 0; sent < req_len;) {
    ssize_t n = send(fd, req + sent, req_len - sent, flags);
    if (n >= 0) {
      sent += (size_t) n;
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EPIPE || errno == ECONNRESET) {
      return lmc_closed(rc, msg, msgcap, errno);
    }
    int w = errno == EAGAIN || errno == EWOULDBLOCK ? lmc_wait(fd, POLLOUT, deadline) : -1;
    if (w <= 0) {
      *rc = w == 0 ? MEMCACHED_TIMEOUT : MEMCACHED_WRITE_FAILURE;
      snprintf(msg, msgcap, "sending the version request: %s", w == 0 ? "timed out" : strerror(errno));
      return -1;
    }
  }
  size_t len = 0, want;
  while ((want = done(buf, len)) == 0) {
    if (len == cap) {
      *rc = MEMCACHED_PROTOCOL_ERROR;
      snprintf(msg, msgcap, "the answer to the version request is longer than %zu bytes", cap);
      return -1;
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n > 0) {
      len += (size_t) n;
      continue;
    }
    if (n == 0 || errno == ECONNRESET) {
      return lmc_closed(rc, msg, msgcap, n == 0 ? 0 : errno);
    }
    if (errno == EINTR) {
      continue;
    }
    int w = errno == EAGAIN || errno == EWOULDBLOCK ? lmc_wait(fd, POLLIN, deadline) : -1;
    if (w <= 0) {
      *rc = w == 0 ? MEMCACHED_TIMEOUT : MEMCACHED_READ_FAILURE;
      snprintf(msg, msgcap, "reading the answer to the version request: %s",
               w == 0 ? "timed out" : strerror(errno));
      return -1;
    }
  }
  return (ssize_t) want;
}

// An ASCII answer is one line.
static size_t lmc_line_done(const char *buf, size_t len) {
  const char *nl = memchr(buf, '\n', len);
  return nl == NULL ? 0 : (size_t) (nl - buf) + 1;
}

// A binary answer is a 24-byte header and the body it announces.
static size_t lmc_packet_done(const char *buf, size_t len) {
  if (len < 24) {
    return 0;
  }
  const unsigned char *h = (const unsigned char *) buf;
  size_t body = ((size_t) h[8] << 24) | ((size_t) h[9] << 16) | ((size_t) h[10] << 8) | h[11];
  return len >= 24 + body ? 24 + body : 0;
}

memcached_return_t lmc_version_text(memcached_st *one, const memcached_instance_st *in, char *out,
                                    size_t cap, size_t *out_len, char *msg, size_t msgcap) {
  *out_len = 0;
  msg[0] = 0;
  int binary = memcached_behavior_get(one, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL) != 0;
  memcached_return_t rc;
  int fd = lmc_dial(in, lmc_deadline(memcached_behavior_get(one, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT)),
                    &rc, msg, msgcap);
  if (fd < 0) {
    return rc;
  }
  static const char ascii_req[] = "version\r\n";
  // magic 0x80 (request), opcode 0x0b (version), everything else 0
  static const char binary_req[24] = {(char) 0x80, 0x0b};
  char buf[24 + LMC_VERSION_TEXT_MAX];
  int64_t deadline = lmc_deadline(memcached_behavior_get(one, MEMCACHED_BEHAVIOR_POLL_TIMEOUT));
  ssize_t n = binary ? lmc_exchange(fd, binary_req, sizeof binary_req, buf, sizeof buf,
                                    lmc_packet_done, deadline, &rc, msg, msgcap)
                     : lmc_exchange(fd, ascii_req, sizeof ascii_req - 1, buf, sizeof buf,
                                    lmc_line_done, deadline, &rc, msg, msgcap);
  close(fd);
  if (n < 0) {
    return rc;
  }
  const char *text = NULL;
  size_t text_len = 0;
  const unsigned char *h = (const unsigned char *) buf;
  if (binary) {
    size_t skip = 24 + h[4] + (((size_t) h[2] << 8) | h[3]); // extras and key
    if (h[0] == 0x81 && h[1] == 0x0b && h[6] == 0 && h[7] == 0 && skip <= (size_t) n) {
      text = buf + skip;
      text_len = (size_t) n - skip;
    }
  } else if ((size_t) n >= 8 && memcmp(buf, "VERSION ", 8) == 0) {
    text = buf + 8;
    text_len = (size_t) n - 8;
    while (text_len > 0 && (text[text_len - 1] == '\n' || text[text_len - 1] == '\r')) {
      text_len--;
    }
  }
  if (text == NULL) {
    snprintf(msg, msgcap, "the server answered the version request with %s", binary ? "another packet" : "another line");
    return MEMCACHED_PROTOCOL_ERROR;
  }
  if (text_len > cap) {
    text_len = cap;
  }
  memcpy(out, text, text_len);
  *out_len = text_len;
  return MEMCACHED_SUCCESS;
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

void lmc_limit_timeouts(lmc_client *c, int32_t ms) {
  if (ms < 1) {
    ms = 1;
  }
  int32_t poll = (int32_t)memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT);
  int32_t conn = (int32_t)memcached_behavior_get(c->memc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT);
  c->saved_poll = poll;
  c->saved_connect = conn;
  c->limited = 0;
  // A negative poll timeout waits forever: any deadline is shorter.
  if (poll < 0 || poll > ms) {
    memcached_behavior_set(c->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)ms);
    c->limited |= 1;
  }
  if (conn < 0 || conn > ms) {
    memcached_behavior_set(c->memc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)ms);
    c->limited |= 2;
  }
}

void lmc_restore_timeouts(lmc_client *c) {
  if (c->limited & 1) {
    memcached_behavior_set(c->memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)(int64_t)c->saved_poll);
  }
  if (c->limited & 2) {
    memcached_behavior_set(c->memc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)(int64_t)c->saved_connect);
  }
  c->limited = 0;
}
