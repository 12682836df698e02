package libmemcached

/*
#include "cgo_helpers.h"
*/
import "C"

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Waiting for replies in Go's netpoller.
//
// A cgo call that blocks holds its OS thread: while a Get waits in C for
// its reply, the Go scheduler hands the goroutine's P to another thread
// (sysmon retakes it after 20 us), and when the call returns the thread
// must get a P back, with futex wake-ups on both sides. Under concurrency
// that is a thread switch or two per request, on top of the request's own
// system calls; a pure-Go client parks the goroutine in the netpoller and
// its thread runs the next goroutine instead. So a get that is not the
// only one of the binding's calls in progress is split in two cgo calls
// (lmc_get_start / lmc_mget_start send the request; lmc_*_finish read the
// reply), and between them the goroutine waits in the netpoller for the
// reply's socket to become readable. The socket is libmemcached's: the
// binding registers a duplicate of it (dup shares the open socket, so
// readiness is the same) and never reads from it; libmemcached reads as
// always, from data that is already there. A get that is alone keeps the
// busy wait in C (spin.c), which is quicker for one request at a time.
//
// The duplicates are kept per libmemcached descriptor, with the socket's
// device and inode: a descriptor libmemcached closed and reused for a new
// connection is told from the old one and its duplicate replaced. Those of
// connections libmemcached closed are released when the binding closes a
// Client or a Pool's handles, and whenever the set has doubled since the
// last check; until then a closed connection's duplicate keeps its socket
// (already shut down by libmemcached in most cases) and one descriptor.
// Stores cannot be split this way: libmemcached sends them and reads the
// reply in one call.

// netpollWaits turns the netpoller wait on (tests turn it off to compare).
var netpollWaits atomic.Bool

func init() { netpollWaits.Store(true) }

// pollConn is a duplicate of one libmemcached socket, registered with Go's
// netpoller.
type pollConn struct {
	dev, ino uint64 // the socket it is a duplicate of
	f        *os.File
	rc       syscall.RawConn
	buf      [1]byte
	ready    func(fd uintptr) bool // rc.Read's check, made once
}

var pollConns struct {
	sync.Mutex
	m     map[int]*pollConn // by libmemcached's descriptor
	swept int               // len(m) after the last sweep
	waits atomic.Int64      // waits in the netpoller (tests)
}

// awaitReply waits, after a start call that left its request pending,
// for the reply's socket to become readable in Go's netpoller, for at
// most the handle's poll timeout; it returns 1 when that ran out, for the
// finishing call (which then reports the timeout as libmemcached's own
// poll would). When the socket cannot be waited for here, it returns at
// once and the finishing call waits in C.
func (h *handle) awaitReply() C.int {
	fd := int(h.c.wait_fd)
	if fd < 0 || !netpollWaits.Load() {
		return 0
	}
	var dl time.Time
	if ms := int64(h.c.wait_ms); ms >= 0 {
		dl = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	if expired, err := waitReadable(fd, dl); err == nil && expired {
		return 1
	}
	return 0
}

// waitReadable waits until fd (a libmemcached socket) is readable, has
// failed, or deadline passes (zero: never); it reports whether the
// deadline passed first. It never reads: the data is libmemcached's.
func waitReadable(fd int, deadline time.Time) (expired bool, err error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return false, err
	}
	pollConns.Lock()
	pc := pollConns.m[fd]
	if pc == nil || pc.dev != uint64(st.Dev) || pc.ino != uint64(st.Ino) {
		if pc != nil {
			pc.f.Close()
			delete(pollConns.m, fd)
		}
		if pc, err = newPollConn(fd, uint64(st.Dev), uint64(st.Ino)); err != nil {
			pollConns.Unlock()
			return false, err
		}
		if pollConns.m == nil {
			pollConns.m = map[int]*pollConn{}
		}
		pollConns.m[fd] = pc
		if len(pollConns.m) >= 2*pollConns.swept+16 {
			sweepPollConns()
		}
	}
	pollConns.Unlock()
	pollConns.waits.Add(1)
	if err := pc.f.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	err = pc.rc.Read(pc.ready)
	if err != nil && os.IsTimeout(err) {
		return true, nil
	}
	return false, err
}

func newPollConn(fd int, dev, ino uint64) (*pollConn, error) {
	syscall.ForkLock.RLock()
	dup, err := syscall.Dup(fd)
	if err == nil {
		syscall.CloseOnExec(dup)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, err
	}
	// libmemcached's sockets are non-blocking (the duplicate shares the
	// flag), so os.NewFile registers it with the netpoller.
	f := os.NewFile(uintptr(dup), "memcached socket")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	pc := &pollConn{dev: dev, ino: ino, f: f, rc: rc}
	pc.ready = func(fd uintptr) bool {
		// Readable (or failed, or closed): libmemcached's to read.
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&pc.buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	}
	return pc, nil
}

// sweepPollConns releases the duplicates of sockets libmemcached has
// closed: a descriptor that is closed, or open on another file
// (pollConns held).
func sweepPollConns() {
	for fd, pc := range pollConns.m {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) != nil || pc.dev != uint64(st.Dev) || pc.ino != uint64(st.Ino) {
			pc.f.Close()
			delete(pollConns.m, fd)
		}
	}
	pollConns.swept = len(pollConns.m)
}

// releasePollConns is sweepPollConns, after the binding closed
// connections (a Client's or a Pool's handles freed).
func releasePollConns() {
	pollConns.Lock()
	if len(pollConns.m) > 0 {
		sweepPollConns()
	}
	pollConns.Unlock()
}

// pollConnCount is how many duplicates are held (tests).
func pollConnCount() int {
	pollConns.Lock()
	defer pollConns.Unlock()
	return len(pollConns.m)
}
