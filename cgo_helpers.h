// C helpers for the Go binding: each one does a loop's work in a single cgo
// crossing (the multi-get fetch loop, the stats walk, multi-set and
// multi-delete), and keeps per-handle scratch memory so the hot paths do
// not allocate.
#ifndef LIBMEMCACHED_GO_CGO_HELPERS_H
#define LIBMEMCACHED_GO_CGO_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <libmemcached-1.0/memcached.h>
#include "spin.h"
#include <libmemcachedutil-1.0/pool.h>

#include "compat.h"

// lmc_buf is a growable byte buffer that outputs records to Go.
typedef struct lmc_buf {
  char *data;
  size_t len;
  size_t cap;
} lmc_buf;

// lmc_client is the C half of a Go Client: the memcached_st it talks
// through, result structures in storage it owns (so fetching never
// allocates a result, and the end of a fetch only resets them), and
// scratch memory reused from call to call.
typedef struct lmc_client {
  memcached_st *memc;
  lmc_spin spin;              // the busy wait before a get's read (spin.c)
  int pending;                // a started get waits for its finishing call (see lmc_get_start)
  int wait_fd;                // pending: the socket the first reply comes on (-1: unknown)
  int32_t wait_ms;            // pending: the handle's poll timeout (-1: none)
  memcached_return_t sent_rc; // memcached_mget's answer, for the fetch
  memcached_result_st result; // the result handed to Go
  memcached_result_st drain;  // reads past the wanted item
  lmc_buf out;                // records for multi-key calls, stats, versions
  const char **keyptrs;       // key pointer array for memcached_mget
  size_t keycap;
  int counting; // scratch memory goes through the counting allocator

  // single-value outputs, so Go passes no pointers to its own stack
  const char *out_value;
  char *held;               // a value memcached_get allocated, freed on the next call
  memcached_st *held_memc;  // the handle whose allocator owns it
  size_t out_len;
  uint32_t out_flags;
  uint64_t out_u64; // CAS id, or the new value of incr/decr
  size_t out_count; // records appended to out by the last call
  memcached_return_t rec_rc; // rc stamped on records being appended
  int auth_guard;                      // binary protocol, no credentials
  const memcached_st *auth_memc;       // the handle auth_ok is about
  const memcached_instance_st **auth_ok; // servers seen to answer without auth
  uint32_t auth_n, auth_cap;
  char server[1100];          // lmc_server_for, lmc_last_server: the name
  size_t server_len;          // (kept apart from out, which may hold items)
  int32_t saved_poll;         // lmc_limit_timeouts: the handle's own timeouts,
  int32_t saved_connect;      // put back by lmc_restore_timeouts
  int limited;
  char fail_msg[256];         // a per-server helper's own text for the error record of the
                              // server it failed on (else libmemcached's last message)
} lmc_client;

// One record of lmc_mget's output, followed by key and value bytes; each
// record starts on an 8-byte boundary.
typedef struct lmc_item_rec {
  uint64_t cas;
  uint64_t value_len;
  uint32_t flags;
  uint32_t key_len;
} lmc_item_rec;

// One record of string triples (server, key, value) for stats, versions
// and server lists, followed by the bytes of the three strings. rc is
// MEMCACHED_SUCCESS for data; a server that failed gets one record with its
// code in rc and (server, libmemcached's message, "").
typedef struct lmc_str_rec {
  uint32_t len[3];
  int32_t rc;
} lmc_str_rec;

// An item for lmc_set_multi.
typedef struct lmc_item {
  const char *key;
  size_t key_len;
  const char *value;
  size_t value_len;
  time_t expiration;
  uint32_t flags;
} lmc_item;

// lmc_empty stands in for the data pointer of an empty Go string or slice.
extern const char lmc_empty[1];

// The counting allocator (for leak tests): every block that libmemcached
// or these helpers allocate through it is registered until freed.
memcached_return_t lmc_use_counting_allocator(memcached_st *memc);
long lmc_counting_live(void);

