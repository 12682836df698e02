package main

// "memctl bench": this library side by side with the other Go memcached
// clients and with the same loops in C, in one process, against the same
// memcached (and then, for the multi-key and concurrent scenarios, the
// same N of them: --servers, rows named NAME@Nsrv). Rounds interleave the
// clients (A B C A B C ...) within each scenario and the table reports the
// median of the rounds, so drift on a noisy machine hits every client
// alike.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the bench flags.
const (
	defaultWindow   = time.Second
	defaultRounds   = 5
	defaultWarmup   = 200 * time.Millisecond
	defaultPoolSize = 16
	// defaultServerCounts: with no -s, the rows over one server, then
	// the multi-key and concurrent ones again over three.
	defaultServerCounts = "1,3"
	// maxServerCount bounds --servers: each is a memcached process.
	maxServerCount = 16
)

// embeddedBenchArgs are the memcached arguments of the embedded server, on
// top of server.go's (loopback, a free port, no UDP, 64 MB).
var embeddedBenchArgs = []string{"-t", "2"}

// benchConfig is a run's configuration.
type benchConfig struct {
	window, warmup time.Duration
	rounds         int
	poolSize       int
	jsonPath       string
	chartPath      string
	scenarios      []string // patterns (path.Match) or names; empty: all
	clients        []string
	// serverCounts are --servers' counts of embedded servers; nil with
	// -s (one set: the servers named).
	serverCounts  []int
	groups        []*benchGroup // what runs over each set of servers
	notRunMulti   []string      // selected names not run over N > 1 servers
	maxGoroutines int           // the most goroutines of the selected scenarios
}

// benchGroup is one set of servers and the scenarios run over it.
type benchGroup struct {
	count     int         // servers in the set (with -s: the names given, once known)
	suffix    string      // of its scenario names: "" or "@<count>srv"
	scenarios []*scenario // the selected scenarios, named with the suffix
	servers   []string    // filled in once the servers are known or started
}

// Scenario kinds.
const (
	kindGet = iota
	kindSet
	kindSetNoreply
	kindGetMulti
	kindParGet
	kindParMix
)

// scenario is one row group of the table.
type scenario struct {
	name       string
	kind       int
	keyset     string // which keys and values (see keysets)
	batch      int    // keys per multi-get
	goroutines int    // concurrent rows: goroutines (threads for the C floor)
	what       string // what a row measures
	order      int    // index in benchScenarios (of the scenario run over one server)
	servers    int    // how many servers it runs over (0 in benchScenarios)
}

// unit is what the scenario's rate counts.
func (s *scenario) unit() string {
	if s.kind == kindGetMulti {
		return "keys/s"
	}
	return "ops/s"
}

func (s *scenario) concurrent() bool { return s.kind == kindParGet || s.kind == kindParMix }

// multiServer reports whether s runs over N > 1 servers too: the multi-key
// and concurrent scenarios. A single-key sequential one sends each request
// to one server whatever their number, so it runs over one server only.
func (s *scenario) multiServer() bool { return s.kind == kindGetMulti || s.concurrent() }

// serverSuffix is what the names of the scenarios run over n embedded
// servers end in: "" for one, "@3srv" for three.
func serverSuffix(n int) string {
	if n <= 1 {
		return ""
	}
	return "@" + strconv.Itoa(n) + "srv"
}

// over returns s as run over a set of servers, named with its suffix.
func (s *scenario) over(order int, g *benchGroup) *scenario {
	c := *s
	c.name += g.suffix
	c.order, c.servers = order, g.count
	if g.suffix != "" {
		c.what += fmt.Sprintf(", over %d servers", g.count)
	}
	return &c
}

// parseServerCounts parses --servers: comma-separated counts, returned
// in increasing order without repeats.
func parseServerCounts(spec string) ([]int, error) {
	var counts []int
	for _, p := range splitList(spec) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > maxServerCount {
			return nil, usagef("--servers %s: comma-separated counts of servers, from 1 to %d", spec, maxServerCount)
		}
		if !slices.Contains(counts, n) {
			counts = append(counts, n)
		}
	}
	if len(counts) == 0 {
		return nil, usagef("--servers %q: no count of servers", spec)
	}
	slices.Sort(counts)
	return counts, nil
}

// keysetSpec describes the keys and values a scenario works on.
type keysetSpec struct {
	name  string
	n     int // distinct keys
	vsize int // bytes per value
}

var keysetSpecs = []keysetSpec{
	{"v100", 100, 100},
	{"v16k", 100, 16 * 1024},
	{"m1000", 1000, 100},
}

// benchScenarios are the scenarios, in the order they run.
var benchScenarios = []*scenario{
	{name: "get-100B", kind: kindGet, keyset: "v100", what: "one goroutine: Get of a 100-byte value, 100 keys in turn"},
	{name: "get-16KB", kind: kindGet, keyset: "v16k", what: "one goroutine: Get of a 16 KiB value, 100 keys in turn"},
	{name: "set-100B", kind: kindSet, keyset: "v100", what: "one goroutine: Set of a 100-byte value"},
	{name: "set-16KB", kind: kindSet, keyset: "v16k", what: "one goroutine: Set of a 16 KiB value"},
	{name: "set-noreply-100B", kind: kindSetNoreply, keyset: "v100", what: "one goroutine: Set of 100 bytes without waiting for replies (noreply), where the client offers it; a final Get on the same connection waits for the server and counts in the window"},
	{name: "getmulti-10", kind: kindGetMulti, keyset: "v100", batch: 10, what: "one goroutine: GetMulti of 10 keys (rate in keys/s)"},
	{name: "getmulti-100", kind: kindGetMulti, keyset: "v100", batch: 100, what: "one goroutine: GetMulti of 100 keys (rate in keys/s)"},
	{name: "getmulti-1000", kind: kindGetMulti, keyset: "m1000", batch: 1000, what: "one goroutine: GetMulti of 1000 keys (rate in keys/s)"},
	{name: "par16-get", kind: kindParGet, keyset: "v100", goroutines: 16, what: "16 goroutines: Get of random keys through the client's concurrency-safe form"},
	{name: "par64-get", kind: kindParGet, keyset: "v100", goroutines: 64, what: "64 goroutines: Get"},
	{name: "par256-get", kind: kindParGet, keyset: "v100", goroutines: 256, what: "256 goroutines: Get"},
	{name: "par16-mix", kind: kindParMix, keyset: "v100", goroutines: 16, what: "16 goroutines: 90% Get, 10% Set"},
	{name: "par64-mix", kind: kindParMix, keyset: "v100", goroutines: 64, what: "64 goroutines: 90% Get, 10% Set"},
	{name: "par256-mix", kind: kindParMix, keyset: "v100", goroutines: 256, what: "256 goroutines: 90% Get, 10% Set"},
}

