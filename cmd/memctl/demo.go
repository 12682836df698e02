package main

// "memctl demo": pylibmc's README retold with this library, step by step.
// Every step checks its own results; a wrong result fails the step, and a
// failed step makes the exit status 1.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libmemcached-go/libmemcached"
)

// demoPrefix starts every key the demo writes, so that it can run against
// a server in use and clean up after itself.
const demoPrefix = "demo:"

// Pool step: this many goroutines do this many rounds (set, get, incr) each
// through a pool of this size.
const (
	demoGoroutines = 8
	demoRounds     = 250
	demoPoolSize   = 4
)

// demoSteps are the demo's steps, in order. main_test.go checks that the
// output has each title.
var demoSteps = []struct {
	title string
	run   func(d *demo)
}{
	{"Connect", (*demo).connect},
	{"set and get", (*demo).setGet},
	{"add, replace, append, prepend", (*demo).conditional},
	{"The binary protocol", (*demo).binary},
	{"Behaviors, by pylibmc's names", (*demo).behaviors},
	{"set_multi and get_multi", (*demo).multi},
	{"incr and decr", (*demo).incrDecr},
	{"delete", (*demo).delete},
	{"Compare and swap (CAS)", (*demo).cas},
	{"A Pool shared by goroutines", (*demo).pool},
	{"Server statistics", (*demo).stats},
	{"A cache miss, and the *Error behind it", (*demo).miss},
}

// demo is one run of the demo.
type demo struct {
	ctx     context.Context
	w       io.Writer
	servers []string
	mc      *libmemcached.Client // from step 1, used by the others

	stepFailed bool
	failed     []string // "N. title" of each failed step
	sets       int      // sets this run made (checked against the stats)
}

func (a *app) demo(_ []string) error {
	ctx, stop := signalContext()
	defer stop()
	servers, given, err := a.serverList("")
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "memctl demo: pylibmc's README, retold with the Go binding over libmemcached %s\n", libmemcached.LibraryVersion)
	if given {
		fmt.Fprintf(a.stdout, "Servers: %s. The demo writes keys starting with %q and deletes them at the end.\n",
			strings.Join(servers, ", "), demoPrefix)
		return runDemo(ctx, a.stdout, servers, true)
	}
	return withEmbeddedServer(ctx, func(ctx context.Context, s *embeddedServer) error {
		fmt.Fprintf(a.stdout, "No -s and no $%s: started %s on %s (pid %d) for the demo.\n", serversEnv, s.Bin, s.Addr, s.Pid())
		err := runDemo(ctx, a.stdout, []string{s.Addr}, false)
		s.Stop()
		fmt.Fprintf(a.stdout, "Stopped the demo's memcached (pid %d).\n", s.Pid())
		return err
	})
}

// runDemo runs the steps against servers; cleanup deletes the demo's keys
// at the end (for servers that the demo did not start).
func runDemo(ctx context.Context, w io.Writer, servers []string, cleanup bool) error {
	d := &demo{ctx: ctx, w: w, servers: servers}
	defer func() {
		if d.mc != nil {
			if cleanup {
				d.cleanup()
			}
			d.mc.Close()
		}
	}()
	for i, st := range demoSteps {
		if ctx.Err() != nil {
			return errInterrupted
		}
		fmt.Fprintf(w, "\n== %d. %s ==\n", i+1, st.title)
		d.stepFailed = false
		st.run(d)
		if ctx.Err() != nil {
			fmt.Fprintf(w, "   interrupted\n")
			return errInterrupted
		}
		if d.stepFailed {
			d.failed = append(d.failed, fmt.Sprintf("%d. %s", i+1, st.title))
			if d.mc == nil {
				break // no client: nothing else can run
			}
		} else {
			fmt.Fprintln(w, "   ok")
		}
	}
	fmt.Fprintln(w)
	if len(d.failed) > 0 {
		fmt.Fprintf(w, "FAILED: %d of %d steps: %s\n", len(d.failed), len(demoSteps), strings.Join(d.failed, "; "))
		return fmt.Errorf("demo: %d of %d steps failed: %s", len(d.failed), len(demoSteps), strings.Join(d.failed, "; "))
	}
	fmt.Fprintf(w, "All %d steps passed.\n", len(demoSteps))
	return nil
}

