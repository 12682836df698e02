package libmemcached

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached/internal/pylibmctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests check SetBehaviors/Behaviors against pylibmc itself, run live
// through internal/pylibmctest.

// oracleComparable drops from both maps what pylibmc cannot tell right
// when it runs on libmemcached 1.0 (pyLib, its run-time version): there it
// reports the key hash as ketama_hash, and remove_failed as failure_limit
// (which remove_failed also sets). This library gives both their 1.1
// meaning on every version; TestKetamaHashReadsBack and
// TestRemoveFailedMeansAutoEject check them without pylibmc.
func oracleComparable(want, got map[string]string, applied map[string]any, pyLib string) {
	v, ok := parseVersion(pyLib)
	if !ok || !v.less(1, 1, 0) {
		return
	}
	drop := []string{"ketama_hash", "remove_failed"}
	if _, set := applied["remove_failed"]; set {
		drop = append(drop, "failure_limit")
	}
	for _, k := range drop {
		delete(want, k)
		delete(got, k)
	}
}

// pyOracleScript applies each behavior dict of the request to a fresh
// pylibmc client and prints, per dict, the client's behaviors (without
// pickle_protocol, which is pylibmc's own) or the error pylibmc raised.
const pyOracleScript = `
import json, sys, pylibmc
req = json.load(sys.stdin)
out = []
for d in req["cases"]:
    c = pylibmc.Client(req["servers"], binary=req["binary"])
    try:
        if d:
            c.behaviors = d
        b = dict(c.behaviors)
        b.pop("pickle_protocol", None)
        out.append({"behaviors": b})
    except Exception as e:
        out.append({"error": "%s: %s" % (type(e).__name__, e)})
try:
    import ctypes
    lib = ctypes.CDLL("libmemcached.so.11")  # the one pylibmc loaded
    lib.memcached_lib_version.restype = ctypes.c_char_p
    libversion = lib.memcached_lib_version().decode()
except Exception:
    libversion = "unknown"
json.dump({"libmemcached": libversion,
           "names": [n for n in pylibmc.client.all_behaviors if n != "pickle_protocol"],
           "hashers": sorted(pylibmc.hashers), "distributions": sorted(pylibmc.distributions),
           "results": out}, sys.stdout)
`

// pyResult is pylibmc's answer for one dict: its behaviors (numbers as
// json.Number) or its error.
type pyResult struct {
	Raw   map[string]any `json:"behaviors"`
	Error string         `json:"error"`
}

type pyOracle struct {
	Libmemcached  string     `json:"libmemcached"` // the run-time version pylibmc loaded
	Names         []string   `json:"names"`
	Hashers       []string   `json:"hashers"`
	Distributions []string   `json:"distributions"`
	Results       []pyResult `json:"results"`
}

// runPylibmc asks pylibmc what each behavior dict does to a client of
// servers.
func runPylibmc(t *testing.T, servers []string, binary bool, cases []map[string]any) *pyOracle {
	t.Helper()
	req, err := json.Marshal(map[string]any{"servers": servers, "binary": binary, "cases": cases})
	require.NoError(t, err)
	cmd := pylibmctest.Command("-c", pyOracleScript)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "running pylibmc through %s: %s\n%s", pylibmctest.Python(), stderr.String(), pylibmctest.Hint)
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var o pyOracle
	require.NoError(t, dec.Decode(&o), "pylibmc output: %s", out)
	require.Len(t, o.Results, len(cases))
	return &o
}

// normalizeBehaviors renders a behaviors map (ours or pylibmc's) as name -> text, so
// that numbers compare exactly whatever their Go type.
func normalizeBehaviors(t *testing.T, m map[string]any) map[string]string {
	t.Helper()
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case uint64:
			out[k] = strconv.FormatUint(x, 10)
		case json.Number:
			out[k] = x.String()
		case string:
			out[k] = x
		default:
			t.Fatalf("behavior %q has unexpected type %T (%v)", k, v, v)
		}
	}
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// deliberateDefaults are the defaults this library sets on purpose where
// libmemcached's (and pylibmc's) differ: cas, so Get fills CasID in both
// protocols, and tcp_nodelay, without which a binary-protocol miss waits
// out the server's delayed ACK (~40 ms).
var deliberateDefaults = map[string]string{"cas": "1", "tcp_nodelay": "1"}

// withDeliberateDefaults adjusts pylibmc's behaviors for the library's own
// defaults, except those the applied dict set itself.
func withDeliberateDefaults(py map[string]string, applied map[string]any) map[string]string {
	for k, v := range deliberateDefaults {
		if _, set := applied[k]; !set {
			py[k] = v
		}
	}
	return py
}

