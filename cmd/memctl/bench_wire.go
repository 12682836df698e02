package main

// The Go side of the wire row (bench_wire.c): one blocking socket, and one
// cgo call per request.

/*
#include <stdlib.h>
#include "bench_wire.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// wireTimeoutMs bounds each send and recv of the wire row, so that a
// server that stops answering fails the row instead of hanging it.
const wireTimeoutMs = 5000

// wireMaxValue is the largest value the wire row reads: memcached's
// default item size limit.
const wireMaxValue = 1 << 20

// wireNoRow is why the wire client has no row in a scenario.
const wireNoRow = "one blocking socket, one request at a time"

// wireScenario reports whether the wire client runs scenario s: the
// single-key Get and Set rows only ("" if it does, else the reason).
func wireScenario(s *scenario) string {
	if s.kind == kindGet || s.kind == kindSet {
		return ""
	}
	return wireNoRow
}

// wireAddr splits a memctl server name into what wire_open takes: a host
// and port, or a Unix socket path. A weight (host:port:weight) is dropped.
func wireAddr(server string) (host, port, path string, err error) {
	if strings.HasPrefix(server, "/") {
		return "", "", server, nil
	}
	rest := server
	if strings.HasPrefix(server, "[") {
		j := strings.IndexByte(server, ']')
		if j < 0 {
			return "", "", "", fmt.Errorf("server %q: no closing ]", server)
		}
		host, rest = server[1:j], server[j+1:]
		if rest != "" && rest[0] != ':' {
			return "", "", "", fmt.Errorf("server %q: a port must follow ]", server)
		}
		rest = strings.TrimPrefix(rest, ":")
	} else {
		host, rest, _ = strings.Cut(server, ":")
	}
	port, _, _ = strings.Cut(rest, ":")
	if port == "" {
		port = "11211"
	}
	if host == "" {
		return "", "", "", fmt.Errorf("server %q: no host", server)
	}
	return host, port, "", nil
}

// wireClient is the wire row's connection. It serves one goroutine.
type wireClient struct {
	c   *C.wire_conn
	buf []byte // the value of the last Get, copied in by C
}

func openWire(servers []string, _ *benchConfig) (*clientForms, error) {
	if len(servers) == 0 {
		return nil, errors.New("no servers")
	}
	host, port, path, err := wireAddr(servers[0])
	if err != nil {
		return nil, err
	}
	var chost, cport, cpath *C.char
	if path != "" {
		cpath = C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
	} else {
		chost, cport = C.CString(host), C.CString(port)
		defer C.free(unsafe.Pointer(chost))
		defer C.free(unsafe.Pointer(cport))
	}
	var errbuf [256]C.char
	c := C.wire_open(chost, cport, cpath, wireTimeoutMs, &errbuf[0], C.size_t(len(errbuf)))
	if c == nil {
		return nil, errors.New(C.GoString(&errbuf[0]))
	}
	w := &wireClient{c: c, buf: make([]byte, wireMaxValue)}
	return &clientForms{seq: w, close: w.close}, nil
}

func (w *wireClient) close() {
	if w.c != nil {
		C.wire_close(w.c)
		w.c = nil
	}
}

// errWireMiss is a Get's miss.
var errWireMiss = errors.New("cache miss (END)")

// Get is one cgo call: send the get, read the whole reply, copy the value
// into w.buf. The value returned is w.buf's, valid until the next Get.
func (w *wireClient) Get(key string) ([]byte, error) {
	n := C.wire_get(w.c, (*C.char)(unsafe.Pointer(unsafe.StringData(key))), C.size_t(len(key)),
		(*C.char)(unsafe.Pointer(&w.buf[0])), C.size_t(len(w.buf)))
	switch {
	case n >= 0:
		return w.buf[:n], nil
	case n == C.WIRE_MISS:
		return nil, errWireMiss
	case n == C.WIRE_TOO_LARGE:
		return nil, fmt.Errorf("a value larger than %d bytes", len(w.buf))
	}
	return nil, errors.New(C.GoString(&w.c.err[0]))
}

// Set is one cgo call: send the set with its data, read STORED.
func (w *wireClient) Set(key string, value []byte) error {
	var v *C.char
	if len(value) > 0 {
		v = (*C.char)(unsafe.Pointer(&value[0]))
	}
	if C.wire_set(w.c, (*C.char)(unsafe.Pointer(unsafe.StringData(key))), C.size_t(len(key)),
		v, C.size_t(len(value)), benchExpiration) != 0 {
		return errors.New(C.GoString(&w.c.err[0]))
	}
	return nil
}

// GetMulti is not offered: the wire row runs single-key scenarios only.
func (w *wireClient) GetMulti([]string, func(string, []byte)) error {
	return errors.New("wire: no multi-get")
}
