package libmemcached

/*
#include <stdlib.h>
#include <libmemcached-1.0/memcached.h>
*/
import "C"

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

//go:generate go run ./cmd/errgen -o errors_gen.go

// gomemcache's names for the two errors its users test for most. They are the
// same values as the generated sentinels, so errors.Is works with either name.
var (
	// ErrCacheMiss means the key was not on the server (a Get, Delete, Touch,
	// Increment, Decrement or CompareAndSwap of an absent key). It is ErrNotFound.
	ErrCacheMiss = ErrNotFound
	// ErrCASConflict means a CompareAndSwap lost the race: the item was
	// modified since it was read. It is ErrDataExists.
	ErrCASConflict = ErrDataExists
)

// ErrClosed is returned by every call on a Client or Pool after Close.
var ErrClosed = errors.New("libmemcached: client is closed")

// codeError is the type of the generated sentinels (ErrNotFound, ...): one
// comparable value per return code, so errors.Is matches by code.
type codeError ReturnCode

// Error returns "libmemcached: " and libmemcached's description of the code.
func (e codeError) Error() string {
	return "libmemcached: " + ReturnCode(e).Description()
}

// Code returns the return code the sentinel stands for.
func (e codeError) Code() ReturnCode { return ReturnCode(e) }

// String returns the C name of the code, e.g. "MEMCACHED_NOTFOUND".
func (c ReturnCode) String() string {
	if c >= 0 && int(c) < len(returnCodeNames) && returnCodeNames[c] != "" {
		return returnCodeNames[c]
	}
	return "ReturnCode(" + strconv.Itoa(int(c)) + ")"
}

// Description returns libmemcached's own text for the code (memcached_strerror),
// e.g. "NOT FOUND".
func (c ReturnCode) Description() string {
	if c >= 0 && int(c) < len(returnCodeDescriptions) && returnCodeDescriptions[c] != "" {
		return returnCodeDescriptions[c]
	}
	return "unknown return code " + strconv.Itoa(int(c))
}

// Err returns the sentinel error for the code (ErrNotFound for ReturnNotFound,
// ...), or nil for ReturnSuccess.
func (c ReturnCode) Err() error {
	if c == ReturnSuccess {
		return nil
	}
	return codeError(c)
}

// cStrerror asks the linked libmemcached for the description of rc. The
// generator and the tests use it; the library uses the generated table.
func cStrerror(rc ReturnCode) string {
	return C.GoString(C.memcached_strerror(nil, C.memcached_return_t(rc)))
}

// Error is the error every failing operation returns. errors.Is(err, ErrX)
// matches its Code against the generated sentinels, and errors.As reaches it
// through any wrapping.
type Error struct {
	// Code is the outcome, normalised across protocols: an Add of a present
	// key and a Replace of an absent key are ReturnNotStored in both the
	// ASCII and the binary protocol.
	Code ReturnCode
	// Original is the code libmemcached returned when it differs from Code
	// (binary Add reports ReturnDataExists, binary Replace ReturnNotFound);
	// otherwise it equals Code.
	Original ReturnCode
	// Op is the operation: "get", "set", "get_multi", ...
	Op string
	// Key is the key the operation was about, if any.
	Key string
	// Server is the "host:port" (or socket path) involved, where known.
	Server string
	// Message is libmemcached's last error message for the handle (without
	// its source location), or a description of the invalid input.
	Message string

	errno int     // memcached_last_error_errno, for ReturnErrno
	errs  []error // per-key failures of a multi-key operation
	cause error   // the context's error, when its deadline or cancellation cut the call short
}

// Error describes the failure: the operation, key, server, libmemcached's
// description of the code and its message.
func (e *Error) Error() string {
	if e.cause != nil {
		return e.text() + " (" + e.cause.Error() + ")"
	}
	return e.text()
}

func (e *Error) text() string {
	var b strings.Builder
	b.WriteString("libmemcached: ")
	b.WriteString(e.Op)
	if e.Key != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Key))
	}
	if e.Server != "" {
		b.WriteString(" on ")
		b.WriteString(e.Server)
	}
	b.WriteString(": ")
	desc := e.Code.Description()
	if e.Message != "" && e.Original == e.Code && strings.HasPrefix(e.Message, desc) {
		// libmemcached's message restates the code with detail:
		// "CONNECTION FAILURE(Connection refused)".
		b.WriteString(e.Message)
		return b.String()
	}
	b.WriteString(desc)
	if e.Original != e.Code {
		b.WriteString(" (libmemcached: ")
		b.WriteString(e.Original.Description())
		b.WriteString(")")
	}
	if e.Code == ReturnDataExists && e.Op == "cas" {
		b.WriteString(" (CAS conflict: the item changed since it was read)")
	}
	if e.Message != "" && e.Message != desc && e.Message != e.Original.Description() {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// cleanMessage trims libmemcached's last-error text for humans: it drops
// the handle's address ("(0x55d0c0) "), the source location
// (" -> ./src/libmemcached/io.cc:145") and the host (returned apart, since
// the Error has a Server field).
func cleanMessage(msg string) (text, host string) {
	if strings.HasPrefix(msg, "(0x") {
		if i := strings.Index(msg, ") "); i > 0 {
			msg = msg[i+2:]
		}
	}
	if i := strings.LastIndex(msg, " -> "); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, ",  host: "); i >= 0 {
		host = strings.TrimSpace(msg[i+len(",  host: "):])
		msg = msg[:i]
	}
	return strings.TrimSpace(msg), host
}

// Unwrap returns the sentinel for Code, the system error behind
// ReturnErrno, the context's error when a deadline or cancellation cut the
// call short, and the per-key errors of a multi-key operation, so that
// errors.Is sees all of them.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2+len(e.errs))
	if err := e.Code.Err(); err != nil {
		out = append(out, err)
	}
	if e.errno != 0 {
		out = append(out, syscall.Errno(e.errno))
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return append(out, e.errs...)
}

// Timeout reports whether the operation failed because a server did not
// answer in time (connect, poll, send or receive timeout).
func (e *Error) Timeout() bool {
	switch e.Code {
	case ReturnTimeout:
		return true
	case ReturnErrno:
		return e.errno == int(syscall.ETIMEDOUT) || e.errno == int(syscall.EAGAIN)
	}
	for _, err := range e.errs {
		var me *Error
		if errors.As(err, &me) && me.Timeout() {
			return true
		}
	}
	return false
}

// Temporary reports whether the failure is of the connection class: the
// server could not be reached, timed out, failed mid-exchange, or is marked
// dead for now. Retrying later, or on another server, may succeed.
func (e *Error) Temporary() bool {
	if e.Code == ReturnNoServers && (e.Op == "new" || e.Op == "new_pool") {
		return false // an empty server list is a configuration error
	}
	if isConnectionClass(e.Code) {
		return true
	}
	for _, err := range e.errs {
		var me *Error
		if errors.As(err, &me) && me.Temporary() {
			return true
		}
	}
	return false
}

// isConnectionClass lists the codes that mean "the conversation with a
// server broke", as opposed to an answer about the data.
func isConnectionClass(c ReturnCode) bool {
	switch c {
	case ReturnHostLookupFailure, ReturnConnectionFailure, ReturnConnectionBindFailure,
		ReturnWriteFailure, ReturnReadFailure, ReturnUnknownReadFailure, ReturnProtocolError,
		ReturnPartialRead, ReturnTimeout, ReturnErrno, ReturnServerMarkedDead,
		ReturnServerTemporarilyDisabled, ReturnNoServers, ReturnFailUnixSocket,
		ReturnInProgress:
		return true
	}
	return false
}
