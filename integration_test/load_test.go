package integration

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Point 7 of the issue: 64 goroutines on a Pool doing mixed
// get/set/delete/incr for 12 s while one node is restarted (killed and
// started empty) twice. No panic, no deadlock, no goroutine leak, a bounded
// number of OS threads, no value of another key, errors only of the
// connection/timeout classes and only while a node is down (plus the time
// libmemcached needs to notice it is back), and no C allocation left after
// Close (the counting allocator).

const (
	loadWorkers   = 64
	loadPoolSize  = 16
	loadDuration  = 12 * time.Second
	loadKeys      = 2000
	loadCounters  = 64
	loadPollMS    = 1000
	loadRetryS    = 1
	loadFaultTail = (loadRetryS+1)*time.Second + loadPollMS*time.Millisecond + time.Second
)

// osThreads reads the process's thread count from /proc (0 elsewhere).
func osThreads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Threads:") {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "Threads:")))
			return n
		}
	}
	return 0
}

// libraryGoroutines counts the goroutines whose stack is in the library
// (not in these tests): after Close there must be none.
func libraryGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var sample string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/libmemcached-go/libmemcached.") {
			n++
			if sample == "" {
				sample = g
			}
		}
	}
	return n, sample
}

// waitTimeout waits for wg at most d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

type window struct{ from, to time.Time }

type loadError struct {
	start, end time.Time
	op         string
	err        error
}

