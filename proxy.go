package libmemcached

// Proxies in front of memcached (twemproxy, mcrouter): telling a command a
// proxy refuses from a server that went away. twemproxy closes the
// connection, without an answer, on a command it does not support (stats,
// flush_all, ...) and on any binary-protocol request; libmemcached then
// reports a connection failure ("server has disconnected"), exactly as
// when the server dies. The difference is that a refusing proxy still
// answers: a version request over a new connection tells them apart. (A
// server whose VERSION line is text, as mcrouter's, is handled in
// cgo_helpers.c: lmc_versions.)

/*
#include <libmemcached-1.0/memcached.h>
#include "cgo_helpers.h"
*/
import "C"

import (
	"fmt"
	"syscall"
)

// twemproxyRefuses are the commands this package sends that twemproxy 0.5
// closes the connection on (measured against Debian's nutcracker 0.5.0;
// it also refuses verbosity, gat and a delete with a time, which the
// package does not send).
var twemproxyRefuses = map[string]bool{"stats": true, "flush_all": true}

// closedWithoutAnswer reports whether e says that the server closed the
// connection after the request was sent (an orderly close or a reset),
// rather than that it could not be reached or timed out.
func closedWithoutAnswer(e *Error) bool {
	reset := e.errno == int(syscall.ECONNRESET) || e.errno == int(syscall.EPIPE)
	switch e.Code {
	case ReturnConnectionFailure:
		return e.errno == 0 || reset
	case ReturnErrno, ReturnWriteFailure, ReturnReadFailure:
		return reset
	}
	return false
}

// command names the request op sends on the wire.
func (h *handle) command(op string) string {
	switch op {
	case "get", "get_multi":
		if !h.binary && C.memcached_behavior_get(h.memc, C.MEMCACHED_BEHAVIOR_SUPPORT_CAS) != 0 {
			return "gets"
		}
		return "get"
	case "set_multi":
		return "set"
	case "delete_multi":
		return "delete"
	case "ping", "warm":
		return "version"
	}
	return op
}

// explainRefusal turns e into a refusal when its server closed the
// connection on the request without answering, yet answers an ASCII
// version request on a new connection: the server, or the proxy that is
// the server to this client, refuses that command (or, for a
// binary-protocol client, the binary protocol). Code becomes
// ReturnNotSupported (Original keeps libmemcached's code), so that the
// error is not Temporary, and Message names the command. For an error
// about several servers (ReturnSomeErrors), each server's own error is
// explained, and the whole when one server failed. e is left as it is in
// every other case, at the cost of one quick check of its code.
func (h *handle) explainRefusal(op string, e *Error) {
	if e.Code == ReturnSomeErrors {
		for _, err := range e.errs {
			if cause, ok := err.(*Error); ok {
				h.explainRefusal(op, cause)
				if cause.Code == ReturnNotSupported && len(e.errs) == 1 {
					e.Code, e.Message = ReturnNotSupported, cause.Message
				}
			}
		}
		return
	}
	if !closedWithoutAnswer(e) || e.Server == "" || h.c == nil || h.memc == nil {
		return
	}
	cmd := h.command(op)
	if !h.binary && !twemproxyRefuses[cmd] {
		// A proxy refuses only these ASCII commands. Any other closed
		// without an answer is the server going away: probing would
		// mistake a server that restarted meanwhile for a refusal.
		return
	}
	if h.binary && C.lmc_answers(h.c, cstr(e.Server), C.size_t(len(e.Server)), 1) == 1 {
		// It answers the binary protocol on a new connection: it went
		// away (a restart), it did not refuse the protocol.
		return
	}
	if C.lmc_answers(h.c, cstr(e.Server), C.size_t(len(e.Server)), 0) != 1 {
		return
	}
	was := e.Message
	if h.binary {
		e.Message = fmt.Sprintf("the server or proxy refused the binary protocol (twemproxy speaks only ASCII: use this client without WithBinaryProtocol): "+
			"it closed the connection on the binary-protocol request %q without answering, yet answers the ASCII protocol on a new connection", cmd)
	} else {
		known := ""
		if twemproxyRefuses[cmd] {
			known = " (twemproxy does not support it)"
		}
		e.Message = fmt.Sprintf("the server or proxy refused the command %q%s: it closed the connection without answering, "+
			"yet answers a version request on a new connection", cmd, known)
	}
	if was != "" {
		e.Message += "; libmemcached: " + was
	}
	e.Code = ReturnNotSupported
}