// unconnectedServers is a server list for comparing configuration only:
// nothing in these tests connects (libmemcached connects on first use).
var unconnectedServers = []string{"127.0.0.1:1", "127.0.0.1:2"}

func newUnconnected(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := New(unconnectedServers, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// (a) Behaviors reports exactly the names pylibmc's behaviors shows, and
// BehaviorNames lists them in pylibmc's order.
func TestBehaviorNamesMatchPylibmc(t *testing.T) {
	out, err := pylibmctest.Command("-c",
		`import pylibmc,json; print(json.dumps(sorted(k for k in pylibmc.Client(['127.0.0.1:1']).behaviors if k!='pickle_protocol')))`).Output()
	require.NoError(t, err, pylibmctest.Hint)
	var pyNames []string
	require.NoError(t, json.Unmarshal(out, &pyNames))
	require.NotEmpty(t, pyNames)

	c := newUnconnected(t)
	assert.Equal(t, pyNames, sortedMapKeys(c.Behaviors()), "Behaviors() names vs pylibmc's")
	assert.NotContains(t, c.Behaviors(), "_retry_timeout", "an alias is accepted, not reported")
	assert.NotContains(t, c.Behaviors(), "pickle_protocol")

	o := runPylibmc(t, unconnectedServers, false, []map[string]any{})
	assert.Equal(t, o.Names, BehaviorNames(), "BehaviorNames() must be pylibmc.client.all_behaviors, in order")
}

// (b) A fresh client's defaults equal pylibmc's for the same server list,
// except where this library deliberately differs: cas and tcp_nodelay are
// on by default.
func TestBehaviorDefaultsMatchPylibmc(t *testing.T) {
	for _, binary := range []bool{false, true} {
		t.Run(fmt.Sprintf("binary=%v", binary), func(t *testing.T) {
			var opts []Option
			if binary {
				opts = append(opts, WithBinaryProtocol())
			}
			c := newUnconnected(t, opts...)
			o := runPylibmc(t, unconnectedServers, binary, []map[string]any{{}})
			require.Empty(t, o.Results[0].Error)
			want := normalizeBehaviors(t, o.Results[0].Raw)
			got := normalizeBehaviors(t, c.Behaviors())
			oracleComparable(want, got, nil, o.Libmemcached)

			for k, v := range deliberateDefaults {
				assert.Equal(t, "0", want[k], "pylibmc's default %s", k)
				assert.Equal(t, v, got[k], "this library's default %s", k)
			}
			assert.Equal(t, withDeliberateDefaults(want, nil), got)
		})
	}

	// With a reachable first server, libmemcached's behavior_get reads an
	// unset _socket_send_size/_socket_recv_size from the OS, connecting to
	// that server to do so (pylibmc does). This library reports 0 ("the
	// OS default") instead, so Behaviors() never touches the network:
	// a listener that counts accepted connections sees none.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			conn.Close()
		}
	}()
	c, err := New([]string{l.Addr().String()})
	require.NoError(t, err)
	defer c.Close()
	got := normalizeBehaviors(t, c.Behaviors())
	assert.Equal(t, "0", got["_socket_send_size"])
	assert.Equal(t, "0", got["_socket_recv_size"])
	for _, b := range []Behavior{BehaviorSocketSendSize, BehaviorSocketRecvSize} {
		v, err := c.Behavior(b)
		require.NoError(t, err)
		assert.Zero(t, v)
	}
	select {
	case <-accepted:
		t.Fatal("Behaviors() connected to the server")
	case <-time.After(100 * time.Millisecond):
	}
	// An explicit size is reported as set.
	require.NoError(t, c.SetBehaviors(map[string]any{"_socket_send_size": 65536}))
	assert.Equal(t, uint64(65536), c.Behaviors()["_socket_send_size"])
}

// integerKinds returns v as every Go integer kind.
func integerKinds(v uint8) []any {
	return []any{int(v), int8(v), int16(v), int32(v), int64(v),
		uint(v), uint8(v), uint16(v), uint32(v), uint64(v), uintptr(v)}
}

