package integration

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Point 2 of the issue: a dead node with auto-eject, the failover recipe.

const (
	recipeConnectMS = 300
	recipePollMS    = 500
	// opBound bounds any single operation while a node is dead or hung:
	// a connect timeout plus a poll timeout, plus a margin for a loaded
	// 2-core machine running -race.
	opBound = (recipeConnectMS+recipePollMS)*time.Millisecond + time.Second
)

// recipe returns the failover recipe's behaviors: ketama, remove_failed=1,
// failure_limit (omitted when 0: libmemcached's default of 5),
// retry_timeout=1 s, dead_timeout, a connect timeout of 300 ms and a poll
// timeout of 500 ms.
func recipe(failureLimit, deadTimeout int) map[string]any {
	m := map[string]any{
		"ketama":          true,
		"remove_failed":   1,
		"retry_timeout":   1,
		"dead_timeout":    deadTimeout,
		"connect_timeout": recipeConnectMS,
		"_poll_timeout":   recipePollMS,
	}
	if failureLimit > 0 {
		m["failure_limit"] = failureLimit
	}
	return m
}

// patient makes a client wait long for answers: set-up and checks go
// through such clients, so that a busy machine (CI runs other tests beside
// these) does not fail them; the clients under test keep the short
// timeouts.
var patient = libmemcached.WithBehaviors(map[string]any{"_poll_timeout": 5000, "connect_timeout": 2000})

// splitKeys returns the keys that map to addr and the others.
func splitKeys(t testing.TB, c *libmemcached.Client, keys []string, addr string) (on, off []string) {
	t.Helper()
	for _, k := range keys {
		s, err := c.ServerFor(k)
		require.NoError(t, err)
		if s == addr {
			on = append(on, k)
		} else {
			off = append(off, k)
		}
	}
	return on, off
}

// codeCounts tallies error codes for the log.
type codeCounts map[string]int

func (cc codeCounts) add(err error) {
	var code string
	if e, ok := err.(*libmemcached.Error); ok {
		code = e.Code.String()
	} else {
		code = fmt.Sprintf("%T", err)
	}
	cc[code]++
}

