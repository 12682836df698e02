package libmemcached

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached/internal/memcachedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Proxies: twemproxy (Debian's nutcracker, started in front of three real
// memcached servers) and a server whose VERSION line is not a number (a
// forwarding proxy of our own that answers version requests as mcrouter
// does). Helpers here are prefixed "px".

// pxRig is a twemproxy in front of three memcached servers.
type pxRig struct {
	proxy    *memcachedtest.Twemproxy
	backends []*memcachedServer
}

func pxTwemproxy(t testing.TB) *pxRig {
	t.Helper()
	r := &pxRig{}
	var addrs []string
	for i := 0; i < 3; i++ {
		s := newServer(t)
		r.backends = append(r.backends, s)
		addrs = append(addrs, s.Addr)
	}
	p, err := memcachedtest.StartTwemproxy(context.Background(), memcachedtest.TwemproxyConfig{Servers: addrs})
	require.NoError(t, err, "starting twemproxy")
	t.Cleanup(p.Stop)
	r.proxy = p
	return r
}

// pxKeys returns n keys that differ at the front: twemproxy's fnv1a_64
// keeps the hash's low 32 bits, which mix a key's last bytes poorly, so
// keys that differ only at their end cluster on one server.
func pxKeys(t testing.TB, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%d:px:%s", i, t.Name())
	}
	return keys
}

// landed returns how many of keys each backend holds, read over a client
// of its own.
func (r *pxRig) landed(t testing.TB, keys []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range r.backends {
		m, err := ctNew(t, []string{s.Addr}).GetMulti(keys)
		require.NoError(t, err)
		out[s.Addr] = len(m)
	}
	return out
}

// assertSpread checks that each of keys is on exactly one backend and
// that every backend holds some.
func (r *pxRig) assertSpread(t testing.TB, keys []string) {
	t.Helper()
	landed := r.landed(t, keys)
	total := 0
	for addr, n := range landed {
		assert.NotZero(t, n, "backend %s holds none of the keys: %v", addr, landed)
		total += n
	}
	assert.Equal(t, len(keys), total, "each key on one backend: %v", landed)
}

