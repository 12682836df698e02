package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/libmemcached-go/libmemcached"
)

// Short windows: these tests check that the tool works and counts right,
// not how fast anything is.
var quickBench = []string{"bench", "--window", "30ms", "--rounds", "2", "--warmup", "5ms"}

func benchArgs(extra ...string) []string {
	return append(append([]string{"-s", testServer.Addr}, quickBench...), extra...)
}

func TestHistBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 100, 127, 128, 1000, 12345, 1 << 20, 1<<40 + 12345, 1<<63 + 1} {
		b := bucketOf(v)
		if b < prev || b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d (previous %d)", v, b, prev)
		}
		prev = b
		if lo := bucketLow(b); lo > v {
			t.Fatalf("bucketLow(bucketOf(%d)) = %d > %d", v, lo, v)
		}
		if b+1 < histBuckets {
			if next := bucketLow(b + 1); next <= v {
				t.Fatalf("bucket %d of %d: the next starts at %d", b, v, next)
			}
		}
		if v >= 64 && float64(bucketMid(b)-bucketLow(b)) > 0.016*float64(v) {
			t.Fatalf("bucket of %d too wide: %d..%d", v, bucketLow(b), bucketLow(b+1))
		}
	}
	if bucketOf(^uint64(0)) != histBuckets-1 {
		t.Fatalf("the largest value is in bucket %d, want %d", bucketOf(^uint64(0)), histBuckets-1)
	}
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(int64(i) * 1000) // 1 µs .. 1 ms
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 500e3}, {0.99, 990e3}, {0.001, 1e3}} {
		got := float64(h.quantile(c.q))
		if got < c.want*0.965 || got > c.want*1.035 {
			t.Errorf("quantile(%v) = %v, want about %v", c.q, got, c.want)
		}
	}
	var empty hist
	if empty.quantile(0.5) != 0 {
		t.Errorf("empty histogram: quantile %d", empty.quantile(0.5))
	}
}

func TestKeysets(t *testing.T) {
	for _, spec := range keysetSpecs {
		ks := newKeyset(spec)
		if len(ks.keys) != spec.n {
			t.Fatalf("%s: %d keys", spec.name, len(ks.keys))
		}
		for i, k := range ks.keys {
			if keyIndex(k) != i || len(ks.values[i]) != spec.vsize || !bytes.HasPrefix(ks.values[i], []byte(k+"=")) {
				t.Fatalf("%s: key %d is %q (index %d), value %q", spec.name, i, k, keyIndex(k), abbrev(ks.values[i]))
			}
		}
	}
	for _, k := range []string{"x", "x:", ":", "a:1b", "a:-1"} {
		if keyIndex(k) != -1 {
			t.Errorf("keyIndex(%q) = %d", k, keyIndex(k))
		}
	}
	ks := newKeyset(keysetSpecs[0])
	if g := ks.group(10, 13); len(g) != 10 || g[0] != ks.keys[30] {
		t.Errorf("group(10, 13) = %v", g)
	}
}

func TestCFloorConfig(t *testing.T) {
	got := cfloorConfig([]string{"10.0.0.1:11211", "h:11212:3", "/tmp/mc.sock", "[::1]:11211"})
	want := `--SERVER=10.0.0.1:11211 --SERVER=h:11212/?3 --SOCKET="/tmp/mc.sock" --SERVER=[::1]:11211`
	if got != want {
		t.Errorf("cfloorConfig = %s, want %s", got, want)
	}
}

// TestSamplerDoesNotAllocate: the sampler allocates nothing as it samples: the allocation columns
// would otherwise count its allocations.
func TestSamplerDoesNotAllocate(t *testing.T) {
	s := newThreadSampler()
	defer s.close()
	s.start() // the first window may allocate the sleeping timer
	s.stop()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	s.start()
	time.Sleep(200 * time.Millisecond) // about 100 samples
	threads, _ := s.stop()
	runtime.ReadMemStats(&m1)
	// A few allocations come from the runtime itself, whatever the length
	// of the window; one per sample would be 100.
	if n := m1.Mallocs - m0.Mallocs; n > 10 {
		t.Errorf("%d allocations in a 200 ms window of sampling", n)
	}
	if runtime.GOOS == "linux" && threads < 2 {
		t.Errorf("peak threads %d", threads)
	}
}