// lmc_client_new creates the C half of a client. root is the
// memcached_st whose allocators own the result buffers; it must outlive
// the lmc_client. memc is the handle to use (may be NULL until set).
lmc_client *lmc_client_new(memcached_st *root, memcached_st *memc, int counting);
void lmc_client_free(lmc_client *c);

// lmc_limit_timeouts lowers the handle's poll and connect timeouts to ms
// (at least 1) where they are longer, for one call bounded by a deadline;
// lmc_restore_timeouts puts back what it changed.
void lmc_limit_timeouts(lmc_client *c, int32_t ms);
void lmc_restore_timeouts(lmc_client *c);

// The helpers that take gkey ("group key": libmemcached's server key, see
// the *_by_key functions) send key to the server gkey maps to; callers pass
// key as gkey for the key's own server. lmc_mget takes a NULL gkey for
// each key's own server.
//
// lmc_get_start gets one key. On MEMCACHED_SUCCESS, out_value/out_len
// point into c->result (valid until the next call on c), with out_flags
// and out_u64 (the CAS id).
//
// Unless it is the only one of the binding's calls in progress in the
// process, it only sends the request and sets c->pending: the reply is
// then read by lmc_get_finish (same key), after the caller has waited for
// c->wait_fd to become readable in Go's netpoller, which holds no OS
// thread (expired: the wait ran out at c->wait_ms, the poll timeout, and
// the finishing call reports the timeout). Alone, it reads the reply
// itself, after the busy wait (spin.c). The binary protocol's single get
// (memcached_get) cannot be split and is always read at once. A pending
// call counts as in progress until it is finished.
memcached_return_t lmc_get_start(lmc_client *c, const char *gkey, size_t gkey_len, const char *key,
                                 size_t key_len);
memcached_return_t lmc_get_finish(lmc_client *c, const char *key, size_t key_len, int expired);

// lmc_mget_start fetches n keys, given as one buffer of concatenated keys
// and their lengths; it may leave the reading to lmc_mget_finish as
// lmc_get_start does. Each hit is appended to c->out as an lmc_item_rec
// record; out_count counts them. The return code is that of memcached_mget
// if it failed outright, else the first fetch failure
// (MEMCACHED_SOME_ERRORS when mget could not reach every server), else
// MEMCACHED_SUCCESS.
memcached_return_t lmc_mget_start(lmc_client *c, const char *gkey, size_t gkey_len, const char *keys,
                                  const size_t *lens, size_t n);
memcached_return_t lmc_mget_finish(lmc_client *c, int expired);

// lmc_incr increments (decr=0) or decrements (decr=1) by a 64-bit delta
// (memcached_increment_by_key: memcached_increment's offset is 32 bits);
// the new value is in out_u64. With has_initial, an absent key is created
// holding initial (flags 0, the given expiration) and out_u64 is initial:
// in the binary protocol with memcached's own incr-with-initial; in ASCII,
// which has none, with incr, then add on a miss, then incr again if
// another client's add won the race. A number of 2^63 or more that a
// memcached older than 1.6.22 refuses as non-numeric (its parser reads past
// the value) is retried with a NUL appended after it, which the server's
// increment then overwrites (see cgo_helpers.c).
//
// With auth_guard set (a binary-protocol client without credentials),
// lmc_get, lmc_mget and lmc_incr first make sure, once per server, that the
// server does not answer with an auth error: libmemcached reports one on a
// get as a miss, and asserts (aborting the process) when an incr or decr
// gets one, while a touch of a key that is never stored reports it.
memcached_return_t lmc_incr(lmc_client *c, const char *gkey, size_t gkey_len, const char *key,
                            size_t key_len, uint64_t delta, int decr, int has_initial,
                            uint64_t initial, time_t expiration);

// lmc_set_multi stores n items with memcached_set, writing each item's
// return code to rcs[i].
void lmc_set_multi(lmc_client *c, const lmc_item *items, size_t n, memcached_return_t *rcs);