// (c) Every name round-trips: set through SetBehaviors, read back through
// Behaviors() and through Behavior(constant).
func TestBehaviorRoundTrip(t *testing.T) {
	type rt struct {
		name   string
		value  any
		b      Behavior
		want   uint64 // from Behavior(b)
		report any    // from Behaviors()[report name]; nil means uint64(want)
	}
	cases := []rt{
		{"no_block", true, BehaviorNoBlock, 1, nil},
		{"tcp_nodelay", int8(0), BehaviorTCPNoDelay, 0, nil}, // on by default here
		{"tcp_keepalive", uint8(1), BehaviorTCPKeepalive, 1, nil},
		{"hash", "md5", BehaviorHash, uint64(HashMD5), "md5"},
		{"hash", HashCRC, BehaviorHash, uint64(HashCRC), "crc"},
		{"hash", int(HashFNV1a32), BehaviorHash, uint64(HashFNV1a32), "fnv1a_32"},
		{"ketama_hash", "crc", BehaviorKetamaHash, uint64(HashCRC), nil},
		{"ketama_hash", HashFNV1_64, BehaviorKetamaHash, uint64(HashFNV1_64), nil},
		{"ketama", true, BehaviorKetama, 1, nil},
		{"ketama_weighted", int16(1), BehaviorKetamaWeighted, 1, nil},
		{"distribution", "random", BehaviorDistribution, uint64(DistributionRandom), "random"},
		{"distribution", DistributionConsistentKetama, BehaviorDistribution, uint64(DistributionConsistentKetama), "consistent ketama"},
		{"distribution", uint32(DistributionConsistent), BehaviorDistribution, uint64(DistributionConsistent), "consistent"},
		{"cas", false, BehaviorSupportCAS, 0, nil}, // on by default here
		{"buffer_requests", uint16(1), BehaviorBufferRequests, 1, nil},
		{"verify_keys", int32(1), BehaviorVerifyKey, 1, nil},
		{"connect_timeout", 1234, BehaviorConnectTimeout, 1234, nil},         // ms
		{"send_timeout", int64(250000), BehaviorSndTimeout, 250000, nil},     // us
		{"receive_timeout", uint64(350000), BehaviorRcvTimeout, 350000, nil}, // us
		{"num_replicas", uint(2), BehaviorNumberOfReplicas, 2, nil},
		{"auto_eject", true, BehaviorAutoEjectHosts, 1, nil},
		{"retry_timeout", int32(7), BehaviorRetryTimeout, 7, nil}, // s
		{"remove_failed", 1, BehaviorRemoveFailedServers, 1, nil},
		{"failure_limit", uint32(9), BehaviorServerFailureLimit, 9, nil},
		{"dead_timeout", int64(11), BehaviorDeadTimeout, 11, nil}, // s
		{"_noreply", true, BehaviorNoReply, 1, nil},
		{"_sort_hosts", true, BehaviorSortHosts, 1, nil},
		{"_poll_timeout", uint16(1500), BehaviorPollTimeout, 1500, nil}, // ms
		{"_io_msg_watermark", 1000, BehaviorIOMsgWatermark, 1000, nil},
		{"_io_bytes_watermark", uint64(100000), BehaviorIOBytesWatermark, 100000, nil},
		{"_io_key_prefetch", int8(3), BehaviorIOKeyPrefetch, 3, nil},
		{"_hash_with_prefix_key", true, BehaviorHashWithPrefixKey, 1, nil},
		{"_socket_send_size", 65536, BehaviorSocketSendSize, 65536, nil},
		{"_socket_recv_size", uintptr(131072), BehaviorSocketRecvSize, 131072, nil},
	}
	// Every hash name libmemcached accepts, and every distribution name,
	// with spaces and with underscores.
	for _, name := range sortedMapKeys(Hashers) {
		if name == "hsieh" {
			continue // not compiled into Debian's libmemcached: see TestBehaviorErrors
		}
		cases = append(cases,
			rt{"hash", name, BehaviorHash, uint64(Hashers[name]), name},
			rt{"ketama_hash", name, BehaviorKetamaHash, uint64(Hashers[name]), nil})
	}
	for _, name := range sortedMapKeys(Distributions) {
		if name == "consistent max" {
			continue // a sentinel, refused by libmemcached: see TestBehaviorErrors
		}
		d := uint64(Distributions[name])
		cases = append(cases, rt{"distribution", name, BehaviorDistribution, d, name})
		if u := strings.ReplaceAll(name, " ", "_"); u != name {
			cases = append(cases, rt{"distribution", u, BehaviorDistribution, d, name})
		}
	}
	// Every integer kind, for a plain number and for a hash and a distribution.
	for _, v := range integerKinds(42) {
		cases = append(cases, rt{"failure_limit", v, BehaviorServerFailureLimit, 42, nil})
	}
	for _, v := range integerKinds(uint8(HashJenkins)) {
		cases = append(cases, rt{"hash", v, BehaviorHash, uint64(HashJenkins), "jenkins"})
	}
	for _, v := range integerKinds(uint8(DistributionConsistentWeighted)) {
		cases = append(cases, rt{"distribution", v, BehaviorDistribution, uint64(DistributionConsistentWeighted), "consistent weighted"})
	}
	for _, v := range []any{true, false} {
		want := uint64(0)
		if v == true {
			want = 1
		}
		cases = append(cases, rt{"tcp_nodelay", v, BehaviorTCPNoDelay, want, nil})
	}

	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.name] = true
	}
	for _, name := range BehaviorNames() {
		assert.True(t, covered[name], "no round trip for %q", name)
	}

	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s=%T(%v)", tc.name, tc.value, tc.value), func(t *testing.T) {
			c := newUnconnected(t)
			if tc.name == "hash" || tc.name == "ketama_hash" {
				// "default" is the default: move away first, so the
				// round trip proves the setting.
				away := "jenkins"
				if tc.want == uint64(HashJenkins) {
					away = "md5"
				}
				require.NoError(t, c.SetBehaviors(map[string]any{tc.name: away}))
				if tc.want == uint64(HashMurmur3) && loaded.less(1, 1, 0) {
					// libmemcached 1.0 would hash with murmur2 instead:
					// refused (TestMurmur3RefusedOn10 checks the message).
					require.Error(t, c.SetBehaviors(map[string]any{tc.name: tc.value}))
					got, err := c.Behavior(tc.b)
					require.NoError(t, err)
					assert.Equal(t, uint64(Hashers[away]), got, "a refused hash leaves the old one")
					return
				}
			}
			require.NoError(t, c.SetBehaviors(map[string]any{tc.name: tc.value}))
			got, err := c.Behavior(tc.b)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "Behavior(%d)", tc.b)
			report := tc.report
			if report == nil {
				report = tc.want
			}
			assert.Equal(t, report, c.Behaviors()[tc.name], "Behaviors()[%q]", tc.name)
		})
	}

	// The alias sets retry_timeout and is not reported itself; with both
	// names the canonical one wins (pylibmc's setdefault).
	c := newUnconnected(t)
	require.NoError(t, c.SetBehaviors(map[string]any{"_retry_timeout": 13}))
	got, err := c.Behavior(BehaviorRetryTimeout)
	require.NoError(t, err)
	assert.Equal(t, uint64(13), got)
	assert.Equal(t, uint64(13), c.Behaviors()["retry_timeout"])
	require.NoError(t, c.SetBehaviors(map[string]any{"_retry_timeout": 21, "retry_timeout": 17}))
	assert.Equal(t, uint64(17), c.Behaviors()["retry_timeout"])
}

