package libmemcached

// Store is what Client and Pool both offer: the item operations and the
// server queries that do not depend on holding one handle. It is
// implemented by *Client and *Pool, so that code can take either; the
// pylibmc package's New and other adapters over this package use it.
//
// Methods may be added to Store as Client and Pool grow, so it is not
// meant for other implementations: embed a Store to wrap one.
type Store interface {
	Get(key string) (*Item, error)
	GetMulti(keys []string) (map[string]*Item, error)
	Set(item *Item) error
	Add(item *Item) error
	Replace(item *Item) error
	Append(item *Item) error
	Prepend(item *Item) error
	CompareAndSwap(item *Item) error
	Delete(key string) error
	Increment(key string, delta uint64) (uint64, error)
	Decrement(key string, delta uint64) (uint64, error)
	Touch(key string, seconds int32) error
	SetMulti(items []*Item) (failed []string, err error)
	DeleteMulti(keys []string) error
	FlushAll() error
	Ping() error
	Servers() []string
	ServerFor(key string) (string, error)
}

var (
	_ Store = (*Client)(nil)
	_ Store = (*Pool)(nil)
)
