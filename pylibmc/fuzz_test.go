package pylibmc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzCodec has a small MaxValueSize so that fuzzing explores inflation
// past the cap cheaply.
var fuzzCodec = Codec{MaxValueSize: 64 << 10}

// FuzzDecode feeds arbitrary bytes and flags to Codec.Decode. No
// input may panic, hang or allocate without bound; a failure must be a
// *CodecError naming the flags; a success must be a value of the
// documented Go types that matches the flags and survives a round trip
// through Encode.
//
// The seed corpus in testdata/fuzz/FuzzDecode (pickles Python wrote in
// every protocol, compressed values, a zlib bomb, hostile pickles) replays
// in every go test run; fuzz with go test -run='^$' -fuzz=FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("hello"), uint32(0))
	f.Add([]byte("\x80\x05N."), FlagPickle)
	f.Add([]byte("42"), FlagLong)
	f.Fuzz(func(t *testing.T, data []byte, flags uint32) {
		orig := bytes.Clone(data)
		v, err := fuzzCodec.Decode(data, flags)
		if !bytes.Equal(orig, data) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			var ce *CodecError
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, not *CodecError: %v", err, err)
			}
			if v != nil || ce.Flags != flags || ce.Op != "decode" {
				t.Fatalf("bad failure: v=%v flags=%d op=%q", v, ce.Flags, ce.Op)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("flags %d", flags)) {
				t.Fatalf("error does not name the flags: %v", err)
			}
			return
		}
		if flags&^pylibmcAllFlags != 0 {
			t.Fatalf("flags %d decoded", flags)
		}
		switch flags & pylibmcTypeFlags {
		case 0:
			b, ok := v.([]byte)
			if !ok || (flags&FlagZlib == 0 && !bytes.Equal(b, data)) {
				t.Fatalf("bytes decoded as %T", v)
			}
		case FlagText:
			s, ok := v.(string)
			if !ok || !utf8.ValidString(s) {
				t.Fatalf("text decoded as %T %q", v, v)
			}
		case FlagLong, FlagInteger:
			switch n := v.(type) {
			case int64:
			case *big.Int:
				if n.IsInt64() {
					t.Fatalf("%v fits int64 but decoded as *big.Int", n)
				}
			default:
				t.Fatalf("integer decoded as %T", v)
			}
		case FlagPickle:
			checkDecodedTree(t, v, 0)
		default:
			t.Fatalf("flags %d decoded", flags)
		}
		if flags&pylibmcTypeFlags == FlagInteger {
			return // written back as FlagLong
		}
		// What was read writes back and reads again as the same value
		// (when Go can write it: a pickled str need not be valid UTF-8).
		enc, eflags, err := fuzzCodec.Encode(v)
		if err != nil {
			return
		}
		if eflags&pylibmcTypeFlags != flags&pylibmcTypeFlags && !(flags&pylibmcTypeFlags == FlagPickle) {
			t.Fatalf("flags %d re-encoded with flags %d", flags, eflags)
		}
		back, err := fuzzCodec.Decode(enc, eflags)
		if err != nil {
			t.Fatalf("re-decoding %T: %v", v, err)
		}
		if !sameDecoded(v, back) {
			t.Fatalf("round trip changed %#v into %#v", v, back)
		}
	})
}

// checkDecodedTree checks that a decoded pickle holds only the documented
// Go types.
func checkDecodedTree(t *testing.T, v any, depth int) {
	if depth > MaxNesting+1 {
		t.Fatal("decoded value nests beyond MaxNesting")
	}
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte:
	case *big.Int:
		if x.IsInt64() {
			t.Fatalf("%v fits int64 but decoded as *big.Int", x)
		}
	case []any:
		for _, e := range x {
			checkDecodedTree(t, e, depth+1)
		}
	case Tuple:
		for _, e := range x {
			checkDecodedTree(t, e, depth+1)
		}
	case map[string]any:
		for _, e := range x {
			checkDecodedTree(t, e, depth+1)
		}
	case map[any]any:
		allStr := true
		for k, e := range x {
			checkKey(t, k)
			if _, ok := k.(string); !ok {
				allStr = false
			}
			checkDecodedTree(t, e, depth+1)
		}
		if allStr {
			t.Fatal("a dict with only str keys decoded as map[any]any")
		}
	case Set:
		for k := range x {
			checkKey(t, k)
		}
	default:
		t.Fatalf("decoded a %T", v)
	}
}

func checkKey(t *testing.T, k any) {
	switch k.(type) {
	case nil, bool, int64, float64, string:
	default:
		t.Fatalf("map key of type %T", k)
	}
}

// sameDecoded compares decoded values: big ints by value, NaN equal to
// NaN, and dict keys, which Python and Go may merge differently (True and
// 1), by count.
func sameDecoded(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case *big.Int:
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		return ok && sameSeq(x, y)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && sameSeq(x, y)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !sameDecoded(v, y[k]) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		return ok && len(x) == len(y)
	case Set:
		y, ok := b.(Set)
		return ok && len(x) == len(y)
	}
	return a == b
}

func sameSeq(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !sameDecoded(x[i], y[i]) {
			return false
		}
	}
	return true
}