// lmc_delete_multi deletes n keys (concatenated, with lengths), writing
// each key's return code to rcs[i].
void lmc_delete_multi(lmc_client *c, const char *keys, const size_t *lens, size_t n,
                      memcached_return_t *rcs);

// lmc_stats runs "stats <args>" on every server (args may be NULL) and
// appends one lmc_str_rec per (server, stat, value) to c->out, or one error
// record per server that failed; out_count counts the records. Each server
// is asked through a fresh single-server clone of the handle, because
// memcached_stat_execute drops per-server errors and trusts cached versions.
memcached_return_t lmc_stats(lmc_client *c, const char *args, size_t args_len);

// lmc_versions asks every server for its version, over a fresh connection
// (a real round trip: memcached_version caches versions), and appends one
// lmc_str_rec (server, version, "") per server, or an error record. The
// version is libmemcached's numbers ("1.6.18"); for a server whose VERSION
// line is not a number, which libmemcached cannot parse, it is the
// server's own text ("mcrouter 0.41.0", asked for again with
// lmc_version_text) when text is set, and "" otherwise: the server
// answered, which is all a ping needs.
memcached_return_t lmc_versions(lmc_client *c, int text);

// LMC_VERSION_TEXT_MAX is the longest version text kept.
#define LMC_VERSION_TEXT_MAX 200

// lmc_version_text sends one version request to the server in, over a
// socket of its own, with one's protocol and timeouts (connect timeout to
// connect, poll timeout for the exchange), and copies the text of the
// answer (the rest of the VERSION line, or the binary answer's body), at
// most cap bytes, to out. On failure msg says what failed.
memcached_return_t lmc_version_text(memcached_st *one, const memcached_instance_st *in, char *out,
                                    size_t cap, size_t *out_len, char *msg, size_t msgcap);

// lmc_answers reports whether the handle's server named server
// ("host:port" or a socket path, as lmc_server_name writes it) answers a
// version request in the ASCII (binary 0) or binary protocol over a fresh
// connection (numbers or text): after a server closed the connection on a
// request without answering, it tells a proxy that refuses that request
// (twemproxy: stats, flush_all, the binary protocol) from a server that
// went away (and may be back: a restart).
int lmc_answers(lmc_client *c, const char *server, size_t server_len, int binary);

// lmc_servers appends one lmc_str_rec (server, "", "") per server.
size_t lmc_servers(lmc_client *c);

// lmc_server_for puts the name of key's server in c->server.
memcached_return_t lmc_server_for(lmc_client *c, const char *key, size_t key_len);

// lmc_key_server_error returns the error last recorded on key's server
// (MEMCACHED_SUCCESS if none).
memcached_return_t lmc_key_server_error(lmc_client *c, const char *key, size_t key_len);

// lmc_last_server puts the name of the server that last failed in
// c->server and returns 1, or returns 0 if there is none.
int lmc_last_server(lmc_client *c);

// lmc_behavior_get is memcached_behavior_get without its side effect: for
// an unset socket send or receive size libmemcached connects to the first
// server to read the OS's buffer size; this reports 0 ("the OS default").
// KETAMA_HASH reads the distribution hash on every version
// (lmc_distribution_hash).
uint64_t lmc_behavior_get(memcached_st *memc, memcached_behavior_t flag);

// lmc_pool_fetch takes a free handle from the pool without waiting (the Go
// side waits, so no goroutine ever blocks inside C for a handle). memc is
// NULL when none could be had, even when rc says success (a failed grow).
typedef struct lmc_fetched {
  memcached_st *memc;
  memcached_return_t rc;
} lmc_fetched;
lmc_fetched lmc_pool_fetch(memcached_pool_st *pool);

// lmc_version_unparsed reports whether the last memcached_version on memc
// failed only because a server's VERSION line is not a number (mcrouter's
// "VERSION mcrouter 0.41.0"): the server answered.
int lmc_version_unparsed(const memcached_st *memc);

#endif
