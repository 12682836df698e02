package pylibmc

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/libmemcached-go/libmemcached"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// key returns a key of the shared server unique to the test (spaces in
// the names become underscores, for the ASCII protocol).
func key(t testing.TB, name string) string {
	return strings.ReplaceAll("pylibmc-test/"+t.Name()+"/"+name, " ", "_")
}

// Values of every kind go through Set, Get and GetMulti unchanged, over a
// *libmemcached.Client and a *libmemcached.Pool, in both protocols; bytes
// of every size and content, up to just under memcached's item limit.
func TestClientValues(t *testing.T) {
	// blob(n) is n bytes that hold every byte value in each 256 (i*7 is a
	// permutation of 0..255), shifted by one every 256 bytes so that the
	// value does not repeat with a short period.
	blob := func(n int) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < n; i++ {
			b.WriteByte(byte(i*7 + i/256))
		}
		return b.Bytes()
	}
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	values := []struct {
		name string
		v    any
		want any // what Get returns, when not v itself
	}{
		{"bytes empty", []byte{}, nil},
		{"bytes nil", []byte(nil), []byte{}},
		{"one byte", []byte{'x'}, nil},
		{"bytes 0..255", blob(256), nil},
		{"crlf inside", []byte("a\r\nEND\r\nVALUE x 0 1\r\nb"), nil},
		{"100KB", blob(100 << 10), nil},
		{"1MB-1KB", blob(1<<20 - 1<<10), nil},
		{"str", "héllo ✓", nil},
		{"str empty", "", nil},
		{"int", 42, int64(42)},
		{"uint64", uint64(1<<64 - 1), new(big.Int).SetUint64(1<<64 - 1)},
		{"big int", huge, nil},
		{"bool", true, nil},
		{"nil", nil, nil},
		{"float", 2.5, nil},
		{"list", []any{"a", int64(1), []byte("b")}, nil},
		{"tuple", Tuple{"t", int64(2)}, nil},
		{"set", Set{"s": {}, int64(3): {}}, nil},
		{"dict", map[string]any{"k": map[any]any{int64(1): nil}}, nil},
	}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for _, st := range stores(t, []string{sharedServer(t)}, Codec{}, pr.opts...) {
				t.Run(st.name, func(t *testing.T) {
					c := st.c
					for _, v := range values {
						want := v.want
						if want == nil {
							want = v.v
						}
						k := key(t, v.name)
						require.NoError(t, c.Set(k, v.v, 0), v.name)
						got, err := c.Get(k)
						require.NoError(t, err, v.name)
						assertSameValue(t, want, got, v.name)
						m, err := c.GetMulti([]string{k})
						require.NoError(t, err, v.name)
						require.Contains(t, m, k, v.name)
						assertSameValue(t, want, m[k], v.name)
						if b, ok := want.([]byte); ok {
							assert.True(t, bytes.Equal(b, got.([]byte)), "%s differs", v.name)
						}
					}
				})
			}
		})
	}
}