// keyset is the keys and values of a keysetSpec; key i ends in ":<i>" and
// its value is the key repeated, so a value under the wrong key shows.
type keyset struct {
	spec   keysetSpec
	keys   []string
	values [][]byte
	groups [][]string // consecutive runs of keys for multi-gets, by batch size
}

const benchKeyPrefix = "memctl-bench:"

func newKeyset(spec keysetSpec) *keyset {
	ks := &keyset{spec: spec}
	for i := 0; i < spec.n; i++ {
		k := benchKeyPrefix + spec.name + ":" + strconv.Itoa(i)
		v := make([]byte, spec.vsize)
		pat := []byte(k + "=")
		for j := range v {
			v[j] = pat[j%len(pat)]
		}
		ks.keys = append(ks.keys, k)
		ks.values = append(ks.values, v)
	}
	return ks
}

// group returns the g-th run of batch keys.
func (ks *keyset) group(batch, g int) []string {
	groups := len(ks.keys) / batch
	g %= groups
	return ks.keys[g*batch : (g+1)*batch]
}

// keyIndex returns i for a key ending in ":<i>", or -1.
func keyIndex(key string) int {
	j := strings.LastIndexByte(key, ':')
	if j < 0 || j == len(key)-1 {
		return -1
	}
	n := 0
	for _, c := range []byte(key[j+1:]) {
		if c < '0' || c > '9' || n > 1<<20 {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// selected reports whether name matches one of the patterns (all if none).
func selected(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok || p == name {
			return true
		}
	}
	return false
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Results

// windowResult is what one window measured.
type windowResult struct {
	ops, keys   uint64 // operations, and keys asked for (multi-gets)
	errors      uint64
	errSamples  []string
	elapsed     time.Duration
	p50, p99    uint64 // ns
	mallocs     uint64 // Go heap allocations during the window
	allocBytes  uint64
	peakThreads int           // OS threads of the process (-1: unknown)
	peakInC     int           // goroutines in cgo calls or syscalls at once (-1: unknown)
	cpu         time.Duration // CPU time of the process (user + system) during the window
}

// rate is the window's throughput in the scenario's unit.
func (w *windowResult) rate(s *scenario) float64 {
	if w.elapsed <= 0 {
		return 0
	}
	n := w.ops
	if s.kind == kindGetMulti {
		n = w.keys
	}
	return float64(n) / w.elapsed.Seconds()
}

// cell is one client in one scenario: a row of the table.
type cell struct {
	s       *scenario
	c       *clientSpec
	note    string // e.g. "plain Set: no noreply"
	rounds  []windowResult
	skipped string // why there is no row
}

// row is a cell's summary.
type row struct {
	Scenario      string    `json:"scenario"`
	Client        string    `json:"client"`
	Note          string    `json:"note,omitempty"`
	Unit          string    `json:"unit"`
	Rate          float64   `json:"rate"`
	RoundRates    []float64 `json:"round_rates"`
	Ratio         float64   `json:"ratio_to_gomemcache,omitempty"`
	P50ns         uint64    `json:"p50_ns"`
	P99ns         uint64    `json:"p99_ns"`
	CPUPerOpNs    float64   `json:"cpu_per_op_ns"`
	AllocsPerOp   float64   `json:"allocs_per_op"`
	BytesPerOp    float64   `json:"bytes_per_op"`
	AllocsCounted bool      `json:"allocs_counted"`
	PeakThreads   int       `json:"peak_os_threads"`
	PeakInC       int       `json:"peak_goroutines_in_cgo_or_syscalls"`
	Servers       int       `json:"servers"`
	Ops           uint64    `json:"ops"`
	Errors        uint64    `json:"errors"`
	ErrorSamples  []string  `json:"error_samples,omitempty"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (c *cell) summary() row {
	r := row{Scenario: c.s.name, Client: c.c.name, Note: c.note, Unit: c.s.unit(), AllocsCounted: !c.c.cfloor,
		PeakThreads: -1, PeakInC: -1, Servers: c.s.servers}
	var p50, p99, allocs, bytesOp, cpu []float64
	for i := range c.rounds {
		w := &c.rounds[i]
		r.RoundRates = append(r.RoundRates, w.rate(c.s))
		p50 = append(p50, float64(w.p50))
		p99 = append(p99, float64(w.p99))
		if w.ops > 0 {
			allocs = append(allocs, float64(w.mallocs)/float64(w.ops))
			bytesOp = append(bytesOp, float64(w.allocBytes)/float64(w.ops))
			cpu = append(cpu, float64(w.cpu)/float64(w.ops))
		}
		r.PeakThreads = max(r.PeakThreads, w.peakThreads)
		r.PeakInC = max(r.PeakInC, w.peakInC)
		r.Ops += w.ops
		r.Errors += w.errors
		for _, e := range w.errSamples {
			if len(r.ErrorSamples) < 3 && !contains(r.ErrorSamples, e) {
				r.ErrorSamples = append(r.ErrorSamples, e)
			}
		}
	}
	r.Rate = median(r.RoundRates)
	r.P50ns = uint64(median(p50))
	r.P99ns = uint64(median(p99))
	r.AllocsPerOp = median(allocs)
	r.BytesPerOp = median(bytesOp)
	r.CPUPerOpNs = median(cpu)
	if c.c.cfloor {
		r.PeakInC = -1
	}
	return r
}

// ---------------------------------------------------------------------------
// Errors seen in a window

// errRec counts a window's errors and keeps the first few messages.
type errRec struct {
	n        atomic.Uint64
	nsamples atomic.Int32
	mu       sync.Mutex
	samples  []string
}

// count adds k errors.
func (e *errRec) count(k uint64) { e.n.Add(k) }

// note keeps a message, if fewer than 3 are kept, without counting it.
func (e *errRec) note(format string, args ...any) {
	if e.nsamples.Add(1) > 3 {
		return
	}
	msg := fmt.Sprintf(format, args...)
	e.mu.Lock()
	e.samples = append(e.samples, msg)
	e.mu.Unlock()
}

// add counts one error and keeps its message.
func (e *errRec) add(format string, args ...any) {
	e.count(1)
	e.note(format, args...)
}

// ---------------------------------------------------------------------------
// A goroutine's loop

// worker runs one goroutine's operations in a window.
type worker struct {
	k    kv
	s    *scenario
	ks   *keyset
	h    *hist
	errs *errRec
	rng  uint64
	ops  uint64
	keys uint64
	hits int
	each func(string, []byte) // w.onItem, bound once
	stop *atomic.Bool
}

func (w *worker) rand() uint64 {
	x := w.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	w.rng = x
	return x
}

func (w *worker) onItem(key string, value []byte) {
	i := keyIndex(key)
	if i < 0 || i >= len(w.ks.keys) || w.ks.keys[i] != key {
		w.errs.add("a reply for a key that was not asked for: %q", key)
		return
	}
	if !bytes.Equal(value, w.ks.values[i]) {
		// Counted with the keys missing from the reply (see op).
		w.errs.note("wrong value for %s: %d bytes %q", key, len(value), abbrev(value))
		return
	}
	w.hits++
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func (w *worker) get(i int) {
	v, err := w.k.Get(w.ks.keys[i])
	if err != nil {
		w.errs.add("get %s: %v", w.ks.keys[i], err)
		return
	}
	if !bytes.Equal(v, w.ks.values[i]) {
		w.errs.add("wrong value for %s: %d bytes %q", w.ks.keys[i], len(v), abbrev(v))
	}
}

func (w *worker) set(i int) {
	if err := w.k.Set(w.ks.keys[i], w.ks.values[i]); err != nil {
		w.errs.add("set %s: %v", w.ks.keys[i], err)
	}
}

// op does operation n: keys in turn for one goroutine, at random for many.
func (w *worker) op(n uint64) {
	var i int
	if w.s.concurrent() {
		i = int(w.rand() % uint64(len(w.ks.keys)))
	} else {
		i = int(n % uint64(len(w.ks.keys)))
	}
	switch w.s.kind {
	case kindGet, kindParGet:
		w.get(i)
		w.keys++
	case kindSet, kindSetNoreply:
		w.set(i)
		w.keys++
	case kindParMix:
		if w.rand()%10 == 0 {
			w.set(i)
		} else {
			w.get(i)
		}
		w.keys++
	case kindGetMulti:
		keys := w.ks.group(w.s.batch, int(n))
		w.hits = 0
		if err := w.k.GetMulti(keys, w.each); err != nil {
			w.errs.add("get_multi: %v", err)
		}
		if w.hits < len(keys) {
			// Each key missing from the reply, or with a wrong value, is
			// an error.
			missing := len(keys) - w.hits
			w.errs.count(uint64(missing))
			w.errs.note("get_multi of %d keys from %s: %d missing or wrong", len(keys), keys[0], missing)
		}
		w.keys += uint64(len(keys))
	}
	w.ops++
}

// runFor loops until the deadline (one goroutine) or until stop.
func (w *worker) runFor(deadline time.Time) {
	t0 := time.Now()
	for n := uint64(0); ; n++ {
		w.op(n)
		t1 := time.Now()
		w.h.record(int64(t1.Sub(t0)))
		if w.stop != nil {
			if w.stop.Load() {
				return
			}
		} else if !t1.Before(deadline) {
			return
		}
		t0 = t1
	}
}

// ---------------------------------------------------------------------------
// The runner

type runner struct {
	cfg   *benchConfig
	group *benchGroup // the servers and the scenarios over them

	keysets  map[string]*keyset
	cKeysets map[string]*cKeyset
	forms    map[string]*clientForms
	cfloor   *cfloorClient // the C floor's handle
	cfloorNR *cfloorClient // the C floor with NOREPLY
	loaded   map[string]bool
	hists    []hist
	sampler  *threadSampler // shared by the runners of a run
	progress *progress
}

func (r *runner) keyset(name string) *keyset {
	if ks, ok := r.keysets[name]; ok {
		return ks
	}
	for _, spec := range keysetSpecs {
		if spec.name == name {
			ks := newKeyset(spec)
			r.keysets[name] = ks
			return ks
		}
	}
	panic("no keyset " + name)
}

func (r *runner) cKeyset(name string) *cKeyset {
	if c, ok := r.cKeysets[name]; ok {
		return c
	}
	c := newCKeyset(r.keyset(name))
	r.cKeysets[name] = c
	return c
}

func (r *runner) close() {
	for _, f := range r.forms {
		f.close()
	}
	r.cfloor.close()
	r.cfloorNR.close()
	for _, c := range r.cKeysets {
		c.free()
	}
}

// formFor returns the kv a client uses in a scenario, and a note; nil if
// the client has no form for it.
func (r *runner) formFor(s *scenario, c *clientSpec) (kv, string) {
	f := r.forms[c.name]
	switch {
	case s.concurrent():
		return f.conc, ""
	case s.kind == kindSetNoreply:
		if f.noreply != nil {
			return f.noreply, ""
		}
		if c.name == baselineClient {
			return f.seq, "plain Set: no noreply"
		}
		return nil, ""
	default:
		return f.seq, ""
	}
}

// skipReason says why a client has no row in a scenario ("" if it has).
func (r *runner) skipReason(s *scenario, c *clientSpec) string {
	if c.skip != nil {
		if why := c.skip(s); why != "" {
			return why
		}
	}
	if c.cfloor {
		return ""
	}
	if k, _ := r.formFor(s, c); k == nil {
		switch {
		case s.concurrent():
			return "sequential rows only: this library's concurrency-safe form is the Pool"
		case s.kind == kindSetNoreply && strings.HasPrefix(c.name, "lmc-pool"):
			return "this library's noreply is measured on the Client"
		case s.kind == kindSetNoreply:
			return "the client offers no noreply"
		}
		return "not offered"
	}
	return ""
}

// preload writes a keyset through a client, once per run.
func (r *runner) preload(s *scenario, c *clientSpec) error {
	id := c.name + "/" + s.keyset
	if r.loaded[id] {
		return nil
	}
	ks := r.keyset(s.keyset)
	if c.cfloor {
		res := r.cfloor.run(r.cKeyset(s.keyset), cfSet, 0, 0, uint64(len(ks.keys)), 0, 0, nil)
		if res.errors > 0 {
			return fmt.Errorf("%s: writing the %s keys: %s", c.name, s.keyset, res.err)
		}
	} else {
		k := r.forms[c.name].seq
		if k == nil {
			k = r.forms[c.name].conc
		}
		for i, key := range ks.keys {
			err := k.Set(key, ks.values[i])
			// Another project's client gets a few more tries: douban/libmc
			// fails a call now and then when a signal interrupts its poll
			// (its rows count those errors), which must not end the run.
			for try := 1; err != nil && c.peer && try < 5; try++ {
				err = k.Set(key, ks.values[i])
			}
			if err != nil {
				return fmt.Errorf("%s: writing the %s keys: set %s: %w", c.name, s.keyset, key, err)
			}
		}
	}
	r.loaded[id] = true
	return nil
}

// runScenario runs scenario s (the i-th of n) on the clients of its cells
// that have a row: the warm-ups, then the rounds, each interleaving the
// clients.
func (r *runner) runScenario(ctx context.Context, s *scenario, i, n int, cells []*cell) error {
	var row []*cell
	for _, cl := range cells {
		if cl.s == s && cl.skipped == "" {
			row = append(row, cl)
		}
	}
	cfg := r.cfg
	r.progress.scenario(i, n, s.name)
	for _, cl := range row {
		if err := ctx.Err(); err != nil {
			return errInterrupted
		}
		if err := r.preload(s, cl.c); err != nil {
			return err
		}
		if cfg.warmup > 0 {
			r.progress.step(s.name, cl.c.name, 0, cfg.rounds, false)
			r.window(s, cl.c, cfg.warmup)
		}
	}
	for round := 1; round <= cfg.rounds; round++ {
		for _, cl := range row {
			if err := ctx.Err(); err != nil {
				return errInterrupted
			}
			r.progress.step(s.name, cl.c.name, round, cfg.rounds, false)
			cl.rounds = append(cl.rounds, r.window(s, cl.c, cfg.window))
			r.progress.step(s.name, cl.c.name, round, cfg.rounds, true)
		}
	}
	return nil
}

// window runs one window of a client in a scenario.
func (r *runner) window(s *scenario, c *clientSpec, d time.Duration) windowResult {
	if c.cfloor {
		return r.cfloorWindow(s, d)
	}
	k, _ := r.formFor(s, c)
	ks := r.keyset(s.keyset)
	n := 1
	if s.concurrent() {
		n = s.goroutines
	}
	errs := &errRec{}
	var stop atomic.Bool
	workers := make([]*worker, n)
	for i := range workers {
		h := &r.hists[i]
		*h = hist{}
		w := &worker{k: k, s: s, ks: ks, h: h, errs: errs, rng: 0x9e3779b97f4a7c15 * uint64(i+1)}
		w.each = w.onItem
		if s.concurrent() {
			w.stop = &stop
		}
		workers[i] = w
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	if s.concurrent() {
		wg.Add(n)
		for _, w := range workers {
			go func() {
				defer wg.Done()
				<-start
				w.runFor(time.Time{})
			}()
		}
	}
	var res windowResult
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	r.sampler.start()
	cpu0 := processCPU()
	t0 := time.Now()
	if s.concurrent() {
		close(start)
		time.Sleep(d)
		stop.Store(true)
		wg.Wait()
	} else {
		workers[0].runFor(t0.Add(d))
		if s.kind == kindSetNoreply {
			// Writes may still be in flight: a Get on the same connection
			// waits until the server has read them.
			workers[0].get(0)
		}
	}
	res.elapsed = time.Since(t0)
	res.cpu = processCPU() - cpu0
	res.peakThreads, res.peakInC = r.sampler.stop()
	runtime.ReadMemStats(&m1)
	res.mallocs = m1.Mallocs - m0.Mallocs
	res.allocBytes = m1.TotalAlloc - m0.TotalAlloc
	var h hist
	for _, w := range workers {
		res.ops += w.ops
		res.keys += w.keys
		h.add(w.h)
	}
	res.p50, res.p99 = h.quantile(0.50), h.quantile(0.99)
	res.errors = errs.n.Load()
	res.errSamples = errs.samples
	return res
}

// cfloorWindow runs one window of the C floor.
func (r *runner) cfloorWindow(s *scenario, d time.Duration) windowResult {
	ck := r.cKeyset(s.keyset)
	f := r.cfloor
	mode := cfGet
	threads, handles := 0, 0
	switch s.kind {
	case kindSet:
		mode = cfSet
	case kindSetNoreply:
		mode, f = cfSet, r.cfloorNR
	case kindGetMulti:
		mode = cfMget
	case kindParGet:
		threads, handles = s.goroutines, r.cfg.poolSize
	case kindParMix:
		mode, threads, handles = cfMix, s.goroutines, r.cfg.poolSize
	}
	var res windowResult
	var h hist
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	r.sampler.start()
	cpu0 := processCPU()
	cr := f.run(ck, mode, s.batch, d, 0, threads, handles, &h)
	res.cpu = processCPU() - cpu0
	res.peakThreads, res.peakInC = r.sampler.stop()
	runtime.ReadMemStats(&m1)
	res.mallocs = m1.Mallocs - m0.Mallocs
	res.allocBytes = m1.TotalAlloc - m0.TotalAlloc
	res.ops, res.keys, res.errors, res.elapsed = cr.ops, cr.keys, cr.errors, cr.elapsed
	if cr.err != "" {
		res.errSamples = []string{cr.err}
	}
	res.p50, res.p99 = h.quantile(0.50), h.quantile(0.99)
	return res
}

// benchResult is a whole run.
type benchResult struct {
	Machine   machineInfo    `json:"machine"`
	Config    configInfo     `json:"config"`
	Absent    []absentInfo   `json:"absent"`
	Scenarios []scenarioInfo `json:"scenarios"`
	Rows      []row          `json:"rows"`
	NotRun    []string       `json:"not_run,omitempty"`
	Errors    uint64         `json:"errors_total"`
	// PeerErrors are the other projects' clients' errors; they are
	// reported and do not fail the run.
	PeerErrors uint64 `json:"peer_errors_total"`
}

type absentInfo struct {
	Client string `json:"client"`
	Reason string `json:"reason"`
}

type scenarioInfo struct {
	Name       string `json:"name"`
	Unit       string `json:"unit"`
	Keys       int    `json:"distinct_keys"`
	ValueBytes int    `json:"value_bytes"`
	Batch      int    `json:"keys_per_multiget,omitempty"`
	Goroutines int    `json:"goroutines,omitempty"`
	Servers    int    `json:"servers"`
	What       string `json:"what"`
}

// serverSetInfo is one set of servers of a run and the suffix of the
// names of the scenarios run over it.
type serverSetInfo struct {
	Count   int      `json:"count"`
	Suffix  string   `json:"scenario_suffix"`
	Servers []string `json:"servers"`
}

type configInfo struct {
	Window   string   `json:"window"`
	Warmup   string   `json:"warmup"`
	Rounds   int      `json:"rounds"`
	PoolSize int      `json:"pool_size"`
	Servers  []string `json:"servers"` // all of them
	// ServerCounts are the sizes of the sets of servers the scenarios ran
	// over, in order (--servers; with -s, the servers named).
	ServerCounts []int             `json:"server_counts"`
	ServerSets   []serverSetInfo   `json:"server_sets"`
	Embedded     bool              `json:"embedded_server"`
	ServerArgs   string            `json:"embedded_server_args,omitempty"`
	GOMAXPROCS   int               `json:"gomaxprocs"`
	Clients      map[string]string `json:"clients"`
	Threads      string            `json:"threads_method"`
}

// bench is the "memctl bench" command.
func (a *app) bench(_ []string) error {
	cfg := &benchConfig{
		window: a.cfg.window, warmup: a.cfg.warmup, rounds: a.cfg.rounds, poolSize: a.cfg.poolSize,
		jsonPath: a.cfg.jsonPath, chartPath: a.cfg.chartPath,
		scenarios: splitList(a.cfg.scenario), clients: splitList(a.cfg.clients),
	}
	if a.cfg.list {
		a.benchList()
		return nil
	}
	if a.cfg.given["s"] {
		// -s names the servers: the default --servers does not apply.
		if a.cfg.given["servers"] {
			return usagef("--servers starts that many memcached of its own: it excludes -s (which names the servers)")
		}
	} else {
		counts, err := parseServerCounts(a.cfg.serverCounts)
		if err != nil {
			return err
		}
		cfg.serverCounts = counts
	}
	if err := cfg.check(); err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	if a.cfg.given["s"] {
		servers, _, err := a.serverList("")
		if err != nil {
			return err
		}
		g := cfg.groups[0]
		g.servers, g.count = servers, len(servers)
		for _, s := range g.scenarios {
			s.servers = g.count
		}
		return runBench(ctx, cfg, "", a.stdout, a.stderr)
	}
	total := 0
	for _, g := range cfg.groups {
		total += g.count
	}
	args := strings.Join(embeddedBenchArgs, " ")
	return withEmbeddedServers(ctx, total, func(ctx context.Context, started []*embeddedServer) error {
		for _, g := range cfg.groups {
			for i, s := range started[:g.count] {
				what := ""
				if g.suffix != "" {
					what = fmt.Sprintf(" for the %s rows (%d of %d)", g.suffix, i+1, g.count)
				}
				fmt.Fprintf(a.stderr, "memctl bench: no -s: started %s %s on %s (pid %d)%s\n", s.Bin, args, s.Addr, s.Pid(), what)
				g.servers = append(g.servers, s.Addr)
			}
			started = started[g.count:]
		}
		return runBench(ctx, cfg, args, a.stdout, a.stderr)
	}, embeddedBenchArgs...)
}

// notRunMultiReason is why the single-key sequential scenarios do not run
// over N > 1 servers.
const notRunMultiReason = "single-key sequential scenarios run over one server only (each Get or Set goes to one server, however many there are)"

// check validates the bench flags and works out the selection.
func (cfg *benchConfig) check() error {
	if cfg.window <= 0 {
		return usagef("--window %v: it must be positive", cfg.window)
	}
	if cfg.warmup < 0 {
		return usagef("--warmup %v: it cannot be negative", cfg.warmup)
	}
	if cfg.rounds < 1 {
		return usagef("--rounds %d: at least 1", cfg.rounds)
	}
	if cfg.poolSize < 1 || cfg.poolSize > 4096 {
		return usagef("--pool %d: from 1 to 4096", cfg.poolSize)
	}
	for _, p := range append(append([]string(nil), cfg.scenarios...), cfg.clients...) {
		if _, err := path.Match(p, ""); err != nil {
			return usagef("bad pattern %q: %v", p, err)
		}
	}
	// One set of servers per count (with -s, the servers named), and
	// the selected scenarios over each. Over N > 1 servers a name ends in
	// @Nsrv, and --scenario's patterns match the names with it.
	counts := cfg.serverCounts
	if counts == nil {
		counts = []int{0}
	}
	cfg.groups, cfg.notRunMulti, cfg.maxGoroutines = nil, nil, 0
	for _, count := range counts {
		g := &benchGroup{count: count, suffix: serverSuffix(count)}
		for i, s := range benchScenarios {
			name := s.name + g.suffix
			if !selected(cfg.scenarios, name) {
				continue
			}
			if count > 1 && !s.multiServer() {
				cfg.notRunMulti = append(cfg.notRunMulti, name)
				continue
			}
			g.scenarios = append(g.scenarios, s.over(i, g))
			cfg.maxGoroutines = max(cfg.maxGoroutines, s.goroutines)
		}
		if len(g.scenarios) > 0 {
			cfg.groups = append(cfg.groups, g)
		}
	}
	if len(cfg.groups) == 0 {
		hint := ""
		switch {
		case len(cfg.notRunMulti) > 0:
			hint = ": " + strings.Join(cfg.notRunMulti, ", ") + ": " + notRunMultiReason
		case slices.ContainsFunc(cfg.serverCounts, func(n int) bool { return n > 1 }):
			hint = "; over N > 1 servers the names end in @Nsrv (par64-get@3srv; 'par64-get*' matches both)"
		}
		return usagef("--scenario %s matches no scenario (see memctl bench --list)%s", strings.Join(cfg.scenarios, ","), hint)
	}
	n := 0
	for _, c := range benchClients {
		if selected(cfg.clients, c.name) {
			n++
		}
	}
	if n == 0 {
		return usagef("--clients %s matches no client (see memctl bench --list)", strings.Join(cfg.clients, ","))
	}
	if cfg.chartPath != "" && !selected(cfg.clients, baselineClient) {
		return usagef("--chart draws the ratios to %s: --clients must include it", baselineClient)
	}
	return nil
}

func (a *app) benchList() {
	fmt.Fprintln(a.stdout, "Scenarios:")
	for _, s := range benchScenarios {
		fmt.Fprintf(a.stdout, "  %-18s %s\n", s.name, s.what)
	}
	fmt.Fprintf(a.stdout, "  With no -s, --servers (default %s) runs them over each count N of memcached\n", defaultServerCounts)
	fmt.Fprintln(a.stdout, "  servers it starts. Over N > 1 the names end in @Nsrv (getmulti-100@3srv), and")
	fmt.Fprintln(a.stdout, "  only the multi-key and concurrent scenarios run: a single-key Get or Set goes")
	fmt.Fprintln(a.stdout, "  to one server, however many there are.")
	fmt.Fprintln(a.stdout, "Clients:")
	for _, c := range benchClients {
		desc := c.desc
		if c.absent != "" {
			desc += " [absent: " + c.absent + "]"
		}
		fmt.Fprintf(a.stdout, "  %-18s %s\n", c.name, desc)
	}
}

// newRunner opens the clients over a group's servers. On an error, the
// runner returned holds what was opened, for close.
func newRunner(cfg *benchConfig, g *benchGroup, clients []*clientSpec, sampler *threadSampler, hists []hist) (*runner, error) {
	r := &runner{
		cfg: cfg, group: g,
		keysets: map[string]*keyset{}, cKeysets: map[string]*cKeyset{},
		forms: map[string]*clientForms{}, loaded: map[string]bool{},
		hists: hists, sampler: sampler,
	}
	for _, c := range clients {
		if c.skip != nil && !slices.ContainsFunc(g.scenarios, func(s *scenario) bool { return c.skip(s) == "" }) {
			continue // no row over these servers: not opened
		}
		if c.cfloor {
			var err error
			if r.cfloor, err = openCFloor(g.servers, false); err != nil {
				return r, fmt.Errorf("c-floor: %w", err)
			}
			if r.cfloorNR, err = openCFloor(g.servers, true); err != nil {
				return r, fmt.Errorf("c-floor: %w", err)
			}
		}
		f, err := c.open(g.servers, cfg)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.name, err)
		}
		r.forms[c.name] = f
	}
	return r, nil
}

// runBench runs the selected scenarios on the selected clients, over each
// group's servers in turn.
func runBench(ctx context.Context, cfg *benchConfig, serverArgs string, stdout, stderr io.Writer) error {
	res := &benchResult{}
	var clients []*clientSpec
	for _, c := range benchClients {
		if !selected(cfg.clients, c.name) {
			continue
		}
		if c.absent != "" {
			res.Absent = append(res.Absent, absentInfo{c.name, c.absent})
			fmt.Fprintf(stderr, "memctl bench: %s is absent: %s\n", c.name, c.absent)
			continue
		}
		clients = append(clients, c)
	}

	sampler := newThreadSampler()
	defer sampler.close()
	hists := make([]hist, max(cfg.maxGoroutines, 1))
	var runners []*runner
	defer func() {
		for _, r := range runners {
			r.close()
		}
	}()
	var all []string
	for _, g := range cfg.groups {
		r, err := newRunner(cfg, g, clients, sampler, hists)
		runners = append(runners, r)
		if err != nil {
			if len(cfg.groups) > 1 {
				err = fmt.Errorf("over %s: %w", plural(g.count, "server"), err)
			}
			return err
		}
		all = append(all, g.servers...)
	}

	res.Machine = collectMachineInfo(all)
	res.Config = configInfo{
		Window: cfg.window.String(), Warmup: cfg.warmup.String(), Rounds: cfg.rounds, PoolSize: cfg.poolSize,
		Servers: all, Embedded: serverArgs != "", ServerArgs: serverArgs, GOMAXPROCS: runtime.GOMAXPROCS(0),
		Clients: map[string]string{}, Threads: threadsMethod,
	}
	for _, g := range cfg.groups {
		res.Config.ServerCounts = append(res.Config.ServerCounts, g.count)
		res.Config.ServerSets = append(res.Config.ServerSets, serverSetInfo{g.count, g.suffix, g.servers})
	}
	for _, c := range clients {
		res.Config.Clients[c.name] = c.desc
	}

	// The cells, in the order they run (group by group), and the number
	// of windows for the progress bar.
	var cells []*cell
	var scenarios []*scenario
	total := 0
	for _, r := range runners {
		for _, s := range r.group.scenarios {
			scenarios = append(scenarios, s)
			for _, c := range clients {
				cl := &cell{s: s, c: c}
				if cl.skipped = r.skipReason(s, c); cl.skipped == "" {
					_, cl.note = r.formFor(s, c)
					total += cfg.rounds
				}
				cells = append(cells, cl)
			}
		}
	}
	progress := newProgress(stderr, total, cfg.window+cfg.warmup/time.Duration(cfg.rounds)+30*time.Millisecond)
	over := ""
	if len(runners) > 1 {
		var parts []string
		for _, r := range runners {
			parts = append(parts, fmt.Sprintf("%d over %s", len(r.group.scenarios), plural(r.group.count, "server")))
		}
		over = " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(stderr, "memctl bench: %d scenarios%s x %d clients, %s of %v: %d windows, about %v\n",
		len(scenarios), over, len(clients), plural(cfg.rounds, "round"), cfg.window, total, progress.estimate().Round(time.Second))

	si := 0
	for _, r := range runners {
		r.progress = progress
		for _, s := range r.group.scenarios {
			si++
			if err := r.runScenario(ctx, s, si, len(scenarios), cells); err != nil {
				progress.done()
				return err
			}
		}
	}
	progress.done()

	// The table's order: by scenario, each over one server and then over
	// more, so that a scenario's rows over 1 and 3 servers are side by
	// side.
	sort.SliceStable(cells, func(i, j int) bool {
		a, b := cells[i].s, cells[j].s
		return a.order < b.order || (a.order == b.order && a.servers < b.servers)
	})
	sort.SliceStable(scenarios, func(i, j int) bool {
		a, b := scenarios[i], scenarios[j]
		return a.order < b.order || (a.order == b.order && a.servers < b.servers)
	})
	for _, s := range scenarios {
		spec := runners[0].keyset(s.keyset).spec
		res.Scenarios = append(res.Scenarios, scenarioInfo{s.name, s.unit(), spec.n, spec.vsize, s.batch, s.goroutines, s.servers, s.what})
	}

	// Summaries and ratios.
	base := map[string]float64{}
	for _, cl := range cells {
		if cl.skipped == "" && cl.c.name == baselineClient {
			base[cl.s.name] = cl.summary().Rate
		}
	}
	notRun := map[string][]string{} // "client: reason" -> scenarios
	var notRunOrder []string
	for _, cl := range cells {
		if cl.skipped != "" {
			k := cl.c.name + ": " + cl.skipped
			if notRun[k] == nil {
				notRunOrder = append(notRunOrder, k)
			}
			notRun[k] = append(notRun[k], cl.s.name)
		}
	}
	for _, k := range notRunOrder {
		res.NotRun = append(res.NotRun, k+" ("+strings.Join(notRun[k], ", ")+")")
	}
	if len(cfg.notRunMulti) > 0 {
		res.NotRun = append(res.NotRun, "all clients: "+notRunMultiReason+" ("+strings.Join(cfg.notRunMulti, ", ")+")")
	}
	for _, cl := range cells {
		if cl.skipped != "" {
			continue
		}
		sum := cl.summary()
		if b := base[cl.s.name]; b > 0 {
			sum.Ratio = sum.Rate / b
		}
		res.Rows = append(res.Rows, sum)
		if cl.c.peer {
			res.PeerErrors += sum.Errors
		} else {
			res.Errors += sum.Errors
		}
	}

	printTable(stdout, res)
	if cfg.jsonPath != "" {
		if err := writeJSON(cfg.jsonPath, res); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "memctl bench: wrote %s\n", cfg.jsonPath)
	}
	if cfg.chartPath != "" {
		if err := writeChart(cfg.chartPath, res); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Fprintf(stderr, "memctl bench: wrote %s\n", cfg.chartPath)
	}
	if res.PeerErrors > 0 {
		fmt.Fprintf(stderr, "memctl bench: %d errors in the other clients' rows (reported, not fatal)\n", res.PeerErrors)
	}
	if res.Errors > 0 {
		fmt.Fprintf(stderr, "memctl bench: %d errors (see the errors column and the messages above)\n", res.Errors)
		return errReported
	}
	return nil
}

// ---------------------------------------------------------------------------
// The table

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtNs(ns uint64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d >= 10*time.Microsecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
	return fmt.Sprintf("%.1fµs", float64(d)/1e3)
}

func fmtCount(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func printTable(w io.Writer, res *benchResult) {
	m := res.Machine
	fmt.Fprintf(w, "memctl bench, %s\n", m.Date)
	fmt.Fprintf(w, "machine: %s, %d cores (GOMAXPROCS %d), Linux %s, %s\n", m.CPUModel, m.Cores, res.Config.GOMAXPROCS, m.Kernel, m.GoVersion)
	mcVersions := fmt.Sprintf("libmemcached %s (headers %s), memcached %s", m.LibmemcachedRuntime, m.Libmemcached,
		strings.Join(distinct(m.MemcachedVersions), ", "))
	var counts []string
	for i, set := range res.Config.ServerSets {
		where := strings.Join(set.Servers, ",") + embeddedNote(res.Config, set.Count)
		count := plural(set.Count, "server")
		if set.Suffix != "" {
			where = "the " + set.Suffix + " rows on " + where
			count += " for the " + set.Suffix + " rows"
		}
		counts = append(counts, count)
		switch {
		case i > 0:
			fmt.Fprintln(w, where)
		case set.Suffix != "":
			fmt.Fprintf(w, "%s; %s\n", mcVersions, where)
		default:
			fmt.Fprintf(w, "%s on %s\n", mcVersions, where)
		}
	}
	fmt.Fprintf(w, "windows of %s (warm-up %s), %s interleaving the clients, medians of the rounds; pool size %d; %s\n\n",
		res.Config.Window, res.Config.Warmup, plural(res.Config.Rounds, "round"), res.Config.PoolSize, strings.Join(counts, ", "))
	tw := newTableWriter(w, []string{"scenario", "client", "rate", "vs gomc", "p50", "p99", "cpu/op", "allocs/op", "B/op", "threads", "in C/sys", "errors"})
	last := ""
	for _, r := range res.Rows {
		sc := ""
		if r.Scenario != last {
			if last != "" {
				tw.blank()
			}
			sc = r.Scenario
			last = r.Scenario
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2fx", r.Ratio)
		}
		allocs, bytesOp := "-", "-"
		if r.AllocsCounted {
			allocs = strconv.FormatFloat(r.AllocsPerOp, 'f', 1, 64)
			bytesOp = strconv.FormatFloat(r.BytesPerOp, 'f', 0, 64)
		}
		client := r.Client
		if r.Note != "" {
			client += " (" + r.Note + ")"
		}
		errs := strconv.FormatUint(r.Errors, 10)
		if r.Errors > 0 {
			errs += " !"
		}
		tw.row(sc, client, fmtRate(r.Rate)+" "+strings.TrimSuffix(r.Unit, "/s")+"/s", ratio, fmtNs(r.P50ns), fmtNs(r.P99ns),
			fmtNs(uint64(r.CPUPerOpNs)), allocs, bytesOp, fmtCount(r.PeakThreads), fmtCount(r.PeakInC), errs)
	}
	tw.flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "rate: median of the rounds (keys/s for multi-gets); vs gomc: rate / gomemcache's rate in the same scenario")
	fmt.Fprintln(w, "  (NAME@Nsrv: over the same N servers, each client spreading the keys as it does by default);")
	fmt.Fprintln(w, "p50/p99: per-operation latency (each goroutine's own operations), median of the rounds;")
	fmt.Fprintln(w, "cpu/op: CPU time of this process (user + system, all threads) during the window / operations;")
	fmt.Fprintln(w, "allocs/op, B/op: Go heap allocations during the window / operations (C allocations are not counted: \"-\");")
	fmt.Fprintln(w, "threads: peak OS threads of the process during the window (Go's and C's: the Threads: line of")
	fmt.Fprintln(w, "  /proc/self/status, sampled every 2 ms and at both ends); Go keeps idle threads, so a row also counts")
	fmt.Fprintln(w, "  threads that earlier rows left;")
	fmt.Fprintln(w, "in C/sys: peak goroutines of the window inside cgo calls or system calls at once (runtime/metrics")
	fmt.Fprintln(w, "  "+inCMetric+"), each holding an OS thread.")
	for _, a := range res.Absent {
		fmt.Fprintf(w, "absent: %s: %s\n", a.Client, a.Reason)
	}
	for _, n := range res.NotRun {
		fmt.Fprintf(w, "no row: %s\n", n)
	}
	for _, r := range res.Rows {
		for _, e := range r.ErrorSamples {
			fmt.Fprintf(w, "error: %s %s: %s\n", r.Scenario, r.Client, e)
		}
	}
	if res.PeerErrors > 0 {
		fmt.Fprintf(w, "%d errors in the other clients' rows\n", res.PeerErrors)
	}
	if res.Errors > 0 {
		fmt.Fprintf(w, "%d errors in all\n", res.Errors)
	}
}

func embeddedNote(c configInfo, count int) string {
	switch {
	case !c.Embedded:
		return ""
	case count > 1:
		return " (started by memctl: " + c.ServerArgs + " each)"
	}
	return " (started by memctl: " + c.ServerArgs + ")"
}

// tableWriter aligns columns: text left, the rest right.
type tableWriter struct {
	w    io.Writer
	head []string
	rows [][]string
}

func newTableWriter(w io.Writer, head []string) *tableWriter {
	return &tableWriter{w: w, head: head}
}

func (t *tableWriter) row(cols ...string) { t.rows = append(t.rows, cols) }
func (t *tableWriter) blank()             { t.rows = append(t.rows, nil) }

func (t *tableWriter) flush() {
	width := make([]int, len(t.head))
	for i, h := range t.head {
		width[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cols []string) {
		var b strings.Builder
		for i, c := range cols {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < 2 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(t.w, strings.TrimRight(b.String(), " "))
	}
	line(t.head)
	for _, r := range t.rows {
		if r == nil {
			fmt.Fprintln(t.w)
			continue
		}
		line(r)
	}
}

// defaultRunTime is how long a run with the defaults takes: the estimate
// it prints (695 windows with libmc, on 2026-12-01: 12 min 24 s; 7 min 51 s
// with --servers 1).
const defaultRunTime = "about 12.5 minutes; 8 with --servers 1"

// benchDefaultsText documents the defaults in the help.
func benchDefaultsText() string {
	return fmt.Sprintf("--window %v --rounds %d --warmup %v --pool %d --servers %s", defaultWindow, defaultRounds, defaultWarmup,
		defaultPoolSize, defaultServerCounts)
}