// TestBench runs a short bench of a few scenarios on every client against
// the test server, with the JSON and the chart.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	jsonPath, chartPath := filepath.Join(dir, "out", "bench.json"), filepath.Join(dir, "chart.png")
	r := memctl(t, "", benchArgs("--scenario", "get-100B,set-noreply-100B,getmulti-10,par16-mix",
		"--json", jsonPath, "--chart", chartPath)...)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"get-100B", "set-noreply-100B", "getmulti-10", "par16-mix",
		"gomemcache (plain Set: no noreply)", "keys/s", "absent: pior", "c-floor"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the table has no %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "pior is absent") {
		t.Errorf("stderr does not say pior is absent:\n%s", r.stderr)
	}

	res := readBenchJSON(t, jsonPath)
	m := res.Machine
	if m.CPUModel == "" || m.Cores < 1 || m.GoVersion == "" || m.Libmemcached != libmemcached.LibraryVersion ||
		m.LibmemcachedRuntime == "" || m.Date == "" || len(m.MemcachedVersions) == 0 || m.MemcachedVersions[0] == "unknown" {
		t.Errorf("machine info: %+v", m)
	}
	if res.Errors != 0 || res.Config.Rounds != 2 || len(res.Scenarios) != 4 {
		t.Errorf("errors %d, rounds %d, %d scenarios", res.Errors, res.Config.Rounds, len(res.Scenarios))
	}
	// With -s, the default --servers does not apply: one set, the server
	// named, and no @Nsrv names.
	if c := res.Config; !slices.Equal(c.ServerCounts, []int{1}) || len(c.ServerSets) != 1 || c.ServerSets[0].Suffix != "" ||
		!slices.Equal(c.ServerSets[0].Servers, []string{testServer.Addr}) || c.Embedded {
		t.Errorf("config with -s: %+v", c)
	}
	for _, s := range res.Scenarios {
		if s.Servers != 1 || strings.Contains(s.Name, "@") {
			t.Errorf("scenario with -s: %+v", s)
		}
	}
	rows := map[string]row{}
	for _, rw := range res.Rows {
		rows[rw.Scenario+" "+rw.Client] = rw
		if rw.Rate <= 0 || len(rw.RoundRates) != 2 || rw.Ops == 0 || rw.P50ns == 0 || rw.P99ns < rw.P50ns {
			t.Errorf("row %+v", rw)
		}
		if rw.Ratio <= 0 {
			t.Errorf("%s %s: no ratio to gomemcache", rw.Scenario, rw.Client)
		}
		if runtime.GOOS == "linux" && rw.PeakThreads < 2 {
			t.Errorf("%s %s: peak threads %d", rw.Scenario, rw.Client, rw.PeakThreads)
		}
	}
	// Sequential scenarios: every client but pior (absent); the noreply
	// scenario: no Pool rows; concurrent: no Client rows.
	wantRows := []string{"get-100B lmc-client", "get-100B lmc-client-bin", "get-100B lmc-pool", "get-100B lmc-pool-bin",
		"get-100B gomemcache", "get-100B c-floor", "set-noreply-100B lmc-client", "set-noreply-100B gomemcache",
		"set-noreply-100B c-floor", "par16-mix lmc-pool", "par16-mix c-floor", "par16-mix gomemcache", "get-100B wire"}
	if libmcSpec.absent == "" {
		wantRows = append(wantRows, "get-100B libmc", "set-noreply-100B libmc", "getmulti-10 libmc", "par16-mix libmc")
	}
	for _, want := range wantRows {
		if _, ok := rows[want]; !ok {
			t.Errorf("no row %q", want)
		}
	}
	for _, unwanted := range []string{"set-noreply-100B lmc-pool", "par16-mix lmc-client", "get-100B pior",
		"set-noreply-100B wire", "getmulti-10 wire", "par16-mix wire"} {
		if _, ok := rows[unwanted]; ok {
			t.Errorf("unexpected row %q", unwanted)
		}
	}
	if g := rows["get-100B gomemcache"]; g.Ratio < 0.999 || g.Ratio > 1.001 {
		t.Errorf("gomemcache's ratio to itself: %v", g.Ratio)
	}
	if rw := rows["get-100B lmc-client"]; rw.AllocsPerOp <= 0 || rw.AllocsPerOp > 10 || !rw.AllocsCounted {
		t.Errorf("lmc-client Get: %v allocs/op", rw.AllocsPerOp)
	}
	if rw := rows["get-100B c-floor"]; rw.AllocsCounted {
		t.Errorf("the C floor's allocations are counted")
	}
	// 16 C threads on top of the process's own.
	if runtime.GOOS == "linux" && rows["par16-mix c-floor"].PeakThreads < 16+2 {
		t.Errorf("par16-mix c-floor: peak threads %d", rows["par16-mix c-floor"].PeakThreads)
	}
	if rw := rows["get-100B wire"]; rw.Errors != 0 || !rw.AllocsCounted || rw.AllocsPerOp > 0.5 {
		t.Errorf("get-100B wire: %d errors, %v allocs/op (counted: %v)", rw.Errors, rw.AllocsPerOp, rw.AllocsCounted)
	}
	if !strings.Contains(r.stdout, "no row: wire: "+wireNoRow+" (set-noreply-100B, getmulti-10, par16-mix)") {
		t.Errorf("the table does not say why wire has no rows:\n%s", r.stdout)
	}
	if rw := rows["getmulti-10 lmc-client"]; rw.Unit != "keys/s" {
		t.Errorf("getmulti-10: %+v", rw)
	}

	png, err := os.ReadFile(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10000 {
		t.Errorf("the chart is not a PNG (%d bytes)", len(png))
	}
}

