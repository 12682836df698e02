// The compatibility layer's C functions; see compat.h.
#include "compat.h"

int lmc_quirks;

uint64_t lmc_distribution_hash(memcached_st *memc) {
  if (!(lmc_quirks & LMC_Q_KETAMA_HASH_GET)) {
    return memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_KETAMA_HASH);
  }
  // 1.0 keeps the distribution hash as a function pointer in the handle's
  // hashkit and has no getter that returns it. Find which algorithm it is
  // by making each one the key hash of a scratch handle and comparing the
  // library's own function pointers.
  hashkit_hash_fn want = memc->hashkit.distribution_hash.function;
  uint64_t found = MEMCACHED_HASH_CUSTOM;
  memcached_st *scratch = memcached_create(NULL);
  if (scratch == NULL) {
    return found;
  }
  for (int h = MEMCACHED_HASH_DEFAULT; h < MEMCACHED_HASH_CUSTOM; h++) {
    if (h == MEMCACHED_HASH_MURMUR3) {
      continue; // 1.0 maps it to murmur's function
    }
    if (memcached_behavior_set(scratch, MEMCACHED_BEHAVIOR_HASH, (uint64_t) h) == MEMCACHED_SUCCESS
        && scratch->hashkit.base_hash.function == want) {
      found = (uint64_t) h;
      break;
    }
  }
  memcached_free(scratch);
  return found;
}

memcached_return_t lmc_touch(memcached_st *memc, const char *group_key, size_t group_key_len,
                             const char *key, size_t key_len, time_t expiration) {
  int noreply = (lmc_quirks & LMC_Q_NOREPLY_TOUCH_UNDERFLOW)
                && memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_NOREPLY)
                && memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_NOREPLY, 0) == MEMCACHED_SUCCESS;
  memcached_return_t rc =
      memcached_touch_by_key(memc, group_key, group_key_len, key, key_len, expiration);
  if (noreply) {
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
  }
  return rc;
}

void lmc_servers_reset(memcached_st *memc) {
  memcached_servers_reset(memc);
  // (1.1.0 and later reset these themselves.)
  memc->ketama.continuum_count = 0;
  memc->ketama.continuum_points_counter = 0;
}

void lmc_reset_after_timeout(memcached_st *memc) {
  if ((lmc_quirks & LMC_Q_TIMEOUT_KEEPS_CONN) && memc != NULL
      && memcached_last_error(memc) == MEMCACHED_TIMEOUT) {
    memcached_quit(memc);
  }
}

memcached_return_t lmc_miss_or_failure(memcached_st *memc, memcached_return_t rc) {
  if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND) {
    return rc;
  }
  memcached_return_t last = memcached_last_error(memc);
  if (last != MEMCACHED_SUCCESS && last != MEMCACHED_NOTFOUND && last != MEMCACHED_END) {
    return last;
  }
  return MEMCACHED_NOTFOUND;
}