// pxTTL reads key's remaining time to live on the backend at addr with a
// meta get ("mg <key> t": -1 for none).
func pxTTL(t testing.TB, addr, key string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = io.WriteString(c, "mg "+key+" t\r\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	f := strings.Fields(line)
	require.True(t, len(f) == 2 && f[0] == "HD" && strings.HasPrefix(f[1], "t"), "mg answer %q", line)
	ttl, err := strconv.Atoi(f[1][1:])
	require.NoError(t, err)
	return ttl
}

// pxStore is what the proxy tests use of a Client or a Pool.
type pxStore interface {
	Store
	Version() (map[string]string, error)
	Stats() (map[string]map[string]string, error)
}

// pxStores runs body on a Client and on a Pool of the proxy.
func pxStores(t *testing.T, addr string, body func(t *testing.T, s pxStore)) {
	t.Run("client", func(t *testing.T) { body(t, ctNew(t, []string{addr})) })
	t.Run("pool", func(t *testing.T) {
		p, err := NewPool([]string{addr}, 8)
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
		body(t, p)
	})
}

// Every data operation, Ping and Version through twemproxy in the ASCII
// protocol, with the keys landing on all three memcached servers behind
// it.
func TestTwemproxyOperations(t *testing.T) {
	r := pxTwemproxy(t)
	pxStores(t, r.proxy.Addr, func(t *testing.T, s pxStore) {
		keys := pxKeys(t, 30)
		for i, k := range keys {
			require.NoError(t, s.Set(&Item{Key: k, Value: []byte("v" + strconv.Itoa(i)), Flags: uint32(i)}), "set %s", k)
		}
		r.assertSpread(t, keys)
		it, err := s.Get(keys[7])
		require.NoError(t, err)
		assert.Equal(t, "v7", string(it.Value))
		assert.Equal(t, uint32(7), it.Flags)
		assert.NotZero(t, it.CasID, "gets through twemproxy returns the CAS id")

		// One multi-get over keys of every backend (twemproxy splits it).
		m, err := s.GetMulti(append(keys, "absent:"+t.Name()))
		require.NoError(t, err)
		require.Len(t, m, len(keys))
		for i, k := range keys {
			assert.Equal(t, "v"+strconv.Itoa(i), string(m[k].Value), k)
			assert.NotZero(t, m[k].CasID, k)
		}

		k := keys[0]
		assert.ErrorIs(t, s.Add(&Item{Key: k, Value: []byte("x")}), ErrNotStored, "add of a present key")
		fresh := "fresh:" + t.Name()
		require.NoError(t, s.Add(&Item{Key: fresh, Value: []byte("a")}))
		require.NoError(t, s.Replace(&Item{Key: fresh, Value: []byte("b")}))
		assert.ErrorIs(t, s.Replace(&Item{Key: "absent:" + t.Name(), Value: []byte("x")}), ErrNotStored)
		require.NoError(t, s.Append(&Item{Key: fresh, Value: []byte(">")}))
		require.NoError(t, s.Prepend(&Item{Key: fresh, Value: []byte("<")}))
		it, err = s.Get(fresh)
		require.NoError(t, err)
		assert.Equal(t, "<b>", string(it.Value))

		// gets and cas pass through twemproxy 0.5.
		require.NoError(t, s.CompareAndSwap(&Item{Key: fresh, Value: []byte("c"), CasID: it.CasID}))
		assert.ErrorIs(t, s.CompareAndSwap(&Item{Key: fresh, Value: []byte("d"), CasID: it.CasID}), ErrCASConflict, "a stale CAS id")
		it, err = s.Get(fresh)
		require.NoError(t, err)
		assert.Equal(t, "c", string(it.Value))

		ctr := "ctr:" + t.Name()
		require.NoError(t, s.Set(&Item{Key: ctr, Value: []byte("10")}))
		for _, step := range []struct {
			op        func(string, uint64) (uint64, error)
			by, after uint64
		}{{s.Increment, 5, 15}, {s.Decrement, 3, 12}, {s.Increment, 1, 13}} {
			n, err := step.op(ctr, step.by)
			require.NoError(t, err)
			assert.Equal(t, step.after, n)
		}
		_, err = s.Increment("absent:"+t.Name(), 1)
		assert.ErrorIs(t, err, ErrCacheMiss)

		// touch passes through twemproxy 0.5: the backend holding the key
		// sees the new time to live.
		require.NoError(t, s.Touch(fresh, 1000))
		ttls := map[string]int{}
		for _, b := range r.backends {
			if m, _ := ctNew(t, []string{b.Addr}).GetMulti([]string{fresh}); len(m) == 1 {
				ttls[b.Addr] = pxTTL(t, b.Addr, fresh)
			}
		}
		require.Len(t, ttls, 1, "the key is on one backend")
		for _, ttl := range ttls {
			assert.InDelta(t, 1000, ttl, 5, "the touched key's time to live on its backend")
		}
		assert.ErrorIs(t, s.Touch("absent:"+t.Name(), 10), ErrCacheMiss)

		require.NoError(t, s.Delete(fresh))
		_, err = s.Get(fresh)
		assert.ErrorIs(t, err, ErrCacheMiss, "get after delete")
		assert.ErrorIs(t, s.Delete(fresh), ErrCacheMiss, "delete of an absent key")

		multi := pxKeys(t, 48) // 12 left a backend empty about once in 40 runs
		items := make([]*Item, len(multi))
		for i, k := range multi {
			items[i] = &Item{Key: "m" + k, Value: []byte("mv" + strconv.Itoa(i))}
			multi[i] = items[i].Key
		}
		failed, err := s.SetMulti(items)
		require.NoError(t, err)
		assert.Empty(t, failed)
		m, err = s.GetMulti(multi)
		require.NoError(t, err)
		require.Len(t, m, len(multi))
		for i, k := range multi {
			assert.Equal(t, "mv"+strconv.Itoa(i), string(m[k].Value))
		}
		r.assertSpread(t, multi)
		require.NoError(t, s.DeleteMulti(multi))
		m, err = s.GetMulti(multi)
		require.NoError(t, err)
		assert.Empty(t, m, "DeleteMulti through the proxy deleted every key")
		assert.Equal(t, map[string]int{r.backends[0].Addr: 0, r.backends[1].Addr: 0, r.backends[2].Addr: 0}, r.landed(t, multi))

		require.NoError(t, s.Ping())
		v, err := s.Version()
		require.NoError(t, err)
		direct, err := ctNew(t, []string{r.backends[0].Addr}).Version()
		require.NoError(t, err)
		assert.Equal(t, map[string]string{r.proxy.Addr: direct[r.backends[0].Addr]}, v,
			"twemproxy 0.5 forwards version to a backend: the memcached version, as numbers")
	})
}

// 64 goroutines Get through a Pool over twemproxy at once (the Pool folds
// them into shared multi-gets), each its own key, each reading its own
// value.
func TestTwemproxyPoolConcurrentGets(t *testing.T) {
	r := pxTwemproxy(t)
	p, err := NewPool([]string{r.proxy.Addr}, 4)
	require.NoError(t, err)
	defer p.Close()
	const n = 64
	keys := pxKeys(t, n)
	for i, k := range keys {
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte("value-" + strconv.Itoa(i))}))
	}
	r.assertSpread(t, keys)
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := make(chan struct{})
		for i, k := range keys {
			wg.Add(1)
			go func(i int, k string) {
				defer wg.Done()
				<-start
				it, err := p.Get(k)
				if err != nil {
					errs <- fmt.Errorf("get %s: %w", k, err)
					return
				}
				if want := "value-" + strconv.Itoa(i); string(it.Value) != want {
					errs <- fmt.Errorf("get %s: %q, want %q", k, it.Value, want)
				}
			}(i, k)
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// ---------------------------------------------------------------------------
// A server whose VERSION line is not a number

// pxWordyVersion is what the fake proxy answers to a version request, as
// mcrouter does.
const pxWordyVersion = "mcrouter 0.41.0"

// pxFakeMcrouter is a proxy on loopback that forwards every request to a
// memcached and every answer back, except that the text of version
// answers (ASCII "VERSION ..." lines and binary version packets) becomes
// pxWordyVersion. It counts the version answers it rewrote.
type pxFakeMcrouter struct {
	Addr string
	mu   sync.Mutex
	n    int
}

func (f *pxFakeMcrouter) rewrote() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// pxStartFakeMcrouter starts a pxFakeMcrouter in front of backend. After
// maxConns connections (0: no limit) it closes each new one at once, or,
// with hang, holds it open and never answers.
func pxStartFakeMcrouter(t testing.TB, backend string, maxConns int, hang bool) *pxFakeMcrouter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &pxFakeMcrouter{Addr: l.Addr().String()}
	var conns sync.WaitGroup
	var held []net.Conn
	t.Cleanup(func() {
		l.Close()
		conns.Wait()
		for _, c := range held {
			c.Close()
		}
	})
	conns.Add(1)
	go func() {
		defer conns.Done()
		for accepted := 1; ; accepted++ {
			client, err := l.Accept()
			if err != nil {
				return
			}
			if maxConns > 0 && accepted > maxConns {
				if hang {
					held = append(held, client)
				} else {
					client.Close()
				}
				continue
			}
			server, err := net.Dial("tcp", backend)
			if err != nil {
				client.Close()
				continue
			}
			conns.Add(2)
			go func() { // requests, as they are
				defer conns.Done()
				io.Copy(server, client)
				server.Close()
			}()
			go func() { // answers, version text rewritten
				defer conns.Done()
				f.answers(client, server)
				client.Close()
			}()
		}
	}()
	return f
}

