package pylibmc

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The flags of pylibmc 1.6 (and python-memcached): one type bit, possibly
// combined with FlagZlib.
const (
	// FlagPickle marks a Python pickle.
	FlagPickle uint32 = 1 << 0
	// FlagInteger marks an ASCII decimal integer as pylibmc writes a bool
	// ("1" or "0") and older clients an int. pylibmc reads it as an int.
	FlagInteger uint32 = 1 << 1
	// FlagLong marks an ASCII decimal integer (pylibmc's int).
	FlagLong uint32 = 1 << 2
	// FlagZlib marks a value compressed with zlib (RFC 1950); it combines
	// with the type bit.
	FlagZlib uint32 = 1 << 3
	// FlagText marks UTF-8 text (pylibmc's str). No type bit means bytes.
	FlagText uint32 = 1 << 4

	pylibmcTypeFlags = FlagPickle | FlagInteger | FlagLong | FlagText
	pylibmcAllFlags  = pylibmcTypeFlags | FlagZlib
)

// DefaultMaxValueSize is Codec's default MaxValueSize: 1 MiB,
// memcached's default largest item (its -I option).
const DefaultMaxValueSize = 1 << 20

// DefaultPickleProtocol is the pickle protocol Codec writes by
// default: 5, Python 3.8+'s highest, which is what pylibmc 1.6 uses
// (its pickle_protocol behavior defaults to -1, the highest).
const DefaultPickleProtocol = 5

// Codec is the value format of pylibmc 1.6, so that Go and Python
// processes can share a cache value for value: Encode gives the bytes and
// flags pylibmc would store for a Go value, Decode the Go value for what
// pylibmc stored (the package documentation maps the types). The zero
// value is ready to use and matches pylibmc's defaults (no compression).
// A Codec is a plain value, safe for concurrent use.
//
// Encode writes []byte with flags 0, a string (valid UTF-8) with
// FlagText, any Go integer type and *big.Int as ASCII decimal with
// FlagLong (as pylibmc writes int; memcached incr/decr work on it), and
// anything else with FlagPickle, as a pickle of PickleProtocol. It adds
// FlagZlib when compression is on (MinCompressLen > 0), the value is at
// least MinCompressLen bytes and compressing makes it smaller, which is
// pylibmc's rule. A Go bool is pickled, so that Python reads True or False
// (pylibmc itself writes a bool as FlagInteger "1"/"0", which it reads
// back as the int 1 or 0).
//
// Decode reads flags 0 as []byte, FlagText as string (invalid UTF-8 is an
// error, as in Python), FlagLong and FlagInteger as int64, or *big.Int
// beyond int64 (pylibmc reads both as int), and FlagPickle as the package
// documentation describes; each possibly with FlagZlib. Any other bit or
// combination of type bits is an error naming the flags: never a guess.
type Codec struct {
	// MinCompressLen is pylibmc's min_compress_len: values of at least
	// this many bytes are compressed with zlib when that makes them
	// smaller. 0 (pylibmc's default) never compresses.
	MinCompressLen int
	// CompressLevel is pylibmc's compress_level, 1 (fastest) to 9 (best).
	// 0 means zlib's default (6), as pylibmc's default of -1 does. (A
	// level of 0, "store", would never make a value smaller.)
	CompressLevel int
	// PickleProtocol is the pickle protocol Encode writes, 2 to 5; 0 means
	// DefaultPickleProtocol. Decode reads every protocol.
	PickleProtocol int
	// MaxValueSize bounds the size of a value before compression: Encode
	// refuses a larger one (so Go never writes what it would refuse to
	// read), and Decode stops inflating a compressed value at this size,
	// so a small zlib bomb cannot exhaust memory. 0 means
	// DefaultMaxValueSize (1 MiB, memcached's default item size limit);
	// raise it to match a server started with a larger -I, or a Python
	// fleet that stores values that inflate beyond it.
	MaxValueSize int
}

// MaxNesting is how deeply lists, tuples, dicts and sets may nest in a
// pickle the codec reads or writes (Python's own pickler stops near 1000).
const MaxNesting = 10000

// MaxPickleNodes bounds the number of values in a decoded pickle counted
// as a tree, shared values once per reference.
const MaxPickleNodes = 1 << 24

