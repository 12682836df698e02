package integration

import (
	"bytes"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Point 8 of the issue: big and odd values and keys, against servers with
// the default item size (1 MB) and with -I 5m.

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// asciiSafe reports whether the ASCII protocol can carry key: no spaces,
// no control bytes.
func asciiSafe(key string) bool {
	for i := 0; i < len(key); i++ {
		if b := key[i]; b <= ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

func TestBigAndOddValues(t *testing.T) {
	nodes := startCluster(t, 1, nodeOptions{})
	big := startNode(t, nodeOptions{args: []string{"-I", "5m"}})
	const bound = 5 * time.Second // hang bound for the large transfers

	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			opts := append([]libmemcached.Option{libmemcached.WithBehaviors(map[string]any{"_poll_timeout": 2000, "connect_timeout": 1000})}, p.opts...)
			c := newClient(t, []string{nodes[0].Addr()}, opts...)

			t.Run("empty value", func(t *testing.T) {
				for _, v := range [][]byte{nil, {}} {
					require.NoError(t, c.Set(&libmemcached.Item{Key: "empty", Value: v, Flags: 7}))
					it, err := c.Get("empty")
					require.NoError(t, err)
					assert.Empty(t, it.Value)
					assert.Equal(t, uint32(7), it.Flags)
					m, err := c.GetMulti([]string{"empty", "absent"})
					require.NoError(t, err)
					require.Contains(t, m, "empty")
					assert.Empty(t, m["empty"].Value)
				}
			})

			t.Run("1 MB - 1 KB value", func(t *testing.T) {
				v := randomBytes(1<<20-1<<10, 1)
				var err error
				d := timed(func() { err = c.Set(&libmemcached.Item{Key: "almost-1mb", Value: v}) })
				require.NoError(t, err)
				figure(t, "values."+p.name+".set_1MB_minus_1KB", d, "ms")
				var it *libmemcached.Item
				d = timed(func() { it, err = c.Get("almost-1mb") })
				require.NoError(t, err)
				figure(t, "values."+p.name+".get_1MB_minus_1KB", d, "ms")
				assert.True(t, bytes.Equal(v, it.Value), "the value must read back byte for byte (%d bytes read)", len(it.Value))
				m, err := c.GetMulti([]string{"almost-1mb", "empty"})
				require.NoError(t, err)
				assert.True(t, bytes.Equal(v, m["almost-1mb"].Value))
			})

			t.Run("over the item size", func(t *testing.T) {
				require.NoError(t, c.Set(&libmemcached.Item{Key: "before", Value: []byte("still here")}))
				for _, size := range []int{1<<20 + 1, 2 << 20} {
					var err error
					d := timed(func() { err = c.Set(&libmemcached.Item{Key: "too-big", Value: randomBytes(size, 2)}) })
					require.Error(t, err, "a %d-byte value on a server with -I 1m", size)
					e := asError(t, err)
					t.Logf("%d bytes: %v (%v)", size, err, d)
					figure(t, "values."+p.name+".over_item_size_error", e.Code.String(), "")
					assert.True(t, errors.Is(err, libmemcached.ErrE2BIG) || e.Code == libmemcached.ReturnServerError,
						"want E2BIG or SERVER_ERROR (object too large), got %v", err)
					assert.False(t, e.Timeout(), "a refused value is not a timeout: %v", err)
					assert.LessOrEqual(t, d, bound)
					// The client still works, on the same connection or a new one.
					it, err := c.Get("before")
					require.NoError(t, err, "the client must still work after a refused value")
					assert.Equal(t, "still here", string(it.Value))
					_, err = c.Get("too-big")
					assert.ErrorIs(t, err, libmemcached.ErrCacheMiss, "nothing was stored")
				}
				require.NoError(t, c.Set(&libmemcached.Item{Key: "after", Value: []byte("ok")}))
			})

			t.Run("4 MB value with -I 5m", func(t *testing.T) {
				cb := newClient(t, []string{big.Addr()}, opts...)
				v := randomBytes(4<<20, 3)
				var err error
				d := timed(func() { err = cb.Set(&libmemcached.Item{Key: "four-mb", Value: v}) })
				require.NoError(t, err)
				figure(t, "values."+p.name+".set_4MB", d, "ms")
				var it *libmemcached.Item
				d = timed(func() { it, err = cb.Get("four-mb") })
				require.NoError(t, err)
				figure(t, "values."+p.name+".get_4MB", d, "ms")
				assert.True(t, bytes.Equal(v, it.Value), "4 MB must read back byte for byte (%d bytes read)", len(it.Value))
				// The same value is refused by the 1 MB server.
				err = c.Set(&libmemcached.Item{Key: "four-mb", Value: v})
				require.Error(t, err)
				_, err = c.Get("before")
				require.NoError(t, err)
			})

			t.Run("250-byte keys", func(t *testing.T) {
				k := strings.Repeat("k", 249) + "1"
				require.Len(t, k, libmemcached.MaxKeyLength)
				require.NoError(t, c.Set(&libmemcached.Item{Key: k, Value: valueFor(k)}))
				it, err := c.Get(k)
				require.NoError(t, err)
				assert.Equal(t, k, it.Key)
				assert.True(t, belongs(k, it.Value))
				m, err := c.GetMulti([]string{k, "empty"})
				require.NoError(t, err)
				assert.Contains(t, m, k)
				require.NoError(t, c.Delete(k))
				long := k + "x"
				err = c.Set(&libmemcached.Item{Key: long, Value: []byte("x")})
				assert.ErrorIs(t, err, libmemcached.ErrBadKeyProvided, "a 251-byte key is refused before it is sent")
				_, err = c.Get(long)
				assert.ErrorIs(t, err, libmemcached.ErrBadKeyProvided)
			})

			t.Run("binary keys", func(t *testing.T) {
				// Every byte value, in keys of up to 250 bytes.
				var keys []string
				all := make([]byte, 256)
				for i := range all {
					all[i] = byte(i)
				}
				for start := 0; start < 256; start += 50 {
					keys = append(keys, "bin:"+string(all[start:min(start+50, 256)]))
				}
				keys = append(keys, "bin:\r\nget other\r\n", "bin: space", "bin:\x00nul", string(randomBytes(250, 4)))
				if p.name == "ascii" {
					// The ASCII protocol cannot carry spaces and control
					// bytes: such keys are refused before anything is
					// sent; the others (bytes >= 0x80 included) work.
					var ok []string
					for _, k := range keys {
						if !asciiSafe(k) {
							err := c.Set(&libmemcached.Item{Key: k, Value: valueFor(k)})
							assert.ErrorIs(t, err, libmemcached.ErrBadKeyProvided, "the ASCII protocol cannot carry key %q", k)
							_, err = c.Get(k)
							assert.ErrorIs(t, err, libmemcached.ErrBadKeyProvided)
							continue
						}
						ok = append(ok, k)
					}
					require.NotEmpty(t, ok)
					keys = ok
				}
				for _, k := range keys {
					require.NoError(t, c.Set(&libmemcached.Item{Key: k, Value: valueFor(k)}), "Set(%q)", k)
				}
				for _, k := range keys {
					it, err := c.Get(k)
					require.NoError(t, err, "Get(%q)", k)
					assert.Equal(t, k, it.Key)
					assert.True(t, belongs(k, it.Value), "Get(%q) = %q", k, it.Value)
				}
				m, err := c.GetMulti(keys)
				require.NoError(t, err)
				assert.Len(t, m, len(keys))
				for k, it := range m {
					assert.True(t, belongs(k, it.Value), "GetMulti[%q] = %q", k, it.Value)
				}
				for _, k := range keys {
					require.NoError(t, c.Delete(k), "Delete(%q)", k)
				}
				m, err = c.GetMulti(keys)
				require.NoError(t, err)
				assert.Empty(t, m)
			})
		})
	}
}