// A value over the server's item size is the binding's ErrE2BIG; one over
// the codec's MaxValueSize is a *CodecError and is never sent; a large
// value that compresses below the item size is stored. Either way the
// client keeps working.
func TestClientValueTooBig(t *testing.T) {
	tooBig := bytes.Repeat([]byte{'z'}, 2<<20)
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			for _, st := range stores(t, []string{sharedServer(t)}, Codec{MaxValueSize: 4 << 20}, pr.opts...) {
				t.Run(st.name, func(t *testing.T) {
					c := st.c
					known := key(t, "known")
					require.NoError(t, c.Set(known, "known value", 0))

					// Within MaxValueSize, beyond memcached's -I: the
					// server refuses it, and the error is the binding's.
					k := key(t, "big")
					err := c.Set(k, tooBig, 0)
					assert.ErrorIs(t, err, libmemcached.ErrE2BIG)
					var e *libmemcached.Error
					require.True(t, errors.As(err, &e), "%T %v", err, err)
					assert.Equal(t, "set", e.Op)
					assert.Equal(t, k, e.Key)
					_, err = c.Get(k)
					assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)
					failed, err := c.SetMulti(map[string]any{k: tooBig, known + "2": "fits"}, 0)
					assert.ErrorIs(t, err, libmemcached.ErrE2BIG)
					assert.Equal(t, []string{k}, failed)

					// Beyond MaxValueSize with the default codec: refused
					// before anything is sent.
					def := New(c.Store(), Codec{})
					err = def.Set(k, tooBig, 0)
					var ce *CodecError
					require.True(t, errors.As(err, &ce), "%T %v", err, err)
					assert.Equal(t, "encode", ce.Op)
					assert.Equal(t, k, ce.Key)
					assert.Contains(t, err.Error(), "MaxValueSize is 1048576")
					assert.True(t, strings.HasPrefix(err.Error(), "pylibmc: cannot encode value of key "), err.Error())

					// Compressed below the item size, it is stored.
					z := New(c.Store(), Codec{MinCompressLen: 1024, MaxValueSize: 4 << 20})
					require.NoError(t, z.Set(k, tooBig, 0))
					v, err := z.Get(k)
					require.NoError(t, err)
					assert.True(t, bytes.Equal(tooBig, v.([]byte)))
					// The default codec refuses to inflate it past 1 MiB.
					_, err = def.Get(k)
					require.True(t, errors.As(err, &ce), "%T %v", err, err)
					assert.Equal(t, "decode", ce.Op)
					assert.Equal(t, FlagZlib, ce.Flags)

					// The client keeps working, in sync.
					v, err = c.Get(known)
					require.NoError(t, err)
					assert.Equal(t, "known value", v)
					v, err = c.Get(known + "2")
					require.NoError(t, err)
					assert.Equal(t, "fits", v)
				})
			}
		})
	}
}

// The binding's errors come through unchanged; codec errors carry the key.
func TestClientErrors(t *testing.T) {
	for _, st := range stores(t, []string{sharedServer(t)}, Codec{}) {
		t.Run(st.name, func(t *testing.T) {
			c := st.c
			absent := key(t, "absent")
			_, err := c.Get(absent)
			assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)
			var e *libmemcached.Error
			assert.True(t, errors.As(err, &e))
			_, _, err = c.Gets(absent)
			assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)
			assert.ErrorIs(t, c.Replace(absent, 1, 0), libmemcached.ErrNotStored)
			assert.ErrorIs(t, c.CAS(absent, 1, 12345, 0), libmemcached.ErrCacheMiss)
			assert.ErrorIs(t, c.Delete(absent), libmemcached.ErrCacheMiss)
			assert.ErrorIs(t, c.Touch(absent, 10), libmemcached.ErrCacheMiss)
			_, err = c.Incr(absent, 1)
			assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)

			k := key(t, "k")
			require.NoError(t, c.Add(k, "first", 0))
			assert.ErrorIs(t, c.Add(k, "second", 0), libmemcached.ErrNotStored)
			require.NoError(t, c.Replace(k, "third", 0))
			v, cas, err := c.Gets(k)
			require.NoError(t, err)
			assert.Equal(t, "third", v)
			require.NoError(t, c.Set(k, "meanwhile", 0))
			assert.ErrorIs(t, c.CAS(k, "late", cas, 0), libmemcached.ErrCASConflict)
			v, cas, err = c.Gets(k)
			require.NoError(t, err)
			require.NoError(t, c.CAS(k, "swapped", cas, 0))
			v, err = c.Get(k)
			require.NoError(t, err)
			assert.Equal(t, "swapped", v)

			// A bad key is the binding's error.
			err = c.Set("bad key", "v", 0)
			require.True(t, errors.As(err, &e), "%T %v", err, err)
			assert.Equal(t, "bad key", e.Key)

			// Codec errors name the key, in both directions.
			var ce *CodecError
			err = c.Set(k, make(chan int), 0)
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, k, ce.Key)
			assert.Equal(t, "encode", ce.Op)
			v, err = c.Get(k)
			require.NoError(t, err, "a failed encode sends nothing")
			assert.Equal(t, "swapped", v)
			require.NoError(t, c.Store().Set(&libmemcached.Item{Key: k, Value: []byte("x"), Flags: 3}))
			_, err = c.Get(k)
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, k, ce.Key)
			assert.Equal(t, uint32(3), ce.Flags)
			assert.Equal(t, `pylibmc: cannot decode value of key "`+k+`" (flags 3: pickle|integer): more than one type flag`, err.Error())
		})
	}
}