// badKV hands out a wrong value for one key, and a miss for another.
type badKV struct{ kv }

func (b badKV) Get(key string) ([]byte, error) {
	v, err := b.kv.Get(key)
	if err != nil {
		return v, err
	}
	if strings.HasSuffix(key, ":7") {
		return append([]byte("x"), v[1:]...), err
	}
	if strings.HasSuffix(key, ":8") {
		return nil, libmemcached.ErrCacheMiss
	}
	return v, err
}

func (b badKV) GetMulti(keys []string, each func(string, []byte)) error {
	return b.kv.GetMulti(keys, func(k string, v []byte) {
		if strings.HasSuffix(k, ":3") {
			v = []byte("wrong")
		}
		if strings.HasSuffix(k, ":4") {
			return
		}
		each(k, v)
	})
}

// TestBenchCountsErrors: a client that returns wrong values gets an error
// row, the messages are printed, and the exit status is 1.
func TestBenchCountsErrors(t *testing.T) {
	saved := benchClients
	defer func() { benchClients = saved }()
	benchClients = append(append([]*clientSpec(nil), saved...), &clientSpec{
		name: "broken",
		desc: "lmc-client that corrupts values",
		open: func(servers []string, cfg *benchConfig) (*clientForms, error) {
			f, err := openLibClient(servers, false)
			if err != nil {
				return nil, err
			}
			f.seq = badKV{f.seq}
			return f, nil
		},
	})
	dir := t.TempDir()
	r := memctl(t, "", benchArgs("--scenario", "get-100B,getmulti-10", "--clients", "gomemcache,broken",
		"--json", filepath.Join(dir, "b.json"))...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"wrong value for memctl-bench:v100:7", "get memctl-bench:v100:8",
		"wrong value for memctl-bench:v100:3", "2 missing or wrong", "errors in all"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the output has no %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "errors (see the errors column") {
		t.Errorf("stderr: %s", r.stderr)
	}
	var res benchResult
	b, _ := os.ReadFile(filepath.Join(dir, "b.json"))
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	for _, rw := range res.Rows {
		switch {
		case rw.Client == "gomemcache" && rw.Errors != 0:
			t.Errorf("%s gomemcache: %d errors", rw.Scenario, rw.Errors)
		case rw.Client == "broken" && rw.Scenario == "get-100B":
			// Keys 7 and 8 of every 100 operations.
			if want := rw.Ops / 50; rw.Errors+2 < want || rw.Errors > want+4 {
				t.Errorf("get-100B broken: %d errors in %d ops, want about %d", rw.Errors, rw.Ops, want)
			}
		case rw.Client == "broken" && rw.Scenario == "getmulti-10":
			// Keys 3 and 4 are both in the first of the 10 groups: 2
			// errors per 10 multi-gets.
			if want := rw.Ops / 5; rw.Errors+2 < want || rw.Errors > want+4 {
				t.Errorf("getmulti-10 broken: %d errors in %d multi-gets, want about %d", rw.Errors, rw.Ops, want)
			}
		}
	}
	if res.Errors == 0 {
		t.Errorf("errors_total is 0")
	}
}

func TestBenchUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--window", "0s"}, "--window 0s"},
		{[]string{"bench", "--rounds", "0"}, "--rounds 0"},
		{[]string{"bench", "--pool", "0"}, "--pool 0"},
		{[]string{"bench", "--scenario", "nosuch"}, "matches no scenario"},
		{[]string{"bench", "--clients", "nosuch*"}, "matches no client"},
		{[]string{"bench", "--scenario", "[x"}, "bad pattern"},
		{[]string{"bench", "--binary"}, "bench takes no --binary"},
		{[]string{"bench", "--clients", "lmc-*", "--chart", "x.png"}, "--clients must include it"},
		{[]string{"bench", "-s", "127.0.0.1:1", "--servers", "1,3"}, "--servers starts that many memcached of its own: it excludes -s"},
		{[]string{"bench", "-s", "127.0.0.1:1", "--servers", "1"}, "it excludes -s"},
		{[]string{"bench", "--servers", "0"}, "--servers 0: comma-separated counts of servers, from 1 to 16"},
		{[]string{"bench", "--servers", "1,x"}, "--servers 1,x"},
		{[]string{"bench", "--servers", "17"}, "from 1 to 16"},
		{[]string{"bench", "--servers", ","}, "no count of servers"},
		{[]string{"bench", "--servers", "3", "--scenario", "par64-get"}, "over N > 1 servers the names end in @Nsrv"},
		{[]string{"bench", "--servers", "3", "--scenario", "get-100B*"}, "get-100B@3srv: single-key sequential scenarios run over one server only"},
		{[]string{"get", "k", "--servers", "3"}, "--servers is a bench flag"},
		{[]string{"bench", "extra"}, "usage: memctl bench"},
		{[]string{"get", "k", "--window", "1s"}, "--window is a bench flag"},
		{[]string{"demo", "--rounds", "1"}, "demo takes no --rounds"},
	} {
		r := memctl(t, "", c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	r := memctl(t, "", "-h")
	for _, f := range benchFlagOrder {
		if !strings.Contains(r.stdout, "--"+f+" ") {
			t.Errorf("the usage does not list --%s", f)
		}
	}
	r = memctl(t, "", "bench", "--list")
	if r.code != 0 {
		t.Fatalf("bench --list: exit %d: %s", r.code, r.stderr)
	}
	for _, s := range benchScenarios {
		if !strings.Contains(r.stdout, "  "+s.name+" ") {
			t.Errorf("--list does not name %s", s.name)
		}
	}
	for _, c := range benchClients {
		if !strings.Contains(r.stdout, "  "+c.name+" ") {
			t.Errorf("--list does not name %s", c.name)
		}
	}
}

var benchPidRE = regexp.MustCompile(`started \S+ -t 2 on (127\.0\.0\.1:\d+) \(pid (\d+)\)`)

// TestBenchBinary runs the built command as make bench does, without -s:
// it starts its own memcached with -t 2 and stops it at the end.
func TestBenchBinary(t *testing.T) {
	bin := buildMemctl(t)
	cmd := exec.Command(bin, "bench", "--window", "20ms", "--rounds", "1", "--warmup", "0s",
		"--scenario", "get-100B", "--clients", "lmc-client,gomemcache")
	cmd.Env = envWithoutServers()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	m := benchPidRE.FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("stderr does not say which memcached it started:\n%s", errb.String())
	}
	if !strings.Contains(out.String(), "on "+m[1]+" (started by memctl: -t 2)") {
		t.Errorf("the table's header does not name the server:\n%s", out.String())
	}
	pid, _ := strconv.Atoi(m[2])
	if !processGone(pid) {
		t.Errorf("memcached (pid %d) still runs after memctl bench", pid)
	}
}

