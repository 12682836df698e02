package pylibmc

import (
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/libmemcached-go/libmemcached"
)

// Client stores and reads Go values in pylibmc's format through a
// libmemcached.Store (a *libmemcached.Client or a *libmemcached.Pool). Its
// methods are pylibmc.Client's, with Go errors for pylibmc's exceptions
// and False results: a miss is errors.Is(err, libmemcached.ErrCacheMiss),
// a refused add or replace errors.Is(err, libmemcached.ErrNotStored), a
// lost compare-and-swap errors.Is(err, libmemcached.ErrCASConflict); every
// server error is the store's *libmemcached.Error, passed through. A value
// the Codec cannot encode or decode is a *CodecError with its key.
//
// A Client holds no state of its own besides its store and codec: it is
// safe for concurrent use when its store is, which *libmemcached.Client
// and *libmemcached.Pool are. Closing the store is the caller's business.
type Client struct {
	store libmemcached.Store
	codec Codec
}

// New returns a Client that reads and writes values with codec (Codec{}
// for pylibmc's defaults) through store, a *libmemcached.Client or a
// *libmemcached.Pool. The store's servers, protocol and behaviors decide
// where each key lives, as pylibmc.Client's do.
func New(store libmemcached.Store, codec Codec) *Client {
	return &Client{store: store, codec: codec}
}

// Store returns the store the client was made with, for what pylibmc's
// Client does with raw items or servers (FlushAll, Ping, ServerFor, ...).
func (c *Client) Store() libmemcached.Store { return c.store }

// Codec returns the client's codec (pylibmc's serialize and deserialize
// are c.Codec().Encode and c.Codec().Decode).
func (c *Client) Codec() Codec { return c.codec }

// withKey gives a codec error the key it was about.
func withKey(err error, key string) error {
	var ce *CodecError
	if errors.As(err, &ce) && ce.Key == "" {
		ce.Key = key
	}
	return err
}

func (c *Client) decode(it *libmemcached.Item) (any, error) {
	v, err := c.codec.Decode(it.Value, it.Flags)
	if err != nil {
		return nil, withKey(err, it.Key)
	}
	return v, nil
}

func (c *Client) encode(key string, v any, expiration int32) (*libmemcached.Item, error) {
	data, flags, err := c.codec.Encode(v)
	if err != nil {
		return nil, withKey(err, key)
	}
	return &libmemcached.Item{Key: key, Value: data, Flags: flags, Expiration: expiration}, nil
}

func (c *Client) store1(store func(*libmemcached.Item) error, key string, v any, expiration int32, cas uint64) error {
	it, err := c.encode(key, v, expiration)
	if err != nil {
		return err
	}
	it.CasID = cas
	return store(it)
}

// Get gets the value of key decoded by the codec (pylibmc's get). A miss
// gives errors.Is(err, libmemcached.ErrCacheMiss), not a default value; a
// value the codec cannot read gives a *CodecError naming the key and its
// flags.
func (c *Client) Get(key string) (any, error) {
	v, _, err := c.Gets(key)
	return v, err
}

// Gets is Get that also returns the item's CAS token, for CAS (pylibmc's
// gets).
func (c *Client) Gets(key string) (any, uint64, error) {
	it, err := c.store.Get(key)
	if err != nil {
		return nil, 0, err
	}
	v, err := c.decode(it)
	if err != nil {
		return nil, 0, err
	}
	return v, it.CasID, nil
}

// Set stores v under key through the codec (see the package documentation
// for what Go values map to which Python types), with expiration in
// seconds or as a Unix time, 0 for none, as libmemcached.Item's
// Expiration. It is pylibmc's set(key, v, time=expiration); compression is
// the codec's (MinCompressLen, CompressLevel).
func (c *Client) Set(key string, v any, expiration int32) error {
	return c.store1(c.store.Set, key, v, expiration, 0)
}

// Add is Set only if key is absent (pylibmc's add); otherwise
// errors.Is(err, libmemcached.ErrNotStored), where pylibmc returns False.
func (c *Client) Add(key string, v any, expiration int32) error {
	return c.store1(c.store.Add, key, v, expiration, 0)
}

// Replace is Set only if key is present (pylibmc's replace); otherwise
// errors.Is(err, libmemcached.ErrNotStored), where pylibmc returns False.
func (c *Client) Replace(key string, v any, expiration int32) error {
	return c.store1(c.store.Replace, key, v, expiration, 0)
}

// CAS stores v under key only if the item is unchanged since Gets returned
// cas (pylibmc's cas). A change in between gives errors.Is(err,
// libmemcached.ErrCASConflict), where pylibmc returns False; an absent key
// errors.Is(err, libmemcached.ErrCacheMiss).
func (c *Client) CAS(key string, v any, cas uint64, expiration int32) error {
	return c.store1(c.store.CompareAndSwap, key, v, expiration, cas)
}

// GetMulti gets the values of keys in one round trip per server and
// decodes them (pylibmc's get_multi). Keys that miss are absent from the
// map; a key asked for twice is decoded once. A value the codec cannot
// read is absent too, and the error (in which errors.As finds each
// *CodecError) says which; if a server fails, the values from the others
// are returned with its error.
func (c *Client) GetMulti(keys []string) (map[string]any, error) {
	return c.GetMultiPrefix("", keys)
}

