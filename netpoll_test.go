package libmemcached

import (
	"fmt"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inCOrSyscall is how many goroutines are in cgo calls or system calls
// now, each holding an OS thread (runtime/metrics).
func inCOrSyscall(t *testing.T) int {
	t.Helper()
	m := []metrics.Sample{{Name: "/sched/goroutines/not-in-go:goroutines"}}
	metrics.Read(m)
	require.Equal(t, metrics.KindUint64, m[0].Value.Kind(), "runtime/metrics has %s", m[0].Name)
	return int(m[0].Value.Uint64())
}

// concurrentGets starts one Get per client, all at once, against a
// paused server, counts the goroutines holding an OS thread (in C or a
// system call) while they wait, resumes the server and checks that each
// got its own value.
func concurrentGets(t *testing.T, s *memcachedServer, clients []*Client) (holding int) {
	t.Helper()
	for i, c := range clients {
		require.NoError(t, c.Set(&Item{Key: fmt.Sprint("np:", i), Value: []byte(fmt.Sprint("v", i))}))
	}
	require.NoError(t, s.Signal(syscall.SIGSTOP))
	defer s.Signal(syscall.SIGCONT)
	time.Sleep(20 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *Client) {
			defer wg.Done()
			it, err := c.Get(fmt.Sprint("np:", i))
			if err == nil && string(it.Value) != fmt.Sprint("v", i) {
				err = fmt.Errorf("client %d got %q", i, it.Value)
			}
			errs[i] = err
		}(i, c)
	}
	time.Sleep(300 * time.Millisecond) // every Get is waiting by now
	holding = inCOrSyscall(t)
	require.NoError(t, s.Signal(syscall.SIGCONT))
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "client %d", i)
	}
	return holding
}

// Concurrent gets wait for their replies in Go's netpoller, not in C: of
// 32 Clients waiting at once on a paused server, only the first (alone,
// it waits in C) holds an OS thread, where waiting in C holds one each;
// every Get still gets its own value.
func TestNetpollWaitHoldsNoThread(t *testing.T) {
	s := newServer(t)
	const n = 32
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = ctNew(t, []string{s.Addr})
	}
	waits := pollConns.waits.Load()
	polled := concurrentGets(t, s, clients)
	assert.GreaterOrEqual(t, pollConns.waits.Load()-waits, int64(n-2), "the Gets waited in the netpoller")

	netpollWaits.Store(false)
	defer netpollWaits.Store(true)
	inC := concurrentGets(t, s, clients)
	t.Logf("goroutines holding an OS thread: %d with %d Gets waiting in the netpoller, %d waiting in C", polled, n, inC)
	assert.LessOrEqual(t, polled, 4, "Gets waiting in the netpoller hold no thread")
	assert.GreaterOrEqual(t, inC, n, "Gets waiting in C hold one thread each (the comparison's premise)")
}

// A paused server: a Get waiting in the netpoller times out after the
// poll timeout, once (the finishing call does not wait a second time),
// in both protocols' mget path, and the client works again after.
func TestNetpollWaitTimesOut(t *testing.T) {
	s := newServer(t)
	const n = 8
	const timeout = 300 * time.Millisecond
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = ctNew(t, []string{s.Addr}, WithBehaviors(map[string]any{"_poll_timeout": int(timeout / time.Millisecond)}))
		require.NoError(t, clients[i].Set(&Item{Key: fmt.Sprint("npt:", i), Value: []byte("v")}))
	}
	require.NoError(t, s.Signal(syscall.SIGSTOP))
	time.Sleep(20 * time.Millisecond)
	var wg sync.WaitGroup
	took := make([]time.Duration, n)
	errs := make([]error, n)
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *Client) {
			defer wg.Done()
			start := time.Now()
			if i%2 == 0 {
				_, errs[i] = c.Get(fmt.Sprint("npt:", i))
			} else {
				_, errs[i] = c.GetMulti([]string{fmt.Sprint("npt:", i), "npt:x"})
			}
			took[i] = time.Since(start)
		}(i, c)
	}
	wg.Wait()
	require.NoError(t, s.Signal(syscall.SIGCONT))
	for i, err := range errs {
		require.Error(t, err, "client %d", i)
		assert.True(t, ctErr(t, err).Timeout(), "client %d: %v", i, err)
		assert.GreaterOrEqual(t, took[i], timeout-20*time.Millisecond, "client %d", i)
		assert.Less(t, took[i], timeout+timeout/2, "client %d waited about one poll timeout, not two", i)
	}
	for i, c := range clients {
		it, err := c.Get(fmt.Sprint("npt:", i))
		require.NoError(t, err, "client %d after the pause", i)
		assert.Equal(t, "v", string(it.Value))
	}
}

// The netpoller's duplicates of libmemcached's sockets are released when
// the Clients and Pools that own the connections are closed: the server
// sees the connections end, and the descriptors are gone.
func TestNetpollDuplicatesReleased(t *testing.T) {
	s := newServer(t)
	base := pollConnCount()
	clients := make([]*Client, 16)
	for i := range clients {
		c, err := New([]string{s.Addr})
		require.NoError(t, err)
		clients[i] = c
	}
	p, err := NewPool([]string{s.Addr}, 4)
	require.NoError(t, err)
	waits := pollConns.waits.Load()
	concurrentGets(t, s, clients)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_, _ = p.Get(fmt.Sprint("np:", i%16))
			}
		}()
	}
	wg.Wait()
	require.Greater(t, pollConns.waits.Load(), waits)
	require.Greater(t, pollConnCount(), base, "duplicates were made")
	for _, c := range clients {
		require.NoError(t, c.Close())
	}
	require.NoError(t, p.Close())
	assert.Equal(t, base, pollConnCount(), "every duplicate released")
	assertConns(t, s.Addr, 0, "the server sees every connection closed")
}