// code shows a line of Go that the step runs.
func (d *demo) code(format string, args ...any) {
	fmt.Fprintf(d.w, "   > "+format+"\n", args...)
}

// say shows a result or a remark.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.w, "     "+format+"\n", args...)
}

// expect fails the step unless ok. Once the demo is interrupted, failures
// are the interruption's doing and are not shown.
func (d *demo) expect(ok bool, format string, args ...any) bool {
	if !ok && d.ctx.Err() == nil {
		d.stepFailed = true
		fmt.Fprintf(d.w, "   FAIL: "+format+"\n", args...)
	}
	return ok
}

// noErr fails the step if err is not nil.
func (d *demo) noErr(err error, what string) bool {
	return d.expect(err == nil, "%s: unexpected error: %v", what, err)
}

// isErr fails the step unless errors.Is(err, target); it shows the error.
func (d *demo) isErr(err, target error, name string) bool {
	if err != nil {
		d.say("error: %v", err)
	}
	return d.expect(errors.Is(err, target), "want an error matching %s, got %v", name, err)
}

// getValue reads key and checks its value is want.
func (d *demo) getValue(mc *libmemcached.Client, name, key, want string) {
	d.code("%s.Get(%q)", name, key)
	it, err := mc.Get(key)
	if !d.noErr(err, "Get") {
		return
	}
	d.say("%q", it.Value)
	d.expect(string(it.Value) == want, "Get(%q) = %q, want %q", key, it.Value, want)
}

func (d *demo) set(mc *libmemcached.Client, name, key, value string) bool {
	d.code("%s.Set(&libmemcached.Item{Key: %q, Value: []byte(%q)})", name, key, value)
	d.sets++
	return d.noErr(mc.Set(&libmemcached.Item{Key: key, Value: []byte(value)}), "Set")
}

// absent makes sure key is not stored (the demo may run on a server in use).
func (d *demo) absent(mc *libmemcached.Client, key string) {
	if err := mc.Delete(key); err != nil && !errors.Is(err, libmemcached.ErrCacheMiss) {
		d.noErr(err, "Delete")
	}
}

func (d *demo) cleanup() {
	keys := []string{"foo", "greeting", "binary key", "counter", "cas", "never-set", "multi:missing", "pool:hits"}
	for _, k := range []string{"a", "b", "c"} {
		keys = append(keys, "multi:"+k)
	}
	for g := 0; g < demoGoroutines; g++ {
		keys = append(keys, "pool:"+strconv.Itoa(g))
	}
	for i := range keys {
		keys[i] = demoPrefix + keys[i]
	}
	// Binary keys are out of the ASCII client's reach: use a binary one.
	bc, err := libmemcached.New(d.servers, libmemcached.WithBinaryProtocol())
	if err != nil {
		return
	}
	defer bc.Close()
	bc.DeleteMulti(keys) // misses are expected
	fmt.Fprintf(d.w, "Deleted the demo's keys.\n")
}

// ---------------------------------------------------------------------------
// The steps

func (d *demo) connect() {
	d.code("mc, err := libmemcached.New(%#v)", d.servers)
	mc, err := libmemcached.New(d.servers)
	if !d.noErr(err, "New") {
		return
	}
	d.mc = mc
	d.say("New does not connect; libmemcached connects on first use.")
	d.code("mc.Servers()")
	d.say("%v", mc.Servers())
	d.expect(len(mc.Servers()) == len(d.servers), "Servers() lists %d servers, want %d", len(mc.Servers()), len(d.servers))
	d.code("mc.Version()")
	v, err := mc.Version()
	if !d.noErr(err, "Version") {
		return
	}
	for _, s := range sortedKeys(v) {
		d.say("%s: memcached %s", s, v[s])
	}
	d.expect(len(v) == len(d.servers), "Version() answered for %d servers, want %d", len(v), len(d.servers))
}

