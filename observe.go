package libmemcached

import (
	"context"
	"time"
)

// Event describes one operation of a Client or Pool, for an observer
// (WithObserver): metrics, traces, logs.
type Event struct {
	// Op is the method's name without "Context": "Get", "GetMulti",
	// "Set", "CompareAndSwap", "Increment", "Ping", ...
	Op string
	// Keys is the number of keys the operation carried (1 for a
	// single-key operation, 0 for Ping, Stats, Version, FlushAll).
	Keys int
	// Hits is the number of items a Get or GetMulti found.
	Hits int
	// Server is the server of a single-key operation, "host:port" (or the
	// socket path) as Servers spells it; empty for the others.
	Server string
	// Duration is the whole call, waits included.
	Duration time.Duration
	// Wait is the part of Duration spent waiting for a Pool handle, a
	// coalesced batch or a Client busy with another goroutine's call.
	Wait time.Duration
	// Batch is the number of callers that shared a coalesced round trip
	// (Pool.Get and Pool.GetMulti); 1 otherwise.
	Batch int
	// Err is the operation's error, nil on success (a Get that missed has
	// ErrCacheMiss).
	Err error
	// Context is the context the operation was called with
	// (context.Background() for the plain forms), so that an observer can
	// tie the Event to the caller's trace. It may be done by now.
	Context context.Context
}

// WithObserver calls fn once per operation of the Client or Pool (and of
// the clients acquired from the Pool, and of Clones), synchronously on the
// caller's goroutine after the operation ends and its handle is given
// back, so fn should be quick and must not call the Client or Pool itself.
// Operations that send nothing (Servers, ServerFor, Behaviors) report
// nothing. Without an observer nothing is measured: no clock is read.
func WithObserver(fn func(Event)) Option {
	return func(o *options) { o.observer = fn }
}

// storeOpEvents are the storage operations' Event.Op names.
var storeOpEvents = [...]string{"Set", "Add", "Replace", "Append", "Prepend", "CompareAndSwap"}

// event builds the Event of a call that ran on h (before h goes back).
func (cl call) event(h *handle, start time.Time, wait time.Duration, err error) Event {
	ev := Event{Op: cl.op, Keys: cl.keys, Duration: time.Since(start), Wait: wait, Batch: 1, Err: err}
	if cl.key != "" && h != nil && h.checkKey(cl.op, cl.key) == nil {
		ev.Server, _ = h.serverFor(cl.key)
	}
	return ev
}

// observe reports a call that got no handle (the context ended, the Pool
// or Client is closed).
func (c *commands) observe(ctx context.Context, cl call, h *handle, start time.Time, wait time.Duration, err error) {
	if c.obs == nil || cl.op == "" {
		return
	}
	if start.IsZero() {
		start = time.Now()
	}
	ev := cl.event(h, start, wait, err)
	ev.Context = ctx
	c.obs(ev)
}

// hits counts the items in a get's result.
func hits(v any) int {
	switch x := v.(type) {
	case *Item:
		if x != nil {
			return 1
		}
	case map[string]*Item:
		return len(x)
	}
	return 0
}

// limitTimeouts bounds libmemcached's poll and connect timeouts for one
// call by the time left until dl (in ms, rounded up); restoreTimeouts puts
// the handle's own back and, when the call failed because the deadline
// came, makes its error satisfy errors.Is(err, ctx.Err()).
func (h *handle) limitTimeouts(dl time.Time) {
	left := time.Until(dl)
	ms := (left + time.Millisecond - 1) / time.Millisecond
	if ms > 1<<30 {
		return // further off than any timeout libmemcached keeps
	}
	limitTimeouts(h, int32(ms))
}

func (h *handle) restoreTimeouts(ctx context.Context, err error) error {
	restoreTimeouts(h)
	if err == nil {
		return nil
	}
	cause := ctx.Err()
	if e, ok := err.(*Error); ok {
		if cause == nil && e.Timeout() {
			if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl.Add(-time.Millisecond)) {
				cause = context.DeadlineExceeded
			}
		}
		if cause != nil && e.cause == nil {
			e.cause = cause
		}
	}
	return err
}

// snakeCase turns an Event's Op into an Error's ("GetByKey": "get_by_key").
func snakeCase(op string) string {
	var b []byte
	for i := 0; i < len(op); i++ {
		ch := op[i]
		if 'A' <= ch && ch <= 'Z' {
			if i > 0 {
				b = append(b, '_')
			}
			ch += 'a' - 'A'
		}
		b = append(b, ch)
	}
	return string(b)
}