// (d) The combined effects of ketama, ketama_weighted, distribution, hash,
// remove_failed and the _retry_timeout alias, and the order SetBehaviors
// applies a dict in, are pylibmc's: the same dict gives the same behaviors
// on a pylibmc client, run live. Every hash and distribution name pylibmc
// knows is accepted or refused as pylibmc does.
func TestBehaviorEffectsMatchPylibmc(t *testing.T) {
	cases := []map[string]any{
		{"ketama": true, "hash": "md5"},
		{"distribution": "consistent", "ketama": true},
		{"ketama_weighted": true},
		{"ketama": true},
		{"ketama": true, "ketama_weighted": true},
		{"ketama_weighted": true, "hash": "crc"},
		{"ketama_weighted": true, "distribution": "modula"},
		{"ketama": true, "ketama_hash": "fnv1a_32"},
		{"ketama": true, "hash": "murmur", "distribution": "consistent ketama spy"},
		{"ketama": false},
		{"remove_failed": 3},
		{"auto_eject": 0, "remove_failed": 1},
		{"retry_timeout": 5, "_retry_timeout": 7},
		{"_retry_timeout": 9},
		{"cas": true},
		{"no_block": true, "buffer_requests": true, "_noreply": true},
		{"connect_timeout": 250, "send_timeout": 300000, "receive_timeout": 400000, "_poll_timeout": 750},
		{"num_replicas": 2, "failure_limit": 3, "dead_timeout": 30, "retry_timeout": 4},
		{"_io_msg_watermark": 100, "_io_bytes_watermark": 4096, "_io_key_prefetch": 5, "_hash_with_prefix_key": true, "_sort_hosts": true},
		{"_socket_send_size": 65536, "_socket_recv_size": 131072},
		{"tcp_nodelay": true, "tcp_keepalive": true, "verify_keys": true},
		{"tcp_nodelay": false, "cas": false},
		// Refused by both: an unknown name, a hash libmemcached lacks.
		{"no_such_behavior": 1},
		{"hash": "hsieh"},
		{"ketama_hash": "hsieh"},
	}
	// pylibmc's vocabulary, fetched live, must be a subset of ours.
	vocab := runPylibmc(t, unconnectedServers, false, []map[string]any{})
	for _, h := range vocab.Hashers {
		assert.Contains(t, Hashers, h, "pylibmc hash name")
		cases = append(cases, map[string]any{"hash": h}, map[string]any{"ketama_hash": h, "ketama": true})
	}
	for _, d := range vocab.Distributions {
		assert.Contains(t, Distributions, d, "pylibmc distribution name")
		cases = append(cases, map[string]any{"distribution": d})
	}
	o := runPylibmc(t, unconnectedServers, false, cases)
	for i, m := range cases {
		py := o.Results[i]
		c := newUnconnected(t)
		err := c.SetBehaviors(m)
		if py.Error != "" {
			assert.Error(t, err, "%v: pylibmc refused it (%s); so must we", m, py.Error)
			var e *Error
			if assert.ErrorAs(t, err, &e) {
				// pylibmc: "memcached_behavior_set returned 38 for ..."
				if _, rest, ok := strings.Cut(py.Error, "memcached_behavior_set returned "); ok {
					code, _, _ := strings.Cut(rest, " ")
					assert.Equal(t, code, strconv.Itoa(int(e.Code)), "%v: libmemcached's code", m)
				} else {
					assert.Equal(t, ReturnInvalidArguments, e.Code, "%v", m)
				}
			}
			continue
		}
		if !assert.NoError(t, err, "%v: pylibmc accepted it", m) {
			continue
		}
		want := withDeliberateDefaults(normalizeBehaviors(t, py.Raw), m)
		got := normalizeBehaviors(t, c.Behaviors())
		oracleComparable(want, got, m, o.Libmemcached)
		assert.Equal(t, want, got, "behaviors after %v", m)
	}

	// Spot checks that do not depend on pylibmc.
	c := newUnconnected(t)
	require.NoError(t, c.SetBehaviors(map[string]any{"ketama": true}))
	assert.Equal(t, "consistent ketama", c.Behaviors()["distribution"])
	c = newUnconnected(t)
	require.NoError(t, c.SetBehaviors(map[string]any{"distribution": "consistent", "ketama": true}))
	assert.Equal(t, "consistent", c.Behaviors()["distribution"], "ketama first, then distribution")
	c = newUnconnected(t)
	require.NoError(t, c.SetBehaviors(map[string]any{"ketama_weighted": true}))
	assert.Equal(t, "consistent weighted", c.Behaviors()["distribution"])
	assert.Equal(t, "md5", c.Behaviors()["hash"])
	c = newUnconnected(t)
	require.NoError(t, c.SetBehaviors(map[string]any{"remove_failed": 3}))
	assert.Equal(t, uint64(1), c.Behaviors()["auto_eject"], "remove_failed turns on auto_eject")
}

