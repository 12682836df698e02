package libmemcached

/*
#include <libmemcached-1.0/memcached.h>
#include "cgo_helpers.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// behaviorKind says how a pylibmc behavior's value is spelled.
type behaviorKind int

const (
	kindInt          behaviorKind = iota // a number (bools count as 0 and 1)
	kindHash                             // a Hash, or its name in Hashers
	kindDistribution                     // a Distribution, or its name in Distributions
)

type namedBehavior struct {
	name string
	b    Behavior
	kind behaviorKind
}

// pylibmcBehaviors lists pylibmc 1.6's behavior names, in pylibmc's order:
// the order Behaviors reports them and SetBehaviors applies them (it
// matters: "ketama" and "ketama_weighted" also set the distribution and
// the hash).
var pylibmcBehaviors = []namedBehavior{
	{"no_block", BehaviorNoBlock, kindInt},
	{"tcp_nodelay", BehaviorTCPNoDelay, kindInt},
	{"tcp_keepalive", BehaviorTCPKeepalive, kindInt},
	{"hash", BehaviorHash, kindHash},
	{"ketama_hash", BehaviorKetamaHash, kindHash},
	{"ketama", BehaviorKetama, kindInt},
	{"ketama_weighted", BehaviorKetamaWeighted, kindInt},
	{"distribution", BehaviorDistribution, kindDistribution},
	{"cas", BehaviorSupportCAS, kindInt},
	{"buffer_requests", BehaviorBufferRequests, kindInt},
	{"verify_keys", BehaviorVerifyKey, kindInt},
	{"connect_timeout", BehaviorConnectTimeout, kindInt},
	{"send_timeout", BehaviorSndTimeout, kindInt},
	{"receive_timeout", BehaviorRcvTimeout, kindInt},
	{"num_replicas", BehaviorNumberOfReplicas, kindInt},
	{"auto_eject", BehaviorAutoEjectHosts, kindInt},
	{"retry_timeout", BehaviorRetryTimeout, kindInt},
	{"remove_failed", BehaviorRemoveFailedServers, kindInt},
	{"failure_limit", BehaviorServerFailureLimit, kindInt},
	{"_io_msg_watermark", BehaviorIOMsgWatermark, kindInt},
	{"_io_bytes_watermark", BehaviorIOBytesWatermark, kindInt},
	{"_io_key_prefetch", BehaviorIOKeyPrefetch, kindInt},
	{"_hash_with_prefix_key", BehaviorHashWithPrefixKey, kindInt},
	{"_noreply", BehaviorNoReply, kindInt},
	{"_sort_hosts", BehaviorSortHosts, kindInt},
	{"_poll_timeout", BehaviorPollTimeout, kindInt},
	{"_socket_send_size", BehaviorSocketSendSize, kindInt},
	{"_socket_recv_size", BehaviorSocketRecvSize, kindInt},
	{"dead_timeout", BehaviorDeadTimeout, kindInt},
}

// behaviorAliases are names SetBehaviors accepts but Behaviors does not
// report, as in pylibmc.
var behaviorAliases = map[string]string{"_retry_timeout": "retry_timeout"}

// BehaviorNames returns the pylibmc behavior names SetBehaviors accepts and
// Behaviors reports, in pylibmc's order.
func BehaviorNames() []string {
	out := make([]string, len(pylibmcBehaviors))
	for i, nb := range pylibmcBehaviors {
		out[i] = nb.name
	}
	return out
}

func behaviorError(name string, msg string) *Error {
	return &Error{Code: ReturnInvalidArguments, Original: ReturnInvalidArguments, Op: "set_behaviors", Key: name, Message: msg}
}

// SetBehavior sets one behavior on the client's handle. Units follow
// libmemcached (see the Behavior constants). A value libmemcached rejects
// returns its error. On a client acquired from a Pool it returns an error:
// set behaviors on the Pool, which applies them to every handle.
func (c *Client) SetBehavior(b Behavior, value uint64) error {
	return do0(c.local(), context.Background(), call{}, func(h *handle) error {
		if h.pool != nil {
			return inputError("set_behavior", "", ReturnInvalidArguments, "client belongs to a Pool: use Pool.SetBehavior")
		}
		return h.setBehavior(b, value)
	})
}

// setBehavior sets b on the handle.
func (h *handle) setBehavior(b Behavior, value uint64) error {
	if err := checkBehaviorValue("set_behavior", b, value); err != nil {
		return err
	}
	rc := C.memcached_behavior_set(h.memc, libBehavior(b), C.uint64_t(value))
	if rc != C.MEMCACHED_SUCCESS {
		e := handleError(h.memc, "set_behavior", "", rc)
		if e.Message == "" {
			e.Message = fmt.Sprintf("behavior %d = %d", b, value)
		}
		return e
	}
	if b == BehaviorBinaryProtocol {
		h.binary = value != 0
		h.setAuthGuard()
	}
	return nil
}

// behaviorMaxima are the largest values libmemcached stores without
// wrapping: it keeps these behaviors in 32-bit fields, and a larger value
// would silently become another one (2^32+5 ms of connect timeout becomes
// 5 ms). Unlisted behaviors are flags; any value is true or false.
var behaviorMaxima = map[Behavior]uint64{
	BehaviorConnectTimeout:      math.MaxInt32,
	BehaviorPollTimeout:         math.MaxInt32,
	BehaviorSndTimeout:          math.MaxInt32,
	BehaviorRcvTimeout:          math.MaxInt32,
	BehaviorRetryTimeout:        math.MaxInt32,
	BehaviorDeadTimeout:         math.MaxInt32,
	BehaviorSocketSendSize:      math.MaxInt32,
	BehaviorSocketRecvSize:      math.MaxInt32,
	BehaviorHash:                math.MaxInt32,
	BehaviorKetamaHash:          math.MaxInt32,
	BehaviorDistribution:        math.MaxInt32,
	BehaviorNumberOfReplicas:    math.MaxUint32,
	BehaviorIOMsgWatermark:      math.MaxUint32,
	BehaviorIOBytesWatermark:    math.MaxUint32,
	BehaviorIOKeyPrefetch:       math.MaxUint32,
	BehaviorServerFailureLimit:  math.MaxUint32,
	BehaviorServerTimeoutLimit:  math.MaxUint32,
	BehaviorRemoveFailedServers: math.MaxUint32,
	BehaviorTCPKeepidle:         math.MaxUint32,
}

// checkBehaviorValue refuses unknown behaviors and values libmemcached
// would wrap.
func checkBehaviorValue(op string, b Behavior, value uint64) error {
	if b < 0 || b >= behaviorMax {
		return inputError(op, "", ReturnInvalidArguments, fmt.Sprintf("unknown behavior %d", b))
	}
	if max, ok := behaviorMaxima[b]; ok && value > max {
		return inputError(op, "", ReturnInvalidArguments, fmt.Sprintf("behavior %d: %d is larger than libmemcached keeps (at most %d)", b, value, max))
	}
	if b == BehaviorHash || b == BehaviorKetamaHash {
		return checkHash(op, b, Hash(value))
	}
	return nil
}

// behaviorName returns b's pylibmc name, or its number.
func behaviorName(b Behavior) string {
	for _, nb := range pylibmcBehaviors {
		if nb.b == b {
			return nb.name
		}
	}
	return fmt.Sprint(int(b))
}

// Behavior returns the current value of a behavior.
func (c *Client) Behavior(b Behavior) (uint64, error) {
	return do(c.local(), context.Background(), call{}, func(h *handle) (uint64, error) { return behaviorGet(h.memc, b) })
}

func behaviorGet(memc *C.memcached_st, b Behavior) (uint64, error) {
	if b < 0 || b >= behaviorMax {
		return 0, inputError("behavior", "", ReturnInvalidArguments, fmt.Sprintf("unknown behavior %d", b))
	}
	return uint64(C.lmc_behavior_get(memc, libBehavior(b))), nil
}

// SetBehaviors sets behaviors by pylibmc's names (see BehaviorNames), in
// pylibmc's order whatever the map's. Values may be bool, any integer type,
// and for "hash", "ketama_hash" and "distribution" also a Hash or
// Distribution or its pylibmc name ("md5", "consistent ketama", ...). An
// unknown name or a bad value returns an error listing what is valid,
// before anything is set; a value that libmemcached rejects returns
// libmemcached's error. On a client acquired from a Pool it returns an
// error: set behaviors on the Pool.
func (c *Client) SetBehaviors(m map[string]any) error {
	return do0(c.local(), context.Background(), call{}, func(h *handle) error {
		if h.pool != nil {
			return inputError("set_behaviors", "", ReturnInvalidArguments, "client belongs to a Pool: use Pool.SetBehaviors")
		}
		return h.setBehaviors(m)
	})
}

func (h *handle) setBehaviors(m map[string]any) error {
	settings, err := resolveBehaviors(m)
	if err != nil {
		return err
	}
	for _, s := range settings {
		if err := h.setBehavior(s.b, s.value); err != nil {
			if e, ok := err.(*Error); ok {
				e.Op, e.Key = "set_behaviors", s.name
			}
			return err
		}
	}
	return nil
}

type behaviorSetting struct {
	name  string
	b     Behavior
	value uint64
}

// resolveBehaviors checks every name and value of m and returns the
// settings in pylibmc's order.
func resolveBehaviors(m map[string]any) ([]behaviorSetting, error) {
	byName := make(map[string]any, len(m))
	for name, v := range m {
		if canon, ok := behaviorAliases[name]; ok {
			if _, both := m[canon]; both {
				continue // the canonical name wins, as in pylibmc
			}
			name = canon
		}
		byName[name] = v
	}
	for name := range byName {
		if !knownBehavior(name) {
			return nil, behaviorError(name, fmt.Sprintf("unknown behavior %q; valid names: %s", name, strings.Join(append(BehaviorNames(), "_retry_timeout"), ", ")))
		}
	}
	var out []behaviorSetting
	for _, nb := range pylibmcBehaviors {
		v, ok := byName[nb.name]
		if !ok {
			continue
		}
		value, err := behaviorValue(nb, v)
		if err != nil {
			return nil, err
		}
		if err := checkBehaviorValue("set_behaviors", nb.b, value); err != nil {
			err.(*Error).Key = nb.name
			return nil, err
		}
		out = append(out, behaviorSetting{nb.name, nb.b, value})
	}
	return out, nil
}

func knownBehavior(name string) bool {
	for _, nb := range pylibmcBehaviors {
		if nb.name == name {
			return true
		}
	}
	return false
}

// behaviorValue converts a pylibmc-style value to libmemcached's uint64.
func behaviorValue(nb namedBehavior, v any) (uint64, error) {
	if s, ok := v.(string); ok {
		switch nb.kind {
		case kindHash:
			if h, ok := Hashers[s]; ok {
				return uint64(h), nil
			}
			return 0, behaviorError(nb.name, fmt.Sprintf("unknown hash %q; valid: %s", s, strings.Join(sortedKeys(Hashers), ", ")))
		case kindDistribution:
			if d, ok := Distributions[strings.ReplaceAll(s, "_", " ")]; ok {
				return uint64(d), nil
			}
			return 0, behaviorError(nb.name, fmt.Sprintf("unknown distribution %q; valid: %s", s, strings.Join(sortedKeys(Distributions), ", ")))
		}
		return 0, behaviorError(nb.name, fmt.Sprintf("behavior %q takes a bool or an integer, not the string %q", nb.name, s))
	}
	switch x := v.(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case Hash:
		if nb.kind != kindHash {
			break
		}
		return intValue(nb.name, int64(x))
	case Distribution:
		if nb.kind != kindDistribution {
			break
		}
		return intValue(nb.name, int64(x))
	}
	rv := reflect.ValueOf(v)
	if v != nil {
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if _, named := v.(Behavior); !named {
				return intValue(nb.name, rv.Int())
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return rv.Uint(), nil
		}
	}
	want := "a bool or an integer"
	switch nb.kind {
	case kindHash:
		want = "a Hash, an integer or a hash name (" + strings.Join(sortedKeys(Hashers), ", ") + ")"
	case kindDistribution:
		want = "a Distribution, an integer or a distribution name (" + strings.Join(sortedKeys(Distributions), ", ") + ")"
	}
	return 0, behaviorError(nb.name, fmt.Sprintf("behavior %q takes %s, not %T", nb.name, want, v))
}

func intValue(name string, i int64) (uint64, error) {
	if i < 0 {
		return 0, behaviorError(name, fmt.Sprintf("behavior %q cannot be negative (%d)", name, i))
	}
	return uint64(i), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Behaviors returns the pylibmc behaviors and their current values, as
// pylibmc's Client.behaviors shows them: "hash" and "distribution" by name
// (a string), every other value as a uint64 (flags as 0 or 1).
func (c *Client) Behaviors() map[string]any {
	out, _ := do(c.local(), context.Background(), call{}, func(h *handle) (map[string]any, error) { return behaviorsOf(h.memc), nil })
	return out
}

func behaviorsOf(memc *C.memcached_st) map[string]any {
	out := make(map[string]any, len(pylibmcBehaviors))
	for _, nb := range pylibmcBehaviors {
		v := uint64(C.lmc_behavior_get(memc, libBehavior(nb.b)))
		switch nb.b {
		case BehaviorHash:
			out[nb.name] = nameOf(Hashers, Hash(v), v)
		case BehaviorDistribution:
			out[nb.name] = nameOf(Distributions, Distribution(v), v)
		default:
			out[nb.name] = v
		}
	}
	return out
}

// nameOf finds the name of a value in Hashers or Distributions; an unnamed
// value is reported as its number.
func nameOf[T comparable](m map[string]T, want T, raw uint64) any {
	for name, v := range m {
		if v == want {
			return name
		}
	}
	return raw
}
