package libmemcached

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Counters at and above 2^63 (issue 11, item 4). memcached before 1.6.22
// (Debian 12 ships 1.6.18) parses a counter with strtoull and, for a number
// that is negative as a signed one, looks for a '-' with strchr from the
// start of the value. Item data is not NUL-terminated, so that scan runs on
// through whatever an earlier item left in the slab chunk after the value;
// a '-' there makes the server refuse a valid number as non-numeric. The
// binding must make the counter read only what the client wrote.

// counterText is a value of the kind a test stores before a counter on the
// same key (gomemcache's "not-numeric"), longer than the 20 digits of the
// counters below and with a '-' past them, so that when a counter takes
// its slab chunk the '-' is left behind the counter's digits.
const counterText = "not a counter but text: n-a"

// counterTextDash is where the '-' is; it must be past the counter's 20
// digits and its "\r\n" (22 bytes), and the text short enough to share the
// counter's slab class.
var counterTextDash = strings.LastIndexByte(counterText, '-')

// rawLine sends one command (line and data block) to a server over a
// connection of its own and returns the first line of the reply.
func rawLine(t testing.TB, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	_, err = c.Write([]byte(cmd))
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimRight(line, "\r\n")
}

// primeCounter leaves counterText's slab chunk free for key's next value:
// it stores the text under key (with flags) and deletes it. The key must
// be 18 to 34 bytes long, so that the text and a 20-digit counter fall in
// the same slab class (memcached's 120-byte chunks).
func primeCounter(t testing.TB, addr, key string, flags uint32) {
	t.Helper()
	require.Equal(t, "STORED", rawLine(t, addr, fmt.Sprintf("set %s %d 0 %d\r\n%s\r\n", key, flags, len(counterText), counterText)))
	require.Equal(t, "DELETED", rawLine(t, addr, "delete "+key+"\r\n"))
}

// serverRefusesBigCounters reports whether the memcached at addr has the
// bug: a counter that takes counterText's chunk is refused.
func serverRefusesBigCounters(t testing.TB, addr string) bool {
	t.Helper()
	k := "counter_probe_" + poolRunID()
	primeCounter(t, addr, k, 0)
	require.Equal(t, "STORED", rawLine(t, addr, fmt.Sprintf("set %s 0 0 20\r\n18446744073709551615\r\n", k)))
	return strings.HasPrefix(rawLine(t, addr, "incr "+k+" 1\r\n"), "CLIENT_ERROR")
}

// TestCounterWrapStress is the sequence as a port of gomemcache's
// tests runs it: a fresh Pool of 4 over 3 servers per run, ASCII, the key
// first holding text (gomemcache's not-numeric step), deleted, then the
// counters that wrap at 2^64. Without the binding's guard, memcached 1.6.18
// refuses the first Increment of every run (its counter took the chunk the
// deleted text left, '-' included), and so the second too. (In the issue
// the first or the last failed in about 2% of runs: with no text before,
// a counter whose item fills its chunk exactly has the scan run into the
// next chunk's header, and 8 of 60 fresh memcached processes had a 0x2d
// byte there for some keys.)
func TestCounterWrapStress(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	require.Greater(t, counterTextDash, 22, "the '-' must lie past the counter")
	var addrs []string
	for i := 0; i < 3; i++ {
		addrs = append(addrs, newServer(t).Addr)
	}
	t.Logf("memcached refuses big counters after text (the server bug): %v", serverRefusesBigCounters(t, addrs[0]))
	// The keys are 20 bytes: see primeCounter.

	const runs = 200
	failed := map[string]int{}
	var first []string
	for run := 0; run < runs; run++ {
		p, err := NewPool(addrs, 4)
		require.NoError(t, err)
		k := fmt.Sprintf("counter_wrap_run%04d", run)
		fail := func(step string, err error) {
			failed[step]++
			if len(first) < 5 {
				first = append(first, fmt.Sprintf("run %d, %s: %v", run, step, err))
			}
		}
		step := func(name string, delta, want uint64) {
			n, err := p.Increment(k, delta)
			if err == nil && n != want {
				err = fmt.Errorf("got %d, want %d", n, want)
			}
			if err != nil {
				fail(name, err)
			}
		}

		// The text step: a non-numeric value stays the server's refusal,
		// and stays as written.
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte(counterText)}))
		if _, err := p.Increment(k, 1); !errors.Is(err, ErrClientError) {
			fail("incr text", fmt.Errorf("want ErrClientError, got %v", err))
		}
		if it, err := p.Get(k); err != nil || string(it.Value) != counterText {
			fail("text kept", fmt.Errorf("%v, %v", it, err))
		}
		require.NoError(t, p.Delete(k))
		if _, err := p.Increment(k, 1); !errors.Is(err, ErrCacheMiss) {
			fail("incr deleted", fmt.Errorf("want ErrCacheMiss, got %v", err))
		}

		// The sequence.
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte("18446744073709551615")}))
		step("incr 1", 1, 0)
		step("incr 5", 5, 5)
		require.NoError(t, p.Set(&Item{Key: k, Value: []byte("18446744073709551610")}))
		step("incr 10", 10, 4)
		p.Close()
	}
	for _, f := range first {
		t.Log(f)
	}
	total := 0
	for step, n := range failed {
		t.Errorf("%s failed in %d of %d runs", step, n, runs)
		total += n
	}
	t.Logf("%d failures in %d runs", total, runs)
}