// (e) Invalid input is refused with an error that says what is valid, and
// nothing of the map is applied.
func TestBehaviorErrors(t *testing.T) {
	good := map[string]any{"tcp_nodelay": false, "_poll_timeout": 777, "hash": "crc", "distribution": "random", "retry_timeout": 9}
	bad := []struct {
		name     string
		entry    string
		value    any
		mentions []string // the message must name these
	}{
		{"unknown name", "no_such_behavior", 1, append(BehaviorNames(), "_retry_timeout")},
		{"misspelt name", "tcp_no_delay", true, []string{"tcp_nodelay"}},
		{"string for a number", "connect_timeout", "1000", []string{"connect_timeout", "string"}},
		{"string for a flag", "tcp_keepalive", "yes", []string{"tcp_keepalive"}},
		{"float64", "connect_timeout", 1.5, []string{"float64"}},
		{"float32", "_poll_timeout", float32(2), []string{"float32"}},
		{"negative int", "failure_limit", -1, []string{"negative", "-1"}},
		{"negative int8", "retry_timeout", int8(-3), []string{"negative"}},
		{"negative hash number", "hash", -2, []string{"negative"}},
		{"nil", "no_block", nil, []string{"no_block"}},
		{"a slice", "no_block", []int{1}, []string{"[]int"}},
		{"a Behavior constant as a value", "no_block", BehaviorNoBlock, []string{"Behavior"}},
		{"unknown hash name", "hash", "sha1", sortedMapKeys(Hashers)},
		{"unknown ketama_hash name", "ketama_hash", "sha256", sortedMapKeys(Hashers)},
		{"unknown distribution name", "distribution", "ring", sortedMapKeys(Distributions)},
		{"distribution name for hash", "hash", "consistent", []string{"md5"}},
		{"distribution name with a dash", "distribution", "consistent-ketama", []string{"consistent ketama"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := newUnconnected(t)
			before := c.Behaviors()
			err := c.SetBehaviors(map[string]any{tc.entry: tc.value})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidArguments)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, ReturnInvalidArguments, e.Code)
			for _, s := range tc.mentions {
				assert.Contains(t, err.Error(), s)
			}
			assert.Equal(t, before, c.Behaviors(), "nothing set")

			// Among good entries: still refused, and none of them applied.
			m := map[string]any{tc.entry: tc.value}
			for k, v := range good {
				if k != tc.entry {
					m[k] = v
				}
			}
			require.Error(t, c.SetBehaviors(m))
			assert.Equal(t, before, c.Behaviors(), "nothing of %v set", m)
		})
	}

	// A known name with a value this libmemcached build refuses: the
	// hsieh hash is not compiled into Debian's libmemcached. The error is
	// libmemcached's own, with its code and message.
	for _, name := range []string{"hash", "ketama_hash"} {
		c := newUnconnected(t)
		err := c.SetBehaviors(map[string]any{name: "hsieh"})
		require.Error(t, err, name)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, ReturnInvalidArguments, e.Code)
		assert.ErrorIs(t, err, ErrInvalidArguments)
		assert.Equal(t, name, e.Key)
		assert.Contains(t, e.Message, "memcached_hash_t", "libmemcached's message")
		assert.Equal(t, "default", c.Behaviors()["hash"])
	}
	c := newUnconnected(t)
	err := c.SetBehavior(BehaviorHash, uint64(HashHsieh))
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, ReturnInvalidArguments, e.Code)
	assert.Contains(t, e.Message, "memcached_hash_t")

	// "consistent max" is the enum's sentinel: libmemcached refuses it
	// (so does pylibmc, which lists it).
	err = c.SetBehaviors(map[string]any{"distribution": "consistent max"})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, ReturnInvalidArguments, e.Code)
	assert.Equal(t, "modula", c.Behaviors()["distribution"])

	// A value libmemcached refuses is found only when it is applied, so
	// the names pylibmc applies before it are set, as in pylibmc (see
	// TestBehaviorEffectsMatchPylibmc): documented, not atomic.
	c = newUnconnected(t)
	err = c.SetBehaviors(map[string]any{"tcp_keepalive": true, "hash": "hsieh", "verify_keys": true})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "hash", e.Key)
	b := c.Behaviors()
	assert.Equal(t, uint64(1), b["tcp_keepalive"], "applied before hash, as pylibmc does")
	assert.Equal(t, uint64(0), b["verify_keys"], "after hash: never applied")
}

