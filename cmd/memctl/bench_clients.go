package main

// The clients that "memctl bench" compares, each behind a small adapter.

import (
	"github.com/bradfitz/gomemcache/memcache"
	"github.com/libmemcached-go/libmemcached"
)

// benchExpiration is the expiration of every item the benchmark writes, so
// that its keys leave a real server (-s) on their own.
const benchExpiration = 3600

// kv is what the benchmark's loops need from a client. Get returns the
// value; a miss is an error. GetMulti calls each for every item found
// (misses are simply absent) and returns only real failures.
type kv interface {
	Get(key string) ([]byte, error)
	Set(key string, value []byte) error
	GetMulti(keys []string, each func(key string, value []byte)) error
}

// clientForms are the ways a client is used. A nil form is not offered:
// the scenarios that need it skip the client (but the baseline runs its
// plain Set in the noreply scenario, marked as such).
type clientForms struct {
	seq     kv // used by one goroutine at a time
	conc    kv // the concurrency-safe form, shared by the goroutines
	noreply kv // writes that do not wait for the server's reply
	close   func()
}

// clientSpec describes a compared client.
type clientSpec struct {
	name   string // short name, for --clients, the table and the chart
	desc   string // what exactly is measured
	absent string // why the client is not in this build; "" if it is
	cfloor bool   // the C floor: its loops run in C (bench_cfloor.c)
	// peer marks another project's client: its errors are reported, but
	// do not fail the run (douban/libmc fails intermittently under Go's
	// async preemption; that is its finding, not this library's).
	peer bool
	// skip, if set, says why the client has no row in a scenario ("" if
	// it has one).
	skip func(s *scenario) string
	open func(servers []string, cfg *benchConfig) (*clientForms, error)
}

// baselineClient is the client the ratios are relative to.
const baselineClient = "gomemcache"

// benchClients are the compared clients, in the order of every round.
var benchClients = []*clientSpec{
	{
		name: "lmc-client",
		desc: "this library: *Client, ASCII protocol, default options (sequential rows)",
		open: func(servers []string, cfg *benchConfig) (*clientForms, error) { return openLibClient(servers, false) },
	},
	{
		name: "lmc-client-bin",
		desc: "this library: *Client, binary protocol (sequential rows)",
		open: func(servers []string, cfg *benchConfig) (*clientForms, error) { return openLibClient(servers, true) },
	},
	{
		name: "lmc-pool",
		desc: "this library: NewPool(servers, pool size) as users write it (no Pool.Warm: handles connect on first use), ASCII protocol, default options",
		open: func(servers []string, cfg *benchConfig) (*clientForms, error) {
			return openLibPool(servers, cfg.poolSize, false)
		},
	},
	{
		name: "lmc-pool-bin",
		desc: "this library: NewPool(servers, pool size, WithBinaryProtocol()) as users write it (no Pool.Warm), binary protocol",
		open: func(servers []string, cfg *benchConfig) (*clientForms, error) {
			return openLibPool(servers, cfg.poolSize, true)
		},
	},
	{
		name: baselineClient,
		peer: true,
		desc: "github.com/bradfitz/gomemcache: default options; MaxIdleConns = the most goroutines of the run in the concurrent rows; no noreply (its plain Set is the baseline of set-noreply)",
		open: openGomemcache,
	},
	{
		name:   "pior",
		desc:   "github.com/pior/memcache (meta protocol)",
		absent: "github.com/pior/memcache is not available from this machine's Go module proxy (403 Forbidden, \"not available\"): its adapter slot is kept out of the build",
	},
	libmcSpec, // bench_libmc.go, or bench_libmc_absent.go with -tags nolibmc
	{
		name:   "c-floor",
		desc:   "the same loops in C against libmemcached (bench_cfloor.c): one handle, TCP_NODELAY and CAS on like this library, a result reused; concurrent rows: pthreads sharing pool-size handles",
		cfloor: true,
		open: func(servers []string, cfg *benchConfig) (*clientForms, error) {
			// The C floor is driven by the runner directly (see runner.cfloor).
			return &clientForms{close: func() {}}, nil
		},
	},
	{
		name: "wire",
		desc: "a raw blocking socket in C (bench_wire.c): one plain TCP socket (TCP_NODELAY) to the first server, and one cgo call from Go per request, which sends the ASCII get or set with one send() and recv()s until the whole reply is in, the value copied into a Go buffer and checked in Go: the limit of one round trip through the kernel's socket for a client that pays cgo's per-call cost as this library does (get-* and set-* rows only)",
		skip: wireScenario,
		open: openWire,
	},
}

