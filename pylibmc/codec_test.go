package pylibmc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached/internal/pylibmctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func zlibOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// requireCodecError checks that err is a *CodecError for flags whose text
// says reason.
func requireCodecError(t *testing.T, err error, flags uint32, reason string) *CodecError {
	t.Helper()
	var ce *CodecError
	require.True(t, errors.As(err, &ce), "want a *CodecError, got %v", err)
	assert.Equal(t, flags, ce.Flags)
	assert.Contains(t, err.Error(), reason)
	return ce
}

// Each flag reads as pylibmc reads it; anything else is an error naming
// the flags.
func TestCodecDecodeFlags(t *testing.T) {
	var c Codec
	big1, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	ok := []struct {
		data  string
		flags uint32
		want  any
	}{
		{"\x00raw", 0, []byte("\x00raw")},
		{"", 0, []byte("")},
		{"héllo", FlagText, "héllo"},
		{"", FlagText, ""},
		{"42", FlagLong, int64(42)},
		{"-42", FlagLong, int64(-42)},
		{"9 ", FlagLong, int64(9)}, // memcached pads a decremented number
		{" \t7\n", FlagLong, int64(7)},
		{"1_000", FlagLong, int64(1000)},
		{"+5", FlagLong, int64(5)},
		{"007", FlagLong, int64(7)},
		{"9223372036854775807", FlagLong, int64(math.MaxInt64)},
		{"-9223372036854775808", FlagLong, int64(math.MinInt64)},
		{"123456789012345678901234567890", FlagLong, big1},
		{"1", FlagInteger, int64(1)},
		{"0", FlagInteger, int64(0)},
		{"\x80\x05N.", FlagPickle, nil},
		{"\x80\x05\x88.", FlagPickle, true},
	}
	for _, tc := range ok {
		got, err := c.Decode([]byte(tc.data), tc.flags)
		require.NoError(t, err, "%q flags %d", tc.data, tc.flags)
		assert.Equal(t, tc.want, got, "%q flags %d", tc.data, tc.flags)
		// The same value compressed reads the same.
		got, err = c.Decode(zlibOf(t, []byte(tc.data)), tc.flags|FlagZlib)
		require.NoError(t, err, "%q flags %d|zlib", tc.data, tc.flags)
		assert.Equal(t, tc.want, got, "%q flags %d|zlib", tc.data, tc.flags)
	}

	bad := []struct {
		data   string
		flags  uint32
		reason string
	}{
		{"x", 3, "more than one type flag"},
		{"x", 5, "more than one type flag"},
		{"x", 6, "more than one type flag"},
		{"x", 17, "more than one type flag"},
		{"x", 20, "more than one type flag"},
		{"x", 31, "more than one type flag"},
		{"x", 32, "flags pylibmc does not define"},
		{"x", 0x100 | FlagText, "flags pylibmc does not define"},
		{"x", 1 << 31, "flags pylibmc does not define"},
		{"\xff\xfe", FlagText, "not valid UTF-8"},
		{"", FlagLong, "not a decimal integer"},
		{"12abc", FlagLong, "not a decimal integer"},
		{"12\x00", FlagLong, "not a decimal integer"},
		{"1__0", FlagLong, "not a decimal integer"},
		{"_1", FlagInteger, "not a decimal integer"},
		{"- 1", FlagLong, "not a decimal integer"},
		{"0x10", FlagLong, "not a decimal integer"},
		{"plain", FlagZlib, "bad zlib stream"},
		{"", FlagPickle, "malformed pickle"},
		{"not a pickle", FlagPickle, "malformed pickle"},
	}
	for _, tc := range bad {
		v, err := c.Decode([]byte(tc.data), tc.flags)
		assert.Nil(t, v)
		requireCodecError(t, err, tc.flags, tc.reason)
		assert.Contains(t, err.Error(), fmt.Sprintf("flags %d", tc.flags))
	}
	// The flags are named in words too.
	_, err := c.Decode([]byte("x"), 17|FlagZlib)
	assert.Contains(t, err.Error(), "flags 25: pickle|zlib|text")
	_, err = c.Decode([]byte("x"), 0x40)
	assert.Contains(t, err.Error(), "flags 64: 0x40")
	// Garbage after a zlib stream is not ignored.
	_, err = c.Decode(append(zlibOf(t, []byte("ok")), 'x'), FlagZlib)
	requireCodecError(t, err, FlagZlib, "garbage after the zlib stream")
	// A corrupt checksum is an error.
	z := zlibOf(t, []byte("checksummed"))
	z[len(z)-1] ^= 1
	_, err = c.Decode(z, FlagText|FlagZlib)
	requireCodecError(t, err, FlagText|FlagZlib, "bad zlib stream")
}