// CodecError reports a value that a Codec could not encode or decode.
// Client's methods return it with Key set; errors.As finds it.
type CodecError struct {
	// Op is "encode" or "decode".
	Op string
	// Key is the key of the value, when known.
	Key string
	// Flags are the flags of the value being decoded, or of the encoding
	// that failed.
	Flags uint32
	// Class is the Python class ("module.name") that a pickle holds and Go
	// cannot represent, when that is the cause.
	Class string
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error (from zlib or the pickle decoder), if any.
	Err error
}

// Error describes the failure with the key, the flags and the reason.
func (e *CodecError) Error() string {
	var b strings.Builder
	b.WriteString("pylibmc: cannot ")
	b.WriteString(e.Op)
	b.WriteString(" value")
	if e.Key != "" {
		b.WriteString(" of key ")
		b.WriteString(strconv.Quote(e.Key))
	}
	if e.Op == "decode" || e.Flags != 0 {
		fmt.Fprintf(&b, " (flags %d: %s)", e.Flags, FlagsString(e.Flags))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *CodecError) Unwrap() error { return e.Err }

// FlagsString names the bits of pylibmc flags, e.g. "pickle|zlib", "bytes"
// for 0, and "0x20" for a bit pylibmc does not define.
func FlagsString(flags uint32) string {
	if flags == 0 {
		return "bytes"
	}
	var parts []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{FlagPickle, "pickle"}, {FlagInteger, "integer"}, {FlagLong, "long"}, {FlagZlib, "zlib"}, {FlagText, "text"}} {
		if flags&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	if rest := flags &^ pylibmcAllFlags; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", rest))
	}
	return strings.Join(parts, "|")
}

func (p Codec) maxValueSize() int {
	if p.MaxValueSize > 0 {
		return p.MaxValueSize
	}
	return DefaultMaxValueSize
}

// Encode serializes v as pylibmc does (see Codec) and compresses it when
// MinCompressLen says so. A failure is a *CodecError.
func (p Codec) Encode(v any) ([]byte, uint32, error) {
	if p.CompressLevel < 0 || p.CompressLevel > 9 {
		return nil, 0, &CodecError{Op: "encode", Reason: fmt.Sprintf("CompressLevel %d is not 0 to 9", p.CompressLevel)}
	}
	data, flags, err := p.serialize(v)
	if err != nil {
		return nil, 0, err
	}
	if max := p.maxValueSize(); len(data) > max {
		return nil, 0, &CodecError{Op: "encode", Flags: flags,
			Reason: fmt.Sprintf("the value is %d bytes before compression; MaxValueSize is %d", len(data), max)}
	}
	if p.MinCompressLen > 0 && len(data) >= p.MinCompressLen {
		if z, ok := deflate(data, p.CompressLevel); ok {
			return z, flags | FlagZlib, nil
		}
	}
	return data, flags, nil
}

func (p Codec) serialize(v any) ([]byte, uint32, error) {
	switch x := v.(type) {
	case []byte:
		return x, 0, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, 0, &CodecError{Op: "encode", Flags: FlagText, Reason: "the string is not valid UTF-8 (Python could not read it as str); store it as []byte"}
		}
		return []byte(x), FlagText, nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), FlagLong, nil
	case int8:
		return strconv.AppendInt(nil, int64(x), 10), FlagLong, nil
	case int16:
		return strconv.AppendInt(nil, int64(x), 10), FlagLong, nil
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), FlagLong, nil
	case int64:
		return strconv.AppendInt(nil, x, 10), FlagLong, nil
	case uint:
		return strconv.AppendUint(nil, uint64(x), 10), FlagLong, nil
	case uint8:
		return strconv.AppendUint(nil, uint64(x), 10), FlagLong, nil
	case uint16:
		return strconv.AppendUint(nil, uint64(x), 10), FlagLong, nil
	case uint32:
		return strconv.AppendUint(nil, uint64(x), 10), FlagLong, nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), FlagLong, nil
	case uintptr:
		return strconv.AppendUint(nil, uint64(x), 10), FlagLong, nil
	case *big.Int:
		if x == nil {
			return nil, 0, &CodecError{Op: "encode", Reason: "nil *big.Int"}
		}
		return x.Append(nil, 10), FlagLong, nil
	}
	proto := p.PickleProtocol
	if proto == 0 {
		proto = DefaultPickleProtocol
	}
	if proto < 2 || proto > 5 {
		return nil, 0, &CodecError{Op: "encode", Flags: FlagPickle, Reason: fmt.Sprintf("PickleProtocol %d is not 2 to 5", p.PickleProtocol)}
	}
	data, err := encodePickle(v, proto, p.maxValueSize())
	if err != nil {
		return nil, 0, err
	}
	return data, FlagPickle, nil
}