// answers copies server's answers to client, rewriting version text.
func (f *pxFakeMcrouter) answers(client io.Writer, server io.Reader) {
	r := bufio.NewReader(server)
	w := bufio.NewWriter(client)
	defer w.Flush()
	for {
		if r.Buffered() == 0 && w.Flush() != nil {
			return
		}
		first, err := r.Peek(1)
		if err != nil {
			return
		}
		if first[0] == 0x81 { // a binary answer: 24-byte header, then the body
			hdr := make([]byte, 24)
			if _, err := io.ReadFull(r, hdr); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
			if _, err := io.ReadFull(r, body); err != nil {
				return
			}
			if hdr[1] == 0x0b && hdr[6] == 0 && hdr[7] == 0 {
				body = []byte(pxWordyVersion)
				binary.BigEndian.PutUint32(hdr[8:12], uint32(len(body)))
				f.count()
			}
			w.Write(hdr)
			w.Write(body)
			continue
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(line, "VERSION "):
			line = "VERSION " + pxWordyVersion + "\r\n"
			f.count()
		case strings.HasPrefix(line, "VALUE "): // the data block follows
			fields := strings.Fields(line)
			n, _ := strconv.Atoi(fields[3])
			w.WriteString(line)
			if _, err := io.CopyN(w, r, int64(n)+2); err != nil {
				return
			}
			continue
		}
		w.WriteString(line)
	}
}

