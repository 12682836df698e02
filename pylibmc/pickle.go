package pylibmc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"unicode/utf8"
	"unsafe"

	ogorek "github.com/kisielk/og-rek"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// Python pickles are read with github.com/nlpodyssey/gopickle (a port of
// CPython's Unpickler that knows every opcode up to protocol 5) and written
// with github.com/kisielk/og-rek's encoder. This file maps their values to
// and from the plain Go values of Codec.

// Tuple is a Python tuple. Codec decodes a pickled tuple as a Tuple
// and encodes a Tuple as a tuple, so a value read and written back keeps
// its Python type.
type Tuple []any

// Set is a Python set (or frozenset). Its elements are nil, bool, int64,
// float64 or string, which Go can use as map keys. Codec encodes a
// Set as a Python set.
type Set map[any]struct{}

// ---------------------------------------------------------------------------
// Decoding

// decodePickle unpickles data into Codec's Go values.
func decodePickle(data []byte) (any, *CodecError) {
	if err := scanPickle(data); err != nil {
		return nil, &CodecError{Op: "decode", Reason: "malformed pickle", Err: err}
	}
	var classErr *CodecError
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = func(module, name string) (any, error) {
		if c := knownCallable(module, name); c != nil {
			return c, nil
		}
		if module == "__builtin__" { // protocol 2 writes Python 2's name
			module = "builtins"
		}
		classErr = unrepresentable(module + "." + name)
		return nil, classErr
	}
	raw, err := loadPickle(&u)
	if classErr != nil {
		return nil, classErr
	}
	if err != nil {
		return nil, &CodecError{Op: "decode", Reason: "malformed or unsupported pickle", Err: err}
	}
	cv := converter{seen: make(map[any]converted)}
	v, n, cerr := cv.value(raw, 0)
	if cerr != nil {
		return nil, cerr
	}
	if n > MaxPickleNodes {
		return nil, tooManyNodes()
	}
	return v, nil
}

// loadPickle runs the unpickler, turning a panic inside it (gopickle
// panics on some malformed input, and on a set of unhashable values such
// as bytes) into an error.
func loadPickle(u *pickle.Unpickler) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("pickle decoder failed: %v", r)
		}
	}()
	return u.Load()
}

func unrepresentable(class string) *CodecError {
	return &CodecError{Op: "decode", Class: class,
		Reason: fmt.Sprintf("the pickle holds a Python %s, which this codec cannot represent in Go", class)}
}

func tooManyNodes() *CodecError {
	return &CodecError{Op: "decode", Reason: fmt.Sprintf("the pickle expands to more than MaxPickleNodes (%d) values", MaxPickleNodes)}
}

// knownCallable returns the few globals that pickles of plain values refer
// to: set and frozenset and bytearray (protocols 2 and 3), bytes and
// _codecs.encode (how protocol 2 writes bytes). Everything else is a class
// Go cannot represent.
func knownCallable(module, name string) types.Callable {
	switch module {
	case "builtins", "__builtin__":
		switch name {
		case "set", "frozenset":
			return setCtor{}
		case "bytearray", "bytes":
			return bytesCtor{}
		}
	case "_codecs":
		if name == "encode" {
			return codecsEncode{}
		}
	}
	return nil
}

// pySet is a set built by calling set(iterable).
type pySet struct{ items []any }

type setCtor struct{}

func (setCtor) Call(args ...any) (any, error) {
	switch len(args) {
	case 0:
		return &pySet{}, nil
	case 1:
		items, ok := iterable(args[0])
		if !ok {
			return nil, fmt.Errorf("set() of %T", args[0])
		}
		return &pySet{items: items}, nil
	}
	return nil, fmt.Errorf("set() with %d arguments", len(args))
}

func iterable(x any) ([]any, bool) {
	switch v := x.(type) {
	case *types.List:
		return *v, true
	case *types.Tuple:
		return *v, true
	case *pySet:
		return v.items, true
	}
	return nil, false
}

