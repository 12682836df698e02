package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Point 3 of the issue: a hung node (paused: connections stay open, nothing
// answers). Its keys time out within the poll timeout, the other nodes are
// unaffected, the client recovers after Unpause, and no read after a
// timeout ever returns a reply meant for an earlier request.

var protocols = []struct {
	name string
	opts []libmemcached.Option
}{
	{"ascii", nil},
	{"binary", []libmemcached.Option{libmemcached.WithBinaryProtocol()}},
}

// belongs reports whether value was written for key by these tests:
// valueFor(key), possibly followed by "|" and a suffix.
func belongs(key string, value []byte) bool {
	want := string(valueFor(key))
	v := string(value)
	return v == want || strings.HasPrefix(v, want+"|")
}

// hungChecker runs the operations of one fault round and collects what the
// test asserts at the end.
type hungChecker struct {
	t           *testing.T
	maxHung     time.Duration // slowest operation on the hung node's keys
	maxLive     time.Duration // slowest operation on the other keys
	notTimeout  []error
	liveErrs    []error
	wrongValues []string
}

// hungOp runs an operation on the hung node's keys: it must fail with a
// timeout, within the bound.
func (h *hungChecker) hungOp(what string, f func() error) {
	var err error
	d := timed(func() { err = f() })
	h.maxHung = max(h.maxHung, d)
	if err == nil {
		h.notTimeout = append(h.notTimeout, fmt.Errorf("%s succeeded on a paused node", what))
		return
	}
	if e, ok := err.(*libmemcached.Error); !ok || !e.Timeout() {
		h.notTimeout = append(h.notTimeout, fmt.Errorf("%s: %w", what, err))
	}
}

// liveOp runs an operation on the other keys: it must succeed.
func (h *hungChecker) liveOp(what string, f func() error) {
	var err error
	d := timed(func() { err = f() })
	h.maxLive = max(h.maxLive, d)
	if err != nil {
		h.liveErrs = append(h.liveErrs, fmt.Errorf("%s: %w", what, err))
	}
}

func (h *hungChecker) value(key string, it *libmemcached.Item) {
	if it != nil && (it.Key != key || !belongs(key, it.Value)) {
		h.wrongValues = append(h.wrongValues, fmt.Sprintf("%q read %q (item key %q)", key, it.Value, it.Key))
	}
}

func (h *hungChecker) items(m map[string]*libmemcached.Item) {
	for k, it := range m {
		h.value(k, it)
	}
}

func TestHungNode(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			nodes := startCluster(t, 3, nodeOptions{})
			hung := nodes[0]
			// The failover recipe as users would run it (dead_timeout 60).
			opts := append([]libmemcached.Option{libmemcached.WithBehaviors(recipe(1, 60))}, p.opts...)
			c := newClient(t, addrs(nodes), opts...)
			pool, err := libmemcached.NewPool(addrs(nodes), 2, opts...)
			require.NoError(t, err)
			t.Cleanup(func() { pool.Close() })

			keys := keyList("hung", 300)
			setAll(t, newClient(t, addrs(nodes), append(append([]libmemcached.Option{}, opts...), patient)...), keys)
			hungKeys, liveKeys := splitKeys(t, c, keys, hung.Addr())
			require.GreaterOrEqual(t, len(hungKeys), 20)
			h := &hungChecker{t: t}
			var maxRecover time.Duration
			const rounds = 3
			for round := 0; round < rounds; round++ {
				hk := func(i int) string { return hungKeys[(round*7+i)%len(hungKeys)] }
				lk := func(i int) string { return liveKeys[(round*7+i)%len(liveKeys)] }
				require.NoError(t, hung.Pause())

				h.hungOp("Get", func() error { _, err := c.Get(hk(0)); return err })
				h.liveOp("Get", func() error {
					it, err := c.Get(lk(0))
					h.value(lk(0), it)
					return err
				})
				h.hungOp("GetMulti", func() error {
					m, err := c.GetMulti([]string{lk(1), hk(1), lk(2), hk(2)})
					h.items(m)
					return err
				})
				h.hungOp("Set", func() error {
					return c.Set(&libmemcached.Item{Key: hk(3), Value: []byte(string(valueFor(hk(3))) + fmt.Sprintf("|late-%d", round))})
				})
				h.liveOp("Set", func() error {
					return c.Set(&libmemcached.Item{Key: lk(3), Value: []byte(string(valueFor(lk(3))) + fmt.Sprintf("|during-%d", round))})
				})
				h.hungOp("Pool.Get", func() error { _, err := pool.Get(hk(4)); return err })
				h.hungOp("Pool.GetMulti", func() error {
					m, err := pool.GetMulti([]string{hk(5), lk(5)})
					h.items(m)
					return err
				})
				for i := 0; i < 4; i++ { // both pool handles, reused after their timeouts
					h.liveOp("Pool.Get", func() error {
						it, err := pool.Get(lk(10 + i))
						h.value(lk(10+i), it)
						return err
					})
				}

				require.NoError(t, hung.Unpause())
				unpaused := time.Now()
				// The trap: the next request on the node that timed out
				// asks for another key; a connection that was not reset
				// would hand it the late reply to an earlier request.
				var recovered time.Duration = -1
				for time.Since(unpaused) < 3*time.Second {
					it, err := c.Get(hk(6))
					if err == nil {
						h.value(hk(6), it)
						recovered = time.Since(unpaused)
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				require.Positive(t, recovered, "the client did not recover within 3s of Unpause")
				maxRecover = max(maxRecover, recovered)
				err := pool.Do(context.Background(), func(pc *libmemcached.Client) error {
					for i := 7; i < 12; i++ {
						it, err := pc.Get(hk(i))
						if err != nil {
							return err
						}
						h.value(hk(i), it)
					}
					return nil
				})
				require.NoError(t, err, "pool after Unpause")
				// Everything reads back as its own key's value.
				for start := 0; start < len(keys); start += 100 {
					m, err := c.GetMulti(keys[start:min(start+100, len(keys))])
					require.NoError(t, err)
					h.items(m)
				}
				for i := 0; i < 20; i++ {
					it, err := pool.Get(hk(i))
					require.NoError(t, err)
					h.value(hk(i), it)
				}
			}
			prefix := "hung." + p.name
			// libmemcached counts only failed connects towards ejection, and
			// a paused node still accepts connections: the recipe never
			// ejects a hung node; each operation on its keys costs a poll
			// timeout for as long as it hangs.
			s, err := c.ServerFor(hungKeys[0])
			require.NoError(t, err)
			figure(t, prefix+".ejected_by_recipe", s != hung.Addr(), "")
			figure(t, prefix+".max_op_on_hung_node", h.maxHung, "ms")
			figure(t, prefix+".max_op_on_live_nodes", h.maxLive, "ms")
			figure(t, prefix+".recover_after_unpause", maxRecover, "ms")
			assert.Empty(t, h.notTimeout, "operations on a hung node's keys must fail with Timeout()==true")
			assert.Empty(t, h.liveErrs, "the other nodes must be unaffected")
			assert.Empty(t, h.wrongValues, "a value read for one key must never be another key's (late reply)")
			assert.LessOrEqual(t, h.maxHung, opBound, "a hung node may cost a poll timeout, not more")
			assert.GreaterOrEqual(t, h.maxHung, recipePollMS*time.Millisecond*9/10, "the timeout is the poll timeout")
			assert.LessOrEqual(t, h.maxLive, opBound)
		})
	}
}