// A number too large for libmemcached's field must not be silently
// wrapped: libmemcached stores these behaviors in 32-bit fields, so
// connect_timeout = 2^32+5 would become 5 ms, 3e9 a negative timeout, and
// distribution = 2^32+1 "consistent" without any error. SetBehaviors must
// either refuse such a value or store it exactly.
//
// BUG (fails today): all of these are accepted and truncated.
func TestBehaviorValueOutOfRange(t *testing.T) {
	cases := []struct {
		name  string
		value any
		b     Behavior
	}{
		{"connect_timeout", uint64(1<<32 + 5), BehaviorConnectTimeout},
		{"connect_timeout", int64(3_000_000_000), BehaviorConnectTimeout},
		{"_poll_timeout", uint64(1 << 31), BehaviorPollTimeout},
		{"retry_timeout", int64(1<<32 + 2), BehaviorRetryTimeout},
		{"failure_limit", uint64(1<<32 + 1), BehaviorServerFailureLimit},
		{"num_replicas", uint64(1 << 33), BehaviorNumberOfReplicas},
		{"hash", uint64(1<<32 + 1), BehaviorHash},
		{"distribution", uint64(1<<32 + 1), BehaviorDistribution},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s=%v", tc.name, tc.value), func(t *testing.T) {
			c := newUnconnected(t)
			before, err := c.Behavior(tc.b)
			require.NoError(t, err)
			err = c.SetBehaviors(map[string]any{tc.name: tc.value})
			got, gerr := c.Behavior(tc.b)
			require.NoError(t, gerr)
			if err != nil {
				assert.ErrorIs(t, err, ErrInvalidArguments)
				assert.Equal(t, before, got, "refused, so unchanged")
				return
			}
			assert.Equal(t, fmt.Sprint(tc.value), strconv.FormatUint(got, 10),
				"SetBehaviors(%s=%v) was accepted but libmemcached holds %d (Behaviors()[%q] = %v)",
				tc.name, tc.value, got, tc.name, c.Behaviors()[tc.name])
		})
	}
}

