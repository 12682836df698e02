package libmemcached

// The compatibility layer, Go half (compat.h is the C half): which
// libmemcached the package was built against, which one is loaded, the
// refusal of a loaded library whose structures may differ from the
// headers', and the quirks of the loaded one that the binding guards
// against. Every version-dependent decision of the package is made here.

/*
#include <libmemcached-1.0/memcached.h>
#include "compat.h"
#include "cgo_helpers.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// LibraryVersion is the version of the libmemcached headers the package was
// built against (LIBMEMCACHED_VERSION_STRING). RuntimeVersion tells which
// library was loaded.
const LibraryVersion = C.LIBMEMCACHED_VERSION_STRING

// RuntimeVersion returns the version of the libmemcached library loaded at
// run time (memcached_lib_version). Every release from 1.0.18 to 1.1.4
// has the same soname, so a program built against one loads whichever is
// installed; New and NewPool refuse a library whose major.minor differs
// from LibraryVersion's (see ErrLibraryMismatch).
func RuntimeVersion() string { return runtimeVersion }

// ErrLibraryMismatch means the libmemcached loaded at run time is not the
// major.minor release the package was compiled against: the C structures
// the binding reads may be laid out differently, so New, NewFromConfig,
// NewPool and NewPoolFromConfig refuse to start. Rebuild against the
// installed headers (go clean -cache first if they changed), or load the
// library the program was built for. The *Error returned names both
// versions; errors.Is(err, ErrLibraryMismatch) tells it apart.
var ErrLibraryMismatch = errors.New("libmemcached: run-time library differs from the headers built against")

// version is a libmemcached release number.
type version struct{ major, minor, patch int }

// less reports whether v is older than major.minor.patch.
func (v version) less(major, minor, patch int) bool {
	if v.major != major {
		return v.major < major
	}
	if v.minor != minor {
		return v.minor < minor
	}
	return v.patch < patch
}

// parseVersion reads "1.1.4" (trailing text after the numbers is ignored:
// "1.1.0-beta3").
func parseVersion(s string) (version, bool) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 {
		return version{}, false
	}
	var n [3]int
	for i, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		v, err := strconv.Atoi(p[:end])
		if err != nil {
			return version{}, false
		}
		n[i] = v
	}
	return version{n[0], n[1], n[2]}, true
}

var (
	runtimeVersion = C.GoString(C.memcached_lib_version())
	// builtVersion is the headers', from LIBMEMCACHED_VERSION_HEX.
	builtVersion = version{int(C.LMC_HDR_MAJOR), int(C.LMC_HDR_MINOR), int(C.LMC_HDR_PATCH)}
	// loaded is the run-time library's version (zero if unreadable, and
	// then libraryErr refuses it).
	loaded, _ = parseVersion(runtimeVersion)
	// libraryErr is non-nil when the loaded library must not be used.
	libraryErr = checkLibrary(LibraryVersion, runtimeVersion)
	// quirks are the loaded library's bugs that the binding guards
	// against (the LMC_Q_* bits of compat.h).
	quirks = quirksOf(loaded)
)

func init() {
	C.lmc_quirks = C.int(quirks)
}

// checkLoadedLibrary returns a fresh copy of libraryErr, or nil.
func checkLoadedLibrary() error {
	if libraryErr == nil {
		return nil
	}
	e := *libraryErr
	return &e
}

// checkLibrary returns the error New gives when the library loaded at run
// time (loaded) is not the major.minor release of the headers (built).
func checkLibrary(built, loaded string) *Error {
	b, okB := parseVersion(built)
	l, okL := parseVersion(loaded)
	if okB && okL && b.major == l.major && b.minor == l.minor {
		return nil
	}
	if loaded == "" {
		loaded = "(unknown)"
	}
	return &Error{
		Code: ReturnNotSupported, Original: ReturnNotSupported, Op: "new",
		Message: fmt.Sprintf("this program was built against libmemcached %s headers, but libmemcached %s is loaded at run time; "+
			"their structures may differ, so it refuses to run: rebuild against the installed library (go clean -cache; go build), "+
			"or install libmemcached %d.%d", built, loaded, b.major, b.minor),
		errs: []error{ErrLibraryMismatch},
	}
}

// The quirk bits of compat.h.
const (
	qTimeoutKeepsConn      = C.LMC_Q_TIMEOUT_KEEPS_CONN
	qKetamaHashGet         = C.LMC_Q_KETAMA_HASH_GET
	qNoreplyTouchUnderflow = C.LMC_Q_NOREPLY_TOUCH_UNDERFLOW
)

// quirksOf returns the quirk bits for a loaded version (see compat.h).
func quirksOf(v version) int {
	q := 0
	if v.less(1, 1, 0) {
		q |= qKetamaHashGet
	}
	if !v.less(1, 1, 0) && v.less(1, 1, 4) {
		q |= qTimeoutKeepsConn
	}
	if v.less(1, 1, 3) {
		q |= qNoreplyTouchUnderflow
	}
	return q
}

// resetsAfterTimeout reports whether the loaded library needs its
// connections closed after a timeout (LMC_Q_TIMEOUT_KEEPS_CONN).
func resetsAfterTimeout() bool { return quirks&qTimeoutKeepsConn != 0 }

// checkHash refuses a hash the loaded library cannot compute as named.
// libmemcached before 1.1.0 accepts MEMCACHED_HASH_MURMUR3 and silently
// hashes with murmur (murmur2) instead, which would put keys on other
// servers than every 1.1 client (pylibmc's included) does.
//
// It also refuses a number that is no hash algorithm, on every version:
// libmemcached answers MEMCACHED_HASH_MAX with an error after resetting the
// hash to the default, and larger numbers with success, changing nothing.
func checkHash(op string, b Behavior, h Hash) error {
	if h < HashDefault || h >= HashCustom {
		return inputError(op, "", ReturnInvalidArguments, fmt.Sprintf(
			"behavior %s: %d is not a hash algorithm (%d to %d; see Hashers)", behaviorName(b), int(h), int(HashDefault), int(HashCustom)-1))
	}
	if h == HashMurmur3 && loaded.less(1, 1, 0) {
		return inputError(op, "", ReturnInvalidArguments, fmt.Sprintf(
			"behavior %s: libmemcached %s has no murmur3 (it would hash with murmur2 instead and place keys on other servers than libmemcached 1.1 does); use libmemcached 1.1 or another hash",
			behaviorName(b), runtimeVersion))
	}
	return nil
}

// libBehavior is the libmemcached behavior that does what b means on every
// version. Before 1.1.0, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS also set
// server_failure_limit to its value (refusing 0) and read back as it
// (libmemcached gh #35); 1.1 made it the switch of auto_eject_hosts. The
// binding gives it that meaning on 1.0 too, so the same settings behave the
// same on every release (set failure_limit for the count).
func libBehavior(b Behavior) C.memcached_behavior_t {
	if b == BehaviorRemoveFailedServers && loaded.less(1, 1, 0) {
		return C.MEMCACHED_BEHAVIOR_AUTO_EJECT_HOSTS
	}
	return C.memcached_behavior_t(b)
}
