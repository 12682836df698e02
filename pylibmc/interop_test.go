package pylibmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/internal/pylibmctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests share memcached servers with the real pylibmc (Debian's
// python3-pylibmc, run through internal/pylibmctest) and check that Go and
// Python read each other's values, types included.

// pyCases defines, in Python, the values of every type the codec handles,
// and same(), which compares values and their exact types recursively.
const pyCases = `
import json, sys, pylibmc, datetime, decimal, collections

def cases():
    return {
        "bytes": b"\x00\xffraw", "bytes_empty": b"",
        "str": "h\u00e9llo \u2713", "str_empty": "",
        "int": 42, "int_neg": -7, "int_zero": 0,
        "int64_max": 2**63 - 1, "int64_min": -2**63,
        "int_big": 2**64 + 1, "int_big_neg": -(2**100),
        "bool_true": True, "bool_false": False,
        "none": None, "float": 3.5, "float_neg": -0.1, "float_inf": float("inf"),
        "list": [1, "a", b"b", None, 2.5, [True, False], 2**70],
        "list_empty": [],
        "tuple": (1, "a", (2,)), "tuple_empty": (),
        "dict": {"user_id": 42, "roles": ["admin", "dev"], "prefs": {"theme": "dark"}, "ratio": 0.5},
        "dict_intkeys": {1: "one", 2: "two"}, "dict_empty": {},
        "dict_mixedkeys": {"a": 1, 2: "b", None: True, 1.5: "f", False: 0},
        "set": {1, 2, 3}, "set_str": {"a", "b"}, "set_empty": set(),
        "frozenset": frozenset({4, 5}), "bytearray": bytearray(b"ba"),
        "big_str": "x" * 5000, "big_bytes": b"y" * 5000, "big_list": list(range(3000)),
        "big_int": 10**3000, "big_dict": {"k%d" % i: i for i in range(500)},
    }

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
`

// goCases are the Go values Codec decodes pyCases into, and encodes
// back as the same Python values (except where goWriteCases says).
func goCases() map[string]any {
	bigList := make([]any, 3000)
	for i := range bigList {
		bigList[i] = int64(i)
	}
	bigDict := make(map[string]any, 500)
	for i := 0; i < 500; i++ {
		bigDict[fmt.Sprintf("k%d", i)] = int64(i)
	}
	i64big, _ := new(big.Int).SetString("18446744073709551617", 10)
	p70 := new(big.Int).Lsh(big.NewInt(1), 70)
	p100neg := new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 100))
	p3000 := new(big.Int).Exp(big.NewInt(10), big.NewInt(3000), nil)
	return map[string]any{
		"bytes": []byte("\x00\xffraw"), "bytes_empty": []byte{},
		"str": "héllo ✓", "str_empty": "",
		"int": int64(42), "int_neg": int64(-7), "int_zero": int64(0),
		"int64_max": int64(1<<63 - 1), "int64_min": int64(-1 << 63),
		"int_big": i64big, "int_big_neg": p100neg,
		// pylibmc writes a bool as FlagInteger "1"/"0" and reads it back
		// as an int: so does Go.
		"bool_true": int64(1), "bool_false": int64(0),
		"none": nil, "float": 3.5, "float_neg": -0.1, "float_inf": posInf(),
		"list":       []any{int64(1), "a", []byte("b"), nil, 2.5, []any{true, false}, p70},
		"list_empty": []any{},
		"tuple":      Tuple{int64(1), "a", Tuple{int64(2)}}, "tuple_empty": Tuple{},
		"dict": map[string]any{"user_id": int64(42), "roles": []any{"admin", "dev"},
			"prefs": map[string]any{"theme": "dark"}, "ratio": 0.5},
		"dict_intkeys":   map[any]any{int64(1): "one", int64(2): "two"},
		"dict_empty":     map[string]any{},
		"dict_mixedkeys": map[any]any{"a": int64(1), int64(2): "b", nil: true, 1.5: "f", false: int64(0)},
		"set":            Set{int64(1): {}, int64(2): {}, int64(3): {}},
		"set_str":        Set{"a": {}, "b": {}}, "set_empty": Set{},
		"frozenset": Set{int64(4): {}, int64(5): {}}, "bytearray": []byte("ba"),
		"big_str": strings.Repeat("x", 5000), "big_bytes": bytes.Repeat([]byte("y"), 5000),
		"big_list": bigList, "big_int": p3000, "big_dict": bigDict,
	}
}