// An empty or nil map sets nothing and is not an error.
func TestSetBehaviorsEmpty(t *testing.T) {
	c := newUnconnected(t)
	before := c.Behaviors()
	require.NoError(t, c.SetBehaviors(nil))
	require.NoError(t, c.SetBehaviors(map[string]any{}))
	assert.Equal(t, before, c.Behaviors())
}

// (f) WithBehaviors applies at New; a bad map makes New (and NewPool) fail.
func TestWithBehaviorsAtNew(t *testing.T) {
	s := sharedServer(t)
	c, err := New([]string{s.Addr}, WithBehaviors(map[string]any{
		"ketama": true, "hash": "md5", "_poll_timeout": 1200, "cas": false,
	}))
	require.NoError(t, err)
	defer c.Close()
	b := c.Behaviors()
	assert.Equal(t, "consistent ketama", b["distribution"])
	assert.Equal(t, "md5", b["hash"])
	assert.Equal(t, uint64(1200), b["_poll_timeout"])
	assert.Equal(t, uint64(0), b["cas"], "WithBehaviors after the cas default")
	// And the client works with them.
	require.NoError(t, c.Set(&Item{Key: "with_behaviors_at_new", Value: []byte("v")}))
	it, err := c.Get("with_behaviors_at_new")
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), it.Value)
	assert.Zero(t, it.CasID, "cas off: no CAS id")

	// Several WithBehavior(s) apply in the order given.
	c2, err := New([]string{s.Addr},
		WithBehaviors(map[string]any{"_poll_timeout": 100}),
		WithBehavior(BehaviorPollTimeout, 200),
		WithBehaviors(map[string]any{"retry_timeout": 3}))
	require.NoError(t, err)
	defer c2.Close()
	assert.Equal(t, uint64(200), c2.Behaviors()["_poll_timeout"])
	assert.Equal(t, uint64(3), c2.Behaviors()["retry_timeout"])

	for _, m := range []map[string]any{
		{"no_such_behavior": 1},
		{"connect_timeout": 1.5},
		{"hash": "hsieh"},
		{"tcp_nodelay": true, "distribution": "ring"},
	} {
		c, err := New([]string{s.Addr}, WithBehaviors(m))
		assert.Error(t, err, "%v", m)
		assert.Nil(t, c)
		assert.ErrorIs(t, err, ErrInvalidArguments)
		p, err := NewPool([]string{s.Addr}, 2, WithBehaviors(m))
		assert.Error(t, err, "%v", m)
		assert.Nil(t, p)
	}
	_, err = New([]string{s.Addr}, WithBehavior(Behavior(9999), 1))
	assert.ErrorIs(t, err, ErrInvalidArguments)
}

// (g) SetBehavior and Behavior by constant; out-of-range constants are
// errors, not crashes.
func TestBehaviorByConstant(t *testing.T) {
	c := newUnconnected(t)
	require.NoError(t, c.SetBehavior(BehaviorPollTimeout, 4321))
	v, err := c.Behavior(BehaviorPollTimeout)
	require.NoError(t, err)
	assert.Equal(t, uint64(4321), v)
	assert.Equal(t, uint64(4321), c.Behaviors()["_poll_timeout"])

	require.NoError(t, c.SetBehavior(BehaviorDistribution, uint64(DistributionConsistentKetama)))
	assert.Equal(t, "consistent ketama", c.Behaviors()["distribution"])
	v, err = c.Behavior(BehaviorKetama)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v)

	// Behaviors pylibmc has no name for are reachable by constant.
	require.NoError(t, c.SetBehavior(BehaviorTCPKeepidle, 17))
	v, err = c.Behavior(BehaviorTCPKeepidle)
	require.NoError(t, err)
	assert.Equal(t, uint64(17), v)
	require.NoError(t, c.SetBehavior(BehaviorBinaryProtocol, 1))
	v, err = c.Behavior(BehaviorBinaryProtocol)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v)

	for _, b := range []Behavior{-1, -1000, 9999, behaviorMax, Behavior(1 << 30)} {
		_, err := c.Behavior(b)
		assert.ErrorIs(t, err, ErrInvalidArguments, "Behavior(%d)", b)
		assert.Contains(t, fmt.Sprint(err), strconv.Itoa(int(b)))
		err = c.SetBehavior(b, 1)
		assert.ErrorIs(t, err, ErrInvalidArguments, "SetBehavior(%d)", b)
	}
	// Still fine afterwards.
	v, err = c.Behavior(BehaviorPollTimeout)
	require.NoError(t, err)
	assert.Equal(t, uint64(4321), v)

	// A closed client refuses everything.
	require.NoError(t, c.Close())
	_, err = c.Behavior(BehaviorPollTimeout)
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, c.SetBehavior(BehaviorPollTimeout, 1), ErrClosed)
	assert.ErrorIs(t, c.SetBehaviors(map[string]any{"no_block": true}), ErrClosed)
	assert.Nil(t, c.Behaviors())
}

