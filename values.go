package libmemcached

import (
	"errors"
	"sort"
	"strings"
)

// The value methods store and read Go values through the client's Codec
// (WithCodec; by default PylibmcCodec, pylibmc's format), for caches shared
// with Python. They sit on the Item methods: a miss is still
// errors.Is(err, ErrCacheMiss), and every server error is still an *Error.
// A value the codec cannot encode or decode is a *CodecError.

// itemStore is what the value methods need of a Client or a Pool.
type itemStore interface {
	Get(key string) (*Item, error)
	GetMulti(keys []string) (map[string]*Item, error)
	Set(item *Item) error
	Add(item *Item) error
	Replace(item *Item) error
	CompareAndSwap(item *Item) error
	SetMulti(items []*Item) ([]string, error)
}

func codecOr(c Codec) Codec {
	if c == nil {
		return PylibmcCodec{}
	}
	return c
}

// Codec returns the codec of the client's value methods.
func (c *Client) Codec() Codec { return codecOr(c.codec) }

// Codec returns the codec of the pool's value methods.
func (p *Pool) Codec() Codec { return codecOr(p.codec) }

// codecErr gives a codec's error the key it was about.
func codecErr(err error, key, op string) error {
	var ce *CodecError
	if errors.As(err, &ce) {
		if ce.Key == "" {
			ce.Key = key
		}
		return err
	}
	return &CodecError{Op: op, Key: key, Reason: "the codec failed", Err: err}
}

func decodeItem(codec Codec, it *Item) (any, error) {
	v, err := codec.Decode(it.Value, it.Flags)
	if err != nil {
		return nil, codecErr(err, it.Key, "decode")
	}
	return v, nil
}

func encodeItem(codec Codec, key string, v any, expiration int32) (*Item, error) {
	data, flags, err := codec.Encode(v)
	if err != nil {
		return nil, codecErr(err, key, "encode")
	}
	return &Item{Key: key, Value: data, Flags: flags, Expiration: expiration}, nil
}

func getValue(s itemStore, codec Codec, key string) (any, uint64, error) {
	it, err := s.Get(key)
	if err != nil {
		return nil, 0, err
	}
	v, err := decodeItem(codec, it)
	if err != nil {
		return nil, 0, err
	}
	return v, it.CasID, nil
}

func storeValue(store func(*Item) error, codec Codec, key string, v any, expiration int32, cas uint64) error {
	it, err := encodeItem(codec, key, v, expiration)
	if err != nil {
		return err
	}
	it.CasID = cas
	return store(it)
}