func posInf() float64 { var z float64; return 1 / z }

// compressible are the cases large enough for min_compress_len=1024 to
// compress.
var compressible = []string{"big_str", "big_bytes", "big_list", "big_int", "big_dict"}

// assertSameValue compares a decoded value with the expected one, *big.Int
// by value.
func assertSameValue(t *testing.T, want, got any, msgs ...any) {
	t.Helper()
	if wb, ok := want.(*big.Int); ok {
		gb, ok := got.(*big.Int)
		if assert.True(t, ok, "want *big.Int, got %T %v %v", got, got, msgs) {
			assert.Equal(t, 0, wb.Cmp(gb), msgs...)
		}
		return
	}
	switch w := want.(type) {
	case []any:
		g, ok := got.([]any)
		if assert.True(t, ok, "want []any, got %T %v", got, msgs) && assert.Len(t, g, len(w), msgs...) {
			for i := range w {
				assertSameValue(t, w[i], g[i], msgs...)
			}
		}
		return
	}
	assert.Equal(t, want, got, msgs...)
}

// Python writes every type (plain and compressed, every pickle protocol);
// Go reads the right Go types and values, one by one and with GetMulti.
func TestInteropPythonWritesGoReads(t *testing.T) {
	servers := trio(t)
	script := pyCases + `
req = json.load(sys.stdin)
for proto in (2, 3, 4, 5):
    c = pylibmc.Client(req["servers"], binary=req["binary"])
    c.behaviors = {"pickle_protocol": proto}
    prefix = "py/%s/p%d/" % (str(req["binary"]).lower(), proto)
    assert c.set_multi(cases(), key_prefix=prefix + "plain/") == []
    assert c.set_multi(cases(), key_prefix=prefix + "z/", min_compress_len=1024) == []
`
	want := goCases()
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			binary := p.name == "binary"
			pylibmctest.Run(t, script, map[string]any{"servers": servers, "binary": binary}, nil)
			mc := newMC(t, servers, p.opts...)
			c := New(mc, Codec{})
			for _, proto := range []int{2, 3, 4, 5} {
				for _, variant := range []string{"plain", "z"} {
					prefix := fmt.Sprintf("py/%v/p%d/%s/", binary, proto, variant)
					for _, name := range names {
						got, err := c.Get(prefix + name)
						if assert.NoError(t, err, name) {
							assertSameValue(t, want[name], got, prefix+name)
						}
					}
					all, err := c.GetMultiPrefix(prefix, names)
					require.NoError(t, err)
					require.Len(t, all, len(names))
					for _, name := range names {
						assertSameValue(t, want[name], all[name], "GetMultiPrefix "+prefix+name)
					}
				}
			}
			// The flags are pylibmc's: check a few raw, and that
			// min_compress_len really compressed the big ones.
			flagsOf := func(key string) uint32 {
				it, err := mc.Get(key)
				require.NoError(t, err)
				return it.Flags
			}
			pre := fmt.Sprintf("py/%v/p5/", binary)
			assert.Equal(t, uint32(0), flagsOf(pre+"plain/bytes"))
			assert.Equal(t, FlagText, flagsOf(pre+"plain/str"))
			assert.Equal(t, FlagLong, flagsOf(pre+"plain/int_big"))
			assert.Equal(t, FlagInteger, flagsOf(pre+"plain/bool_true"))
			assert.Equal(t, FlagPickle, flagsOf(pre+"plain/dict"))
			for _, name := range compressible {
				assert.NotZero(t, flagsOf(pre+"z/"+name)&FlagZlib, "pylibmc compressed %s", name)
				assert.Zero(t, flagsOf(pre+"plain/"+name)&FlagZlib, name)
			}
			assert.Zero(t, flagsOf(pre+"z/int")&FlagZlib, "below min_compress_len")
		})
	}
}