// (h) verify_keys with the binary protocol (pitfall 12): libmemcached
// refuses to turn it on once binary is on, with MEMCACHED_INVALID_ARGUMENTS
// and its own message; switching to binary after verify_keys turns
// verify_keys off. Either way the client keeps working, and binary keys
// (with spaces) round-trip.
func TestVerifyKeysWithBinaryProtocol(t *testing.T) {
	s := sharedServer(t)

	c, err := New([]string{s.Addr}, WithBinaryProtocol())
	require.NoError(t, err)
	defer c.Close()
	err = c.SetBehaviors(map[string]any{"verify_keys": true})
	var e *Error
	require.ErrorAs(t, err, &e, "libmemcached refuses verify_keys on a binary handle")
	assert.Equal(t, ReturnInvalidArguments, e.Code)
	assert.Contains(t, e.Message, "VERIFY_KEY")
	assert.Equal(t, uint64(0), c.Behaviors()["verify_keys"])
	require.NoError(t, c.Set(&Item{Key: "verify keys binary 1", Value: []byte("b1")}))
	it, err := c.Get("verify keys binary 1")
	require.NoError(t, err)
	assert.Equal(t, []byte("b1"), it.Value)

	// pylibmc does the same.
	o := runPylibmc(t, []string{s.Addr}, true, []map[string]any{{"verify_keys": true}})
	assert.Contains(t, o.Results[0].Error, "returned "+strconv.Itoa(int(ReturnInvalidArguments)))

	// Option order does not matter: WithBinaryProtocol applies first.
	_, err = New([]string{s.Addr}, WithBehaviors(map[string]any{"verify_keys": true}), WithBinaryProtocol())
	assert.ErrorIs(t, err, ErrInvalidArguments)

	// verify_keys on an ASCII client, then binary: libmemcached clears
	// verify_keys, and the client then speaks binary with binary keys.
	c2, err := New([]string{s.Addr}, WithBehaviors(map[string]any{"verify_keys": true}))
	require.NoError(t, err)
	defer c2.Close()
	assert.Equal(t, uint64(1), c2.Behaviors()["verify_keys"])
	require.NoError(t, c2.Set(&Item{Key: "verify_keys_ascii", Value: []byte("a")}))
	assert.ErrorIs(t, c2.Set(&Item{Key: "verify keys ascii", Value: []byte("a")}), ErrBadKeyProvided)
	require.NoError(t, c2.SetBehavior(BehaviorBinaryProtocol, 1))
	assert.Equal(t, uint64(0), c2.Behaviors()["verify_keys"], "binary clears verify_keys")
	require.NoError(t, c2.Set(&Item{Key: "verify keys binary 2", Value: []byte("b2")}))
	it, err = c2.Get("verify keys binary 2")
	require.NoError(t, err)
	assert.Equal(t, []byte("b2"), it.Value)
	items, err := c2.GetMulti([]string{"verify keys binary 1", "verify keys binary 2", "verify_keys_ascii"})
	require.NoError(t, err)
	require.Len(t, items, 3)
	assert.Equal(t, []byte("b1"), items["verify keys binary 1"].Value)
	assert.Equal(t, []byte("a"), items["verify_keys_ascii"].Value)
}

// Distributions really change where keys go: the names are not only
// stored. With two servers and modula, keys spread over both; with
// "random" the same key may move, and with ketama the mapping is the
// continuum's, different from modula's for some key.
func TestBehaviorDistributionTakesEffect(t *testing.T) {
	servers := []string{"127.0.0.1:11", "127.0.0.1:12"}
	mapping := func(m map[string]any) []string {
		c, err := New(servers, WithBehaviors(m))
		require.NoError(t, err)
		defer c.Close()
		var out []string
		for i := 0; i < 64; i++ {
			s, err := c.ServerFor("k" + strconv.Itoa(i))
			require.NoError(t, err)
			out = append(out, s)
		}
		return out
	}
	modula := mapping(map[string]any{"distribution": "modula"})
	assert.Contains(t, modula, servers[0])
	assert.Contains(t, modula, servers[1])
	ketama := mapping(map[string]any{"ketama": true})
	assert.NotEqual(t, modula, ketama, "ketama must map keys differently from modula")
	assert.Equal(t, ketama, mapping(map[string]any{"distribution": "consistent_ketama"}))
	crc := mapping(map[string]any{"distribution": "modula", "hash": "crc"})
	assert.NotEqual(t, modula, crc, "the hash must change the mapping")
}
