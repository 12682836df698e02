package integration

import (
	"fmt"
	"testing"

	"github.com/libmemcached-go/libmemcached"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Point 1 of the issue: keys spread over the nodes as libmemcached says
// (ServerFor agrees with where each key really is), weights count, and a
// 4th node remaps few keys with ketama and most with modula.

const distKeys = 10000

func keyList(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%05d", prefix, i)
	}
	return keys
}

func valueFor(key string) []byte { return []byte("value-of|" + key) }

// setAll stores valueFor(key) for every key, in batches.
func setAll(t testing.TB, c *libmemcached.Client, keys []string) {
	t.Helper()
	for start := 0; start < len(keys); start += 500 {
		end := min(start+500, len(keys))
		items := make([]*libmemcached.Item, 0, end-start)
		for _, k := range keys[start:end] {
			items = append(items, &libmemcached.Item{Key: k, Value: valueFor(k)})
		}
		failed, err := c.SetMulti(items)
		require.NoError(t, err, "SetMulti (%d keys failed)", len(failed))
	}
}

// getAll reads every key with GetMulti in batches and checks each value
// found belongs to its key; it returns the keys found.
func getAll(t testing.TB, c *libmemcached.Client, keys []string) map[string]bool {
	t.Helper()
	found := make(map[string]bool, len(keys))
	for start := 0; start < len(keys); start += 1000 {
		end := min(start+1000, len(keys))
		items, err := c.GetMulti(keys[start:end])
		require.NoError(t, err)
		for k, it := range items {
			require.Equal(t, string(valueFor(k)), string(it.Value), "value read for %q", k)
			found[k] = true
		}
	}
	return found
}

// locate reads every key from each node through a single-server client
// and returns the index of the node holding it; a key on two nodes fails
// the test.
func locate(t testing.TB, nodes []node, keys []string) map[string]int {
	t.Helper()
	where := make(map[string]int, len(keys))
	for i, n := range nodes {
		c := newClient(t, []string{n.Addr()}, patient)
		for k := range getAll(t, c, keys) {
			if j, dup := where[k]; dup {
				t.Fatalf("key %q is on node %d and on node %d", k, j, i)
			}
			where[k] = i
		}
	}
	return where
}

func flushAll(t testing.TB, nodes []node) {
	t.Helper()
	for _, n := range nodes {
		require.NoError(t, newClient(t, []string{n.Addr()}, patient).FlushAll())
	}
}

func TestDistribution(t *testing.T) {
	nodes := startCluster(t, 4, nodeOptions{})
	three := nodes[:3]
	index := map[string]int{}
	for i, n := range nodes {
		index[n.Addr()] = i
	}
	keys := keyList("dist", distKeys)

	t.Run("ketama spread and ServerFor", func(t *testing.T) {
		flushAll(t, nodes)
		c := newClient(t, addrs(three), libmemcached.WithBehaviors(map[string]any{"ketama": true}))
		setAll(t, c, keys)
		require.Len(t, getAll(t, c, keys), distKeys, "every key set must read back")
		where := locate(t, three, keys)
		require.Len(t, where, distKeys, "every key must be on exactly one node")
		counts := make([]int, 3)
		mismatch := 0
		for _, k := range keys {
			s, err := c.ServerFor(k)
			require.NoError(t, err)
			if index[s] != where[k] {
				mismatch++
			}
			counts[where[k]]++
		}
		assert.Zero(t, mismatch, "keys whose ServerFor differs from the node holding them")
		for i, n := range counts {
			share := 100 * float64(n) / distKeys
			figure(t, fmt.Sprintf("distribution.ketama.share.node%d", i), share, "%")
			assert.True(t, share >= 20 && share <= 47, "node %d holds %.1f%% of the keys; want 20-47%%", i, share)
		}
	})

	t.Run("weights", func(t *testing.T) {
		// "host:port:2" doubles a server's share with weighted ketama
		// (ketama_weighted); plain ketama ignores weights in
		// libmemcached 1.1, which the figure shows.
		servers := []string{three[0].Addr() + ":2", three[1].Addr(), three[2].Addr()}
		for _, mode := range []string{"ketama_weighted", "ketama"} {
			flushAll(t, nodes)
			c := newClient(t, servers, libmemcached.WithBehaviors(map[string]any{mode: true}))
			wkeys := keyList("w-"+mode, distKeys)
			setAll(t, c, wkeys)
			where := locate(t, three, wkeys)
			require.Len(t, where, distKeys)
			counts := make([]int, 3)
			for _, k := range wkeys {
				counts[where[k]]++
			}
			ratio := float64(counts[0]) / (float64(counts[1]+counts[2]) / 2)
			for i, n := range counts {
				weight := 1
				if i == 0 {
					weight = 2
				}
				figure(t, fmt.Sprintf("distribution.%s.share.node%d_weight%d", mode, i, weight), 100*float64(n)/distKeys, "%")
			}
			figure(t, "distribution."+mode+".weight2_vs_weight1", ratio, "x")
			if mode == "ketama_weighted" {
				// Over 1000 random port choices the ratio ranged from
				// 1.52 to 2.71 (ketama places points by hashing
				// "host:port-n"): bounds that do not flake.
				assert.True(t, ratio >= 1.4 && ratio <= 2.9, "a weight-2 server holds %.2fx the keys of a weight-1 server; want about 2x", ratio)
			}
		}
	})

	for _, mode := range []struct {
		name      string
		behaviors map[string]any
	}{
		{"ketama", map[string]any{"ketama": true}},
		{"modula", map[string]any{"distribution": "modula"}},
	} {
		t.Run("add a 4th node/"+mode.name, func(t *testing.T) {
			flushAll(t, nodes)
			c3 := newClient(t, addrs(three), libmemcached.WithBehaviors(mode.behaviors))
			c4 := newClient(t, addrs(nodes), libmemcached.WithBehaviors(mode.behaviors))
			rkeys := keyList("remap-"+mode.name, distKeys)
			setAll(t, c3, rkeys)
			// Against the servers: a key still found through the 4-node
			// client did not move.
			hits := getAll(t, c4, rkeys)
			moved, movedToNew := 0, 0
			for _, k := range rkeys {
				s3, err := c3.ServerFor(k)
				require.NoError(t, err)
				s4, err := c4.ServerFor(k)
				require.NoError(t, err)
				if s3 != s4 {
					moved++
					if s4 == nodes[3].Addr() {
						movedToNew++
					}
				}
				assert.Equal(t, s3 == s4, hits[k], "key %q: ServerFor says moved=%v, the servers say found=%v", k, s3 != s4, hits[k])
			}
			frac := float64(distKeys-len(hits)) / distKeys
			figure(t, "distribution.add_4th_node."+mode.name+".remapped", 100*frac, "%")
			figure(t, "distribution.add_4th_node."+mode.name+".moved_to_new_node", 100*float64(movedToNew)/float64(max(moved, 1)), "%")
			switch mode.name {
			case "ketama":
				assert.LessOrEqual(t, frac, 0.35, "ketama must remap at most ~35%% of the keys")
				assert.Equal(t, moved, movedToNew, "with ketama a key only ever moves to the new node")
			case "modula":
				assert.GreaterOrEqual(t, frac, 0.5, "modula remaps most keys")
			}
		})
	}
}