// GetMultiPrefix is GetMulti of prefix+key for each key, with the result
// keyed by the keys without the prefix: pylibmc's get_multi(keys,
// key_prefix=prefix). The prefix is part of each key on the wire (unlike
// libmemcached.WithNamespace, which applies to every call).
func (c *Client) GetMultiPrefix(prefix string, keys []string) (map[string]any, error) {
	wire := keys
	if prefix != "" {
		wire = make([]string, len(keys))
		for i, k := range keys {
			wire[i] = prefix + k
		}
	}
	items, err := c.store.GetMulti(wire)
	out := make(map[string]any, len(items))
	var errs []error
	for i, w := range wire {
		it, ok := items[w]
		if !ok {
			continue
		}
		delete(items, w) // a key asked for twice is decoded once
		v, derr := c.decode(it)
		if derr != nil {
			errs = append(errs, derr)
			continue
		}
		out[keys[i]] = v
	}
	if len(errs) == 0 {
		return out, err
	}
	if err != nil {
		errs = append([]error{err}, errs...)
	}
	return out, errors.Join(errs...)
}

// SetMulti stores every value of m in one multi-set (pylibmc's
// set_multi(m, time=expiration)). Every value is encoded first, in key
// order: if one cannot be, nothing is sent and its *CodecError is
// returned. Otherwise it returns the keys that were not stored, as pylibmc
// does, with the error of libmemcached.Client.SetMulti.
func (c *Client) SetMulti(m map[string]any, expiration int32) (failed []string, err error) {
	return c.SetMultiPrefix("", m, expiration)
}

// SetMultiPrefix is SetMulti with every key stored as prefix+key:
// pylibmc's set_multi(m, key_prefix=prefix). The failed keys are returned
// without the prefix.
func (c *Client) SetMultiPrefix(prefix string, m map[string]any, expiration int32) (failed []string, err error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([]*libmemcached.Item, len(keys))
	for i, k := range keys {
		it, err := c.encode(prefix+k, m[k], expiration)
		if err != nil {
			return nil, err
		}
		items[i] = it
	}
	failed, err = c.store.SetMulti(items)
	if prefix != "" {
		for i, f := range failed {
			failed[i] = strings.TrimPrefix(f, prefix)
		}
	}
	return failed, err
}

// Delete deletes key (pylibmc's delete). An absent key gives
// errors.Is(err, libmemcached.ErrCacheMiss), where pylibmc returns False.
func (c *Client) Delete(key string) error { return c.store.Delete(key) }

// DeleteMulti deletes every key (pylibmc's delete_multi; prefix the keys
// yourself for its key_prefix), with the error of
// libmemcached.Client.DeleteMulti.
func (c *Client) DeleteMulti(keys []string) error { return c.store.DeleteMulti(keys) }

// Incr adds delta to the decimal integer stored under key and returns the
// new value (pylibmc's incr). It works on the integers Set stores (and
// pylibmc's), which then read back as int64.
func (c *Client) Incr(key string, delta uint64) (uint64, error) {
	return c.store.Increment(key, delta)
}

// Decr is Incr downwards, stopping at 0 as memcached does (pylibmc's
// decr). A number that loses digits is stored space-padded ("9 "), which
// Get still reads as an int, as pylibmc does.
func (c *Client) Decr(key string, delta uint64) (uint64, error) {
	return c.store.Decrement(key, delta)
}

// Touch sets a new expiration for key without reading it (pylibmc's
// touch). An absent key gives errors.Is(err, libmemcached.ErrCacheMiss).
func (c *Client) Touch(key string, expiration int32) error {
	return c.store.Touch(key, expiration)
}

// Append adds v at the end of the value stored under key, leaving its
// flags as they are (pylibmc's append). v must be []byte or a string
// (valid UTF-8, appended as is), and is never compressed: memcached concatenates
// bytes, so appending a pickle or an int, which pylibmc allows, would
// corrupt the value; it is a *CodecError here. An absent key gives
// errors.Is(err, libmemcached.ErrNotStored).
func (c *Client) Append(key string, v any) error {
	return c.concat(c.store.Append, key, v)
}

// Prepend adds v at the start of the value stored under key, as Append
// does at the end (pylibmc's prepend).
func (c *Client) Prepend(key string, v any) error {
	return c.concat(c.store.Prepend, key, v)
}

func (c *Client) concat(store func(*libmemcached.Item) error, key string, v any) error {
	var data []byte
	switch x := v.(type) {
	case []byte:
		data = x
	case string:
		if !utf8.ValidString(x) {
			return &CodecError{Op: "encode", Key: key, Flags: FlagText,
				Reason: "the string is not valid UTF-8 (Python could not read it as str); append it as []byte"}
		}
		data = []byte(x)
	default:
		return &CodecError{Op: "encode", Key: key,
			Reason: "append and prepend take []byte or string: memcached concatenates bytes, so any other value would corrupt the stored one"}
	}
	return store(&libmemcached.Item{Key: key, Value: data})
}