// Encode picks pylibmc's flags and bytes for each Go type.
func TestCodecEncode(t *testing.T) {
	var c Codec
	big1, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	cases := []struct {
		v     any
		data  string
		flags uint32
	}{
		{[]byte("raw\x00"), "raw\x00", 0},
		{[]byte(nil), "", 0},
		{"héllo", "héllo", FlagText},
		{"", "", FlagText},
		{42, "42", FlagLong},
		{int8(-8), "-8", FlagLong},
		{int16(16), "16", FlagLong},
		{int32(-32), "-32", FlagLong},
		{int64(math.MinInt64), "-9223372036854775808", FlagLong},
		{uint(7), "7", FlagLong},
		{uint8(8), "8", FlagLong},
		{uint16(16), "16", FlagLong},
		{uint32(32), "32", FlagLong},
		{uint64(math.MaxUint64), "18446744073709551615", FlagLong},
		{uintptr(3), "3", FlagLong},
		{big1, "-123456789012345678901234567890", FlagLong},
	}
	for _, tc := range cases {
		data, flags, err := c.Encode(tc.v)
		require.NoError(t, err, "%T", tc.v)
		assert.Equal(t, tc.data, string(data), "%T", tc.v)
		assert.Equal(t, tc.flags, flags, "%T", tc.v)
	}
	// Everything else is pickled; bools too, so Python reads a bool.
	for _, v := range []any{true, nil, 1.5, []any{1}, Tuple{}, map[string]any{}, Set{}, []string{"a"}} {
		data, flags, err := c.Encode(v)
		require.NoError(t, err, "%T", v)
		assert.Equal(t, FlagPickle, flags, "%T", v)
		assert.Equal(t, byte(0x80), data[0], "a pickle starts with PROTO")
		assert.Equal(t, byte(DefaultPickleProtocol), data[1])
		back, err := c.Decode(data, flags)
		require.NoError(t, err)
		_ = back
	}
	for proto := 2; proto <= 5; proto++ {
		data, _, err := Codec{PickleProtocol: proto}.Encode(nil)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x80, byte(proto), 'N', '.'}, data)
	}

	bad := []struct {
		codec  Codec
		v      any
		reason string
	}{
		{c, "\xff", "not valid UTF-8"},
		{c, []any{"\xff"}, "not valid UTF-8"},
		{c, (*big.Int)(nil), "nil *big.Int"},
		{c, struct{ A int }{1}, "has no natural Python form"},
		{c, &struct{}{}, "has no natural Python form"},
		{c, make(chan int), "has no natural Python form"},
		{c, complex(1, 2), "has no natural Python form"},
		{c, map[[2]int]int{{1, 2}: 3}, "no Python form that can be a dict key"},
		{c, Set{struct{}{}: {}}, "no Python form that can be a dict key or set element"},
		{c, map[any]any{int32(1): "a", int64(1): "b"}, "the same Python key"},
		{Codec{PickleProtocol: 1}, 1.5, "PickleProtocol 1 is not 2 to 5"},
		{Codec{PickleProtocol: 6}, 1.5, "PickleProtocol 6 is not 2 to 5"},
		{Codec{CompressLevel: 10}, "x", "CompressLevel 10"},
		{Codec{MaxValueSize: 4}, "12345", "MaxValueSize is 4"},
	}
	for _, tc := range bad {
		_, _, err := tc.codec.Encode(tc.v)
		var ce *CodecError
		require.True(t, errors.As(err, &ce), "%T: %v", tc.v, err)
		assert.Equal(t, "encode", ce.Op)
		assert.Contains(t, err.Error(), tc.reason, "%T", tc.v)
	}

	// Cycles are refused, not followed forever.
	self := []any{nil}
	self[0] = self
	_, _, err := c.Encode(self)
	assert.ErrorContains(t, err, "contains itself")
	m := map[string]any{}
	m["m"] = []any{m}
	_, _, err = c.Encode(m)
	assert.ErrorContains(t, err, "contains itself")
	// Shared (not cyclic) parts are fine.
	shared := []any{"s"}
	_, _, err = c.Encode([]any{shared, shared})
	assert.NoError(t, err)
	// Too deep.
	var deep any = "leaf"
	for i := 0; i <= MaxNesting; i++ {
		deep = []any{deep}
	}
	_, _, err = c.Encode(deep)
	assert.ErrorContains(t, err, "MaxNesting")
}