func (d *demo) setGet() {
	d.say("pylibmc: mc.set(\"foo\", \"Hello world!\"); mc.get(\"foo\")")
	key := demoPrefix + "foo"
	if d.set(d.mc, "mc", key, "Hello world!") {
		d.getValue(d.mc, "mc", key, "Hello world!")
	}
	d.say("Items carry 32 bits of flags and an expiration:")
	d.code("mc.Set(&libmemcached.Item{Key: %q, Value: []byte(\"hi\"), Flags: 42, Expiration: 300})", demoPrefix+"greeting")
	d.sets++
	if !d.noErr(d.mc.Set(&libmemcached.Item{Key: demoPrefix + "greeting", Value: []byte("hi"), Flags: 42, Expiration: 300}), "Set") {
		return
	}
	d.code("mc.Get(%q)", demoPrefix+"greeting")
	it, err := d.mc.Get(demoPrefix + "greeting")
	if d.noErr(err, "Get") {
		d.say("Value %q, Flags %d", it.Value, it.Flags)
		d.expect(string(it.Value) == "hi" && it.Flags == 42, "got Value %q Flags %d, want \"hi\" and 42", it.Value, it.Flags)
	}
}

func (d *demo) conditional() {
	key := demoPrefix + "foo"
	d.code("mc.Add(&libmemcached.Item{Key: %q, Value: []byte(\"again\")})", key)
	d.isErr(d.mc.Add(&libmemcached.Item{Key: key, Value: []byte("again")}), libmemcached.ErrNotStored, "ErrNotStored (the key exists)")
	d.code("mc.Replace(&libmemcached.Item{Key: %q, Value: []byte(\"Hello\")})", key)
	if !d.noErr(d.mc.Replace(&libmemcached.Item{Key: key, Value: []byte("Hello")}), "Replace") {
		return
	}
	d.code("mc.Append(&libmemcached.Item{Key: %q, Value: []byte(\" world\")})", key)
	d.noErr(d.mc.Append(&libmemcached.Item{Key: key, Value: []byte(" world")}), "Append")
	d.code("mc.Prepend(&libmemcached.Item{Key: %q, Value: []byte(\"Go: \")})", key)
	d.noErr(d.mc.Prepend(&libmemcached.Item{Key: key, Value: []byte("Go: ")}), "Prepend")
	d.getValue(d.mc, "mc", key, "Go: Hello world")
	d.sets += 3
	// Put the README's value back for the next steps.
	if d.noErr(d.mc.Set(&libmemcached.Item{Key: key, Value: []byte("Hello world!")}), "Set") {
		d.say("(set %q back to \"Hello world!\")", key)
	}
}

func (d *demo) binary() {
	d.say("pylibmc: mc = pylibmc.Client([...], binary=True)")
	d.code("bc, err := libmemcached.New(servers, libmemcached.WithBinaryProtocol())")
	bc, err := libmemcached.New(d.servers, libmemcached.WithBinaryProtocol())
	if !d.noErr(err, "New") {
		return
	}
	defer bc.Close()
	d.code("bc.Behavior(libmemcached.BehaviorBinaryProtocol)")
	on, err := bc.Behavior(libmemcached.BehaviorBinaryProtocol)
	if d.noErr(err, "Behavior") {
		d.say("%d", on)
		d.expect(on == 1, "binary protocol behavior is %d, want 1", on)
	}
	d.say("Both protocols see the same items:")
	d.getValue(bc, "bc", demoPrefix+"foo", "Hello world!")
	key := demoPrefix + "binary key"
	d.say("In the binary protocol keys may hold any bytes, spaces included:")
	if d.set(bc, "bc", key, "binary!") {
		d.getValue(bc, "bc", key, "binary!")
	}
	d.say("The ASCII client refuses that key before sending anything:")
	d.code("mc.Get(%q)", key)
	_, err = d.mc.Get(key)
	d.isErr(err, libmemcached.ErrBadKeyProvided, "ErrBadKeyProvided")
	d.say("Errors mean the same in both protocols (a binary add of a present key is NOT STORED too):")
	d.code("bc.Add(&libmemcached.Item{Key: %q, Value: []byte(\"x\")})", key)
	d.isErr(bc.Add(&libmemcached.Item{Key: key, Value: []byte("x")}), libmemcached.ErrNotStored, "ErrNotStored")
}