// GetMulti and GetMultiPrefix: misses and undecodable values are absent,
// with an error joining one *CodecError per bad key (a key asked for twice
// is decoded once); with a prefix, the result is keyed without it.
func TestClientGetMulti(t *testing.T) {
	for _, st := range stores(t, []string{sharedServer(t)}, Codec{}) {
		t.Run(st.name, func(t *testing.T) {
			c := st.c
			p := key(t, "")
			require.NoError(t, c.Set(p+"ok", "fine", 0))
			require.NoError(t, c.Set(p+"n", 7, 0))
			require.NoError(t, c.Store().Set(&libmemcached.Item{Key: p + "bad", Value: []byte("x"), Flags: 32}))

			got, err := c.GetMulti([]string{p + "ok", p + "n", p + "absent", p + "ok"})
			require.NoError(t, err)
			assert.Equal(t, map[string]any{p + "ok": "fine", p + "n": int64(7)}, got)

			got, err = c.GetMulti([]string{p + "bad", p + "ok", p + "bad", p + "absent"})
			assert.Equal(t, map[string]any{p + "ok": "fine"}, got)
			var ce *CodecError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, p+"bad", ce.Key)
			joined, ok := err.(interface{ Unwrap() []error })
			require.True(t, ok, "%T", err)
			assert.Len(t, joined.Unwrap(), 1, "the key asked for twice is decoded once")

			got, err = c.GetMultiPrefix(p, []string{"ok", "n", "absent", "bad", "n"})
			assert.Equal(t, map[string]any{"ok": "fine", "n": int64(7)}, got)
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, p+"bad", ce.Key, "the error names the key on the wire")

			got, err = c.GetMulti(nil)
			require.NoError(t, err)
			assert.Empty(t, got)
		})
	}
}

// If a server fails, GetMulti returns the values of the others with an
// error that joins the server's error and the codec's.
func TestClientGetMultiServerDown(t *testing.T) {
	up := newServer(t)
	down, err := startMemcached()
	require.NoError(t, err)
	servers := []string{up, down.Addr}
	mc := newMC(t, servers)
	c := New(mc, Codec{})
	// Keys on each server, found by asking where they live.
	onUp, onDown := []string{}, []string{}
	for i := 0; len(onUp) < 2 || len(onDown) < 1; i++ {
		k := key(t, string(rune('a'+i%26))+strings.Repeat("x", i/26))
		s, err := mc.ServerFor(k)
		require.NoError(t, err)
		if s == up && len(onUp) < 2 {
			onUp = append(onUp, k)
		} else if s == down.Addr && len(onDown) < 1 {
			onDown = append(onDown, k)
		}
	}
	require.NoError(t, c.Set(onUp[0], "alive", 0))
	require.NoError(t, mc.Set(&libmemcached.Item{Key: onUp[1], Value: []byte("x"), Flags: 17}))
	require.NoError(t, c.Set(onDown[0], "lost", 0))
	down.Stop()

	got, err := c.GetMulti([]string{onUp[0], onUp[1], onDown[0]})
	assert.Equal(t, map[string]any{onUp[0]: "alive"}, got)
	var e *libmemcached.Error
	assert.True(t, errors.As(err, &e), "the server's error: %v", err)
	var ce *CodecError
	require.True(t, errors.As(err, &ce), "the codec's error: %v", err)
	assert.Equal(t, onUp[1], ce.Key)
}

