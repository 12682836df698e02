// The compatibility layer, C half: every difference between the
// libmemcached versions the binding supports (1.0.18 to 1.1.4) that the C
// side must know, in one place. compat.go is the Go half. Differences in
// the headers are resolved here at compile time (LIBMEMCACHED_VERSION_HEX
// and feature macros); bugs of the library that is loaded are guarded at
// run time, through the quirk bits below, which compat.go derives from
// memcached_lib_version() once and stores in lmc_quirks. (compat.go also
// holds the guards only Go needs: the library mismatch check, murmur3 on
// 1.0, remove_failed's meaning.)
#ifndef LIBMEMCACHED_GO_COMPAT_H
#define LIBMEMCACHED_GO_COMPAT_H

#include <libmemcached-1.0/memcached.h>

#if !defined(LIBMEMCACHED_VERSION_HEX)
#error "libmemcached 1.0.18 or newer is required (Debian, Ubuntu: apt-get install libmemcached-dev)"
#endif

// LIBMEMCACHED_VERSION_HEX spells each part in decimal digits: 1.0.x writes
// 0x01000018, 1.1.x 0x001001004. Read as three 12-bit fields (major from
// bit 24, minor from bit 12, patch from bit 0), both give the version.
#define LMC_DEC3(x) ((((x) >> 8) & 0xf) * 100 + (((x) >> 4) & 0xf) * 10 + ((x) & 0xf))
#define LMC_HDR_MAJOR LMC_DEC3((LIBMEMCACHED_VERSION_HEX >> 24) & 0xfff)
#define LMC_HDR_MINOR LMC_DEC3((LIBMEMCACHED_VERSION_HEX >> 12) & 0xfff)
#define LMC_HDR_PATCH LMC_DEC3(LIBMEMCACHED_VERSION_HEX & 0xfff)
// LMC_HDR_VERSION is the headers' version as major*10000 + minor*100 +
// patch: 10018 for 1.0.18, 10104 for 1.1.4.
#define LMC_HDR_VERSION (LMC_HDR_MAJOR * 10000 + LMC_HDR_MINOR * 100 + LMC_HDR_PATCH)

#if LMC_HDR_VERSION < 10018
#error "libmemcached 1.0.18 or newer is required (Debian, Ubuntu: apt-get install libmemcached-dev)"
#endif

// The longest namespace libmemcached keeps, NUL included: 1.1 calls it
// MEMCACHED_MAX_NAMESPACE, 1.0 MEMCACHED_PREFIX_KEY_MAX_SIZE (both 128).
#ifdef MEMCACHED_MAX_NAMESPACE
#define LMC_MAX_NAMESPACE MEMCACHED_MAX_NAMESPACE
#else
#define LMC_MAX_NAMESPACE MEMCACHED_PREFIX_KEY_MAX_SIZE
#endif

// Quirks of the loaded library, one bit each (compat.go sets lmc_quirks).
//
// One more is guarded on every version, without a bit: before 1.1.1 (gh
// #67) a get from a server that accepted the connection but did not
// answer returns NOTFOUND while the handle's last error says TIMEOUT. The
// get helpers report a miss only when the handle recorded no failure
// (lmc_miss_or_failure), which is always right.
enum {
  // 1.1.0 to 1.1.3 keep the connection open after a timeout, so the late
  // reply answers the next request on it (php-memcached #531, fixed in
  // 1.1.4), and 1.1.0 to 1.1.2 can underflow a server's count of pending
  // replies, after which memcached_free never returns (gh #130, fixed in
  // 1.1.3). The binding closes the handle's connections after an
  // operation that timed out (lmc_reset_after_timeout).
  LMC_Q_TIMEOUT_KEEPS_CONN = 1 << 0,
  // Before 1.1.0, memcached_behavior_get(MEMCACHED_BEHAVIOR_KETAMA_HASH)
  // returns the key hash; lmc_distribution_hash finds the real one.
  LMC_Q_KETAMA_HASH_GET = 1 << 1,
  // Before 1.1.3, a touch with noreply set still reads the server's reply,
  // which was never counted as pending: the count underflows (gh #130 and
  // #124, fixed in 1.1.3), and the next call that drains replies, or
  // memcached_free, loops for ever (seen on 1.0.18 and 1.1.0, in both
  // protocols). lmc_touch turns noreply off for the touch.
  LMC_Q_NOREPLY_TOUCH_UNDERFLOW = 1 << 2,
};

// lmc_quirks holds the loaded library's LMC_Q_* bits.
extern int lmc_quirks;

// lmc_distribution_hash returns the hash the handle uses to place keys on
// the ketama continuum (what 1.1's memcached_behavior_get of KETAMA_HASH
// returns), on every version.
uint64_t lmc_distribution_hash(memcached_st *memc);

// lmc_touch is memcached_touch_by_key, safe on every version with noreply
// set (LMC_Q_NOREPLY_TOUCH_UNDERFLOW).
memcached_return_t lmc_touch(memcached_st *memc, const char *group_key, size_t group_key_len,
                             const char *key, size_t key_len, time_t expiration);

// lmc_servers_reset is memcached_servers_reset, safe on every version:
// before 1.1.0 it freed the ketama continuum but kept its size, so adding a
// server list no longer than the old one wrote through a NULL continuum.
void lmc_servers_reset(memcached_st *memc);

// lmc_reset_after_timeout closes every connection of memc when the loaded
// library has LMC_Q_TIMEOUT_KEEPS_CONN and the handle's last operation
// timed out.
void lmc_reset_after_timeout(memcached_st *memc);

// lmc_miss_or_failure turns the end of a get that found nothing (rc END or
// NOTFOUND) into NOTFOUND when the handle recorded no failure, and into
// the recorded failure otherwise (a timeout, a lost connection).
memcached_return_t lmc_miss_or_failure(memcached_st *memc, memcached_return_t rc);

#endif