func TestWireAddr(t *testing.T) {
	for _, c := range []struct{ in, host, port, path string }{
		{"127.0.0.1:11311", "127.0.0.1", "11311", ""},
		{"localhost", "localhost", "11211", ""},
		{"h:11212:3", "h", "11212", ""},
		{"[::1]:11213", "::1", "11213", ""},
		{"[::1]", "::1", "11211", ""},
		{"[::1]:11214:2", "::1", "11214", ""},
		{"/tmp/mc.sock", "", "", "/tmp/mc.sock"},
	} {
		host, port, path, err := wireAddr(c.in)
		if err != nil || host != c.host || port != c.port || path != c.path {
			t.Errorf("wireAddr(%q) = %q, %q, %q, %v", c.in, host, port, path, err)
		}
	}
	for _, bad := range []string{"[::1", "[::1]x", ":11211"} {
		if _, _, _, err := wireAddr(bad); err == nil {
			t.Errorf("wireAddr(%q): no error", bad)
		}
	}
}

// TestWireClient: the wire row's socket reads back what it wrote, in one
// reply or several recv()s (16 KiB, 1 MiB - 512), tells a miss from a hit,
// reports the server's error lines and stays in step after them.
func TestWireClient(t *testing.T) {
	f, err := openWire([]string{testServer.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	w := f.seq
	key := "memctl-wire-test:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := w.Get(key); err != errWireMiss {
		t.Fatalf("Get of a missing key: %v, want a miss", err)
	}
	for _, n := range []int{0, 1, 100, 16 * 1024, 1<<20 - 512} {
		v := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		if err := w.Set(key, v); err != nil {
			t.Fatalf("Set of %d bytes: %v", n, err)
		}
		got, err := w.Get(key)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	// memcached refuses a value over its item size limit (1 MiB): the
	// reply is an error line, and the connection is still usable.
	if err := w.Set(key, make([]byte, 2<<20)); err == nil || !strings.Contains(err.Error(), "SERVER_ERROR") {
		t.Fatalf("Set of 2 MiB: %v, want memcached's SERVER_ERROR", err)
	}
	// A key over 250 bytes: memcached's CLIENT_ERROR line.
	if _, err := w.Get(strings.Repeat("k", 300)); err == nil || !strings.Contains(err.Error(), "CLIENT_ERROR") {
		t.Fatalf("Get of a 300-byte key: %v, want memcached's CLIENT_ERROR", err)
	}
	if err := w.Set(key, []byte("after")); err != nil {
		t.Fatalf("Set after the errors: %v", err)
	}
	if got, err := w.Get(key); err != nil || string(got) != "after" {
		t.Fatalf("Get after the errors: %q, %v", got, err)
	}
	if _, err := openWire([]string{"127.0.0.1:1"}, nil); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("openWire to a closed port: %v", err)
	}
}

var benchStartedRE = regexp.MustCompile(`started \S+ -t 2 on (127\.0\.0\.1:\d+) \(pid (\d+)\)(.*)`)

// TestBenchServers: with no -s, --servers 1,2 starts one memcached and
// then two more, runs the multi-key and concurrent scenarios over both
// sets (the rows over two named @2srv, with their own ratios) and the
// single-key ones over one only, and stops the three servers at the end.
func TestBenchServers(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "bench.json")
	r := memctl(t, "", "bench", "--servers", "1,2", "--window", "50ms", "--rounds", "1", "--warmup", "0",
		"--scenario", "get-100B*,getmulti-10,getmulti-10@2srv,par16-get*", "--json", jsonPath)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	started := benchStartedRE.FindAllStringSubmatch(r.stderr, -1)
	if len(started) != 3 || started[0][3] != "" || started[1][3] != " for the @2srv rows (1 of 2)" ||
		started[2][3] != " for the @2srv rows (2 of 2)" {
		t.Fatalf("stderr does not name the 1 + 2 servers it started:\n%s", r.stderr)
	}
	for _, m := range started {
		if pid, _ := strconv.Atoi(m[2]); !processGone(pid) {
			t.Errorf("memcached (pid %d) still runs after memctl bench", pid)
		}
	}
	for _, want := range []string{
		"on " + started[0][1] + " (started by memctl: -t 2)\n",
		"the @2srv rows on " + started[1][1] + "," + started[2][1] + " (started by memctl: -t 2 each)\n",
		"; 1 server, 2 servers for the @2srv rows\n",
		"\ngetmulti-10@2srv ", "\npar16-get@2srv ",
		"no row: all clients: single-key sequential scenarios run over one server only (each Get or Set goes to one server, however many there are) (get-100B@2srv)",
		"no row: wire: " + wireNoRow + " (getmulti-10, getmulti-10@2srv, par16-get, par16-get@2srv)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the table has no %q:\n%s", want, r.stdout)
		}
	}
	// The estimate counts the windows over both sets: get-100B on 8
	// clients, getmulti-10 on 7 and par16-get on 5, twice each (one fewer
	// everywhere without libmc).
	windows, clients := 8+2*7+2*5, 0
	if libmcSpec.absent != "" {
		windows -= 5
	}
	for _, c := range benchClients {
		if c.absent == "" {
			clients++
		}
	}
	if want := fmt.Sprintf("5 scenarios (3 over 1 server, 2 over 2 servers) x %d clients, 1 round of 50ms: %d windows, about ",
		clients, windows); !strings.Contains(r.stderr, want) {
		t.Errorf("stderr has no %q:\n%s", want, r.stderr)
	}

	res := readBenchJSON(t, jsonPath)
	c := res.Config
	if !slices.Equal(c.ServerCounts, []int{1, 2}) || len(c.ServerSets) != 2 || !c.Embedded ||
		c.ServerSets[0].Count != 1 || c.ServerSets[0].Suffix != "" || !slices.Equal(c.ServerSets[0].Servers, []string{started[0][1]}) ||
		c.ServerSets[1].Count != 2 || c.ServerSets[1].Suffix != "@2srv" ||
		!slices.Equal(c.ServerSets[1].Servers, []string{started[1][1], started[2][1]}) || len(c.Servers) != 3 {
		t.Errorf("config: %+v", c)
	}
	var names []string
	for _, s := range res.Scenarios {
		names = append(names, s.Name)
		if want := 1 + strings.Count(s.Name, "@2srv"); s.Servers != want {
			t.Errorf("scenario %s over %d servers", s.Name, s.Servers)
		}
	}
	// By scenario, over one server and then over two.
	if want := []string{"get-100B", "getmulti-10", "getmulti-10@2srv", "par16-get", "par16-get@2srv"}; !slices.Equal(names, want) {
		t.Errorf("scenarios %v, want %v", names, want)
	}
	if len(res.NotRun) == 0 || !strings.Contains(strings.Join(res.NotRun, "\n"), "(get-100B@2srv)") {
		t.Errorf("not_run: %q", res.NotRun)
	}
	rows := map[string]row{}
	var order []string
	for _, rw := range res.Rows {
		rows[rw.Scenario+" "+rw.Client] = rw
		if !contains(order, rw.Scenario) {
			order = append(order, rw.Scenario)
		}
		if want := 1 + strings.Count(rw.Scenario, "@2srv"); rw.Servers != want {
			t.Errorf("%s %s: servers %d", rw.Scenario, rw.Client, rw.Servers)
		}
		if rw.Rate <= 0 || rw.Ops == 0 || rw.Ratio <= 0 {
			t.Errorf("row %+v", rw)
		}
		// Every client finds its keys over two servers too (libmc, a
		// peer, fails now and then on its own: see clientSpec.peer).
		if rw.Errors != 0 && rw.Client != "libmc" {
			t.Errorf("%s %s: %d errors: %q", rw.Scenario, rw.Client, rw.Errors, rw.ErrorSamples)
		}
	}
	if !slices.Equal(order, names) {
		t.Errorf("rows in the order %v, want %v", order, names)
	}
	want := []string{"get-100B wire", "get-100B c-floor", "get-100B lmc-client",
		"getmulti-10@2srv lmc-client", "getmulti-10@2srv lmc-client-bin", "getmulti-10@2srv lmc-pool", "getmulti-10@2srv lmc-pool-bin",
		"getmulti-10@2srv gomemcache", "getmulti-10@2srv c-floor",
		"par16-get@2srv lmc-pool", "par16-get@2srv lmc-pool-bin", "par16-get@2srv gomemcache", "par16-get@2srv c-floor"}
	if libmcSpec.absent == "" {
		want = append(want, "getmulti-10@2srv libmc", "par16-get@2srv libmc")
	}
	for _, k := range want {
		if _, ok := rows[k]; !ok {
			t.Errorf("no row %q", k)
		}
	}
	for _, k := range []string{"get-100B@2srv lmc-client", "getmulti-10@2srv wire", "par16-get@2srv lmc-client"} {
		if _, ok := rows[k]; ok {
			t.Errorf("unexpected row %q", k)
		}
	}
	if g := rows["par16-get@2srv gomemcache"]; g.Ratio < 0.999 || g.Ratio > 1.001 {
		t.Errorf("gomemcache's ratio to itself over 2 servers: %v", g.Ratio)
	}
	if w := rows["get-100B wire"]; w.Errors != 0 || w.Ops == 0 {
		t.Errorf("get-100B wire: %+v", w)
	}
}