// TestCounterBigNumbers: a counter of 2^63 or more in memory the server
// misreads is still incremented and decremented right, keeps its flags and
// expiration, and reads back as the bare number; values no memcached takes
// are refused as before and left as written.
func TestCounterBigNumbers(t *testing.T) {
	s := newServer(t)
	t.Logf("memcached refuses big counters after text (the server bug): %v", serverRefusesBigCounters(t, s.Addr))
	n := 0
	key := func() string { n++; return fmt.Sprintf("counter_big_key_%04d", n) } // 20 bytes: see primeCounter
	for _, pr := range protocols {
		for _, kind := range []string{"client", "pool"} {
			t.Run(pr.name+"/"+kind, func(t *testing.T) {
				var st Store
				if kind == "client" {
					c, err := New([]string{s.Addr}, pr.opts...)
					require.NoError(t, err)
					t.Cleanup(func() { c.Close() })
					st = c
				} else {
					p, err := NewPool([]string{s.Addr}, 4, pr.opts...)
					require.NoError(t, err)
					t.Cleanup(func() { p.Close() })
					st = p
				}
				for _, tc := range []struct {
					initial string
					decr    bool
					delta   uint64
					want    uint64
				}{
					{"18446744073709551615", false, 1, 0},
					{"18446744073709551610", false, 10, 4},
					{"18446744073709551615", true, 5, 18446744073709551610},
					{"9223372036854775808", false, 1, 9223372036854775809},
					{"9223372036854775808", true, 1, 9223372036854775807},
					{"18446744073709551615      ", false, 1, 0}, // padded, as after an in-place decrement
				} {
					k := key()
					primeCounter(t, s.Addr, k, 7)
					require.NoError(t, st.Set(&Item{Key: k, Value: []byte(tc.initial), Flags: 7, Expiration: 100}))
					arith := st.Increment
					if tc.decr {
						arith = st.Decrement
					}
					got, err := arith(k, tc.delta)
					if !assert.NoError(t, err, "%q decr=%v %d", tc.initial, tc.decr, tc.delta) {
						continue
					}
					assert.Equal(t, tc.want, got, "%q decr=%v %d", tc.initial, tc.decr, tc.delta)
					it, err := st.Get(k)
					require.NoError(t, err)
					assert.Equal(t, fmt.Sprint(tc.want), strings.TrimRight(string(it.Value), " "), "stored value of %q", tc.initial)
					assert.Equal(t, uint32(7), it.Flags, "flags kept")
					ttl := rawLine(t, s.Addr, "mg "+k+" t\r\n")
					assert.Regexp(t, `^HD t(9[0-9]|100)$`, ttl, "expiration kept")
				}

				// Values that no memcached takes: the server's refusal,
				// with its message, and the value as written.
				for _, v := range []string{counterText, "18446744073709551616", "-1", "18446744073709551615x"} {
					k := key()
					primeCounter(t, s.Addr, k, 0)
					require.NoError(t, st.Set(&Item{Key: k, Value: []byte(v)}))
					_, err := st.Increment(k, 1)
					e := ctErr(t, err)
					assert.ErrorIs(t, err, ErrClientError, "%q", v)
					assert.Contains(t, e.Message, "non-numeric", "%q", v)
					it, err := st.Get(k)
					require.NoError(t, err)
					assert.Equal(t, v, string(it.Value), "a refused value is left as written")
				}
			})
		}
	}
}