// Compression follows pylibmc's rule: only from MinCompressLen on, and
// only if it makes the value smaller.
func TestCodecCompression(t *testing.T) {
	text := strings.Repeat("compressible ", 100) // 1300 bytes
	var sb strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&sb, "key%d=%d;", i, i*i)
	}
	varied := sb.String()
	// A pseudo-random run zlib cannot shrink.
	rnd := []byte{}
	x := uint32(1)
	for i := 0; i < 2000; i++ {
		x = x*1664525 + 1013904223
		rnd = append(rnd, byte(x>>24))
	}

	for _, tc := range []struct {
		codec Codec
		v     any
		zlib  bool
	}{
		{Codec{}, text, false}, // pylibmc's default: never
		{Codec{MinCompressLen: 1300}, text, true},
		{Codec{MinCompressLen: 1301}, text, false},
		{Codec{MinCompressLen: 1}, rnd, false}, // would grow
		{Codec{MinCompressLen: 1}, "ab", false},
		{Codec{MinCompressLen: 1, CompressLevel: 1}, text, true},
		{Codec{MinCompressLen: 1, CompressLevel: 9}, []any{text, text}, true},
		{Codec{MinCompressLen: 10}, strings.Repeat("9", 1000), true}, // text|zlib
	} {
		data, flags, err := tc.codec.Encode(tc.v)
		require.NoError(t, err)
		assert.Equal(t, tc.zlib, flags&FlagZlib != 0, "%+v %T", tc.codec, tc.v)
		if _, ok := tc.v.(string); ok {
			assert.Equal(t, FlagText, flags&^FlagZlib, "a compressed string keeps its type flag")
		}
		back, err := tc.codec.Decode(data, flags)
		require.NoError(t, err)
		if b, ok := tc.v.([]byte); ok {
			assert.Equal(t, b, back)
		} else if s, ok := tc.v.(string); ok {
			assert.Equal(t, s, back)
		}
	}
	// Levels give different streams, and both read back.
	d1, f1, _ := Codec{MinCompressLen: 1, CompressLevel: 1}.Encode(varied)
	d9, f9, _ := Codec{MinCompressLen: 1, CompressLevel: 9}.Encode(varied)
	assert.Equal(t, FlagText|FlagZlib, f1)
	assert.Equal(t, FlagText|FlagZlib, f9)
	assert.NotEqual(t, d1, d9)
	assert.Less(t, len(d9), len(d1))
}