func (cc codeCounts) String() string {
	var parts []string
	for k, v := range cc {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func TestDeadNodeFailover(t *testing.T) {
	// dead_timeout is 3 s here so that the test sees the restarted node
	// come back; it plays no part in detecting the death. The recipe's 60
	// means a restarted node rejoins 60 s after its ejection.
	const deadTimeout = 3
	for _, tc := range []struct {
		name  string
		limit int
		// windowBound bounds how long the dead node's keys may fail.
		windowBound time.Duration
	}{
		{"failure_limit=1", 1, 2 * time.Second},
		{"failure_limit=default(5)", 0, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nodes := startCluster(t, 3, nodeOptions{})
			c := newClient(t, addrs(nodes), libmemcached.WithBehaviors(recipe(tc.limit, deadTimeout)))
			keys := keyList("failover", 600)
			setAll(t, newClient(t, addrs(nodes), libmemcached.WithBehaviors(recipe(tc.limit, deadTimeout)), patient), keys)
			dead := nodes[0]
			deadKeys, liveKeys := splitKeys(t, c, keys, dead.Addr())
			require.NotEmpty(t, deadKeys)
			require.NotEmpty(t, liveKeys)
			t.Logf("%d keys on the node to kill, %d on the others", len(deadKeys), len(liveKeys))

			var (
				maxOp                  time.Duration
				liveErrs, deadErrs     int
				codes                                = codeCounts{}
				firstErr, lastErr      time.Duration = -1, -1
				firstOKAfterErr        time.Duration = -1
				ops                    int
				nonTemporary, nonTyped []error
			)
			// op runs f, records its duration, and returns its error.
			op := func(f func() error) error {
				var err error
				d := timed(func() { err = f() })
				maxOp = max(maxOp, d)
				ops++
				return err
			}
			checkDeadErr := func(err error, at time.Duration) {
				deadErrs++
				codes.add(err)
				if firstErr < 0 {
					firstErr = at
				}
				lastErr = at
				e, ok := err.(*libmemcached.Error)
				switch {
				case !ok:
					nonTyped = append(nonTyped, err)
				case !e.Temporary():
					nonTemporary = append(nonTemporary, err)
				}
			}

			require.NoError(t, dead.Kill())
			killed := time.Now()
			// Phase 1: until the dead node's keys have been served for a
			// second after their last failure (bounded).
			for i := 0; time.Since(killed) < 25*time.Second; i++ {
				lk := liveKeys[i%len(liveKeys)]
				err := op(func() error {
					it, err := c.Get(lk)
					if err == nil && string(it.Value) != string(valueFor(lk)) {
						t.Errorf("Get(%q) = %q: a value of another key", lk, it.Value)
					}
					return err
				})
				if err != nil {
					liveErrs++
					t.Errorf("a key of a live node failed: %v", err)
				}
				dk := deadKeys[i%len(deadKeys)]
				want := string(valueFor(dk)) + "|after-kill"
				at := time.Since(killed)
				err = op(func() error { return c.Set(&libmemcached.Item{Key: dk, Value: []byte(want)}) })
				if err == nil {
					err = op(func() error {
						it, err := c.Get(dk)
						if err == nil && string(it.Value) != want {
							t.Errorf("Get(%q) = %q after Set(%q)", dk, it.Value, want)
						}
						return err
					})
				}
				if err != nil {
					checkDeadErr(err, at)
				} else if lastErr >= 0 && firstOKAfterErr < 0 {
					firstOKAfterErr = at
				}
				if lastErr >= 0 && firstOKAfterErr >= 0 && time.Since(killed)-lastErr > time.Second {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("after the kill: %d operations, dead-node key errors %d (%v), live-node key errors %d", ops, deadErrs, codes, liveErrs)
			require.Positive(t, deadErrs, "killing a node must make its keys fail at least once")
			require.Positive(t, firstOKAfterErr, "the dead node's keys were never served by the live nodes within 25s")
			prefix := "failover." + map[bool]string{true: "failure_limit_1", false: "failure_limit_default"}[tc.limit == 1]
			figure(t, prefix+".kill_to_first_error", firstErr, "ms")
			figure(t, prefix+".dead_keys_fail_for", lastErr-firstErr, "ms")
			figure(t, prefix+".dead_key_errors", deadErrs, "ops")
			figure(t, prefix+".first_rehashed_success", firstOKAfterErr, "ms")
			figure(t, prefix+".max_op_time", maxOp, "ms")
			assert.Zero(t, liveErrs, "operations on the live nodes' keys must never fail")
			assert.Empty(t, nonTyped, "errors must be *libmemcached.Error")
			assert.Empty(t, nonTemporary, "the dead node's errors must be of the connection class (Temporary)")
			assert.LessOrEqual(t, maxOp, opBound, "no operation may take longer than the timeouts plus a margin")
			assert.LessOrEqual(t, lastErr-firstErr, tc.windowBound, "the dead node's keys must be rehashed within %v", tc.windowBound)
			for _, dk := range deadKeys[:min(20, len(deadKeys))] {
				s, err := c.ServerFor(dk)
				require.NoError(t, err)
				assert.NotEqual(t, dead.Addr(), s, "after ejection no key maps to the dead node")
			}

			// Phase 2: restart the node empty; it serves again once the
			// dead timeout since its ejection has passed.
			ejected := killed.Add(lastErr)
			require.NoError(t, dead.Restart())
			restarted := time.Now()
			var rejoined time.Duration = -1
			phase2Errs := codeCounts{}
			rejoinMisses := 0
			for i := 0; time.Since(restarted) < (deadTimeout+8)*time.Second; i++ {
				for _, k := range []string{liveKeys[i%len(liveKeys)], deadKeys[i%len(deadKeys)]} {
					want := string(valueFor(k)) + fmt.Sprintf("|phase2-%d", i)
					if err := op(func() error { return c.Set(&libmemcached.Item{Key: k, Value: []byte(want)}) }); err != nil {
						phase2Errs.add(err)
						continue
					}
					err := op(func() error {
						it, err := c.Get(k)
						if err == nil && string(it.Value) != want {
							t.Errorf("Get(%q) = %q after Set(%q)", k, it.Value, want)
						}
						return err
					})
					switch {
					case errors.Is(err, libmemcached.ErrCacheMiss):
						// The node rejoined between the Set and the Get:
						// the key moved back to it, and it is empty.
						rejoinMisses++
					case err != nil:
						phase2Errs.add(err)
					}
				}
				if s, err := c.ServerFor(deadKeys[0]); err == nil && s == dead.Addr() {
					rejoined = time.Since(ejected)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			require.Positive(t, rejoined, "the restarted node did not rejoin within dead_timeout+8s")
			figure(t, prefix+".rejoin_after_ejection", rejoined, "ms")
			figure(t, prefix+".rejoin_after_restart", time.Since(restarted), "ms")
			assert.Empty(t, phase2Errs, "no operation may fail while the restarted node rejoins")
			assert.LessOrEqual(t, rejoinMisses, 1, "a miss only when the node rejoins between a Set and its Get")
			assert.GreaterOrEqual(t, rejoined, (deadTimeout-1)*time.Second, "the node must stay out for dead_timeout")
			assert.LessOrEqual(t, rejoined, (deadTimeout+3)*time.Second, "the node must rejoin soon after dead_timeout")
			// The rejoined node is empty: it serves what is written to it.
			k := deadKeys[0]
			require.NoError(t, c.Set(&libmemcached.Item{Key: k, Value: valueFor(k)}))
			direct := newClient(t, []string{dead.Addr()}, patient)
			it, err := direct.Get(k)
			require.NoError(t, err, "the key must be on the rejoined node")
			assert.Equal(t, string(valueFor(k)), string(it.Value))
		})
	}
}

// TestRetryTimeoutHonoured checks libmemcached's retry_timeout through the
// binding: after a server refused a connection, libmemcached marks it
// IN_TIMEOUT and answers SERVER_TEMPORARILY_DISABLED, without trying to
// connect, until retry_timeout has passed (libmemcached alone does this;
// see the README section). failure_limit counts those timed retries, which
// is what makes a dead node's keys fail for 7-9 s with the default limit of
// 5 and retry_timeout=1, and what keeps a node that is down for a second
// (a restart) from being ejected for dead_timeout.
func TestRetryTimeoutHonoured(t *testing.T) {
	const retry = 2
	nd := startNode(t, nodeOptions{})
	c := newClient(t, []string{nd.Addr()}, libmemcached.WithBehaviors(map[string]any{
		"retry_timeout": retry, "connect_timeout": recipeConnectMS, "_poll_timeout": recipePollMS,
	}))
	require.NoError(t, c.Set(&libmemcached.Item{Key: "rt", Value: []byte("x")}))
	require.NoError(t, nd.Kill())
	codes := codeCounts{}
	var refusedAt time.Time
	connectFailuresAfterRefusal := 0
	for start := time.Now(); time.Since(start) < time.Second; time.Sleep(10 * time.Millisecond) {
		_, err := c.Get("rt")
		require.Error(t, err, "Get from a killed server")
		e := asError(t, err)
		codes.add(err)
		assert.True(t, e.Temporary(), "%v", err)
		// The first error may be the old connection's EOF ("server has
		// disconnected"); the first failed connect follows.
		if (e.Code == libmemcached.ReturnConnectionFailure || e.Code == libmemcached.ReturnErrno) &&
			!strings.Contains(e.Message, "disconnected") {
			if refusedAt.IsZero() {
				refusedAt = time.Now()
			} else {
				connectFailuresAfterRefusal++
			}
		}
	}
	t.Logf("errors in the first second after the kill: %v", codes)
	figure(t, "retry_timeout.connect_attempts_within_retry_timeout", connectFailuresAfterRefusal, "ops")
	require.False(t, refusedAt.IsZero(), "no operation reported the refused connection")
	assert.Zero(t, connectFailuresAfterRefusal,
		"after a refused connection libmemcached must not try the server again for retry_timeout=%ds "+
			"(want SERVER_TEMPORARILY_DISABLED; got %v): closing every connection of the handle (memcached_quit) "+
			"after a connect failure resets the server's retry state", retry, codes)
	assert.Positive(t, codes[libmemcached.ReturnServerTemporarilyDisabled.String()], "SERVER_TEMPORARILY_DISABLED within retry_timeout")

	// The server comes back; after retry_timeout the client uses it again.
	require.NoError(t, nd.Restart())
	restarted := time.Now()
	var back time.Duration = -1
	for time.Since(restarted) < (retry+3)*time.Second {
		if err := c.Set(&libmemcached.Item{Key: "rt", Value: []byte("y")}); err == nil {
			back = time.Since(restarted)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Positive(t, back, "the restarted server was not used again within retry_timeout+3s")
	figure(t, "retry_timeout.back_after_restart", back, "ms")
}