// TestBenchKeysSpread: the keys of every keyset spread over the servers
// with this library's default distribution (the C floor's too: the same
// libmemcached defaults) and with gomemcache's, so the @Nsrv rows use
// every server.
func TestBenchKeysSpread(t *testing.T) {
	servers := []string{"127.0.0.1:21001", "127.0.0.1:21002", "127.0.0.1:21003"}
	mc, err := libmemcached.New(servers)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	var sl memcache.ServerList
	if err := sl.SetServers(servers...); err != nil {
		t.Fatal(err)
	}
	for _, spec := range keysetSpecs {
		ks := newKeyset(spec)
		lib, gomc := map[string]int{}, map[string]int{}
		for _, k := range ks.keys {
			s, err := mc.ServerFor(k)
			if err != nil {
				t.Fatal(err)
			}
			lib[s]++
			a, err := sl.PickServer(k)
			if err != nil {
				t.Fatal(err)
			}
			gomc[a.String()]++
		}
		for _, srv := range servers {
			if lib[srv] < spec.n/10 || gomc[srv] < spec.n/10 {
				t.Errorf("%s: %s holds %d keys under libmemcached, %d under gomemcache (%d keys): %v %v",
					spec.name, srv, lib[srv], gomc[srv], spec.n, lib, gomc)
			}
		}
	}
}

// readBenchJSON reads the results --json wrote.
func readBenchJSON(t *testing.T, path string) benchResult {
	t.Helper()
	var res benchResult
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}