func (f *pxFakeMcrouter) count() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

// Ping and Version against a server whose VERSION line is text: Ping
// succeeds, Version reports the server's own text for it, and the numbers
// of a real memcached next to it as before; data operations pass.
func TestWordyVersion(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			backend := newServer(t)
			other := newServer(t)
			f := pxStartFakeMcrouter(t, backend.Addr, 0, false)
			direct, err := ctNew(t, []string{other.Addr}).Version()
			require.NoError(t, err)
			numeric := direct[other.Addr]
			require.Regexp(t, `^\d+\.\d+\.\d+$`, numeric)

			c := ctNew(t, []string{f.Addr, other.Addr}, p.opts...)
			require.NoError(t, c.Ping())
			v, err := c.Version()
			require.NoError(t, err)
			assert.Equal(t, map[string]string{f.Addr: pxWordyVersion, other.Addr: numeric}, v)
			assert.GreaterOrEqual(t, f.rewrote(), 3, "the fake proxy answered the version requests itself")

			// Through the fake proxy alone, for data too, and on a Pool.
			only := ctNew(t, []string{f.Addr}, p.opts...)
			require.NoError(t, only.Set(&Item{Key: "wordy", Value: []byte("v")}))
			it, err := only.Get("wordy")
			require.NoError(t, err)
			assert.Equal(t, "v", string(it.Value))
			pool, err := NewPool([]string{f.Addr}, 2, p.opts...)
			require.NoError(t, err)
			defer pool.Close()
			require.NoError(t, pool.Warm(context.Background()), "Warm connects to a server whose VERSION line is words")
			require.NoError(t, pool.Ping())
			v, err = pool.Version()
			require.NoError(t, err)
			assert.Equal(t, map[string]string{f.Addr: pxWordyVersion}, v)
		})
	}
}

// When the second request, for the text, fails (here the server closes
// every connection after the first), Version reports that server's
// failure and what failed.
func TestWordyVersionTextFails(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			f := pxStartFakeMcrouter(t, newServer(t).Addr, 1, false)
			c := ctNew(t, []string{f.Addr}, p.opts...)
			_, err := c.Version()
			e := ctErr(t, err)
			assert.Equal(t, f.Addr, e.Server)
			assert.Equal(t, "version", e.Op)
			assert.ErrorIs(t, err, ErrConnectionFailure)
			assert.Contains(t, e.Message, "closed the connection before answering the version request")
			assert.Equal(t, 1, f.rewrote(), "libmemcached's request was answered in words")
		})
	}
}

// The second request honours the client's timeouts: a server that
// answered libmemcached and then hangs fails Version within the poll
// timeout, with a timeout error.
func TestWordyVersionTextTimesOut(t *testing.T) {
	f := pxStartFakeMcrouter(t, newServer(t).Addr, 1, true)
	const pollMS = 300
	c := ctNew(t, []string{f.Addr}, WithBehaviors(map[string]any{"_poll_timeout": pollMS, "connect_timeout": pollMS}))
	start := time.Now()
	_, err := c.Version()
	elapsed := time.Since(start)
	e := ctErr(t, err)
	assert.True(t, e.Timeout(), "%v", err)
	assert.Equal(t, f.Addr, e.Server)
	assert.Contains(t, e.Message, "version request")
	assert.GreaterOrEqual(t, elapsed, pollMS*time.Millisecond/2)
	assert.Less(t, elapsed, pollMS*time.Millisecond+2*time.Second)
}

// ---------------------------------------------------------------------------
// Refusals