// A small zlib bomb cannot make Decode allocate much more than
// MaxValueSize.
func TestCodecZlibBomb(t *testing.T) {
	// 16 MiB of zeros in 16 KiB: the cap, not the input, must bound the
	// work (a bigger bomb only takes the test longer to build).
	var zb bytes.Buffer
	zw, err := zlib.NewWriterLevel(&zb, zlib.BestSpeed)
	require.NoError(t, err)
	zero := make([]byte, 1<<20)
	for i := 0; i < 16; i++ {
		_, err = zw.Write(zero)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	bomb := zb.Bytes()
	require.Less(t, len(bomb), 300<<10)
	for _, tc := range []struct {
		codec Codec
		limit int
	}{
		{Codec{}, DefaultMaxValueSize},
		{Codec{MaxValueSize: 4 << 20}, 4 << 20},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		v, err := tc.codec.Decode(bomb, FlagZlib)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		assert.Nil(t, v)
		requireCodecError(t, err, FlagZlib, fmt.Sprintf("inflates to more than MaxValueSize (%d bytes)", tc.limit))
		allocated := after.TotalAlloc - before.TotalAlloc
		assert.Less(t, allocated, uint64(3*tc.limit+(1<<20)), "allocated %d bytes", allocated)
		assert.Less(t, elapsed, 2*time.Second)
	}
	// Within the limit it inflates.
	small := zlibOf(t, make([]byte, 1000))
	v, err := Codec{MaxValueSize: 1000}.Decode(small, FlagZlib)
	require.NoError(t, err)
	assert.Len(t, v, 1000)
	_, err = Codec{MaxValueSize: 999}.Decode(small, FlagZlib)
	requireCodecError(t, err, FlagZlib, "MaxValueSize (999 bytes)")
}

// pickleOf asks Python for pickle.dumps(eval(expr), proto) of each
// expression.
func picklesOf(t *testing.T, proto int, exprs map[string]string) map[string][]byte {
	t.Helper()
	var out map[string]string
	pylibmctest.Run(t, `
import json, sys, pickle, datetime, decimal, collections, fractions, uuid
req = json.load(sys.stdin)
def build(expr):
    return eval(expr)
json.dump({k: pickle.dumps(build(e), req["proto"]).hex() for k, e in req["exprs"].items()}, sys.stdout)
`, map[string]any{"proto": proto, "exprs": exprs}, &out)
	res := make(map[string][]byte, len(out))
	for k, h := range out {
		b, err := hex.DecodeString(h)
		require.NoError(t, err)
		res[k] = b
	}
	return res
}

// Pickles Python writes with protocols 1 to 5 decode to the documented Go
// values; classes Go cannot represent are errors naming the class.
func TestPickleDecodeFromPython(t *testing.T) {
	exprs := map[string]string{
		"none": "None", "true": "True", "false": "False",
		"int": "42", "neg": "-300", "i32": "-2**31", "i64max": "2**63-1", "i64min": "-2**63",
		"u64": "2**64-1", "big": "-(2**200)+1",
		"float": "3.25", "nan_free_inf": "float('-inf')",
		"str": "'h\\u00e9llo \\u2713 \\U0001f600'", "str_empty": "''", "str_long": "'s' * 300",
		"bytes": "b'\\x00\\xff'", "bytes_empty": "b''", "bytes_long": "b'b' * 300",
		"bytearray": "bytearray(b'ba')", "bytearray_empty": "bytearray()",
		"list": "[1, [2, [3]], 'x', None]", "tuple": "(1, (2,), ())", "tuple4": "(1, 2, 3, 4)",
		"dict": "{'a': 1, 'b': {'c': [True]}}", "dict_mixed": "{1: 'a', 'b': 2, None: None, 2.5: 3, True: 4}",
		"set": "{1, 'a', None, 2.5}", "frozenset": "frozenset({'f'})", "set_empty": "set()",
		"shared": "(lambda x: [x, x])([1, 2])",
	}
	want := map[string]any{
		"none": nil, "true": true, "false": false,
		"int": int64(42), "neg": int64(-300), "i32": int64(math.MinInt32), "i64max": int64(math.MaxInt64), "i64min": int64(math.MinInt64),
		"u64": new(big.Int).SetUint64(math.MaxUint64), "big": new(big.Int).Add(new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 200)), big.NewInt(1)),
		"float": 3.25, "nan_free_inf": math.Inf(-1),
		"str": "héllo ✓ 😀", "str_empty": "", "str_long": strings.Repeat("s", 300),
		"bytes": []byte{0, 0xff}, "bytes_empty": []byte{}, "bytes_long": bytes.Repeat([]byte("b"), 300),
		"bytearray": []byte("ba"), "bytearray_empty": []byte{},
		"list":   []any{int64(1), []any{int64(2), []any{int64(3)}}, "x", nil},
		"tuple":  Tuple{int64(1), Tuple{int64(2)}, Tuple{}},
		"tuple4": Tuple{int64(1), int64(2), int64(3), int64(4)},
		"dict":   map[string]any{"a": int64(1), "b": map[string]any{"c": []any{true}}},
		// True and 1 are the same key in Python; {1: 'a', ..., True: 4}
		// keeps the key 1 with the value 4.
		"dict_mixed": map[any]any{int64(1): int64(4), "b": int64(2), nil: nil, 2.5: int64(3)},
		"set":        Set{int64(1): {}, "a": {}, nil: {}, 2.5: {}},
		"frozenset":  Set{"f": {}},
		"set_empty":  Set{},
		"shared":     []any{[]any{int64(1), int64(2)}, []any{int64(1), int64(2)}},
	}
	var c Codec
	for proto := 1; proto <= 5; proto++ {
		t.Run(strconv.Itoa(proto), func(t *testing.T) {
			pickles := picklesOf(t, proto, exprs)
			for name, p := range pickles {
				got, err := c.Decode(p, FlagPickle)
				if !assert.NoError(t, err, name) {
					continue
				}
				assertSameValue(t, want[name], got, name)
			}
			// Python's shared list is one Go slice.
			got, _ := c.Decode(pickles["shared"], FlagPickle)
			l := got.([]any)
			l[0].([]any)[0] = "changed"
			assert.Equal(t, "changed", l[1].([]any)[0])
		})
	}

	// Protocol 0 reads too, except text gopickle would misread.
	p0 := picklesOf(t, 0, map[string]string{"ascii": "['abc', 1, 2.5, None, {'k': (True,)}]", "latin": "'h\\u00e9'", "esc": "'a\\\\b'"})
	got, err := c.Decode(p0["ascii"], FlagPickle)
	require.NoError(t, err)
	assert.Equal(t, []any{"abc", int64(1), 2.5, nil, map[string]any{"k": Tuple{true}}}, got)
	for _, name := range []string{"latin", "esc"} {
		_, err = c.Decode(p0[name], FlagPickle)
		requireCodecError(t, err, FlagPickle, "protocol 0 text")
	}

	// Classes Go cannot represent, in every protocol.
	classes := map[string]string{
		"datetime.datetime":       "datetime.datetime(2024, 1, 2)",
		"datetime.date":           "datetime.date(2024, 1, 2)",
		"decimal.Decimal":         "decimal.Decimal('1.5')",
		"collections.OrderedDict": "collections.OrderedDict(a=1)",
		"builtins.complex":        "1j",
		"fractions.Fraction":      "fractions.Fraction(1, 3)",
		"uuid.UUID":               "uuid.UUID(int=5)",
		"collections.deque":       "collections.deque([1])",
	}
	for proto := 2; proto <= 5; proto++ {
		pickles := picklesOf(t, proto, classes)
		for class, p := range pickles {
			v, err := c.Decode(p, FlagPickle)
			assert.Nil(t, v)
			ce := requireCodecError(t, err, FlagPickle, class)
			assert.Equal(t, class, ce.Class, "protocol %d", proto)
		}
	}
	// Dict keys and set elements with no Go map key form.
	for expr, reason := range map[string]string{
		"{(1, 2): 'x'}":    "dict key of Python type tuple",
		"{b'k': 1}":        "dict key of Python type bytes",
		"{2**70: 1}":       "dict key of Python type int (beyond int64)",
		"{frozenset(): 1}": "dict key of Python type frozenset",
		"{(1,)}":           "set element of Python type tuple",
		"{b'a'}":           "malformed or unsupported pickle",
	} {
		p := picklesOf(t, 5, map[string]string{"v": expr})["v"]
		_, err := c.Decode(p, FlagPickle)
		requireCodecError(t, err, FlagPickle, reason)
	}
}

