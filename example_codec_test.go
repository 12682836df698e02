package libmemcached_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/libmemcached-go/libmemcached"
)

func ExampleClient_SetValue() {
	// pylibmc: mc.set("session:42", {"user_id": 42, "roles": ["admin"]}, time=3600)
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	// A map is pickled as a Python dict; strings, ints and []byte are
	// stored as pylibmc stores str, int and bytes.
	session := map[string]any{"user_id": 42, "roles": []string{"admin"}}
	if err := mc.SetValue("example/codec/session:42", session, 3600); err != nil {
		log.Fatal(err)
	}
	if err := mc.SetValue("example/codec/greeting", "héllo", 0); err != nil {
		log.Fatal(err)
	}
	it, err := mc.Get("example/codec/greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s flags=%d (%s)\n", it.Value, it.Flags, libmemcached.FlagsString(it.Flags))
	// Output: héllo flags=16 (text)
}

func ExampleClient_GetValue() {
	// pylibmc: session = mc.get("session:7")
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	if err := mc.SetValue("example/codec/session:7", map[string]any{"user_id": 7, "cart": libmemcached.Tuple{"apple", 2}}, 0); err != nil {
		log.Fatal(err)
	}
	v, err := mc.GetValue("example/codec/session:7")
	if err != nil {
		log.Fatal(err)
	}
	// A Python dict with str keys reads as map[string]any; a Python int as
	// int64, a tuple as Tuple.
	session := v.(map[string]any)
	fmt.Println(session["user_id"].(int64), session["cart"])

	_, err = mc.GetValue("example/codec/no-such-session")
	fmt.Println(errors.Is(err, libmemcached.ErrCacheMiss))
	// Output:
	// 7 [apple 2]
	// true
}

func ExampleClient_GetValuesPrefix() {
	// pylibmc: mc.set_multi({"a": 1, "b": "two"}, key_prefix="user:")
	//          mc.get_multi(["a", "b", "c"], key_prefix="user:")
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	failed, err := mc.SetValuesPrefix("example/codec/user:", map[string]any{"a": 1, "b": "two"}, 0)
	if err != nil {
		log.Fatal(err, failed)
	}
	vals, err := mc.GetValuesPrefix("example/codec/user:", []string{"a", "b", "c"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vals["a"], vals["b"], len(vals))
	// Output: 1 two 2
}

func ExampleWithCodec() {
	// pylibmc: mc.set(key, value, min_compress_len=1024, compress_level=9)
	codec := libmemcached.PylibmcCodec{MinCompressLen: 1024, CompressLevel: 9}
	mc, err := libmemcached.New(strings.Split(os.Getenv("MEMCACHED_SERVERS"), ","), libmemcached.WithCodec(codec))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	big := make([]byte, 10000) // compresses well
	if err := mc.SetValue("example/codec/big", big, 0); err != nil {
		log.Fatal(err)
	}
	it, err := mc.Get("example/codec/big")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(libmemcached.FlagsString(it.Flags), len(it.Value) < 100)
	// Output: zlib true
}