func (d *demo) behaviors() {
	d.say("pylibmc: mc.behaviors[\"hash\"] = \"fnv1a_32\"; mc.behaviors.update({\"tcp_nodelay\": True, \"ketama\": True})")
	d.say("(on a second client, so that the other steps keep the default key distribution)")
	d.code("kc, err := libmemcached.New(servers)")
	kc, err := libmemcached.New(d.servers)
	if !d.noErr(err, "New") {
		return
	}
	defer kc.Close()
	d.code("kc.SetBehaviors(map[string]any{\"hash\": \"fnv1a_32\"})")
	if !d.noErr(kc.SetBehaviors(map[string]any{"hash": "fnv1a_32"}), "SetBehaviors") {
		return
	}
	d.code("kc.SetBehaviors(map[string]any{\"tcp_nodelay\": true, \"ketama\": true})")
	if !d.noErr(kc.SetBehaviors(map[string]any{"tcp_nodelay": true, "ketama": true}), "SetBehaviors") {
		return
	}
	d.code("kc.Behaviors()")
	b := kc.Behaviors()
	names := libmemcached.BehaviorNames()
	cells := make([]string, len(names))
	width := 0
	for i, name := range names {
		cells[i] = name + "=" + fmt.Sprint(b[name])
		if s, ok := b[name].(string); ok {
			cells[i] = name + "=" + strconv.Quote(s)
		}
		width = max(width, len(cells[i]))
	}
	for i := 0; i < len(cells); i += 3 {
		var row strings.Builder
		for _, cell := range cells[i:min(i+3, len(cells))] {
			fmt.Fprintf(&row, "%-*s", width+2, cell)
		}
		d.say("%s", strings.TrimRight(row.String(), " "))
	}
	d.expect(len(b) == len(names), "Behaviors() has %d entries, want %d", len(b), len(names))
	d.expect(b["tcp_nodelay"] == uint64(1), "tcp_nodelay = %v, want 1", b["tcp_nodelay"])
	d.expect(b["ketama"] == uint64(1), "ketama = %v, want 1", b["ketama"])
	d.expect(b["hash"] == "fnv1a_32", "hash = %v, want \"fnv1a_32\"", b["hash"])
	d.say("Setting ketama switched the distribution, as in pylibmc:")
	d.say("distribution = %q", b["distribution"])
	d.expect(b["distribution"] == "consistent ketama", "distribution = %v, want \"consistent ketama\"", b["distribution"])
	d.say("Unknown names are refused, with the list of valid ones:")
	d.code("kc.SetBehaviors(map[string]any{\"tcp_no_delay\": true})")
	err = kc.SetBehaviors(map[string]any{"tcp_no_delay": true})
	if d.expect(errors.Is(err, libmemcached.ErrInvalidArguments), "want ErrInvalidArguments, got %v", err) {
		msg := err.Error()
		if i := strings.Index(msg, "; valid names:"); i >= 0 {
			msg = msg[:i] + "; valid names: ..."
		}
		d.say("error: %s", msg)
	}
	key := demoPrefix + "ketama"
	defer kc.Delete(key) // the other clients may map it elsewhere: clean up here
	if d.set(kc, "kc", key, "hashed with ketama") {
		d.getValue(kc, "kc", key, "hashed with ketama")
	}
	d.code("kc.ServerFor(%q)", key)
	s, err := kc.ServerFor(key)
	if d.noErr(err, "ServerFor") {
		d.say("%s", s)
		d.expect(contains(kc.Servers(), s), "ServerFor gave %q, not one of %v", s, kc.Servers())
	}
}