// goWriteCases are the Go values written for pyCases' names, with the
// Python value each must read back as: Go has no bytearray or frozenset,
// and a Go bool is pickled so that Python reads a real bool.
const pyGoWriteExpect = `
def expected():
    e = cases()
    e["bytearray"] = b"ba"
    e["frozenset"] = {4, 5}
    return e
`

func goWriteCases() map[string]any {
	m := goCases()
	m["bool_true"], m["bool_false"] = true, false
	// Other Go kinds that must read as the natural Python type.
	m["typed_slice"] = []string{"a", "b"}
	m["typed_map"] = map[string]int{"n": 1}
	m["uint64_max"] = uint64(1<<64 - 1)
	m["int32"] = int32(-5)
	m["float32"] = float32(0.5)
	m["array"] = [2]int{7, 8}
	m["nil_map"] = map[string]any(nil)
	return m
}

const pyGoWriteExtra = `
    e["typed_slice"] = ["a", "b"]
    e["typed_map"] = {"n": 1}
    e["uint64_max"] = 2**64 - 1
    e["int32"] = -5
    e["float32"] = 0.5
    e["array"] = [7, 8]
    e["nil_map"] = {}
    return e
`

// Go writes every type (plain and compressed, every pickle protocol) and a
// pylibmc script asserts the Python types and values.
func TestInteropGoWritesPythonReads(t *testing.T) {
	servers := trio(t)
	script := pyCases + strings.Replace(pyGoWriteExpect, "    return e\n", pyGoWriteExtra, 1) + `
req = json.load(sys.stdin)
c = pylibmc.Client(req["servers"], binary=req["binary"])
exp = expected()
bad, n = [], 0
for prefix in req["prefixes"]:
    got = c.get_multi(list(exp), key_prefix=prefix)
    for k, v in exp.items():
        n += 1
        if k not in got:
            bad.append("%s%s: missing" % (prefix, k))
        elif not same(v, got[k]):
            bad.append("%s%s: got %r (%s)" % (prefix, k, got[k], type(got[k]).__name__)[:300])
        elif c.get(prefix + k) is None and v is not None:
            bad.append("%s%s: get() missed" % (prefix, k))
json.dump({"bad": bad, "checked": n}, sys.stdout)
`
	values := goWriteCases()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			binary := p.name == "binary"
			var prefixes []string
			for _, proto := range []int{2, 3, 4, 5} {
				for _, z := range []int{0, 1024} {
					mc := newMC(t, servers, p.opts...)
					c := New(mc, Codec{PickleProtocol: proto, MinCompressLen: z, CompressLevel: 9})
					prefix := fmt.Sprintf("go/%v/p%d/z%d/", binary, proto, z)
					prefixes = append(prefixes, prefix)
					if proto == 5 && z == 0 {
						// One at a time, through Set.
						for k, v := range values {
							require.NoError(t, c.Set(prefix+k, v, 0), k)
						}
					} else {
						failed, err := c.SetMultiPrefix(prefix, values, 0)
						require.NoError(t, err)
						require.Empty(t, failed)
					}
					if z > 0 {
						for _, name := range compressible {
							it, err := mc.Get(prefix + name)
							require.NoError(t, err)
							assert.NotZero(t, it.Flags&FlagZlib, "Go compressed %s", name)
						}
					}
				}
			}
			var res struct {
				Bad     []string `json:"bad"`
				Checked int      `json:"checked"`
			}
			pylibmctest.Run(t, script, map[string]any{"servers": servers, "binary": binary, "prefixes": prefixes}, &res)
			assert.Empty(t, res.Bad)
			assert.Equal(t, len(values)*len(prefixes), res.Checked)
		})
	}
}