// ---------------------------------------------------------------------------
// This library

type libClient struct{ c *libmemcached.Client }

func (a libClient) Get(key string) ([]byte, error) {
	it, err := a.c.Get(key)
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

func (a libClient) Set(key string, value []byte) error {
	return a.c.Set(&libmemcached.Item{Key: key, Value: value, Expiration: benchExpiration})
}

func (a libClient) GetMulti(keys []string, each func(string, []byte)) error {
	items, err := a.c.GetMulti(keys)
	for k, it := range items {
		each(k, it.Value)
	}
	return err
}

type libPool struct{ p *libmemcached.Pool }

func (a libPool) Get(key string) ([]byte, error) {
	it, err := a.p.Get(key)
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

func (a libPool) Set(key string, value []byte) error {
	return a.p.Set(&libmemcached.Item{Key: key, Value: value, Expiration: benchExpiration})
}

func (a libPool) GetMulti(keys []string, each func(string, []byte)) error {
	items, err := a.p.GetMulti(keys)
	for k, it := range items {
		each(k, it.Value)
	}
	return err
}

func libOptions(binary bool) []libmemcached.Option {
	if binary {
		return []libmemcached.Option{libmemcached.WithBinaryProtocol()}
	}
	return nil
}

func openLibClient(servers []string, binary bool) (*clientForms, error) {
	c, err := libmemcached.New(servers, libOptions(binary)...)
	if err != nil {
		return nil, err
	}
	nr, err := libmemcached.New(servers, append(libOptions(binary), libmemcached.WithBehavior(libmemcached.BehaviorNoReply, 1))...)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &clientForms{
		seq:     libClient{c},
		noreply: libClient{nr},
		close:   func() { c.Close(); nr.Close() },
	}, nil
}

func openLibPool(servers []string, size int, binary bool) (*clientForms, error) {
	// As users write it: NewPool and nothing else (no Pool.Warm), so the
	// handles connect lazily, on first use.
	p, err := libmemcached.NewPool(servers, size, libOptions(binary)...)
	if err != nil {
		return nil, err
	}
	return &clientForms{seq: libPool{p}, conc: libPool{p}, close: func() { p.Close() }}, nil
}

// ---------------------------------------------------------------------------
// gomemcache

type gomc struct{ c *memcache.Client }

func (a gomc) Get(key string) ([]byte, error) {
	it, err := a.c.Get(key)
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

func (a gomc) Set(key string, value []byte) error {
	return a.c.Set(&memcache.Item{Key: key, Value: value, Expiration: benchExpiration})
}

func (a gomc) GetMulti(keys []string, each func(string, []byte)) error {
	items, err := a.c.GetMulti(keys)
	for k, it := range items {
		each(k, it.Value)
	}
	return err
}

func openGomemcache(servers []string, cfg *benchConfig) (*clientForms, error) {
	seq := memcache.New(servers...)
	conc := memcache.New(servers...)
	conc.MaxIdleConns = max(cfg.maxGoroutines, memcache.DefaultMaxIdleConns)
	return &clientForms{
		seq:   gomc{seq},
		conc:  gomc{conc},
		close: func() { seq.Close(); conc.Close() },
	}, nil
}
