package libmemcached

// Server lists: parsing "host:port:weight", "[v6]:port", socket paths
// and pylibmc's "udp:" forms, and putting them on a handle.

/*
#include <stdlib.h>
#include <libmemcached-1.0/memcached.h>
#include "compat.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

type serverSpec struct {
	host   string
	port   int
	weight int
	socket bool
	udp    bool // pylibmc's "udp:host:port"
}

// String formats the server as libmemcached names it: "host:port",
// "[v6]:port", or the socket path.
func (s serverSpec) String() string {
	if s.socket {
		return s.host
	}
	if strings.IndexByte(s.host, ':') >= 0 {
		return "[" + s.host + "]:" + strconv.Itoa(s.port)
	}
	return s.host + ":" + strconv.Itoa(s.port)
}

// parseServer reads "host", "host:port", "host:port:weight", "[v6]",
// "[v6]:port", "[v6]:port:weight" or "/path/to.sock", and any of the
// host forms after "udp:" (pylibmc's server specs; translate_server_spec).
func parseServer(s string) (serverSpec, error) {
	if rest, ok := strings.CutPrefix(s, "udp:"); ok {
		sp, err := parseServer(rest)
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Server = s
			}
			return sp, err
		}
		if sp.socket || strings.HasPrefix(rest, "udp:") {
			return serverSpec{}, &Error{Code: ReturnInvalidHostProtocol, Original: ReturnInvalidHostProtocol, Op: "new", Server: s,
				Message: "udp: takes a host and port, not a socket path or another prefix"}
		}
		sp.udp = true
		return sp, nil
	}
	bad := func(msg string) (serverSpec, error) {
		return serverSpec{}, &Error{Code: ReturnInvalidHostProtocol, Original: ReturnInvalidHostProtocol, Op: "new", Server: s, Message: msg}
	}
	if s == "" {
		return bad("empty server address")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return bad("server address contains a space or control byte")
		}
	}
	if len(s) > 1000 {
		return bad("server address is too long")
	}
	if s[0] == '/' {
		return serverSpec{host: s, weight: 1, socket: true}, nil
	}
	sp := serverSpec{port: 11211, weight: 1}
	var rest string
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 2 {
			return bad("unterminated or empty [IPv6] address")
		}
		sp.host, rest = s[1:end], s[end+1:]
		if rest != "" && rest[0] != ':' {
			return bad("expected :port after ]")
		}
		rest = strings.TrimPrefix(rest, ":")
	} else {
		parts := strings.SplitN(s, ":", 2)
		sp.host = parts[0]
		if len(parts) == 2 {
			rest = parts[1]
		}
		if sp.host == "" {
			return bad("empty host")
		}
	}
	if rest == "" {
		if strings.HasSuffix(s, ":") {
			return bad("empty port")
		}
		return sp, nil
	}
	fields := strings.Split(rest, ":")
	if len(fields) > 2 {
		return bad("too many ':' (write an IPv6 address as [addr]:port)")
	}
	port, err := strconv.Atoi(fields[0])
	if err != nil || port < 1 || port > 65535 {
		return bad(fmt.Sprintf("bad port %q", fields[0]))
	}
	sp.port = port
	if len(fields) == 2 {
		w, err := strconv.Atoi(fields[1])
		if err != nil || w < 1 {
			return bad(fmt.Sprintf("bad weight %q", fields[1]))
		}
		sp.weight = w
	}
	return sp, nil
}

// parseServers checks a server list (New, SetServers) and reports whether
// its servers are UDP (pylibmc's "udp:" forms: all or none).
func parseServers(op string, servers []string) ([]serverSpec, bool, error) {
	if len(servers) == 0 {
		return nil, false, &Error{Code: ReturnNoServers, Original: ReturnNoServers, Op: op, Message: "no servers given"}
	}
	specs := make([]serverSpec, 0, len(servers))
	for _, s := range servers {
		sp, err := parseServer(s)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Op = op
			}
			return nil, false, err
		}
		specs = append(specs, sp)
	}
	udp := specs[0].udp
	for _, sp := range specs {
		if sp.udp != udp {
			return nil, false, &Error{Code: ReturnInvalidHostProtocol, Original: ReturnInvalidHostProtocol, Op: op, Server: sp.String(),
				Message: "cannot mix UDP servers with TCP or socket servers"}
		}
	}
	return specs, udp, nil
}

// addServers adds the servers to memc.
func addServers(memc *C.memcached_st, op string, specs []serverSpec) *Error {
	for _, sp := range specs {
		host := C.CString(sp.host)
		var rc C.memcached_return_t
		if sp.socket {
			rc = C.memcached_server_add_unix_socket_with_weight(memc, host, C.uint32_t(sp.weight))
		} else {
			rc = C.memcached_server_add_with_weight(memc, host, C.in_port_t(sp.port), C.uint32_t(sp.weight))
		}
		C.free(unsafe.Pointer(host))
		if rc != C.MEMCACHED_SUCCESS {
			err := handleError(memc, op, "", rc)
			err.Server = sp.String()
			return err
		}
	}
	return nil
}

// withServers returns a new handle like h (memcached_clone: behaviors,
// namespace, credentials) over the servers specs instead of h's.
func (h *handle) withServers(op string, specs []serverSpec, udp bool) (*handle, error) {
	if udp != (C.memcached_behavior_get(h.memc, C.MEMCACHED_BEHAVIOR_USE_UDP) != 0) {
		return nil, &Error{Code: ReturnInvalidHostProtocol, Original: ReturnInvalidHostProtocol, Op: op,
			Message: "UDP servers can only replace UDP servers, and TCP or socket servers only TCP or socket servers"}
	}
	cl, err := h.clone()
	if err != nil {
		return nil, err
	}
	C.lmc_servers_reset(cl.memc)
	if err := addServers(cl.memc, op, specs); err != nil {
		cl.free()
		return nil, err
	}
	return cl, nil
}
