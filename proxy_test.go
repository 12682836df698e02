package libmemcached

import (
	"bufio"
	"context"
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
// memcached servers). Helpers here are prefixed "px".

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
		n, err := s.Increment(ctr, 5)
		require.NoError(t, err)
		assert.Equal(t, uint64(15), n)
		n, err = s.Decrement(ctr, 3)
		require.NoError(t, err)
		assert.Equal(t, uint64(12), n)
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

		multi := pxKeys(t, 12)
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
