package pylibmc_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/pylibmc"
)

func ExampleNew() {
	// pylibmc: mc = pylibmc.Client(["127.0.0.1"], binary=True)
	servers := strings.Split(os.Getenv("MEMCACHED_SERVERS"), ",") // e.g. []string{"127.0.0.1:11211"}
	mc, err := libmemcached.New(servers, libmemcached.WithBinaryProtocol())
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	c := pylibmc.New(mc, pylibmc.Codec{}) // pylibmc's defaults

	// pylibmc: mc.set("example/pylibmc/greeting", "héllo")
	if err := c.Set("example/pylibmc/greeting", "héllo", 0); err != nil {
		log.Fatal(err)
	}
	// The item is what pylibmc stores for a str: UTF-8 with FlagText.
	it, err := mc.Get("example/pylibmc/greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s flags=%d (%s)\n", it.Value, it.Flags, pylibmc.FlagsString(it.Flags))
	// Output: héllo flags=16 (text)
}

func ExampleClient_Set() {
	// pylibmc: mc.set("session:42", {"user_id": 42, "roles": ["admin"]}, time=3600)
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	c := pylibmc.New(mc, pylibmc.Codec{})

	// A map is pickled as a Python dict; strings, ints and []byte are
	// stored as pylibmc stores str, int and bytes.
	session := map[string]any{"user_id": 42, "roles": []string{"admin"}}
	if err := c.Set("example/pylibmc/session:42", session, 3600); err != nil {
		log.Fatal(err)
	}
	it, err := mc.Get("example/pylibmc/session:42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pylibmc.FlagsString(it.Flags))
	// Output: pickle
}

func ExampleClient_Get() {
	// pylibmc: session = mc.get("session:7")
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	c := pylibmc.New(mc, pylibmc.Codec{})

	if err := c.Set("example/pylibmc/session:7", map[string]any{"user_id": 7, "cart": pylibmc.Tuple{"apple", 2}}, 0); err != nil {
		log.Fatal(err)
	}
	v, err := c.Get("example/pylibmc/session:7")
	if err != nil {
		log.Fatal(err)
	}
	// A Python dict with str keys reads as map[string]any; a Python int as
	// int64, a tuple as Tuple.
	session := v.(map[string]any)
	fmt.Println(session["user_id"].(int64), session["cart"])

	// A miss is the binding's ErrCacheMiss (pylibmc returns None).
	_, err = c.Get("example/pylibmc/no-such-session")
	fmt.Println(errors.Is(err, libmemcached.ErrCacheMiss))
	// Output:
	// 7 [apple 2]
	// true
}

func ExampleClient_GetMultiPrefix() {
	// pylibmc: mc.set_multi({"a": 1, "b": "two"}, key_prefix="user:")
	//          mc.get_multi(["a", "b", "c"], key_prefix="user:")
	pool, err := libmemcached.NewPool(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","), 4)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	c := pylibmc.New(pool, pylibmc.Codec{}) // a Pool works as a Client does

	failed, err := c.SetMultiPrefix("example/pylibmc/user:", map[string]any{"a": 1, "b": "two"}, 0)
	if err != nil {
		log.Fatal(err, failed)
	}
	vals, err := c.GetMultiPrefix("example/pylibmc/user:", []string{"a", "b", "c"})
	if err != nil {
		log.Fatal(err)
	}
	// The result is keyed without the prefix; a miss is absent.
	fmt.Println(vals["a"], vals["b"], len(vals))
	// Output: 1 two 2
}

func ExampleCodec() {
	// pylibmc: mc.set(key, value, min_compress_len=1024, compress_level=9)
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	c := pylibmc.New(mc, pylibmc.Codec{MinCompressLen: 1024, CompressLevel: 9})

	big := make([]byte, 10000) // compresses well
	if err := c.Set("example/pylibmc/big", big, 0); err != nil {
		log.Fatal(err)
	}
	it, err := mc.Get("example/pylibmc/big")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pylibmc.FlagsString(it.Flags), len(it.Value) < 100)

	// Encode and Decode are pylibmc's serialize and deserialize.
	data, flags, err := pylibmc.Codec{}.Encode(int64(42))
	if err != nil {
		log.Fatal(err)
	}
	v, err := pylibmc.Codec{}.Decode(data, flags)
	fmt.Printf("%s %s %v %v\n", data, pylibmc.FlagsString(flags), v, err)
	// Output:
	// zlib true
	// 42 long 42 <nil>
}
