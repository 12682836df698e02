package libmemcached_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libmemcached-go/libmemcached"
)

func ExampleNew() {
	// pylibmc: mc = pylibmc.Client(["127.0.0.1"]); mc.set("foo", "Hello world!")
	servers := strings.Split(os.Getenv("MEMCACHED_SERVERS"), ",") // e.g. []string{"127.0.0.1:11211"}
	mc, err := libmemcached.New(servers)
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	if err := mc.Set(&libmemcached.Item{Key: "foo", Value: []byte("Hello world!")}); err != nil {
		log.Fatal(err)
	}
	item, err := mc.Get("foo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", item.Value)
	// Output: Hello world!
}

func ExampleWithBinaryProtocol() {
	// pylibmc: mc = pylibmc.Client(["127.0.0.1"], binary=True)
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","), libmemcached.WithBinaryProtocol())
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	// In the binary protocol a key may hold any bytes, spaces included.
	if err := mc.Set(&libmemcached.Item{Key: "binary key", Value: []byte("spaces are fine")}); err != nil {
		log.Fatal(err)
	}
	item, err := mc.Get("binary key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", item.Value)
	// Output: spaces are fine
}

func ExampleClient_Get() {
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	if err := mc.Set(&libmemcached.Item{Key: "greeting", Value: []byte("hello"), Flags: 42}); err != nil {
		log.Fatal(err)
	}
	item, err := mc.Get("greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (flags %d)\n", item.Value, item.Flags)

	// A miss is an error that matches ErrCacheMiss.
	_, err = mc.Get("no-such-key")
	switch {
	case errors.Is(err, libmemcached.ErrCacheMiss):
		fmt.Println("no-such-key: cache miss")
	case err != nil:
		log.Fatal(err) // the server could not be asked
	}
	// Output:
	// hello (flags 42)
	// no-such-key: cache miss
}

func ExampleClient_GetMulti() {
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	// pylibmc: mc.set_multi({"multi:a": "1", "multi:b": "2"})
	_, err = mc.SetMulti([]*libmemcached.Item{
		{Key: "multi:a", Value: []byte("1")},
		{Key: "multi:b", Value: []byte("2")},
	})
	if err != nil {
		log.Fatal(err)
	}
	// One round trip per server. Keys that miss are absent from the map.
	items, err := mc.GetMulti([]string{"multi:a", "multi:b", "multi:missing"})
	if err != nil {
		log.Fatal(err)
	}
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s = %s\n", k, items[k].Value)
	}
	_, found := items["multi:missing"]
	fmt.Println("multi:missing found:", found)
	// Output:
	// multi:a = 1
	// multi:b = 2
	// multi:missing found: false
}

func ExampleClient_CompareAndSwap() {
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	if err := mc.Set(&libmemcached.Item{Key: "cas:list", Value: []byte("a")}); err != nil {
		log.Fatal(err)
	}
	// Read-modify-write: Get fills CasID; CompareAndSwap stores only if
	// nobody changed the item since. On a conflict, read again and retry.
	appendItem := func(elem string) error {
		for {
			item, err := mc.Get("cas:list")
			if err != nil {
				return err
			}
			item.Value = append(item.Value, ","+elem...)
			err = mc.CompareAndSwap(item)
			if !errors.Is(err, libmemcached.ErrCASConflict) {
				return err
			}
		}
	}
	if err := appendItem("b"); err != nil {
		log.Fatal(err)
	}

	// A swap with a stale CasID loses.
	stale, err := mc.Get("cas:list")
	if err != nil {
		log.Fatal(err)
	}
	if err := appendItem("c"); err != nil { // someone else writes in between
		log.Fatal(err)
	}
	stale.Value = []byte("overwritten")
	err = mc.CompareAndSwap(stale)
	fmt.Println("stale swap is a CAS conflict:", errors.Is(err, libmemcached.ErrCASConflict))

	item, err := mc.Get("cas:list")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", item.Value)
	// Output:
	// stale swap is a CAS conflict: true
	// a,b,c
}

func ExampleClient_SetBehaviors() {
	// New does not connect, and nothing below talks to the server.
	mc, err := libmemcached.New([]string{"127.0.0.1:11211"})
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	// pylibmc: mc.behaviors.update({"tcp_nodelay": True, "ketama": True, "hash": "fnv1a_32"})
	err = mc.SetBehaviors(map[string]any{"tcp_nodelay": true, "ketama": true, "hash": "fnv1a_32"})
	if err != nil {
		log.Fatal(err)
	}
	b := mc.Behaviors()
	for _, name := range []string{"tcp_nodelay", "ketama", "hash", "distribution"} {
		fmt.Printf("%s: %v\n", name, b[name])
	}

	// A name pylibmc does not know is refused.
	err = mc.SetBehaviors(map[string]any{"tcp_no_delay": true})
	fmt.Println("tcp_no_delay refused:", errors.Is(err, libmemcached.ErrInvalidArguments))
	// Output:
	// tcp_nodelay: 1
	// ketama: 1
	// hash: fnv1a_32
	// distribution: consistent ketama
	// tcp_no_delay refused: true
}

func ExampleNewPool() {
	// A Pool hands out up to 4 clients, each with its own connections, to
	// any number of goroutines (pylibmc: ThreadMappedPool, pool.reserve()).
	pool, err := libmemcached.NewPool(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","), 4)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	if err := pool.Set(&libmemcached.Item{Key: "pool:hits", Value: []byte("0")}); err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				// Do acquires a client (waiting while all 4 are out),
				// runs the function and releases the client.
				err := pool.Do(context.Background(), func(c *libmemcached.Client) error {
					_, err := c.Increment("pool:hits", 1)
					return err
				})
				if err != nil {
					log.Print(err)
				}
			}
		}()
	}
	wg.Wait()

	item, err := pool.Get("pool:hits")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("hits: %s\n", item.Value)
	// Output: hits: 80
}

