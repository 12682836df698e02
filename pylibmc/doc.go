// Package pylibmc reads and writes memcached values in the format of
// pylibmc 1.6, Python's libmemcached client, so that Go services and a
// Python fleet can share one cache value for value while services move
// over. It sits on package libmemcached: the libmemcached.Client or
// libmemcached.Pool given to New decides servers, protocol, behaviors and
// key-to-server mapping (which match pylibmc's for the same server list
// and behaviors); this package only turns Go values into pylibmc's bytes
// and flags (Codec) and back, with pylibmc's method names (Client).
//
//	mc, err := libmemcached.New([]string{"10.0.0.1", "10.0.0.2"},
//		libmemcached.WithBehaviors(map[string]any{"ketama": true}))
//	...
//	c := pylibmc.New(mc, pylibmc.Codec{}) // pylibmc's defaults
//	err = c.Set("session:42", map[string]any{"user_id": 42}, 3600)
//	v, err := c.Get("session:42") // map[string]any{"user_id": int64(42)}
//	if errors.Is(err, libmemcached.ErrCacheMiss) { ... }
//
// docs/migrating-from-pylibmc.md in the repository maps every pylibmc
// name to this package and to package libmemcached.
//
// # Types
//
// The flags say how a value is stored, as in pylibmc:
//
//	flags             pylibmc writes                Go writes                    Go reads as
//	0                 bytes                         []byte                       []byte
//	16 (FlagText)     str (UTF-8)                   string (must be UTF-8)       string
//	4 (FlagLong)      int (ASCII decimal)           any Go integer, *big.Int     int64, *big.Int beyond int64
//	2 (FlagInteger)   bool as "1"/"0"               never                        int64 (as pylibmc reads it)
//	1 (FlagPickle)    anything else, pickled        anything else below          see below
//	+ 8 (FlagZlib)    when min_compress_len says    when MinCompressLen says     inflated, up to MaxValueSize
//
// A pickle decodes to, and these Go values encode as, the following. Decode
// reads pickles of protocols 1 to 5, and of protocol 0 except text with
// escapes or non-ASCII characters, which is refused rather than misread;
// Encode writes Codec.PickleProtocol, by default 5 as pylibmc does.
//
//	Python            Go
//	None              nil
//	bool              bool
//	int               int64, or *big.Int beyond int64 (any Go integer type encodes)
//	float             float64 (float32 encodes)
//	str               string
//	bytes, bytearray  []byte (encodes as bytes)
//	list              []any (any other Go slice or array encodes)
//	tuple             Tuple
//	dict              map[string]any when every key is a str, else map[any]any
//	                  (any Go map with keys of these kinds encodes)
//	set, frozenset    Set (encodes as set)
//
// Dict keys and set elements become Go map keys, so they must be None,
// bool, int within int64, float or str; a bytes, tuple or big int key is
// an error. A pickle of any other class (datetime.datetime, decimal.Decimal,
// a class of the application, ...) is an error naming the class. Values
// that Python shares (one list referenced twice) are shared in Go too; a
// recursive structure is an error. Nesting is limited to MaxNesting levels
// and the fully expanded tree to MaxPickleNodes nodes, so that walking a
// decoded value is bounded; a compressed value inflates to at most
// Codec.MaxValueSize bytes.
//
// A Go bool is pickled, so that Python reads True or False; pylibmc's own
// True is stored as FlagInteger "1" and reads back, in Python and in Go,
// as the int 1.
//
// # Concurrency
//
// A Codec is a plain value, safe for concurrent use. A Client holds only
// its store and codec, so it is safe for concurrent use when its store is:
// a *libmemcached.Client is (its calls are serialized), and a
// *libmemcached.Pool is and runs calls in parallel. Several Clients may
// share one store, for instance with different codecs.
//
// # Errors
//
// Server and library failures are package libmemcached's *libmemcached.Error,
// passed through unchanged: test them with errors.Is and its sentinels
// (libmemcached.ErrCacheMiss for a miss, libmemcached.ErrNotStored for a
// refused Add or Replace, libmemcached.ErrCASConflict for a lost CAS,
// libmemcached.ErrTimeout, ...). A value the codec cannot encode or decode
// is a *CodecError with the key, the flags and, for a pickle of a class Go
// cannot represent, the class: never a guess. GetMulti returns what it
// could decode together with an error joining the *CodecErrors of the rest.
package pylibmc
