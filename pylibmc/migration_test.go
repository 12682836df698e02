package pylibmc

import (
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/libmemcached-go/libmemcached/internal/pylibmctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/migrating-from-pylibmc.md maps every pylibmc Client method,
// constructor argument, behavior, exception class and pool type (and the
// pools' methods): the names are listed live from the installed pylibmc.
// It shows every method of this package's Client, and none of the names
// the root package had before this package.
func TestMigrationDocCoversPylibmc(t *testing.T) {
	doc, err := os.ReadFile("../docs/migrating-from-pylibmc.md")
	require.NoError(t, err)
	var names map[string][]string
	pylibmctest.Run(t, `
import json, sys, inspect, pylibmc
c = pylibmc.Client(["127.0.0.1:1"])
out = {
    "methods": sorted(n for n in dir(pylibmc.Client) if not n.startswith("_")) +
               ["__getitem__", "__setitem__", "__delitem__", "__contains__"] + sorted(vars(c)),
    "constructor": [p for p in inspect.signature(pylibmc.Client.__init__).parameters if p != "self"],
    "behaviors": list(pylibmc.all_behaviors) + list(pylibmc.all_callbacks) + ["_retry_timeout"],
    "exceptions": [n for n, _ in pylibmc.exceptions] + ["MemcachedError"],
    "pools": ["ClientPool", "ThreadMappedPool"] +
             [n for cls in (pylibmc.ClientPool, pylibmc.ThreadMappedPool) for n in vars(cls) if not n.startswith("_")],
    "call_arguments": ["time", "min_compress_len", "compress_level", "key_prefix"],
}
json.dump(out, sys.stdout)
`, nil, &names)
	total := 0
	for group, list := range names {
		require.NotEmpty(t, list, group)
		for _, n := range list {
			total++
			pre := "`"
			if group == "pools" {
				pre = "[`.]" // `ClientPool.fill(...)`
			}
			re := regexp.MustCompile(pre + regexp.QuoteMeta(n) + "[^A-Za-z0-9_]")
			assert.True(t, re.Match(doc), "%s %q is not in the migration doc", group, n)
		}
	}
	assert.Greater(t, total, 90)

	ct := reflect.TypeOf(&Client{})
	for i := 0; i < ct.NumMethod(); i++ {
		n := ct.Method(i).Name
		re := regexp.MustCompile(`\bc\.` + n + `\(`)
		assert.True(t, re.Match(doc), "Client.%s is not in the migration doc as c.%s(...)", n, n)
	}
	for _, old := range []string{"SetValue", "GetValue", "GetValues", "AddValue", "ReplaceValue", "CompareAndSwapValue",
		"PylibmcCodec", "WithCodec", "libmemcached.CodecError", "libmemcached.Tuple", "libmemcached.Set"} {
		re := regexp.MustCompile(`\b` + regexp.QuoteMeta(old) + `\b`)
		assert.False(t, re.Match(doc), "the migration doc still names %s", old)
	}
}