type bytesCtor struct{}

func (bytesCtor) Call(args ...any) (any, error) {
	switch len(args) {
	case 0:
		return []byte{}, nil
	case 1:
		if b, ok := args[0].([]byte); ok {
			return append([]byte{}, b...), nil
		}
	case 2:
		return codecsEncode{}.Call(args...)
	}
	return nil, fmt.Errorf("bytes or bytearray from %d arguments", len(args))
}

// codecsEncode is _codecs.encode(str, "latin1"), protocol 2's bytes.
type codecsEncode struct{}

func (codecsEncode) Call(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("_codecs.encode with %d arguments", len(args))
	}
	s, ok1 := args[0].(string)
	enc, ok2 := args[1].(string)
	if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
		return nil, fmt.Errorf("_codecs.encode(%T, %v)", args[0], args[1])
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("_codecs.encode: %U is not latin-1", r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// converted is a container already converted, with the size of its tree.
type converted struct {
	v    any
	n    int64
	busy bool // being converted: meeting it again means a cycle
}

// converter turns gopickle's values into Go values. Containers that the
// pickle shares are converted once and shared; the tree size counts them
// once per reference, to bound a naive walk of the result.
type converter struct {
	seen map[any]converted
}

func (cv *converter) value(x any, depth int) (any, int64, *CodecError) {
	if depth > MaxNesting {
		return nil, 0, &CodecError{Op: "decode", Reason: fmt.Sprintf("the pickle nests deeper than MaxNesting (%d)", MaxNesting)}
	}
	switch v := x.(type) {
	case nil, bool, float64, string:
		return v, 1, nil
	case int:
		return int64(v), 1, nil
	case *big.Int:
		return normInt(v), 1, nil
	case []byte:
		return v, 1, nil
	case *types.ByteArray:
		return []byte(*v), 1, nil
	case *types.List, *types.Tuple, *types.Dict, *types.Set, *types.FrozenSet, *pySet:
		if c, ok := cv.seen[x]; ok {
			if c.busy {
				return nil, 0, &CodecError{Op: "decode", Reason: "the pickle holds a recursive structure, which Go values cannot hold"}
			}
			return c.v, c.n, nil
		}
		cv.seen[x] = converted{busy: true}
		out, n, err := cv.container(x, depth)
		if err != nil {
			return nil, 0, err
		}
		if n > MaxPickleNodes {
			return nil, 0, tooManyNodes()
		}
		cv.seen[x] = converted{v: out, n: n}
		return out, n, nil
	case *types.OrderedDict, *types.OrderedDictClass:
		return nil, 0, unrepresentable("collections.OrderedDict")
	case *types.GenericObject:
		return nil, 0, unrepresentable(v.Class.Module + "." + v.Class.Name)
	case *types.GenericClass:
		return nil, 0, unrepresentable(v.Module + "." + v.Name)
	case *types.Array:
		return nil, 0, unrepresentable("array.array")
	case *types.ObjectClass:
		return nil, 0, unrepresentable("builtins.object")
	}
	return nil, 0, &CodecError{Op: "decode", Reason: fmt.Sprintf("the pickle holds a value this codec cannot represent (%T)", x)}
}

func (cv *converter) container(x any, depth int) (any, int64, *CodecError) {
	n := int64(1)
	add := func(k int64) { n += k }
	seq := func(items []any) ([]any, *CodecError) {
		out := make([]any, len(items))
		for i, it := range items {
			v, k, err := cv.value(it, depth+1)
			if err != nil {
				return nil, err
			}
			add(k)
			if n > MaxPickleNodes {
				return nil, tooManyNodes()
			}
			out[i] = v
		}
		return out, nil
	}
	set := func(items []any) (any, int64, *CodecError) {
		s := make(Set, len(items))
		for _, it := range items {
			k, err := cv.key(it, depth, "set element")
			if err != nil {
				return nil, 0, err
			}
			s[k] = struct{}{}
		}
		return s, n + int64(len(items)), nil
	}
	switch v := x.(type) {
	case *types.List:
		out, err := seq(*v)
		return out, n, err
	case *types.Tuple:
		out, err := seq(*v)
		return Tuple(out), n, err
	case *types.Set:
		items := make([]any, 0, len(*v))
		for k := range *v {
			items = append(items, k)
		}
		return set(items)
	case *types.FrozenSet:
		items := make([]any, 0, len(*v))
		for k := range *v {
			items = append(items, k)
		}
		return set(items)
	case *pySet:
		return set(v.items)
	case *types.Dict:
		allStr := true
		keys := make([]any, len(*v))
		for i, e := range *v {
			k, err := cv.key(e.Key, depth, "dict key")
			if err != nil {
				return nil, 0, err
			}
			keys[i] = k
			if _, ok := k.(string); !ok {
				allStr = false
			}
		}
		var ms map[string]any
		var ma map[any]any
		if allStr {
			ms = make(map[string]any, len(*v))
		} else {
			ma = make(map[any]any, len(*v))
		}
		for i, e := range *v {
			val, k, err := cv.value(e.Value, depth+1)
			if err != nil {
				return nil, 0, err
			}
			add(k + 1)
			if n > MaxPickleNodes {
				return nil, 0, tooManyNodes()
			}
			if allStr {
				ms[keys[i].(string)] = val
			} else {
				ma[keys[i]] = val
			}
		}
		if allStr {
			return ms, n, nil
		}
		return ma, n, nil
	}
	return nil, 0, &CodecError{Op: "decode", Reason: fmt.Sprintf("unexpected %T", x)}
}

// key converts a dict key or set element, which must be something Go can
// use as a map key with Python's meaning.
func (cv *converter) key(x any, depth int, what string) (any, *CodecError) {
	v, _, err := cv.value(x, depth+1)
	if err != nil {
		return nil, err
	}
	switch v.(type) {
	case nil, bool, int64, float64, string:
		return v, nil
	}
	return nil, &CodecError{Op: "decode", Reason: fmt.Sprintf("a %s of Python type %s has no Go map key form", what, pyTypeName(v))}
}

func pyTypeName(v any) string {
	switch v.(type) {
	case []byte:
		return "bytes"
	case *big.Int:
		return "int (beyond int64)"
	case Tuple:
		return "tuple"
	case Set:
		return "frozenset"
	case []any:
		return "list"
	case map[string]any, map[any]any:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}

// scanPickle walks the opcodes of a pickle without running them (as
// Python's pickletools.genops does) and checks that every length it
// declares fits in what is left, that it ends with STOP and nothing after,
// and that marks do not nest absurdly deep. gopickle allocates each
// declared length before reading it, so without this a ten-byte value
// could ask for terabytes.
func scanPickle(p []byte) error {
	marks := 0
	for i := 0; i < len(p); {
		op := p[i]
		at := i
		i++
		rest := len(p) - i
		need := func(n uint64) error {
			if n > uint64(rest) {
				return fmt.Errorf("opcode %#x at %d needs %d bytes; %d are left", op, at, n, rest)
			}
			i += int(n)
			rest -= int(n)
			return nil
		}
		counted := func(lenBytes int, signed bool) error {
			if err := need(uint64(lenBytes)); err != nil {
				return err
			}
			b := p[i-lenBytes : i]
			var n uint64
			switch lenBytes {
			case 1:
				n = uint64(b[0])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(b))
				if signed && int32(n) < 0 {
					return fmt.Errorf("opcode %#x at %d has a negative length", op, at)
				}
			case 8:
				n = binary.LittleEndian.Uint64(b)
			}
			return need(n)
		}
		line := func() error {
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return fmt.Errorf("opcode %#x at %d: unterminated line argument", op, at)
			}
			i += j + 1
			return nil
		}
		var err error
		switch op {
		case '.': // STOP
			if i != len(p) {
				return fmt.Errorf("%d bytes after STOP", len(p)-i)
			}
			return nil
		case '(': // MARK
			marks++
			if marks > MaxNesting {
				return fmt.Errorf("marks nest deeper than %d", MaxNesting)
			}
		case 't', 'l', 'd', 'e', 'u', '\x90', '\x91', '1', 'o': // take a mark
			if marks > 0 {
				marks--
			}
		case '0', '2', 'N', 'R', 'a', 'b', '}', ']', 's', ')', 'Q',
			'\x81', '\x85', '\x86', '\x87', '\x88', '\x89', '\x8f', '\x92', '\x93', '\x94', '\x97', '\x98':
		case 'F', 'I', 'L', 'P', 'g', 'p':
			err = line()
		case 'S', 'V': // protocol 0 text: gopickle does not undo its escapes
			start := i
			if err = line(); err == nil {
				for _, c := range p[start : i-1] {
					if c == '\\' || c >= 0x80 {
						return fmt.Errorf("protocol 0 text with escapes or non-ASCII characters at %d is not supported", at)
					}
				}
			}
		case 'c':
			if err = line(); err == nil {
				err = line()
			}
		case 'i': // INST: two lines, and takes a mark
			if err = line(); err == nil {
				err = line()
			}
			if marks > 0 {
				marks--
			}
		case 'K', 'h', 'q', '\x80', '\x82':
			err = need(1)
		case 'M', '\x83':
			err = need(2)
		case 'J', 'j', 'r', '\x84':
			err = need(4)
		case 'G':
			err = need(8)
		case '\x95': // FRAME: an 8-byte size of what follows
			if err = need(8); err == nil {
				if n := binary.LittleEndian.Uint64(p[i-8 : i]); n > uint64(rest) {
					err = fmt.Errorf("frame at %d declares %d bytes; %d are left", at, n, rest)
				}
			}
		case 'U', 'C', '\x8a', '\x8c':
			err = counted(1, false)
		case 'T', '\x8b':
			err = counted(4, true)
		case 'X', 'B':
			err = counted(4, false)
		case '\x8d', '\x8e', '\x96':
			err = counted(8, false)
		default:
			return fmt.Errorf("unknown opcode %#x at %d", op, at)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("no STOP opcode")
}

// ---------------------------------------------------------------------------
// Encoding

// encodePickle pickles v with protocol proto.
// Every value takes at least one byte of pickle, so a value of more than
// maxSize parts is refused before it is walked further.
func encodePickle(v any, proto, maxSize int) ([]byte, *CodecError) {
	e := pyEncoder{path: make(map[refKey]bool), maxNodes: min(maxSize, MaxPickleNodes)}
	ov, err := e.value(reflect.ValueOf(v), 0)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := ogorek.NewEncoderWithConfig(&buf, &ogorek.EncoderConfig{Protocol: proto, StrictUnicode: true})
	if err := enc.Encode(ov); err != nil {
		return nil, &CodecError{Op: "encode", Flags: FlagPickle, Reason: "pickling failed", Err: err}
	}
	return buf.Bytes(), nil
}

// refKey identifies a slice or map on the path being encoded, to refuse
// cycles.
type refKey struct {
	p unsafe.Pointer
	n int
}

type pyEncoder struct {
	path     map[refKey]bool
	nodes    int
	maxNodes int
}

var (
	bigIntPtrType = reflect.TypeOf((*big.Int)(nil))
	tupleType     = reflect.TypeOf(Tuple(nil))
	setType       = reflect.TypeOf(Set(nil))
)

func encodeError(format string, args ...any) *CodecError {
	return &CodecError{Op: "encode", Flags: FlagPickle, Reason: fmt.Sprintf(format, args...)}
}

// value converts a Go value into what og-rek encodes as the natural Python
// value: None, bool, int, float, str, bytes, list, tuple, dict or set.
func (e *pyEncoder) value(rv reflect.Value, depth int) (any, *CodecError) {
	if depth > MaxNesting {
		return nil, encodeError("the value nests deeper than MaxNesting (%d)", MaxNesting)
	}
	if e.nodes++; e.nodes > e.maxNodes {
		return nil, encodeError("the value has more than %d parts: its pickle would exceed MaxValueSize or MaxPickleNodes", e.maxNodes)
	}
	if !rv.IsValid() {
		return ogorek.None{}, nil
	}
	if rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return ogorek.None{}, nil
		}
		return e.value(rv.Elem(), depth)
	}
	if rv.Type() == bigIntPtrType {
		if rv.IsNil() {
			return nil, encodeError("nil *big.Int")
		}
		return new(big.Int).Set(rv.Interface().(*big.Int)), nil
	}
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		s := rv.String()
		if !utf8.ValidString(s) {
			return nil, encodeError("a string is not valid UTF-8 (Python could not read it as str); use []byte")
		}
		return s, nil
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			if rv.Kind() == reflect.Slice {
				return ogorek.Bytes(rv.Bytes()), nil
			}
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return ogorek.Bytes(b), nil
		}
		if rv.Kind() == reflect.Slice && rv.Len() > 0 {
			k := refKey{rv.UnsafePointer(), rv.Len()}
			if e.path[k] {
				return nil, encodeError("the value contains itself")
			}
			e.path[k] = true
			defer delete(e.path, k)
		}
		items := make([]any, rv.Len())
		for i := range items {
			v, err := e.value(rv.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			items[i] = v
		}
		if rv.Type() == tupleType {
			return ogorek.Tuple(items), nil
		}
		return items, nil
	case reflect.Map:
		if rv.IsNil() {
			if rv.Type() == setType {
				return e.set(nil), nil
			}
			return map[any]any{}, nil
		}
		k := refKey{rv.UnsafePointer(), -1}
		if e.path[k] {
			return nil, encodeError("the value contains itself")
		}
		e.path[k] = true
		defer delete(e.path, k)
		if rv.Type() == setType {
			elems := make([]any, 0, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				k, err := e.key(it.Key(), "set element")
				if err != nil {
					return nil, err
				}
				elems = append(elems, k)
			}
			return e.set(elems), nil
		}
		out := make(map[any]any, rv.Len())
		ids := make(map[any]bool, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			k, err := e.key(it.Key(), "map key")
			if err != nil {
				return nil, err
			}
			id := pyKeyID(k)
			if ids[id] {
				return nil, encodeError("two map keys are the same Python key (%v)", it.Key())
			}
			ids[id] = true
			v, err := e.value(it.Value(), depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, encodeError("Go type %s has no natural Python form", rv.Type())
}

// set is set(list), which Python builds from a pickle of any protocol.
func (e *pyEncoder) set(elems []any) any {
	if elems == nil {
		elems = []any{}
	}
	return ogorek.Call{Callable: ogorek.Class{Module: "builtins", Name: "set"}, Args: ogorek.Tuple{elems}}
}

// key converts a map key or set element: None, bool, int, float or str.
func (e *pyEncoder) key(rv reflect.Value, what string) (any, *CodecError) {
	for rv.Kind() == reflect.Interface && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Interface || !rv.IsValid() {
		return ogorek.None{}, nil
	}
	switch rv.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		return e.value(rv, 0)
	}
	return nil, encodeError("a %s of Go type %s has no Python form that can be a dict key or set element", what, rv.Type())
}

// pyKeyID is a key's identity in a Python dict, where True == 1 == 1.0.
func pyKeyID(k any) any {
	switch x := k.(type) {
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x)
		}
	case *big.Int:
		return "int:" + x.String()
	}
	return k
}
