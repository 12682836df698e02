package otelmemcached

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/libmemcached-go/libmemcached"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// outcome returns an operation's db.response.status_code (libmemcached's
// return code, "" on success or for an error that has none) and its
// error.type ("" unless it failed: a miss is not a failure). See the
// package comment.
func outcome(err error) (status, errType string) {
	if err == nil {
		return "", ""
	}
	var e *libmemcached.Error
	if errors.As(err, &e) {
		status = e.Code.String()
		if e.Code == libmemcached.ReturnNotFound || onlyMisses(e) {
			return status, ""
		}
		return status, status
	}
	switch {
	case errors.Is(err, libmemcached.ErrCacheMiss): // the bare sentinel
		return libmemcached.ReturnNotFound.String(), ""
	case errors.Is(err, context.DeadlineExceeded):
		return "", "context.DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "", "context.Canceled"
	case errors.Is(err, libmemcached.ErrClosed):
		return "", "libmemcached.ErrClosed"
	}
	return "", semconv.ErrorType(err).Value.AsString()
}

// onlyMisses reports whether e is a multi-key operation's
// MEMCACHED_SOME_ERRORS whose every key failed by being absent (a
// DeleteMulti of keys that were partly gone).
func onlyMisses(e *libmemcached.Error) bool {
	if e.Code != libmemcached.ReturnSomeErrors {
		return false
	}
	keys := 0
	for _, err := range e.Unwrap() {
		var ke *libmemcached.Error
		if !errors.As(err, &ke) {
			if errors.Is(err, libmemcached.ErrSomeErrors) {
				continue // the sentinel of e's own code
			}
			return false // a system error or the context's
		}
		if ke.Code != libmemcached.ReturnNotFound {
			return false
		}
		keys++
	}
	return keys > 0
}

// splitServer splits an Event's Server into server.address and
// server.port: "host:port", "[v6]:port", or a Unix socket's path (the
// address, with port 0).
func splitServer(server string) (host string, port int) {
	if server == "" || strings.HasPrefix(server, "/") {
		return server, 0
	}
	h, p, err := net.SplitHostPort(server)
	if err != nil {
		return server, 0
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return server, 0
	}
	return h, n
}