// incr and decr work across languages on the decimal integers both write.
func TestInteropIncrDecr(t *testing.T) {
	servers := trio(t)
	c := New(newMC(t, servers), Codec{})
	script := `
import json, sys, pylibmc
req = json.load(sys.stdin)
c = pylibmc.Client(req["servers"])
out = {}
if req["step"] == 1:
    c.set("n/py", 10)
    c.set("n/dec", 10)
    out["decr"] = c.decr("n/dec", 1)   # memcached now holds "9 "
else:
    out["go"] = c.get("n/go")
    out["go_type"] = type(c.get("n/go")).__name__
    out["incr_go"] = c.incr("n/go", 5)
    out["py"] = c.get("n/py")
json.dump(out, sys.stdout)
`
	var r1 map[string]any
	pylibmctest.Run(t, script, map[string]any{"servers": servers, "step": 1}, &r1)
	assert.EqualValues(t, 9, r1["decr"])

	n, err := c.Incr("n/py", 5)
	require.NoError(t, err)
	assert.Equal(t, uint64(15), n)
	v, err := c.Get("n/py")
	require.NoError(t, err)
	assert.Equal(t, int64(15), v)
	// A number decremented to fewer digits is space-padded; it still
	// decodes, as in Python.
	v, err = c.Get("n/dec")
	require.NoError(t, err)
	assert.Equal(t, int64(9), v)
	n, err = c.Decr("n/dec", 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(5), n)

	require.NoError(t, c.Set("n/go", 100, 0))
	n, err = c.Incr("n/go", 1)
	require.NoError(t, err)
	assert.Equal(t, uint64(101), n)

	var r2 map[string]any
	pylibmctest.Run(t, script, map[string]any{"servers": servers, "step": 2}, &r2)
	assert.EqualValues(t, 101, r2["go"])
	assert.Equal(t, "int", r2["go_type"])
	assert.EqualValues(t, 106, r2["incr_go"])
	assert.EqualValues(t, 15, r2["py"])
	v, err = c.Get("n/go")
	require.NoError(t, err)
	assert.Equal(t, int64(106), v)
}

// Go compare-and-swaps a value pylibmc wrote; a write by Python in between
// makes the swap fail.
func TestInteropCAS(t *testing.T) {
	servers := trio(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := New(newMC(t, servers, p.opts...), Codec{})
			key := "cas/" + p.name
			script := `
import json, sys, pylibmc
req = json.load(sys.stdin)
c = pylibmc.Client(req["servers"], binary=req["binary"])
if req["op"] == "write":
    c.set(req["key"], {"visits": 1, "user": "ann"})
    out = None
else:
    out = c.get(req["key"])
json.dump(out, sys.stdout)
`
			py := func(op string, out any) {
				pylibmctest.Run(t, script, map[string]any{"servers": servers, "binary": p.name == "binary", "op": op, "key": key}, out)
			}
			py("write", nil)
			v, cas, err := c.Gets(key)
			require.NoError(t, err)
			require.NotZero(t, cas)
			sess := v.(map[string]any)
			assert.Equal(t, int64(1), sess["visits"])
			sess["visits"] = sess["visits"].(int64) + 1
			require.NoError(t, c.CAS(key, sess, cas, 0))
			var back map[string]any
			py("read", &back)
			assert.EqualValues(t, 2, back["visits"])
			assert.Equal(t, "ann", back["user"])

			// Python writes after Go read: Go's swap loses.
			_, cas, err = c.Gets(key)
			require.NoError(t, err)
			py("write", nil)
			err = c.CAS(key, map[string]any{"visits": 99}, cas, 0)
			require.ErrorIs(t, err, libmemcached.ErrCASConflict)
			py("read", &back)
			assert.EqualValues(t, 1, back["visits"])
		})
	}
}