func TestLoadWithFaults(t *testing.T) {
	nodes := startCluster(t, 3, nodeOptions{})
	victim := nodes[1]
	goroutinesBefore := runtime.NumGoroutine()
	cBefore := leakcheck.Live()
	threadsBefore := osThreads()

	pool, err := libmemcached.NewPool(addrs(nodes), loadPoolSize,
		leakcheck.Option().(libmemcached.Option),
		libmemcached.WithBehaviors(map[string]any{
			"ketama": true, "connect_timeout": 300, "_poll_timeout": loadPollMS, "retry_timeout": loadRetryS,
		}))
	require.NoError(t, err)
	closed := false
	defer func() {
		if !closed {
			pool.Close()
		}
	}()

	var (
		stop      atomic.Bool
		ops       atomic.Int64
		okOps     atomic.Int64
		mu        sync.Mutex
		errs      []loadError
		wrong     []string
		panics    []string
		opCounts  = map[string]*atomic.Int64{"get": {}, "set": {}, "delete": {}, "incr": {}}
		threadMax atomic.Int64
	)
	threadMax.Store(int64(threadsBefore))
	// Everything stops by itself: at the end of the run, when the test
	// fails early (the deferred stop), and at a hard deadline regardless.
	hardStop := time.Now().Add(loadDuration + 30*time.Second)
	running := func() bool { return !stop.Load() && time.Now().Before(hardStop) }
	var wg sync.WaitGroup
	defer func() {
		stop.Store(true)
		waitTimeout(&wg, 30*time.Second)
	}()
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for running() {
			if n := int64(osThreads()); n > threadMax.Load() {
				threadMax.Store(n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	worker := func(id int) {
		defer func() {
			if r := recover(); r != nil {
				mu.Lock()
				panics = append(panics, fmt.Sprintf("worker %d: %v", id, r))
				mu.Unlock()
			}
		}()
		rng := rand.New(rand.NewSource(int64(id)))
		for seq := 0; running(); seq++ {
			var (
				op  string
				err error
			)
			start := time.Now()
			switch r := rng.Intn(100); {
			case r < 45:
				op = "get"
				k := fmt.Sprintf("load:%d", rng.Intn(loadKeys))
				var it *libmemcached.Item
				it, err = pool.Get(k)
				if err == nil && (it.Key != k || !belongs(k, it.Value)) {
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("Get(%q) = %q (key %q)", k, it.Value, it.Key))
					mu.Unlock()
				}
			case r < 75:
				op = "set"
				k := fmt.Sprintf("load:%d", rng.Intn(loadKeys))
				err = pool.Set(&libmemcached.Item{Key: k, Value: []byte(fmt.Sprintf("%s|w%d-%d", valueFor(k), id, seq))})
			case r < 85:
				op = "delete"
				err = pool.Delete(fmt.Sprintf("load:%d", rng.Intn(loadKeys)))
			default:
				op = "incr"
				k := fmt.Sprintf("loadctr:%d", rng.Intn(loadCounters))
				_, err = pool.Increment(k, 1)
				if errors.Is(err, libmemcached.ErrCacheMiss) {
					err = pool.Add(&libmemcached.Item{Key: k, Value: []byte("0")})
					if errors.Is(err, libmemcached.ErrNotStored) {
						err = nil // another worker created it
					}
				}
				if err == nil && rng.Intn(8) == 0 {
					var it *libmemcached.Item
					it, err = pool.Get(k)
					if err == nil {
						if _, perr := strconv.ParseUint(strings.TrimSpace(string(it.Value)), 10, 64); perr != nil || it.Key != k {
							mu.Lock()
							wrong = append(wrong, fmt.Sprintf("Get(%q) = %q: not a counter", k, it.Value))
							mu.Unlock()
						}
					}
				}
			}
			ops.Add(1)
			opCounts[op].Add(1)
			if err == nil || errors.Is(err, libmemcached.ErrCacheMiss) || errors.Is(err, libmemcached.ErrNotStored) {
				okOps.Add(1)
				continue
			}
			mu.Lock()
			errs = append(errs, loadError{start: start, end: time.Now(), op: op, err: err})
			mu.Unlock()
		}
	}

	begin := time.Now()
	for i := 0; i < loadWorkers; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); worker(i) }(i)
	}

	// Two restarts of one node, at 3 s and 7.5 s.
	var windows []window
	var restartTook []time.Duration
	for _, at := range []time.Duration{3 * time.Second, 7500 * time.Millisecond} {
		time.Sleep(time.Until(begin.Add(at)))
		from := time.Now()
		require.NoError(t, victim.Restart(), "restarting %s", victim.Name())
		ready := time.Now()
		restartTook = append(restartTook, ready.Sub(from))
		windows = append(windows, window{from, ready.Add(loadFaultTail)})
	}
	time.Sleep(time.Until(begin.Add(loadDuration)))
	stop.Store(true)
	stopped := time.Now()

	if !waitTimeout(&wg, loadPollMS*time.Millisecond*4+10*time.Second) {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("deadlock: the workers did not stop within 14s of the end of the run:\n%s", buf[:n])
	}
	stopTook := time.Since(stopped)
	<-samplerDone
	elapsed := stopped.Sub(begin)

	require.NoError(t, pool.Close())
	closed = true
	// No goroutine left behind (bounded wait for the runtime to reap them).
	var goroutinesAfter int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if goroutinesAfter = runtime.NumGoroutine(); goroutinesAfter <= goroutinesBefore {
			break
		}
	}
	cAfter := leakcheck.Live()
	libLeft, libSample := libraryGoroutines()

	inWindow := func(e loadError) bool {
		for _, w := range windows {
			if !e.end.Before(w.from) && !e.start.After(w.to) {
				return true
			}
		}
		return false
	}
	codes := codeCounts{}
	byOp := codeCounts{}
	var badClass, outside []string
	for _, e := range errs {
		codes.add(e.err)
		var le *libmemcached.Error
		if errors.As(e.err, &le) {
			k := e.op + ":" + le.Code.String()
			if byOp[k] == 0 {
				t.Logf("first %s error at +%v: %v (unwraps to %v)", k, e.start.Sub(begin).Round(time.Millisecond), e.err, le.Unwrap())
			}
			byOp[k]++
		}
		if !errors.As(e.err, &le) || !(le.Temporary() || le.Timeout()) {
			badClass = append(badClass, fmt.Sprintf("%s: %v", e.op, e.err))
		}
		if !inWindow(e) {
			outside = append(outside, fmt.Sprintf("%s at +%v: %v", e.op, e.start.Sub(begin).Round(time.Millisecond), e.err))
		}
	}
	t.Logf("%d operations in %v (%d get, %d set, %d delete, %d incr); %d errors: %v",
		ops.Load(), elapsed.Round(time.Millisecond), opCounts["get"].Load(), opCounts["set"].Load(),
		opCounts["delete"].Load(), opCounts["incr"].Load(), len(errs), codes)
	t.Logf("errors by operation: %v", byOp)
	for i, w := range windows {
		t.Logf("fault window %d: +%v to +%v (restart took %v)", i+1, w.from.Sub(begin).Round(time.Millisecond),
			w.to.Sub(begin).Round(time.Millisecond), restartTook[i].Round(time.Millisecond))
	}
	figure(t, "load.duration", elapsed, "ms")
	figure(t, "load.ops_per_s", float64(ops.Load())/elapsed.Seconds(), "ops/s")
	figure(t, "load.errors", len(errs), "ops")
	figure(t, "load.errors_outside_fault_windows", len(outside), "ops")
	figure(t, "load.wrong_values", len(wrong), "")
	figure(t, "load.restart_took", restartTook[0], "ms")
	figure(t, "load.os_threads_before", threadsBefore, "")
	figure(t, "load.os_threads_peak", threadMax.Load(), "")
	figure(t, "load.workers_stop_after_signal", stopTook, "ms")
	figure(t, "load.goroutines_before_after", fmt.Sprintf("%d/%d", goroutinesBefore, goroutinesAfter), "")
	figure(t, "load.c_allocations_live_after_close", cAfter-cBefore, "blocks")

	assert.Empty(t, panics, "no panic")
	assert.Empty(t, wrong, "no value of another key")
	assert.Empty(t, badClass, "errors only of the connection and timeout classes")
	assert.Empty(t, outside, "errors only while a node restarts (and %v after)", loadFaultTail)
	assert.GreaterOrEqual(t, elapsed, 10*time.Second)
	assert.Positive(t, len(errs), "restarting a node under load must surface errors (or the faults did not happen)")
	assert.Zero(t, libLeft, "goroutines of the library left after Close, e.g.:\n%s", libSample)
	assert.LessOrEqual(t, goroutinesAfter, goroutinesBefore, "goroutines leaked")
	assert.Equal(t, cBefore, cAfter, "C allocations still live after Close")
	// One thread per handle in a blocking cgo call, plus the runtime's.
	assert.LessOrEqual(t, threadMax.Load(), int64(threadsBefore+loadPoolSize+runtime.GOMAXPROCS(0)+16),
		"OS threads must stay bounded by the pool size, not the %d goroutines", loadWorkers)
	assert.Greater(t, okOps.Load(), int64(loadWorkers*100), "the load must make progress")
}