func ExamplePool_Warm() {
	pool, err := libmemcached.NewPool(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","), 16)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	// At start-up, before the pool gets busy: connect all 16 clients now,
	// back to back, so that memcached spreads them over its threads and
	// the first requests pay no connection set-up. A server that cannot be
	// reached shows here.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pool.Warm(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = pool.Get("warm:absent")
	fmt.Println("miss:", errors.Is(err, libmemcached.ErrCacheMiss))
	// Output: miss: true
}

func ExampleNewFromConfig() {
	server := os.Getenv("MEMCACHED_SERVERS") // e.g. "127.0.0.1:11211"
	// libmemcached's configuration language: servers, protocol, behaviors
	// and a namespace, which prefixes every key on the wire. A value with
	// punctuation (like the ':' here) is quoted.
	mc, err := libmemcached.NewFromConfig(`--SERVER=` + server + ` --BINARY-PROTOCOL --TCP-NODELAY --NAMESPACE="app:"`)
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	if err := mc.Set(&libmemcached.Item{Key: "config", Value: []byte("from a config string")}); err != nil {
		log.Fatal(err)
	}
	binary, _ := mc.Behavior(libmemcached.BehaviorBinaryProtocol)
	fmt.Println("binary protocol:", binary)

	// A client without the namespace sees the prefixed key.
	plain, err := libmemcached.New([]string{server})
	if err != nil {
		log.Fatal(err)
	}
	defer plain.Close()
	item, err := plain.Get("app:config")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("app:config = %s\n", item.Value)

	// A string libmemcached cannot parse is an error.
	_, err = libmemcached.NewFromConfig("--SERVER=" + server + " --NO-SUCH-OPTION")
	fmt.Println("bad configuration:", errors.Is(err, libmemcached.ErrParseError))
	// Output:
	// binary protocol: 1
	// app:config = from a config string
	// bad configuration: true
}

func ExampleError() {
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	if err := mc.Set(&libmemcached.Item{Key: "error:taken", Value: []byte("1")}); err != nil {
		log.Fatal(err)
	}
	// Add refuses a key that exists.
	err = mc.Add(&libmemcached.Item{Key: "error:taken", Value: []byte("2")})

	// Every failure is a *libmemcached.Error, reachable through wrapping.
	wrapped := fmt.Errorf("saving the form: %w", err)
	var e *libmemcached.Error
	if errors.As(wrapped, &e) {
		fmt.Println("op:", e.Op)
		fmt.Println("key:", e.Key)
		fmt.Println("code:", e.Code, "-", e.Code.Description())
		fmt.Println("temporary:", e.Temporary()) // a connection problem? retry later
	}
	fmt.Println("not stored:", errors.Is(wrapped, libmemcached.ErrNotStored))
	// Output:
	// op: add
	// key: error:taken
	// code: MEMCACHED_NOTSTORED - NOT STORED
	// temporary: false
	// not stored: true
}

// A service whose memcached servers are the addresses of one DNS name (a
// Kubernetes headless service, an autoscaled group) re-resolves the name
// now and then and gives the pool the new list when the answer changes.
func ExamplePool_SetServers() {
	// Here the name is "localhost" and the port that of the example's
	// server; in production, say, "memcached.cache.svc.cluster.local" and
	// 11211.
	_, port, _ := strings.Cut(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ",")[0], ":")
	resolve := func(ctx context.Context) ([]string, error) {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, "localhost")
		if err != nil {
			return nil, err
		}
		var servers []string
		for _, a := range addrs {
			if a.IP.To4() != nil { // the example's server listens on IPv4 only
				servers = append(servers, net.JoinHostPort(a.IP.String(), port))
			}
		}
		sort.Strings(servers) // libmemcached keeps the order given
		return servers, nil
	}

	// Start on a list that is out of date: one server that is gone.
	pool, err := libmemcached.NewPool([]string{"127.0.0.1:1"}, 8)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	refresh := func(ctx context.Context) error {
		servers, err := resolve(ctx)
		if err != nil || len(servers) == 0 || slices.Equal(servers, pool.Servers()) {
			return err // keep the old list when DNS fails or says nothing new
		}
		return pool.SetServers(servers)
	}
	// A service runs refresh from a ticker (every 30 s, say); once is
	// enough here.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := refresh(ctx); err != nil {
		log.Fatal(err)
	}
	if err := pool.Set(&libmemcached.Item{Key: "dns-example", Value: []byte("on the resolved servers")}); err != nil {
		log.Fatal(err)
	}
	it, err := pool.Get("dns-example")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d server(s); %s\n", len(pool.Servers()), it.Value)
	// Output: 1 server(s); on the resolved servers
}

func ExampleWithSpinWait() {
	servers := strings.Split(os.Getenv("MEMCACHED_SERVERS"), ",")
	// A service whose memcached is across a data centre (replies in
	// milliseconds) gains nothing from busy waiting; one that counts CPU
	// time more than latency can turn it off too.
	mc, err := libmemcached.New(servers, libmemcached.WithSpinWait(0))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	if err := mc.Set(&libmemcached.Item{Key: "spin", Value: []byte("no busy wait")}); err != nil {
		log.Fatal(err)
	}
	item, err := mc.Get("spin")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", item.Value)
	// Output: no busy wait
}