func (d *demo) multi() {
	d.say("pylibmc: mc.set_multi({...}); mc.get_multi([...])")
	var items []*libmemcached.Item
	want := map[string]string{}
	for _, k := range []string{"a", "b", "c"} {
		key := demoPrefix + "multi:" + k
		want[key] = "value of " + k
		items = append(items, &libmemcached.Item{Key: key, Value: []byte(want[key])})
	}
	missing := demoPrefix + "multi:missing"
	d.absent(d.mc, missing)
	d.code("mc.SetMulti([]*libmemcached.Item{{Key: %q, ...}, {Key: %q, ...}, {Key: %q, ...}})", items[0].Key, items[1].Key, items[2].Key)
	failed, err := d.mc.SetMulti(items)
	d.sets += len(items)
	if !d.noErr(err, "SetMulti") {
		return
	}
	d.say("failed keys: %v", failed)
	keys := []string{items[0].Key, items[1].Key, missing, items[2].Key}
	d.code("mc.GetMulti(%#v)", keys)
	got, err := d.mc.GetMulti(keys)
	if !d.noErr(err, "GetMulti") {
		return
	}
	for _, k := range sortedKeys(got) {
		d.say("%s: %q", k, got[k].Value)
	}
	d.say("%s is absent from the map: a miss in a multi-get is not an error", missing)
	d.expect(len(got) == 3, "GetMulti found %d keys, want 3", len(got))
	for k, v := range want {
		it, ok := got[k]
		d.expect(ok && string(it.Value) == v, "GetMulti[%q] = %v, want %q", k, it, v)
	}
	_, found := got[missing]
	d.expect(!found, "GetMulti returned the missing key %q", missing)
}

func (d *demo) incrDecr() {
	key := demoPrefix + "counter"
	if !d.set(d.mc, "mc", key, "10") {
		return
	}
	steps := []struct {
		decr  bool
		delta uint64
		want  uint64
	}{{false, 5, 15}, {true, 3, 12}, {true, 100, 0}, {false, 1, 1}}
	for _, s := range steps {
		name, f := "Increment", d.mc.Increment
		if s.decr {
			name, f = "Decrement", d.mc.Decrement
		}
		d.code("mc.%s(%q, %d)", name, key, s.delta)
		v, err := f(key, s.delta)
		if !d.noErr(err, name) {
			return
		}
		note := ""
		if s.decr && s.want == 0 {
			note = " (decr stops at 0)"
		}
		d.say("%d%s", v, note)
		d.expect(v == s.want, "%s gave %d, want %d", name, v, s.want)
	}
	d.code("mc.Get(%q)", key)
	it, err := d.mc.Get(key)
	if !d.noErr(err, "Get") {
		return
	}
	d.say("%q", it.Value)
	if len(it.Value) > 1 {
		d.say("memcached rewrites a counter in place: a decr that shortens it pads it with spaces")
	}
	d.expect(strings.TrimRight(string(it.Value), " ") == "1", "Get(%q) = %q, want \"1\" (maybe space-padded)", key, it.Value)
}

func (d *demo) delete() {
	key := demoPrefix + "foo"
	d.code("mc.Delete(%q)", key)
	if !d.noErr(d.mc.Delete(key), "Delete") {
		return
	}
	d.code("mc.Get(%q)", key)
	_, err := d.mc.Get(key)
	d.isErr(err, libmemcached.ErrCacheMiss, "ErrCacheMiss")
	d.code("mc.Delete(%q)", key)
	d.isErr(d.mc.Delete(key), libmemcached.ErrCacheMiss, "ErrCacheMiss (already deleted)")
}