// deflate compresses data as pylibmc does: a zlib stream at level (0 for
// zlib's default), used only if it is smaller than data.
func deflate(data []byte, level int) ([]byte, bool) {
	if level == 0 {
		level = zlib.DefaultCompression
	}
	var buf bytes.Buffer
	buf.Grow(len(data) / 2)
	zw, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		return nil, false
	}
	if _, err := zw.Write(data); err != nil {
		return nil, false
	}
	if err := zw.Close(); err != nil {
		return nil, false
	}
	if buf.Len() >= len(data) {
		return nil, false
	}
	return buf.Bytes(), true
}

// Decode deserializes a value stored with flags as pylibmc does (see
// Codec). A []byte result is data itself. A failure is a *CodecError.
func (p Codec) Decode(data []byte, flags uint32) (any, error) {
	if flags&^pylibmcAllFlags != 0 {
		return nil, &CodecError{Op: "decode", Flags: flags, Reason: "flags pylibmc does not define"}
	}
	typ := flags & pylibmcTypeFlags
	switch typ {
	case 0, FlagPickle, FlagInteger, FlagLong, FlagText:
	default:
		return nil, &CodecError{Op: "decode", Flags: flags, Reason: "more than one type flag"}
	}
	if flags&FlagZlib != 0 {
		inflated, err := inflate(data, p.maxValueSize())
		if err != nil {
			err.Flags = flags
			return nil, err
		}
		data = inflated
	}
	switch typ {
	case 0:
		return data, nil
	case FlagText:
		if !utf8.Valid(data) {
			return nil, &CodecError{Op: "decode", Flags: flags, Reason: "text is not valid UTF-8"}
		}
		return string(data), nil
	case FlagInteger, FlagLong:
		v, ok := parsePyInt(data)
		if !ok {
			return nil, &CodecError{Op: "decode", Flags: flags, Reason: fmt.Sprintf("not a decimal integer: %q", truncate(data, 40))}
		}
		return v, nil
	}
	v, err := decodePickle(data)
	if err != nil {
		err.Flags = flags
		return nil, err
	}
	return v, nil
}

// inflate decompresses a zlib stream of at most max bytes.
func inflate(data []byte, max int) ([]byte, *CodecError) {
	br := bytes.NewReader(data)
	zr, err := zlib.NewReader(br)
	if err != nil {
		return nil, &CodecError{Op: "decode", Reason: "bad zlib stream", Err: err}
	}
	defer zr.Close()
	// Grow the buffer geometrically but never past max+1 bytes, so that
	// inflating allocates at most about twice the limit.
	limit := max + 1
	out := make([]byte, 0, min(limit, 64+4*len(data)))
	for {
		if len(out) == cap(out) {
			if len(out) == limit {
				return nil, &CodecError{Op: "decode", Reason: fmt.Sprintf("the value inflates to more than MaxValueSize (%d bytes)", max)}
			}
			grown := make([]byte, len(out), min(limit, 2*cap(out)))
			copy(grown, out)
			out = grown
		}
		n, err := zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF && len(out) <= max {
			break
		}
		if err != nil && err != io.EOF {
			return nil, &CodecError{Op: "decode", Reason: "bad zlib stream", Err: err}
		}
	}
	// Reaching EOF checked the Adler-32 checksum. flate reads a
	// bytes.Reader byte by byte, so what is left was never part of the
	// stream.
	if br.Len() != 0 {
		return nil, &CodecError{Op: "decode", Reason: fmt.Sprintf("%d bytes of garbage after the zlib stream", br.Len())}
	}
	return out, nil
}

// parsePyInt parses an integer as Python's int(s) does for base 10 (what
// pylibmc uses): surrounding ASCII whitespace (memcached pads a decremented
// number with spaces), a sign, digits with single underscores between them.
// It returns int64, or *big.Int beyond int64.
func parsePyInt(b []byte) (any, bool) {
	s := strings.Trim(string(b), " \t\n\r\v\f")
	digits := s
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	if digits == "" {
		return nil, false
	}
	underscore := false
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '_' && i > 0 && i < len(digits)-1 && digits[i-1] != '_':
			underscore = true
		default:
			return nil, false
		}
	}
	if underscore {
		s = strings.ReplaceAll(s, "_", "")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, false
	}
	return normInt(n), true
}

// normInt returns n as int64 when it fits.
func normInt(n *big.Int) any {
	if n.IsInt64() {
		return n.Int64()
	}
	return n
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