// SetMulti and SetMultiPrefix encode every value, in key order, before
// anything is sent; failed keys come back without the prefix.
func TestClientSetMulti(t *testing.T) {
	for _, st := range stores(t, []string{sharedServer(t)}, Codec{}) {
		t.Run(st.name, func(t *testing.T) {
			c := st.c
			p := key(t, "")
			failed, err := c.SetMulti(map[string]any{p + "a": 1, p + "y": make(chan int), p + "x": func() {}, p + "z": 2}, 0)
			assert.Nil(t, failed)
			var ce *CodecError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, p+"x", ce.Key, "the first bad value in key order")
			for _, k := range []string{"a", "z"} {
				_, err := c.Get(p + k)
				assert.ErrorIs(t, err, libmemcached.ErrCacheMiss, "%s was sent", k)
			}

			failed, err = c.SetMultiPrefix(p, map[string]any{"b": make(chan int), "c": 3}, 0)
			assert.Nil(t, failed)
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, p+"b", ce.Key)
			_, err = c.Get(p + "c")
			assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)

			failed, err = c.SetMultiPrefix(p, map[string]any{"b": "bee", "c": 3}, 0)
			require.NoError(t, err)
			assert.Empty(t, failed)
			got, err := c.GetMultiPrefix(p, []string{"b", "c"})
			require.NoError(t, err)
			assert.Equal(t, map[string]any{"b": "bee", "c": int64(3)}, got)

			// A key the server refuses comes back without the prefix.
			big := New(c.Store(), Codec{MaxValueSize: 4 << 20})
			failed, err = big.SetMultiPrefix(p, map[string]any{"huge": make([]byte, 2<<20), "small": "s"}, 0)
			assert.ErrorIs(t, err, libmemcached.ErrSomeErrors)
			assert.Equal(t, []string{"huge"}, failed)
			v, err := c.Get(p + "small")
			require.NoError(t, err)
			assert.Equal(t, "s", v)

			failed, err = c.SetMulti(nil, 0)
			require.NoError(t, err)
			assert.Empty(t, failed)
		})
	}
}

// The extras: Delete, DeleteMulti, Incr, Decr, Touch, Append, Prepend,
// Store and Codec.
func TestClientOtherOperations(t *testing.T) {
	for _, st := range stores(t, []string{sharedServer(t)}, Codec{MinCompressLen: 10}) {
		t.Run(st.name, func(t *testing.T) {
			c := st.c
			assert.Equal(t, Codec{MinCompressLen: 10}, c.Codec())
			require.NotNil(t, c.Store())
			p := key(t, "")

			require.NoError(t, c.Set(p+"n", 10, 0))
			n, err := c.Incr(p+"n", 5)
			require.NoError(t, err)
			assert.Equal(t, uint64(15), n)
			n, err = c.Decr(p+"n", 6)
			require.NoError(t, err)
			assert.Equal(t, uint64(9), n)
			v, err := c.Get(p + "n")
			require.NoError(t, err)
			assert.Equal(t, int64(9), v, "a space-padded number reads as an int")

			require.NoError(t, c.Set(p+"s", "mid", 0))
			require.NoError(t, c.Append(p+"s", "-end"))
			require.NoError(t, c.Prepend(p+"s", []byte("start-")))
			v, err = c.Get(p + "s")
			require.NoError(t, err)
			assert.Equal(t, "start-mid-end", v, "append and prepend keep the flags, and never compress")
			assert.ErrorIs(t, c.Append(p+"absent", "x"), libmemcached.ErrNotStored)
			assert.ErrorIs(t, c.Prepend(p+"absent", "x"), libmemcached.ErrNotStored)
			for _, bad := range []any{5, 1.5, []any{"x"}, nil, "\xff"} {
				err := c.Append(p+"s", bad)
				var ce *CodecError
				if assert.True(t, errors.As(err, &ce), "%T: %v", bad, err) {
					assert.Equal(t, p+"s", ce.Key)
				}
			}
			v, err = c.Get(p + "s")
			require.NoError(t, err)
			assert.Equal(t, "start-mid-end", v)

			require.NoError(t, c.Touch(p+"s", 3600))
			require.NoError(t, c.Delete(p+"s"))
			_, err = c.Get(p + "s")
			assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)

			failed, err := c.SetMulti(map[string]any{p + "d1": 1, p + "d2": 2}, 0)
			require.NoError(t, err)
			require.Empty(t, failed)
			require.NoError(t, c.DeleteMulti([]string{p + "d1", p + "d2"}))
			err = c.DeleteMulti([]string{p + "d1", p + "n"})
			assert.ErrorIs(t, err, libmemcached.ErrCacheMiss)
			got, err := c.GetMulti([]string{p + "d1", p + "d2", p + "n"})
			require.NoError(t, err)
			assert.Empty(t, got)
		})
	}
}