func (d *demo) cas() {
	key := demoPrefix + "cas"
	if !d.set(d.mc, "mc", key, "v1") {
		return
	}
	d.code("it, err := mc.Get(%q)", key)
	it, err := d.mc.Get(key)
	if !d.noErr(err, "Get") {
		return
	}
	d.say("Value %q, CasID %d (the server's version of the item)", it.Value, it.CasID)
	d.expect(it.CasID != 0, "CasID is 0")
	stale := *it
	d.code("it.Value = []byte(\"v2\"); mc.CompareAndSwap(it)")
	it.Value = []byte("v2")
	d.sets++
	if !d.noErr(d.mc.CompareAndSwap(it), "CompareAndSwap") {
		return
	}
	d.say("stored: nobody changed the item since it was read")
	d.say("A second swap with the same (now stale) CasID loses:")
	d.code("mc.CompareAndSwap(&libmemcached.Item{Key: %q, Value: []byte(\"v3\"), CasID: %d})", key, stale.CasID)
	stale.Value = []byte("v3")
	d.isErr(d.mc.CompareAndSwap(&stale), libmemcached.ErrCASConflict, "ErrCASConflict")
	d.getValue(d.mc, "mc", key, "v2")
}

func (d *demo) pool() {
	d.say("pylibmc: pool = pylibmc.ThreadMappedPool(mc); with pool.reserve() as mc: ...")
	d.code("pool, err := libmemcached.NewPool(servers, %d)", demoPoolSize)
	pool, err := libmemcached.NewPool(d.servers, demoPoolSize)
	if !d.noErr(err, "NewPool") {
		return
	}
	defer pool.Close()
	hits := demoPrefix + "pool:hits"
	d.sets++
	if !d.noErr(pool.Set(&libmemcached.Item{Key: hits, Value: []byte("0")}), "Set") {
		return
	}
	d.say("%d goroutines x %d rounds; each round, in pool.Do(ctx, func(c *libmemcached.Client) error {...}):", demoGoroutines, demoRounds)
	d.say("c.Set its own key to the round number, c.Get it back and check it, c.Increment(%q, 1)", hits)
	var (
		out, maxOut atomic.Int64
		rounds      atomic.Int64 // rounds done without error
		errCount    atomic.Int64
		wrong       atomic.Int64
		firstErr    error
		errOnce     sync.Once
		wg          sync.WaitGroup
	)
	record := func(err error) {
		errCount.Add(1)
		errOnce.Do(func() { firstErr = err })
	}
	start := time.Now()
	for g := 0; g < demoGoroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			key := demoPrefix + "pool:" + strconv.Itoa(g)
			for i := 0; i < demoRounds; i++ {
				err := pool.Do(d.ctx, func(c *libmemcached.Client) error {
					n := out.Add(1)
					defer out.Add(-1)
					raiseTo(&maxOut, n)
					want := strconv.Itoa(i)
					if err := c.Set(&libmemcached.Item{Key: key, Value: []byte(want)}); err != nil {
						return err
					}
					it, err := c.Get(key)
					if err != nil {
						return err
					}
					if string(it.Value) != want {
						wrong.Add(1)
					}
					_, err = c.Increment(hits, 1)
					return err
				})
				if err != nil {
					record(err)
					if d.ctx.Err() != nil {
						return
					}
				} else {
					rounds.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)
	d.sets += demoGoroutines * demoRounds
	ops := 3 * rounds.Load()
	d.say("%d rounds done (%d operations) in %v, %.0f ops/s; errors: %d; wrong values read: %d",
		rounds.Load(), ops, elapsed.Round(time.Millisecond), float64(ops)/elapsed.Seconds(), errCount.Load(), wrong.Load())
	d.say("most clients out at once: %d (pool size %d)", maxOut.Load(), demoPoolSize)
	if firstErr != nil {
		d.say("first error: %v", firstErr)
	}
	d.expect(errCount.Load() == 0, "%d rounds failed", errCount.Load())
	d.expect(rounds.Load() == demoGoroutines*demoRounds, "%d rounds done, want %d", rounds.Load(), demoGoroutines*demoRounds)
	d.expect(wrong.Load() == 0, "%d reads gave another goroutine's value", wrong.Load())
	d.expect(maxOut.Load() >= 1 && maxOut.Load() <= demoPoolSize, "%d clients were out at once; the pool has %d", maxOut.Load(), demoPoolSize)
	d.code("pool.Get(%q)", hits)
	it, err := pool.Get(hits)
	if d.noErr(err, "Get") {
		d.say("%q", it.Value)
		want := strconv.Itoa(demoGoroutines * demoRounds)
		d.expect(string(it.Value) == want, "the shared counter is %q, want %q: increments were lost", it.Value, want)
	}
}

func (d *demo) stats() {
	d.say("pylibmc: mc.get_stats()")
	d.code("mc.Stats()")
	st, err := d.mc.Stats()
	if !d.noErr(err, "Stats") {
		return
	}
	d.expect(len(st) == len(d.servers), "Stats() answered for %d servers, want %d", len(st), len(d.servers))
	shown := []string{"version", "uptime", "curr_connections", "curr_items", "total_items", "cmd_set", "cmd_get", "get_hits", "get_misses"}
	var cmdSet, hits uint64
	for _, s := range sortedKeys(st) {
		m := st[s]
		d.say("%s (%d statistics; some of them):", s, len(m))
		for _, name := range shown {
			d.say("  %-16s %s", name, m[name])
		}
		n, err1 := strconv.ParseUint(m["cmd_set"], 10, 64)
		h, err2 := strconv.ParseUint(m["get_hits"], 10, 64)
		d.expect(err1 == nil && err2 == nil, "%s: cmd_set %q or get_hits %q is not a number", s, m["cmd_set"], m["get_hits"])
		cmdSet += n
		hits += h
	}
	d.say("this demo made %d sets so far; the servers counted %d", d.sets, cmdSet)
	d.expect(cmdSet >= uint64(d.sets), "the servers counted %d sets, fewer than the demo's %d", cmdSet, d.sets)
	d.expect(hits >= demoGoroutines*demoRounds, "the servers counted %d get hits, fewer than the pool step's %d", hits, demoGoroutines*demoRounds)
}

func (d *demo) miss() {
	key := demoPrefix + "never-set"
	d.absent(d.mc, key)
	d.code("_, err := mc.Get(%q)", key)
	_, err := d.mc.Get(key)
	d.say("err: %v", err)
	d.code("errors.Is(err, libmemcached.ErrCacheMiss)")
	d.say("%v", errors.Is(err, libmemcached.ErrCacheMiss))
	d.expect(errors.Is(err, libmemcached.ErrCacheMiss), "a Get of an absent key gave %v, want ErrCacheMiss", err)
	d.code("var e *libmemcached.Error; errors.As(err, &e)")
	var e *libmemcached.Error
	if !d.expect(errors.As(err, &e), "the error is not a *libmemcached.Error: %T", err) {
		return
	}
	d.say("e.Code = %v (%q), e.Op = %q, e.Key = %q, e.Server = %q", e.Code, e.Code.Description(), e.Op, e.Key, e.Server)
	d.expect(e.Code == libmemcached.ReturnNotFound && e.Op == "get" && e.Key == key,
		"got Code %v Op %q Key %q, want MEMCACHED_NOTFOUND, \"get\", %q", e.Code, e.Op, e.Key, key)
	d.expect(contains(d.mc.Servers(), e.Server), "e.Server = %q, not one of %v", e.Server, d.mc.Servers())
	d.code("e.Temporary()")
	d.say("%v (a miss is an answer about the data, not a connection problem)", e.Temporary())
	d.expect(!e.Temporary(), "a miss reports Temporary() = true")
}

// ---------------------------------------------------------------------------

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// raiseTo sets a to n if n is larger.
func raiseTo(a *atomic.Int64, n int64) {
	for m := a.Load(); n > m; m = a.Load() {
		if a.CompareAndSwap(m, n) {
			return
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