// Hostile pickles fail fast with an error: no panic, no huge allocation,
// no endless walk.
func TestPickleHostile(t *testing.T) {
	var c Codec
	len8 := func(op byte, n uint64) []byte {
		b := []byte{0x80, 5, op}
		b = binary.LittleEndian.AppendUint64(b, n)
		return append(b, "abc."...)
	}
	nested := func(n int) []byte {
		b := []byte{0x80, 2}
		b = append(b, bytes.Repeat([]byte{']'}, n)...)
		b = append(b, bytes.Repeat([]byte{'a'}, n-1)...)
		return append(b, '.')
	}
	cases := map[string]struct {
		p      []byte
		reason string
	}{
		"BINBYTES8 of 1 TiB":      {len8(0x8e, 1<<40), "needs 1099511627776 bytes"},
		"BINUNICODE8 of 2^63":     {len8(0x8d, 1<<63), "needs 9223372036854775808 bytes"},
		"BYTEARRAY8 of 2^64-1":    {len8(0x96, math.MaxUint64), "needs"},
		"FRAME of 2^50":           {len8(0x95, 1<<50), "frame at 2 declares"},
		"BINBYTES of 4 GiB":       {append([]byte{0x80, 3, 'B', 0xff, 0xff, 0xff, 0xff}, "x."...), "needs 4294967295 bytes"},
		"LONG4 negative":          {[]byte{0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0xff, '.'}, "negative length"},
		"BINSTRING negative":      {[]byte{0x80, 2, 'T', 0, 0, 0, 0x80, '.'}, "negative length"},
		"unknown opcode":          {[]byte{0x80, 5, 0xff, '.'}, "unknown opcode 0xff"},
		"no STOP":                 {[]byte{0x80, 5, 'N'}, "no STOP"},
		"after STOP":              {[]byte{0x80, 5, 'N', '.', 'N'}, "1 bytes after STOP"},
		"unterminated line":       {[]byte("I12"), "unterminated line"},
		"marks too deep":          {append(bytes.Repeat([]byte{'('}, MaxNesting+1), '.'), "marks nest deeper"},
		"odd dict (gopickle #16)": {[]byte("(\x88\x88\x88d."), "malformed or unsupported pickle"},
		"APPEND to non-list":      {[]byte("\x80\x02NNa."), "malformed or unsupported pickle"},
		"empty stack":             {[]byte("\x80\x02."), "malformed or unsupported pickle"},
		"nesting beyond limit":    {nested(MaxNesting + 2), "nests deeper than MaxNesting"},
		"persistent id":           {[]byte("\x80\x02K\x01Q."), "malformed or unsupported pickle"},
		"extension code":          {[]byte("\x80\x02\x82\x01."), "malformed or unsupported pickle"},
		"out-of-band buffer":      {[]byte("\x80\x05\x97."), "malformed or unsupported pickle"},
		"global of os.system":     {[]byte("cos\nsystem\n(S'true'\ntR."), "os.system"},
	}
	for name, tc := range cases {
		start := time.Now()
		v, err := c.Decode(tc.p, FlagPickle)
		assert.Nil(t, v, name)
		ce := requireCodecError(t, err, FlagPickle, tc.reason)
		assert.Equal(t, "decode", ce.Op, name)
		assert.Less(t, time.Since(start), time.Second, name)
	}
	// Deep but within the limit is fine.
	v, err := c.Decode(nested(1000), FlagPickle)
	require.NoError(t, err)
	depth := 0
	for l, ok := v.([]any); ok && len(l) > 0; l, ok = l[0].([]any) {
		depth++
	}
	assert.Equal(t, 999, depth)

	// Built by Python: a structure that contains itself, and one whose
	// shared halves double 40 times (2^40 nodes as a tree).
	py := picklesOf(t, 5, map[string]string{
		"recursive_list": "(lambda l: (l.append(l), l)[1])([])",
		"recursive_dict": "(lambda d: (d.__setitem__('me', [d]), d)[1])({})",
		"dag_bomb":       "__import__('functools').reduce(lambda acc, _: [acc, acc], range(40), [])",
		"dag_small":      "__import__('functools').reduce(lambda acc, _: [acc, acc], range(10), [1])",
	})
	for _, name := range []string{"recursive_list", "recursive_dict"} {
		_, err := c.Decode(py[name], FlagPickle)
		requireCodecError(t, err, FlagPickle, "recursive structure")
	}
	start := time.Now()
	_, err = c.Decode(py["dag_bomb"], FlagPickle)
	requireCodecError(t, err, FlagPickle, "MaxPickleNodes")
	assert.Less(t, time.Since(start), time.Second)
	v, err = c.Decode(py["dag_small"], FlagPickle)
	require.NoError(t, err)
	assert.Len(t, v, 2)
}
