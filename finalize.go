package libmemcached

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Finalizers are the safety net for a Client or Pool dropped without
// Close: the garbage collector's finalizer frees the handle (a client
// acquired from a Pool goes back to it), so the memcached_st, its sockets
// and its C memory are not lost. unclosed counts those it found; built
// with -tags libmemcached_leakcheck, each also prints where the Client or
// Pool was made (see origin), to find the code that forgot Close.
var unclosed atomic.Int64

// leakOutput is where the libmemcached_leakcheck build reports; tests
// replace it.
var (
	leakMu     sync.Mutex
	leakOutput io.Writer = os.Stderr
)
