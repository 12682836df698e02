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

// lmc_get fetches one key. On MEMCACHED_SUCCESS, out_value/out_len point
// into c->result (valid until the next call on c), with out_flags and
// out_u64 (the CAS id).
memcached_return_t lmc_get(lmc_client *c, const char *key, size_t key_len);

// lmc_mget fetches n keys, given as one buffer of concatenated keys and
// their lengths. Each hit is appended to c->out as an lmc_item_rec record;
// out_count counts them. The return code is that of memcached_mget if it
// failed outright, else the first fetch failure (MEMCACHED_SOME_ERRORS
// when mget could not reach every server), else MEMCACHED_SUCCESS.
memcached_return_t lmc_mget(lmc_client *c, const char *keys, const size_t *lens, size_t n);

// lmc_incr increments (decr=0) or decrements (decr=1); the new value is in
// out_u64. A number of 2^63 or more that a memcached older than 1.6.22
// refuses as non-numeric (its parser reads past the value) is retried with
// a NUL appended after it, which the server's increment then overwrites
// (see cgo_helpers.c).
//
// With auth_guard set (a binary-protocol client without credentials),
// lmc_get, lmc_mget and lmc_incr first make sure, once per server, that the
// server does not answer with an auth error: libmemcached reports one on a
// get as a miss, and asserts (aborting the process) when an incr or decr
// gets one, while a touch of a key that is never stored reports it.
memcached_return_t lmc_incr(lmc_client *c, const char *key, size_t key_len, uint32_t delta,
                            int decr);

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
// lmc_str_rec (server, version, "") per server, or an error record.
memcached_return_t lmc_versions(lmc_client *c);

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

#endif
