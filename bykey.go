package libmemcached

import "context"

// Server keys (libmemcached's *_by_key functions): each ByKey operation
// sends its key to the server that serverKey maps to, rather than the
// key's own, so that a group of keys (a user's, a page's) lives on one
// server and one GetMultiByKey reads them in a single round trip.
// ServerFor(serverKey) tells which server that is. Keys stored with a
// server key must be read, changed and deleted with the same server key:
// a plain Get looks for them on their own server. The server key is only
// hashed, never sent; it follows the protocol's key rules (1 to 250 bytes,
// in ASCII no spaces or control bytes), without the namespace. Pool's
// GetByKey and GetMultiByKey are not coalesced.

// GetByKey is Get of key from serverKey's server.
func (c *commands) GetByKey(serverKey, key string) (*Item, error) {
	return do(c, context.Background(), call{"GetByKey", serverKey, 1, true}, func(h *handle) (*Item, error) {
		return h.getBy(serverKey, key)
	})
}

// GetMultiByKey is GetMulti of keys, all from serverKey's server: one
// round trip.
func (c *commands) GetMultiByKey(serverKey string, keys []string) (map[string]*Item, error) {
	return do(c, context.Background(), call{"GetMultiByKey", serverKey, len(keys), true}, func(h *handle) (map[string]*Item, error) {
		return h.getMultiBy(serverKey, keys)
	})
}

// storeByKey runs one of the storage commands on serverKey's server.
func (c *commands) storeByKey(op storeOp, serverKey string, item *Item) error {
	return do0(c, context.Background(), call{storeOpEvents[op] + "ByKey", serverKey, 1, true}, func(h *handle) error {
		return h.storeBy(op, serverKey, item)
	})
}

// SetByKey is Set on serverKey's server.
func (c *commands) SetByKey(serverKey string, item *Item) error {
	return c.storeByKey(opSet, serverKey, item)
}

// AddByKey is Add on serverKey's server.
func (c *commands) AddByKey(serverKey string, item *Item) error {
	return c.storeByKey(opAdd, serverKey, item)
}

// ReplaceByKey is Replace on serverKey's server.
func (c *commands) ReplaceByKey(serverKey string, item *Item) error {
	return c.storeByKey(opReplace, serverKey, item)
}

// DeleteByKey is Delete on serverKey's server.
func (c *commands) DeleteByKey(serverKey, key string) error {
	return do0(c, context.Background(), call{"DeleteByKey", serverKey, 1, true}, func(h *handle) error {
		return h.deleteBy(serverKey, key)
	})
}

// IncrementByKey is Increment on serverKey's server.
func (c *commands) IncrementByKey(serverKey, key string, delta uint64) (uint64, error) {
	return do(c, context.Background(), call{"IncrementByKey", serverKey, 1, true}, func(h *handle) (uint64, error) {
		return h.incr("incr", serverKey, key, delta, false, nil, 0)
	})
}

// DecrementByKey is Decrement on serverKey's server.
func (c *commands) DecrementByKey(serverKey, key string, delta uint64) (uint64, error) {
	return do(c, context.Background(), call{"DecrementByKey", serverKey, 1, true}, func(h *handle) (uint64, error) {
		return h.incr("decr", serverKey, key, delta, true, nil, 0)
	})
}

// TouchByKey is Touch on serverKey's server.
func (c *commands) TouchByKey(serverKey, key string, seconds int32) error {
	return do0(c, context.Background(), call{"TouchByKey", serverKey, 1, true}, func(h *handle) error {
		return h.touchBy(serverKey, key, seconds)
	})
}