// get_multi/set_multi with key_prefix and GetMultiPrefix/SetMultiPrefix
// address the same keys, and return them without the prefix, over a
// client and over a pool.
func TestInteropKeyPrefix(t *testing.T) {
	servers := trio(t)
	c := New(newMC(t, servers), Codec{})
	script := `
import json, sys, pylibmc
req = json.load(sys.stdin)
c = pylibmc.Client(req["servers"])
assert c.set_multi({"a": 1, "b": "two", "c": [3]}, key_prefix="sess:") == []
got = c.get_multi(["x", "y", "nope"], key_prefix="go:")
json.dump({"got": {k: repr(v) for k, v in got.items()}, "raw": repr(c.get("go:x"))}, sys.stdout)
`
	failed, err := c.SetMultiPrefix("go:", map[string]any{"x": "ex", "y": Tuple{int64(1)}}, 0)
	require.NoError(t, err)
	require.Empty(t, failed)
	var res struct {
		Got map[string]string `json:"got"`
		Raw string            `json:"raw"`
	}
	pylibmctest.Run(t, script, map[string]any{"servers": servers}, &res)
	assert.Equal(t, map[string]string{"x": "'ex'", "y": "(1,)"}, res.Got)
	assert.Equal(t, "'ex'", res.Raw)

	got, err := c.GetMultiPrefix("sess:", []string{"a", "b", "c", "missing"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": int64(1), "b": "two", "c": []any{int64(3)}}, got)
	// The prefix is part of the key: without it nothing is found.
	got, err = c.GetMulti([]string{"a", "b"})
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = c.GetMulti([]string{"sess:a"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"sess:a": int64(1)}, got)

	// Over a pool the same.
	pool := New(newPool(t, servers, 2), Codec{})
	got, err = pool.GetMultiPrefix("sess:", []string{"a", "c"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": int64(1), "c": []any{int64(3)}}, got)
	failed, err = pool.SetMultiPrefix("pool:", map[string]any{"k": 1.5}, 0)
	require.NoError(t, err)
	require.Empty(t, failed)
	v, err := c.Get("pool:k")
	require.NoError(t, err)
	assert.Equal(t, 1.5, v)
}

// Expiry set by either side is honoured for both.
func TestInteropExpiry(t *testing.T) {
	servers := trio(t)
	c := New(newMC(t, servers), Codec{})
	script := `
import json, sys, pylibmc
req = json.load(sys.stdin)
c = pylibmc.Client(req["servers"])
if req["step"] == 1:
    c.set("exp/py", "short", time=1)
    c.set("exp/py_long", "long", time=60)
json.dump({k: c.get(k) for k in ("exp/go", "exp/go_long", "exp/py")}, sys.stdout)
`
	require.NoError(t, c.Set("exp/go", "short", 1))
	require.NoError(t, c.Set("exp/go_long", "long", 60))
	var before map[string]any
	pylibmctest.Run(t, script, map[string]any{"servers": servers, "step": 1}, &before)
	assert.Equal(t, map[string]any{"exp/go": "short", "exp/go_long": "long", "exp/py": "short"}, before)
	v, err := c.Get("exp/py")
	require.NoError(t, err)
	assert.Equal(t, "short", v)

	time.Sleep(2100 * time.Millisecond) // memcached's clock ticks once a second
	var after map[string]any
	pylibmctest.Run(t, script, map[string]any{"servers": servers, "step": 2}, &after)
	assert.Equal(t, map[string]any{"exp/go": nil, "exp/go_long": "long", "exp/py": nil}, after)
	_, err = c.Get("exp/py")
	assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)
	v, err = c.Get("exp/py_long")
	require.NoError(t, err)
	assert.Equal(t, "long", v)
}

// Values the codec cannot read come back as errors naming the flags (or
// the Python class), never as a guess. pylibmc itself errors on the
// combined type flags, but reads flags 32 as bytes.
func TestInteropUnreadableValues(t *testing.T) {
	servers := trio(t)
	script := `
import json, sys, pylibmc, datetime, decimal, collections, pickle

class Session:
    def __init__(self):
        self.user = "ann"

class Raw(pylibmc.Client):
    def serialize(self, value):
        return value

req = json.load(sys.stdin)
r = Raw(req["servers"])
for key, flags in (("flags17", 17), ("flags6", 6), ("flags32", 32), ("flags3", 3), ("flags25", 25)):
    r.set(key, (b"x", flags))
r.set("badzlib", (b"not zlib", 8))
r.set("badutf8", (b"\xff\xfe", 16))
r.set("notint", (b"12abc", 4))
r.set("setbytes", (pickle.dumps({b"a", b"b"}), 1))
c = pylibmc.Client(req["servers"])
c.set("datetime", datetime.datetime(2024, 1, 2, 3, 4, 5))
c.set("decimal", decimal.Decimal("1.5"))
c.set("ordered", collections.OrderedDict(a=1))
c.set("session", Session())
c.set("complex", 1j)
c.set("tuplekey", {(1, 2): "x"})
c.set("ok", "fine")
out = {}
for k in ("flags17", "flags6", "flags32"):
    try:
        out[k] = repr(c.get(k))
    except Exception as e:
        out[k] = type(e).__name__
json.dump(out, sys.stdout)
`
	var py map[string]string
	pylibmctest.Run(t, script, map[string]any{"servers": servers}, &py)
	assert.Equal(t, map[string]string{"flags17": "Error", "flags6": "Error", "flags32": "b'x'"}, py)

	c := New(newMC(t, servers), Codec{})
	cases := []struct {
		key, class string
		flags      uint32
		reason     string
	}{
		{"flags17", "", 17, "more than one type flag"},
		{"flags6", "", 6, "more than one type flag"},
		{"flags32", "", 32, "flags pylibmc does not define"},
		{"flags3", "", 3, "more than one type flag"},
		{"flags25", "", 25, "more than one type flag"},
		{"badzlib", "", 8, "bad zlib stream"},
		{"badutf8", "", 16, "not valid UTF-8"},
		{"notint", "", 4, "not a decimal integer"},
		{"setbytes", "", 1, "malformed or unsupported pickle"},
		{"datetime", "datetime.datetime", 1, ""},
		{"decimal", "decimal.Decimal", 1, ""},
		{"ordered", "collections.OrderedDict", 1, ""},
		{"session", "__main__.Session", 1, ""},
		{"complex", "builtins.complex", 1, ""},
		{"tuplekey", "", 1, "dict key of Python type tuple"},
	}
	for _, tc := range cases {
		v, err := c.Get(tc.key)
		assert.Nil(t, v, tc.key)
		var ce *CodecError
		if !assert.True(t, errors.As(err, &ce), "%s: %v", tc.key, err) {
			continue
		}
		assert.Equal(t, tc.key, ce.Key)
		assert.Equal(t, tc.flags, ce.Flags, tc.key)
		assert.Equal(t, tc.class, ce.Class, tc.key)
		assert.Contains(t, err.Error(), fmt.Sprintf("flags %d", tc.flags), tc.key)
		if tc.class != "" {
			assert.Contains(t, err.Error(), tc.class)
		}
		assert.Contains(t, err.Error(), tc.reason, tc.key)
	}

	// GetMulti returns what it can read and an error naming the rest.
	vals, err := c.GetMulti([]string{"ok", "flags17", "datetime", "absent"})
	assert.Equal(t, map[string]any{"ok": "fine"}, vals)
	var ce *CodecError
	require.True(t, errors.As(err, &ce))
	assert.Contains(t, err.Error(), `"flags17"`)
	assert.Contains(t, err.Error(), "datetime.datetime")
}

// pylibmc.New works over a Pool, over a client acquired from it and over
// a clone, with the codec given to New; Python reads what each wrote.
func TestInteropPoolAcquiredAndClone(t *testing.T) {
	servers := trio(t)
	codec := Codec{MinCompressLen: 100}
	mp := newPool(t, servers, 2)
	pool := New(mp, codec)
	assert.Equal(t, codec, pool.Codec())
	assert.Same(t, mp, pool.Store())
	big := strings.Repeat("z", 1000)
	require.NoError(t, pool.Set("pool/big", big, 0))
	it, err := mp.Get("pool/big")
	require.NoError(t, err)
	assert.Equal(t, FlagText|FlagZlib, it.Flags)

	mc, err := mp.Acquire(context.Background())
	require.NoError(t, err)
	acq := New(mc, codec)
	require.NoError(t, acq.Set("pool/acq", big, 0))
	v, err := acq.Get("pool/big")
	require.NoError(t, err)
	assert.Equal(t, big, v)
	mp.Release(mc)

	require.NoError(t, pool.Add("pool/add", Tuple{"t"}, 0))
	require.ErrorIs(t, pool.Add("pool/add", 1, 0), libmemcached.ErrNotStored)
	require.NoError(t, pool.Replace("pool/add", Set{"s": {}}, 0))
	require.ErrorIs(t, pool.Replace("pool/absent", 1, 0), libmemcached.ErrNotStored)
	v, cas, err := pool.Gets("pool/add")
	require.NoError(t, err)
	assert.Equal(t, Set{"s": {}}, v)
	require.NoError(t, pool.CAS("pool/add", []any{"l"}, cas, 0))
	require.ErrorIs(t, pool.CAS("pool/add", []any{"late"}, cas, 0), libmemcached.ErrCASConflict)
	failed, err := pool.SetMulti(map[string]any{"pool/m1": 1, "pool/m2": big}, 0)
	require.NoError(t, err)
	require.Empty(t, failed)
	vals, err := pool.GetMulti([]string{"pool/big", "pool/acq", "pool/add", "pool/m1", "pool/m2"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"pool/big": big, "pool/acq": big, "pool/add": []any{"l"}, "pool/m1": int64(1), "pool/m2": big}, vals)
	v, err = pool.Get("pool/acq")
	require.NoError(t, err)
	assert.Equal(t, big, v)
	n, err := pool.Incr("pool/m1", 2)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), n)

	// A clone of a client, with its own codec.
	orig := newMC(t, servers)
	cl, err := orig.Clone()
	require.NoError(t, err)
	defer cl.Close()
	clone := New(cl, codec)
	require.NoError(t, clone.Set("clone/big", big, 0))
	it, err = orig.Get("clone/big")
	require.NoError(t, err)
	assert.Equal(t, FlagText|FlagZlib, it.Flags)
	// The same store with the default codec reads it, and writes plainly.
	plain := New(orig, Codec{})
	v, err = plain.Get("clone/big")
	require.NoError(t, err)
	assert.Equal(t, big, v)
	require.NoError(t, plain.Set("clone/plain", big, 0))
	it, err = orig.Get("clone/plain")
	require.NoError(t, err)
	assert.Equal(t, FlagText, it.Flags)

	var py map[string]string
	pylibmctest.Run(t, `
import json, sys, pylibmc
c = pylibmc.Client(json.load(sys.stdin))
json.dump({k: repr(c.get(k))[:20] for k in ("pool/acq", "pool/m1", "pool/m2", "pool/add", "clone/big", "clone/plain")}, sys.stdout)
`, servers, &py)
	assert.Equal(t, map[string]string{"pool/acq": "'" + big[:19], "pool/m1": "3", "pool/m2": "'" + big[:19], "pool/add": "['l']",
		"clone/big": "'" + big[:19], "clone/plain": "'" + big[:19]}, py)
}
