package libmemcached

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// byKeyStore is what Client and Pool offer with server keys.
type byKeyStore interface {
	Store
	GetByKey(serverKey, key string) (*Item, error)
	GetMultiByKey(serverKey string, keys []string) (map[string]*Item, error)
	SetByKey(serverKey string, item *Item) error
	AddByKey(serverKey string, item *Item) error
	ReplaceByKey(serverKey string, item *Item) error
	DeleteByKey(serverKey, key string) error
	IncrementByKey(serverKey, key string, delta uint64) (uint64, error)
	DecrementByKey(serverKey, key string, delta uint64) (uint64, error)
	TouchByKey(serverKey, key string, seconds int32) error
}

var (
	_ byKeyStore = (*Client)(nil)
	_ byKeyStore = (*Pool)(nil)
)

// Every key stored with one server key lives on ServerFor(serverKey), and
// every ByKey operation finds it there, on Client and Pool, in both
// protocols and under ketama as under modula.
func TestServerKeys(t *testing.T) {
	for _, proto := range protocols {
		for _, dist := range []string{"modula", "consistent"} {
			t.Run(proto.name+"/"+dist, func(t *testing.T) {
				servers := trio(t)
				opts := append([]Option{WithBehaviors(map[string]any{"distribution": dist})}, proto.opts...)
				c, p := clientAndPoolOn(t, servers, 2, opts...)
				direct := map[string]*Client{}
				for _, s := range servers {
					direct[s] = newClientOf(t, []string{s}, proto.opts...)
				}
				for name, st := range map[string]byKeyStore{"client": c, "pool": p} {
					serverKey := "user:" + name
					target, err := st.ServerFor(serverKey)
					require.NoError(t, err)
					keys := make([]string, 30)
					elsewhere := 0
					for i := range keys {
						keys[i] = ctKey(t, name+":"+strconv.Itoa(i))
						require.NoError(t, st.SetByKey(serverKey, &Item{Key: keys[i], Value: []byte(keys[i])}))
						if own, _ := st.ServerFor(keys[i]); own != target {
							elsewhere++
						}
					}
					require.Greater(t, elsewhere, 5, "%s: most keys' own server is another one, so the test means something", name)
					for _, k := range keys {
						for s, dc := range direct {
							_, err := dc.Get(k)
							if s == target {
								assert.NoError(t, err, "%s: %s lives on %s", name, k, target)
							} else {
								assert.ErrorIs(t, err, ErrCacheMiss, "%s: %s is not on %s", name, k, s)
							}
						}
						it, err := st.GetByKey(serverKey, k)
						require.NoError(t, err)
						assert.Equal(t, k, string(it.Value))
					}
					items, err := st.GetMultiByKey(serverKey, append(keys, ctKey(t, "absent")))
					require.NoError(t, err)
					assert.Len(t, items, len(keys), "%s: GetMultiByKey finds them all", name)
					for k, it := range items {
						assert.Equal(t, k, string(it.Value))
					}

					k := keys[0]
					assert.ErrorIs(t, st.AddByKey(serverKey, &Item{Key: k, Value: []byte("x")}), ErrNotStored)
					require.NoError(t, st.ReplaceByKey(serverKey, &Item{Key: k, Value: []byte("10")}))
					v, err := st.IncrementByKey(serverKey, k, 1<<40)
					require.NoError(t, err)
					assert.Equal(t, uint64(10+1<<40), v)
					v, err = st.DecrementByKey(serverKey, k, 1<<40)
					require.NoError(t, err)
					assert.Equal(t, uint64(10), v)
					require.NoError(t, st.TouchByKey(serverKey, k, 100))
					require.NoError(t, st.DeleteByKey(serverKey, k))
					_, err = st.GetByKey(serverKey, k)
					assert.ErrorIs(t, err, ErrCacheMiss)
					require.NoError(t, st.AddByKey(serverKey, &Item{Key: k, Value: []byte("again")}))
					it, err := direct[target].Get(k)
					require.NoError(t, err)
					assert.Equal(t, "again", string(it.Value), "AddByKey stored on the target too")

					// A key stored on another server than its own is not
					// found by a plain Get, nor removed by a plain Delete.
					for _, k := range keys[1:] {
						if own, _ := st.ServerFor(k); own != target {
							_, err := st.Get(k)
							assert.ErrorIs(t, err, ErrCacheMiss, "a plain Get looks on the key's own server")
							assert.ErrorIs(t, st.Delete(k), ErrCacheMiss)
							_, err = st.GetByKey(serverKey, k)
							assert.NoError(t, err, "still there")
							break
						}
					}
				}
			})
		}
	}
}

// Server keys are checked like keys, and a bad one reaches no server.
func TestServerKeyChecks(t *testing.T) {
	c := ctNew(t, []string{ctDeadAddr(t)})
	for _, sk := range []string{"", "has space", "ctl\x01", string(make([]byte, 251))} {
		_, err := c.GetByKey(sk, "k")
		assert.ErrorIs(t, err, ErrBadKeyProvided, "%q", sk)
		assert.ErrorIs(t, c.SetByKey(sk, &Item{Key: "k"}), ErrBadKeyProvided, "%q", sk)
		_, err = c.GetMultiByKey(sk, []string{"k"})
		assert.ErrorIs(t, err, ErrBadKeyProvided, "%q", sk)
		_, err = c.IncrementByKey(sk, "k", 1)
		assert.ErrorIs(t, err, ErrBadKeyProvided, "%q", sk)
		assert.ErrorIs(t, c.DeleteByKey(sk, "k"), ErrBadKeyProvided, "%q", sk)
		assert.ErrorIs(t, c.TouchByKey(sk, "k", 1), ErrBadKeyProvided, "%q", sk)
	}
	_, err := c.GetByKey("ok", "bad key")
	assert.ErrorIs(t, err, ErrBadKeyProvided, "the key itself is checked too")
	b := ctNew(t, []string{ctDeadAddr(t)}, WithBinaryProtocol())
	_, err = b.GetByKey("binary server key", "k")
	assert.NotErrorIs(t, err, ErrBadKeyProvided, "the binary protocol takes any bytes")
	assert.Error(t, err, "(and the dead server fails the call)")
}

// A ByKey operation's Event names the server key's server.
func TestServerKeyEvents(t *testing.T) {
	servers := trio(t)
	var rec recorder
	c := newClientOf(t, servers, WithObserver(rec.observe))
	target, err := c.ServerFor("group")
	require.NoError(t, err)
	require.NoError(t, c.SetByKey("group", &Item{Key: ctKey(t, "k"), Value: []byte("v")}))
	_, err = c.GetByKey("group", ctKey(t, "k"))
	require.NoError(t, err)
	evs := rec.take()
	require.Len(t, evs, 2)
	assert.Equal(t, Event{Op: "SetByKey", Keys: 1, Server: target, Batch: 1}, zeroTimes(evs[0]))
	assert.Equal(t, Event{Op: "GetByKey", Keys: 1, Hits: 1, Server: target, Batch: 1}, zeroTimes(evs[1]))
}
