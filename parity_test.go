package libmemcached

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached/internal/pylibmctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests check what this package shares with pylibmc (Debian's
// python3-pylibmc, run through internal/pylibmctest) beyond behaviors:
// every key on the same server, and the same server strings.

// trio starts three memcached servers for one test.
func trio(t *testing.T) []string {
	t.Helper()
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = newServer(t).Addr
	}
	return addrs
}

func newClientOf(t testing.TB, servers []string, opts ...Option) *Client {
	t.Helper()
	c, err := New(servers, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// For the same server list and behaviors, every key is on the server
// pylibmc put it on: pylibmc writes 2,000 keys per configuration to three
// servers, single-server clients read each server directly, and the Go
// client's ServerFor and GetMulti agree with what was found.
func TestServerMappingParity(t *testing.T) {
	servers := trio(t)
	type pcase struct {
		Name      string         `json:"name"`
		Binary    bool           `json:"binary"`
		Behaviors map[string]any `json:"behaviors"`
		Servers   []string       `json:"servers"`
	}
	var cases []pcase
	hashes := []string{"default", "md5", "crc", "fnv1a_32", "murmur"}
	dists := []struct {
		name string
		b    map[string]any
	}{
		{"modula", map[string]any{"distribution": "modula"}},
		{"consistent_ketama", map[string]any{"distribution": "consistent ketama"}},
		{"ketama", map[string]any{"ketama": true}},
	}
	for _, binary := range []bool{false, true} {
		for _, d := range dists {
			for _, h := range hashes {
				b := map[string]any{"hash": h}
				for k, v := range d.b {
					b[k] = v
				}
				cases = append(cases, pcase{Name: fmt.Sprintf("%s-%s-bin%v", d.name, h, binary), Binary: binary, Behaviors: b, Servers: servers})
			}
		}
		// Weighted ketama with pylibmc's "host:port:weight" specs.
		weighted := []string{servers[0] + ":1", servers[1] + ":2", servers[2] + ":3"}
		cases = append(cases, pcase{Name: fmt.Sprintf("ketama_weighted-bin%v", binary), Binary: binary,
			Behaviors: map[string]any{"ketama_weighted": true}, Servers: weighted})
	}
	const n = 2000
	script := `
import json, sys, pylibmc
req = json.load(sys.stdin)
for cs in req["cases"]:
    c = pylibmc.Client(cs["servers"], binary=cs["binary"], behaviors=cs["behaviors"])
    keys = {"%s/%d" % (cs["name"], i): b"v" for i in range(req["n"])}
    failed = c.set_multi(keys)
    assert failed == [], failed
`
	pylibmctest.Run(t, script, map[string]any{"cases": cases, "n": n}, nil)

	direct := make([]*Client, len(servers))
	for i, s := range servers {
		direct[i] = newClientOf(t, []string{s})
	}
	for _, cs := range cases {
		t.Run(cs.Name, func(t *testing.T) {
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("%s/%d", cs.Name, i)
			}
			owner := make(map[string]string, n)
			perServer := make([]int, len(servers))
			for i, d := range direct {
				items, err := d.GetMulti(keys)
				require.NoError(t, err)
				for k := range items {
					_, dup := owner[k]
					require.False(t, dup, "key %s on two servers", k)
					owner[k] = servers[i]
					perServer[i]++
				}
			}
			require.Len(t, owner, n, "pylibmc stored every key")
			// The ports are random, so a ketama continuum may be skewed;
			// but the keys must be spread, or the test proves nothing.
			used := 0
			for _, cnt := range perServer {
				if cnt > 0 {
					used++
				}
			}
			assert.GreaterOrEqual(t, used, 2, "keys per server: %v", perServer)

			opts := []Option{WithBehaviors(cs.Behaviors)}
			if cs.Binary {
				opts = append(opts, WithBinaryProtocol())
			}
			gc := newClientOf(t, cs.Servers, opts...)
			mismatch := 0
			for _, k := range keys {
				s, err := gc.ServerFor(k)
				require.NoError(t, err)
				if s != owner[k] {
					mismatch++
				}
			}
			assert.Zero(t, mismatch, "keys the Go client maps elsewhere than pylibmc (of %d)", n)
			items, err := gc.GetMulti(keys)
			require.NoError(t, err)
			assert.Len(t, items, n, "GetMulti through the same mapping finds every key")
		})
	}
}

// parseServer reads pylibmc's server specs as translate_server_spec does:
// the same transport, host, port and weight.
func TestParseServerMatchesPylibmc(t *testing.T) {
	specs := []string{
		"127.0.0.1", "127.0.0.1:22122", "127.0.0.1:1234:2", "cache.local:11311:7",
		"[::1]", "[::1]:22122", "[::1]:22122:3",
		"udp:127.0.0.1", "udp:127.0.0.1:1234", "udp:127.0.0.1:1234:2", "udp:[::1]:7", "udp:host",
		"/var/run/memcached.sock", "/tmp/x y", // (a path with a space: see below)
	}
	// Specs both refuse.
	refused := []string{"a:b", "tcp:127.0.0.1:1234", "unix:/tmp/x.sock", "h:1:2:3", "[::1", "h:1:w", "udp:h:x"}
	// Specs pylibmc accepts but that name no usable server; Go refuses them
	// up front.
	goStricter := []string{"", ":11211", "udp:", "udp:/tmp/x.sock", "host:0", "host:70000", "host:1:0", "host:1:-1"}

	all := append(append(append([]string{}, specs...), refused...), goStricter...)
	var py []struct {
		T     int    `json:"t"`
		Host  string `json:"host"`
		Port  int    `json:"port"`
		W     int    `json:"w"`
		Error string `json:"error"`
	}
	pylibmctest.Run(t, `
import json, sys
from pylibmc.client import translate_server_spec
out = []
for s in json.load(sys.stdin):
    try:
        t, host, port, w = translate_server_spec(s)
        out.append({"t": t, "host": host, "port": port, "w": w})
    except Exception as e:
        out.append({"error": "%s: %s" % (type(e).__name__, e)})
json.dump(out, sys.stdout)
`, all, &py)
	require.Len(t, py, len(all))
	const tcp, udp, unix = 1, 2, 4
	for i, s := range all {
		sp, err := parseServer(s)
		p := py[i]
		switch {
		case i < len(specs):
			if s == "/tmp/x y" {
				// pylibmc takes it; this package refuses spaces and
				// control bytes in every address.
				assert.Empty(t, p.Error)
				assert.Error(t, err)
				continue
			}
			require.NoError(t, err, s)
			require.Empty(t, p.Error, s)
			typ := tcp
			if sp.udp {
				typ = udp
			} else if sp.socket {
				typ = unix
			}
			assert.Equal(t, p.T, typ, s)
			assert.Equal(t, p.Host, sp.host, s)
			if !sp.socket {
				assert.Equal(t, p.Port, sp.port, s)
			}
			assert.Equal(t, p.W, sp.weight, s)
		case i < len(specs)+len(refused):
			assert.NotEmpty(t, p.Error, "pylibmc accepted %q", s)
			assert.Error(t, err, s)
		default:
			assert.Empty(t, p.Error, "pylibmc refused %q", s)
			var e *Error
			require.True(t, errors.As(err, &e), "Go accepted %q", s)
			assert.Equal(t, ReturnInvalidHostProtocol, e.Code)
		}
	}
}

// "udp:" servers work as in pylibmc: storage over UDP, no gets; and they
// cannot be mixed with TCP servers.
func TestUDPServers(t *testing.T) {
	udpPort, err := freePort()
	require.NoError(t, err)
	s := newServer(t, "-U", strconv.Itoa(udpPort))
	c := newClientOf(t, []string{"udp:127.0.0.1:" + strconv.Itoa(udpPort)})
	assert.Equal(t, uint64(1), c.Behaviors()["_noreply"], "UDP implies noreply, as pylibmc shows")
	require.NoError(t, c.Set(&Item{Key: "udp/k", Value: []byte("over udp")}))
	_, err = c.Get("udp/k")
	assert.ErrorIs(t, err, ErrNotSupported)

	tcpc := newClientOf(t, []string{s.Addr})
	require.Eventually(t, func() bool {
		it, err := tcpc.Get("udp/k")
		return err == nil && string(it.Value) == "over udp"
	}, 2*time.Second, 10*time.Millisecond)

	_, err = New([]string{"udp:127.0.0.1:" + strconv.Itoa(udpPort), s.Addr})
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, ReturnInvalidHostProtocol, e.Code)
	assert.Contains(t, e.Message, "cannot mix UDP")
}