// twemproxy closes the connection on a command it does not support
// (stats, flush_all) and on the binary protocol, without an answer. The
// error says which command was refused, and the client goes on working.
func TestTwemproxyRefusals(t *testing.T) {
	r := pxTwemproxy(t)
	pxStores(t, r.proxy.Addr, func(t *testing.T, s pxStore) {
		k := "kept:" + t.Name()
		require.NoError(t, s.Set(&Item{Key: k, Value: []byte("v")}))

		err := s.FlushAll()
		e := ctErr(t, err)
		assert.Equal(t, "flush_all", e.Op)
		assert.Equal(t, r.proxy.Addr, e.Server)
		assert.ErrorIs(t, err, ErrNotSupported, "%v", err)
		assert.False(t, e.Temporary(), "a refusal is not temporary: %v", err)
		assert.Contains(t, err.Error(), `refused the command "flush_all" (twemproxy does not support it)`)
		it, err := s.Get(k)
		require.NoError(t, err, "after a refused flush_all")
		assert.Equal(t, "v", string(it.Value), "nothing was flushed")

		_, err = s.Stats()
		e = ctErr(t, err)
		assert.Equal(t, "stats", e.Op)
		assert.Equal(t, r.proxy.Addr, e.Server)
		assert.ErrorIs(t, err, ErrNotSupported, "%v", err)
		assert.Contains(t, err.Error(), `refused the command "stats"`)
		require.NoError(t, s.Set(&Item{Key: k, Value: []byte("w")}), "after a refused stats")
	})

	// The binary protocol: twemproxy speaks ASCII only.
	c := ctNew(t, []string{r.proxy.Addr}, WithBinaryProtocol())
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"set", func() error { return c.Set(&Item{Key: "bin:" + t.Name(), Value: []byte("v")}) }},
		{"get", func() error { _, err := c.Get("bin:" + t.Name()); return err }},
		{"get_multi", func() error { _, err := c.GetMulti([]string{"bin:" + t.Name(), "bin2:" + t.Name()}); return err }},
		{"incr", func() error { _, err := c.Increment("bin:"+t.Name(), 1); return err }},
		{"touch", func() error { return c.Touch("bin:"+t.Name(), 10) }},
		{"flush_all", c.FlushAll},
		{"ping", c.Ping},
		{"version", func() error { _, err := c.Version(); return err }},
	} {
		err := op.run()
		e := ctErr(t, err)
		assert.Equal(t, op.name, e.Op)
		assert.ErrorIs(t, err, ErrNotSupported, "binary %s: %v", op.name, err)
		assert.Equal(t, r.proxy.Addr, e.Server, "binary %s", op.name)
		assert.Contains(t, err.Error(), "refused the binary protocol (twemproxy speaks only ASCII", "binary %s", op.name)
	}
}

// libmemcached discards the answers to binary flushes; FlushAll reports
// a server that failed from the handle's last error, which a flush starts
// afresh: an earlier miss or failure does not fail it.
func TestBinaryFlushAllOutcome(t *testing.T) {
	s := newServer(t)
	dead := ctDeadAddr(t)
	c := ctNew(t, []string{s.Addr}, WithBinaryProtocol())
	require.NoError(t, c.Set(&Item{Key: "flushed", Value: []byte("v")}))
	_, err := c.Get("absent")
	require.ErrorIs(t, err, ErrCacheMiss)
	require.Error(t, ctNew(t, []string{dead}, WithBinaryProtocol()).Set(&Item{Key: "k", Value: []byte("v")}))
	require.NoError(t, c.FlushAll(), "a flush after a miss")
	_, err = c.Get("flushed")
	assert.ErrorIs(t, err, ErrCacheMiss, "flushed")

	both := ctNew(t, []string{s.Addr, dead}, WithBinaryProtocol())
	err = both.FlushAll()
	e := ctErr(t, err)
	assert.ErrorIs(t, err, ErrConnectionFailure, "%v", err)
	assert.Equal(t, dead, e.Server)
}

// A server that closes the connection because it went away is not
// mistaken for a refusal: the error stays a connection failure.
func TestProxyClosedIsNotRefused(t *testing.T) {
	s := newServer(t)
	c := ctNew(t, []string{s.Addr})
	require.NoError(t, c.Set(&Item{Key: "gone", Value: []byte("v")}))
	s.Stop()
	_, err := c.Get("gone")
	e := ctErr(t, err)
	assert.NotEqual(t, ReturnNotSupported, e.Code, "%v", err)
	assert.True(t, e.Temporary(), "%v", err)
	assert.NotContains(t, err.Error(), "refused the")
}

// A binary-protocol request on a connection a restarted server closed is
// not mistaken for a refusal of the binary protocol either: the new
// process answers the binary protocol on a new connection.
func TestProxyRestartedIsNotRefused(t *testing.T) {
	s := newServer(t)
	c := ctNew(t, []string{s.Addr}, WithBinaryProtocol())
	require.NoError(t, c.Set(&Item{Key: "restarted", Value: []byte("v")}))
	s.Stop()
	ctStartOnPort(t, s.Port)
	_, err := c.Get("restarted")
	e := ctErr(t, err)
	assert.NotEqual(t, ReturnNotSupported, e.Code, "%v", err)
	assert.True(t, e.Temporary(), "%v", err)
	assert.NotContains(t, err.Error(), "refused the")
}
