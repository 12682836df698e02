package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Point 5 of the issue: replication. With the binary protocol and
// num_replicas=2 over 3 nodes every key is on every node, and any one node
// can die without a key becoming unreadable.
//
// libmemcached reads a replicated key from the first replica it can
// connect to (replication_binary_mget): it moves on when a connect or a
// write fails, not when a read fails or a replica misses. So the first
// read on a connection that was open to the node when it died fails once
// (the write goes out, the read finds the connection closed); libmemcached
// then knows, and the reads after it go to the next replica.

func TestReplication(t *testing.T) {
	nodes := startCluster(t, 3, nodeOptions{})
	opts := []libmemcached.Option{
		libmemcached.WithBinaryProtocol(),
		libmemcached.WithBehaviors(map[string]any{
			"num_replicas": 2, "connect_timeout": recipeConnectMS,
		}),
		patient,
	}
	keys := keyList("repl", 300)
	for victim := range nodes {
		t.Run(fmt.Sprintf("kill node %d", victim), func(t *testing.T) {
			flushAll(t, nodes)
			c := newClient(t, addrs(nodes), opts...)
			setAll(t, c, keys)
			// libmemcached sends the replica copies without flushing
			// (SETQ, buffered): they reach a node with the next request
			// the client sends it. Count what is there before that.
			unflushed := 0
			for _, n := range nodes {
				direct := newClient(t, []string{n.Addr()}, libmemcached.WithBinaryProtocol(), patient)
				unflushed += len(keys) - len(getAll(t, direct, keys))
			}
			figure(t, fmt.Sprintf("replication.kill_node%d.copies_still_in_client_buffer_after_set", victim), unflushed, "copies")
			require.Len(t, getAll(t, c, keys), len(keys)) // a request to every node flushes them
			for i, n := range nodes {
				direct := newClient(t, []string{n.Addr()}, libmemcached.WithBinaryProtocol(), patient)
				assert.Len(t, getAll(t, direct, keys), len(keys), "node %d holds a copy of every key", i)
			}

			require.NoError(t, nodes[victim].Kill())
			defer func() { require.NoError(t, nodes[victim].Restart()) }()
			killed := time.Now()
			var firstReadErrs []error
			unreadable := 0
			var maxOp time.Duration
			for _, k := range keys {
				var it *libmemcached.Item
				var err error
				d := timed(func() { it, err = c.Get(k) })
				maxOp = max(maxOp, d)
				if err != nil {
					// Once per handle: the connection to the dead node.
					firstReadErrs = append(firstReadErrs, err)
					d = timed(func() { it, err = c.Get(k) })
					maxOp = max(maxOp, d)
				}
				if err != nil {
					unreadable++
					t.Errorf("key %q unreadable after killing node %d: %v", k, victim, err)
					continue
				}
				assert.True(t, belongs(k, it.Value), "%q read %q", k, it.Value)
			}
			readAll := time.Since(killed)
			for _, err := range firstReadErrs {
				assert.True(t, asError(t, err).Temporary(), "%v", err)
			}
			assert.LessOrEqual(t, len(firstReadErrs), 1, "only the first read may fail (the stale connection): %v", firstReadErrs)
			assert.Zero(t, unreadable)
			// GetMulti finds every key on the replicas, and also reports the
			// dead node (the binding returns the items and the error).
			m, err := c.GetMulti(keys)
			if err != nil {
				assert.True(t, asError(t, err).Temporary(), "GetMulti with a dead node: %v", err)
				t.Logf("GetMulti with a dead node: %d items and %v", len(m), err)
			}
			figure(t, fmt.Sprintf("replication.kill_node%d.get_multi_reports_error", victim), err != nil, "")
			assert.Len(t, m, len(keys), "every key through GetMulti")
			for k, it := range m {
				assert.True(t, belongs(k, it.Value), "%q read %q", k, it.Value)
			}
			figure(t, fmt.Sprintf("replication.kill_node%d.failed_first_reads", victim), len(firstReadErrs), "ops")
			figure(t, fmt.Sprintf("replication.kill_node%d.read_all_%d_keys", victim, len(keys)), readAll, "ms")
			figure(t, fmt.Sprintf("replication.kill_node%d.max_op", victim), maxOp, "ms")
			assert.LessOrEqual(t, maxOp, opBound)
		})
	}
}
