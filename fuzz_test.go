package libmemcached

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fuzzValidKey says whether memcached can take key in the given protocol:
// 1 to 250 bytes, and in ASCII no spaces or control bytes (pitfall 11).
// It is written here independently of the library's own check.
func fuzzValidKey(key string, binary bool) bool {
	if len(key) == 0 || len(key) > 250 {
		return false
	}
	if binary {
		return true
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

// fuzzItemLimit is a value size that surely fits in memcached's default
// 1 MB item (with the key and the item header); larger values may be
// refused by the server, which must then leave the connection usable.
const fuzzItemLimit = 1024*1024 - 4096

// FuzzClient feeds arbitrary keys and values through Set, Get and GetMulti
// against a real server, in the protocol the input picks. An invalid key
// must give a clean ErrBadKeyProvided, a valid one a faithful round trip;
// afterwards a sentinel key must still read back its own value through
// both protocols' clients, so no input can desynchronise a connection.
//
// The seed corpus is in testdata/fuzz/FuzzClient and replays in every go
// test run; fuzz with go test -run='^$' -fuzz=FuzzClient.
func FuzzClient(f *testing.F) {
	f.Add("fuzz_plain", []byte("hello"), false)
	f.Add("fuzz_plain", []byte("hello"), true)
	f.Add("", []byte("empty key"), false)
	f.Add("fuzz sp", []byte("space in key"), true)
	f.Add("fuzz\nnl", []byte("newline in key"), false)
	f.Add(strings.Repeat("k", 250), []byte("longest key"), false)
	f.Add(strings.Repeat("k", 251), []byte("key one byte too long"), true)
	f.Add("fuzz_end", []byte("x\r\nEND\r\n"), false)
	// Big values, generated rather than committed: one at memcached's 1 MB
	// item limit (refused), one just under it (stored).
	f.Add("fuzz_1mb", bytes.Repeat([]byte{0xff}, 1<<20), true)
	f.Add("fuzz_1e6", bytes.Repeat([]byte("\r\nEND\r\n"), 1_000_000/7), true)

	s := newServer(f) // its own server: arbitrary keys touch no other test's
	ascii, err := New([]string{s.Addr})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ascii.Close() })
	binary, err := New([]string{s.Addr}, WithBinaryProtocol())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { binary.Close() })

	const sentinel, sentinelValue = "fuzz_sentinel", "sentinel-value\r\nEND\r\n"
	if err := ascii.Set(&Item{Key: sentinel, Value: []byte(sentinelValue), Flags: 42}); err != nil {
		f.Fatal(err)
	}
	checkSentinel := func(t *testing.T, stage string) {
		t.Helper()
		for _, c := range []*Client{ascii, binary} {
			it, err := c.Get(sentinel)
			if err != nil {
				t.Fatalf("%s: sentinel Get (binary=%v): %v", stage, c == binary, err)
			}
			if string(it.Value) != sentinelValue || it.Flags != 42 || it.Key != sentinel {
				t.Fatalf("%s: desync (binary=%v): sentinel read back as key %q value %q flags %d",
					stage, c == binary, it.Key, it.Value, it.Flags)
			}
		}
	}

	f.Fuzz(func(t *testing.T, key string, value []byte, useBinary bool) {
		c := ascii
		if useBinary {
			c = binary
		}
		valid := fuzzValidKey(key, useBinary)
		if key == sentinel {
			return // the one key the check itself uses
		}
		flags := uint32(len(value))*2654435761 + uint32(len(key))

		if !valid {
			err := c.Set(&Item{Key: key, Value: value, Flags: flags})
			if !errors.Is(err, ErrBadKeyProvided) {
				t.Fatalf("Set of invalid key %q (binary=%v): %v, want ErrBadKeyProvided", key, useBinary, err)
			}
			if _, err := c.Get(key); !errors.Is(err, ErrBadKeyProvided) {
				t.Fatalf("Get of invalid key %q: %v, want ErrBadKeyProvided", key, err)
			}
			if _, err := c.GetMulti([]string{sentinel, key}); !errors.Is(err, ErrBadKeyProvided) {
				t.Fatalf("GetMulti with invalid key %q: %v, want ErrBadKeyProvided", key, err)
			}
			checkSentinel(t, "after invalid key")
			return
		}

		// Start from a known state: the key is absent.
		if err := c.Delete(key); err != nil && !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Delete %q: %v", key, err)
		}
		err := c.Set(&Item{Key: key, Value: value, Flags: flags})
		if err != nil {
			if len(value) <= fuzzItemLimit {
				t.Fatalf("Set %q (%d bytes, binary=%v): %v", key, len(value), useBinary, err)
			}
			if errors.Is(err, ErrBadKeyProvided) {
				t.Fatalf("Set %q: valid key refused: %v", key, err)
			}
			// Too large: refused by the server. Nothing stored, and the
			// connection still in step.
			if _, err := c.Get(key); !errors.Is(err, ErrCacheMiss) {
				t.Fatalf("Get %q after a refused Set: %v, want ErrCacheMiss", key, err)
			}
			checkSentinel(t, "after a refused Set")
			return
		}

		it, err := c.Get(key)
		if err != nil {
			t.Fatalf("Get %q (binary=%v): %v", key, useBinary, err)
		}
		if it.Key != key || !bytes.Equal(it.Value, value) || it.Flags != flags {
			t.Fatalf("Get %q returned key %q, %d bytes, flags %d; want %d bytes, flags %d",
				key, it.Key, len(it.Value), it.Flags, len(value), flags)
		}

		items, err := c.GetMulti([]string{key, sentinel, key})
		if err != nil {
			t.Fatalf("GetMulti %q: %v", key, err)
		}
		if len(items) != 2 {
			t.Fatalf("GetMulti %q: %d items, want 2", key, len(items))
		}
		if got := items[key]; got == nil || got.Key != key || !bytes.Equal(got.Value, value) || got.Flags != flags {
			t.Fatalf("GetMulti %q: wrong item %+v", key, got)
		}
		if got := items[sentinel]; got == nil || string(got.Value) != sentinelValue {
			t.Fatalf("GetMulti: sentinel wrong next to %q: %+v", key, got)
		}

		// A key that is valid in ASCII is the same key in binary.
		if !useBinary {
			it, err := binary.Get(key)
			if err != nil || !bytes.Equal(it.Value, value) {
				t.Fatalf("binary Get of ASCII-stored %q: %v", key, err)
			}
		}

		checkSentinel(t, "after round trip")
		if err := c.Delete(key); err != nil {
			t.Fatalf("Delete %q: %v", key, err)
		}
	})
}