// getValues gets prefix+key for every key and returns the decoded values
// by key (without the prefix). Keys that miss are absent. Values that
// cannot be decoded are absent too, and the error joins their
// *CodecErrors with any error of the multi-get.
func getValues(s itemStore, codec Codec, prefix string, keys []string) (map[string]any, error) {
	wire := keys
	if prefix != "" {
		wire = make([]string, len(keys))
		for i, k := range keys {
			wire[i] = prefix + k
		}
	}
	items, err := s.GetMulti(wire)
	out := make(map[string]any, len(items))
	var errs []error
	for i, w := range wire {
		it, ok := items[w]
		if !ok {
			continue
		}
		delete(items, w) // a key asked for twice is decoded once
		v, derr := decodeItem(codec, it)
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

// setValues encodes every value (failing before anything is sent if one
// cannot be) and stores them under prefix+key in one multi-set. It returns
// the keys (without the prefix) that were not stored.
func setValues(s itemStore, codec Codec, prefix string, m map[string]any, expiration int32) ([]string, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([]*Item, len(keys))
	for i, k := range keys {
		it, err := encodeItem(codec, prefix+k, m[k], expiration)
		if err != nil {
			return nil, err
		}
		items[i] = it
	}
	failed, err := s.SetMulti(items)
	if prefix != "" {
		for i, f := range failed {
			failed[i] = strings.TrimPrefix(f, prefix)
		}
	}
	return failed, err
}

// SetValue stores v under key through the client's codec (see
// PylibmcCodec for what Go values map to which Python types), with
// expiration as in Item. It is pylibmc's set.
func (c *Client) SetValue(key string, v any, expiration int32) error {
	return storeValue(c.Set, c.Codec(), key, v, expiration, 0)
}

// AddValue is SetValue only if key is absent (pylibmc's add); otherwise
// errors.Is(err, ErrNotStored).
func (c *Client) AddValue(key string, v any, expiration int32) error {
	return storeValue(c.Add, c.Codec(), key, v, expiration, 0)
}

// ReplaceValue is SetValue only if key is present (pylibmc's replace);
// otherwise errors.Is(err, ErrNotStored).
func (c *Client) ReplaceValue(key string, v any, expiration int32) error {
	return storeValue(c.Replace, c.Codec(), key, v, expiration, 0)
}

// CompareAndSwapValue stores v under key only if the item is unchanged
// since GetValueCAS returned cas (pylibmc's cas). A change in between gives
// errors.Is(err, ErrCASConflict); an absent key errors.Is(err,
// ErrCacheMiss).
func (c *Client) CompareAndSwapValue(key string, v any, cas uint64, expiration int32) error {
	return storeValue(c.CompareAndSwap, c.Codec(), key, v, expiration, cas)
}

// GetValue gets the value of key decoded by the client's codec (pylibmc's
// get). A miss gives errors.Is(err, ErrCacheMiss); a value the codec cannot
// read gives a *CodecError naming the key and its flags.
func (c *Client) GetValue(key string) (any, error) {
	v, _, err := getValue(c, c.Codec(), key)
	return v, err
}

// GetValueCAS is GetValue that also returns the item's CAS token, for
// CompareAndSwapValue (pylibmc's gets).
func (c *Client) GetValueCAS(key string) (v any, cas uint64, err error) {
	return getValue(c, c.Codec(), key)
}

// GetValues gets the values of keys in one round trip per server and
// decodes them (pylibmc's get_multi). Keys that miss are absent from the
// map. A value the codec cannot read is absent too, and the error (which
// errors.As finds each *CodecError in) says which; if a server fails, the
// values from the others are returned with its error.
func (c *Client) GetValues(keys []string) (map[string]any, error) {
	return getValues(c, c.Codec(), "", keys)
}

// GetValuesPrefix is GetValues of prefix+key for each key, with the result
// keyed by the keys without the prefix: pylibmc's get_multi(keys,
// key_prefix=prefix). The prefix is part of each key on the wire (unlike
// WithNamespace, which applies to every call).
func (c *Client) GetValuesPrefix(prefix string, keys []string) (map[string]any, error) {
	return getValues(c, c.Codec(), prefix, keys)
}

// SetValues stores every value of m in one multi-set (pylibmc's
// set_multi). Every value is encoded first: if one cannot be, nothing is
// sent and the *CodecError is returned. Otherwise it returns the keys that
// were not stored, with an error as SetMulti's.
func (c *Client) SetValues(m map[string]any, expiration int32) (failed []string, err error) {
	return setValues(c, c.Codec(), "", m, expiration)
}

// SetValuesPrefix is SetValues with every key stored as prefix+key:
// pylibmc's set_multi(mapping, key_prefix=prefix). The failed keys are
// returned without the prefix.
func (c *Client) SetValuesPrefix(prefix string, m map[string]any, expiration int32) (failed []string, err error) {
	return setValues(c, c.Codec(), prefix, m, expiration)
}

// SetValue is Client.SetValue on a client of the pool.
func (p *Pool) SetValue(key string, v any, expiration int32) error {
	return storeValue(p.Set, p.Codec(), key, v, expiration, 0)
}

// AddValue is Client.AddValue on a client of the pool.
func (p *Pool) AddValue(key string, v any, expiration int32) error {
	return storeValue(p.Add, p.Codec(), key, v, expiration, 0)
}

// ReplaceValue is Client.ReplaceValue on a client of the pool.
func (p *Pool) ReplaceValue(key string, v any, expiration int32) error {
	return storeValue(p.Replace, p.Codec(), key, v, expiration, 0)
}

// CompareAndSwapValue is Client.CompareAndSwapValue on a client of the
// pool.
func (p *Pool) CompareAndSwapValue(key string, v any, cas uint64, expiration int32) error {
	return storeValue(p.CompareAndSwap, p.Codec(), key, v, expiration, cas)
}

// GetValue is Client.GetValue on a client of the pool.
func (p *Pool) GetValue(key string) (any, error) {
	v, _, err := getValue(p, p.Codec(), key)
	return v, err
}

// GetValueCAS is Client.GetValueCAS on a client of the pool.
func (p *Pool) GetValueCAS(key string) (v any, cas uint64, err error) {
	return getValue(p, p.Codec(), key)
}

// GetValues is Client.GetValues on the pool.
func (p *Pool) GetValues(keys []string) (map[string]any, error) {
	return getValues(p, p.Codec(), "", keys)
}

// GetValuesPrefix is Client.GetValuesPrefix on the pool.
func (p *Pool) GetValuesPrefix(prefix string, keys []string) (map[string]any, error) {
	return getValues(p, p.Codec(), prefix, keys)
}

// SetValues is Client.SetValues on a client of the pool.
func (p *Pool) SetValues(m map[string]any, expiration int32) (failed []string, err error) {
	return setValues(p, p.Codec(), "", m, expiration)
}

// SetValuesPrefix is Client.SetValuesPrefix on a client of the pool.
func (p *Pool) SetValuesPrefix(prefix string, m map[string]any, expiration int32) (failed []string, err error) {
	return setValues(p, p.Codec(), prefix, m, expiration)
}
