package libmemcached

// The C boundary: passing Go memory into C for the length of a call, and
// decoding the records the C helpers append to a client's output buffer
// (cgo_helpers.h).

/*
#include <stdlib.h>
#include <libmemcached-1.0/memcached.h>
#include "cgo_helpers.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// ---------------------------------------------------------------------------
// Go memory into C

// cstr passes a Go string's bytes to C for the duration of a call. C must
// not keep the pointer; libmemcached copies keys into its write buffer.
func cstr(s string) *C.char {
	if len(s) == 0 {
		return &C.lmc_empty[0]
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

// cbytes is cstr for a byte slice. An empty string or slice has no data
// pointer, so both pass a static empty C string instead.
func cbytes(b []byte) *C.char {
	if len(b) == 0 {
		return &C.lmc_empty[0]
	}
	return (*C.char)(unsafe.Pointer(unsafe.SliceData(b)))
}

// pinner pins the keys and values a multi-key call points at from its Go
// array of C structs, as cgo's rules require for the call's duration.
type pinner struct{ runtime.Pinner }

func (p *pinner) str(s string) *C.char {
	if len(s) == 0 {
		return &C.lmc_empty[0]
	}
	d := unsafe.StringData(s)
	p.Pin(d)
	return (*C.char)(unsafe.Pointer(d))
}

func (p *pinner) bytes(b []byte) *C.char {
	if len(b) == 0 {
		return &C.lmc_empty[0]
	}
	d := unsafe.SliceData(b)
	p.Pin(d)
	return (*C.char)(unsafe.Pointer(d))
}

// ---------------------------------------------------------------------------
// Records out of C

// strRec is one lmc_str_rec: three strings, and the code of a server that
// failed (ReturnSuccess for data).
type strRec struct {
	s  [3]string
	rc ReturnCode
}

// records decodes n lmc_str_rec records from the handle's output buffer.
func (h *handle) records(n int) []strRec {
	out := make([]strRec, 0, n)
	buf := h.outBuf()
	hdr := int(unsafe.Sizeof(C.lmc_str_rec{}))
	for off := 0; off < len(buf) && len(out) < n; {
		rec := (*C.lmc_str_rec)(unsafe.Pointer(&buf[off]))
		p := off + hdr
		r := strRec{rc: ReturnCode(rec.rc)}
		for i := 0; i < 3; i++ {
			l := int(rec.len[i])
			r.s[i] = string(buf[p : p+l])
			p += l
		}
		out = append(out, r)
		off += (p - off + 7) &^ 7
	}
	return out
}

// serverErrors turns the error records of a per-server call into one
// error: the server's own when one failed, else ErrSomeErrors wrapping
// each.
func serverErrors(op string, recs []strRec) error {
	var errs []error
	for _, r := range recs {
		if r.rc == ReturnSuccess {
			continue
		}
		msg, _ := cleanMessage(r.s[1])
		errs = append(errs, &Error{Code: r.rc, Original: r.rc, Op: op, Server: r.s[0], Message: msg})
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return &Error{
		Code: ReturnSomeErrors, Original: ReturnSomeErrors, Op: op,
		Message: fmt.Sprintf("%d servers failed; first: %v", len(errs), errs[0]),
		errs:    errs,
	}
}

// itemRec is one lmc_item_rec record of a client's output buffer, read in
// place: key and value point into the buffer.
type itemRec struct {
	key, value []byte
	flags      uint32
	cas        uint64
	next       int // offset of the next record
}

// itemRecAt reads the record at off (records start on 8-byte boundaries).
func itemRecAt(buf []byte, off int) itemRec {
	r := (*C.lmc_item_rec)(unsafe.Pointer(&buf[off]))
	k := off + int(unsafe.Sizeof(C.lmc_item_rec{}))
	v := k + int(r.key_len)
	end := v + int(r.value_len)
	return itemRec{key: buf[k:v], value: buf[v:end], flags: uint32(r.flags), cas: uint64(r.cas), next: (end + 7) &^ 7}
}

// outBuf is the handle's output buffer as a Go slice (valid until the next
// call on the C half).
func (h *handle) outBuf() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(h.c.out.data)), int(h.c.out.len))
}

// decodeItems turns the lmc_item_rec records in the output buffer into
// items keyed by the caller's own key strings. Values share one backing
// array (each capped to its length), and items one slice, so a multi-get
// costs a handful of allocations rather than two per key.
func (h *handle) decodeItems(keys []string, found int) map[string]*Item {
	items := h.decodeList(keys, found)
	m := make(map[string]*Item, len(items))
	for i := range items {
		m[items[i].Key] = &items[i]
	}
	return m
}

// decodeList is decodeItems' items, in the order the servers sent them (a
// key asked for twice may be there twice).
func (h *handle) decodeList(keys []string, found int) []Item {
	if found == 0 {
		return nil
	}
	buf := h.outBuf()
	totalValues := 0
	for off := 0; off < len(buf); {
		r := itemRecAt(buf, off)
		totalValues += len(r.value)
		off = r.next
	}
	values := make([]byte, 0, totalValues)
	items := make([]Item, 0, found)
	next := 0
	for off := 0; off < len(buf) && len(items) < found; {
		r := itemRecAt(buf, off)
		off = r.next
		// Replies come in request order per server: search forward from
		// the last match, wrapping once.
		idx := -1
		for j := 0; j < len(keys); j++ {
			k := (next + j) % len(keys)
			if keys[k] == string(r.key) {
				idx = k
				break
			}
		}
		if idx < 0 {
			continue // not a key we asked for: never hand it out
		}
		next = idx + 1
		vo := len(values)
		values = append(values, r.value...)
		items = append(items, Item{Key: keys[idx], Value: values[vo:len(values):len(values)], Flags: r.flags, CasID: r.cas})
	}
	return items
}
