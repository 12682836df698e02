package libmemcached

// The cgo build settings of the package: libmemcached and libmemcachedutil,
// found through pkg-config (libmemcached.pc; on Debian it needs libssl-dev,
// which scripts/install-deps.sh installs). compat.h refuses headers older
// than 1.0.18.

/*
#cgo pkg-config: libmemcached
#cgo LDFLAGS: -lmemcachedutil
*/
import "C"
