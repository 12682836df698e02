// Package otelmemcached records the operations of a libmemcached Client or
// Pool as OpenTelemetry metrics and spans, following the semantic
// conventions for database clients (semconv v1.43.0, the newest that
// go.opentelemetry.io/otel v1.47.0 ships):
//
//	obs, err := otelmemcached.New() // the global MeterProvider and TracerProvider
//	...
//	mc, err := libmemcached.NewPool(servers, 16, libmemcached.WithObserver(obs.Observe))
//
// It is a module of its own, so that the library's go.mod does not depend
// on OpenTelemetry.
//
// # Metrics
//
//   - db.client.operation.duration (s): every operation, with semconv's
//     bucket boundaries (0.001 s to 10 s; most memcached calls fall in the
//     first, so give it finer ones with a View where that matters).
//   - db.client.response.returned_rows ({row}): the items a Get or
//     GetMulti found.
//   - db.client.connection.wait_time (s): every operation's wait for a
//     Pool handle, a coalesced batch or a Client busy with another
//     goroutine's call ([libmemcached.Event.Wait]), with
//     db.client.connection.pool.name from [WithPoolName].
//   - memcached.client.lookups ({key}): the keys a Get or GetMulti asked
//     for, by memcached.lookup.result, "hit" or "miss" (so the hit ratio is
//     one query); a failed call counts its hits only.
//   - memcached.client.batch.size ({caller}): the callers that shared the
//     round trip of a Get or GetMulti (a Pool coalesces concurrent Gets; 1
//     when alone).
//
// The operation metrics carry db.system.name ("memcached"),
// db.operation.name (the method's name as the library reports it: "Get",
// "GetMulti", "Set", "CompareAndSwap", ...), server.address and
// server.port for a single-key operation (a Unix socket's path is its
// server.address, with no port; multi-key and all-server operations have
// neither), and db.response.status_code and error.type as below. All of
// them have few values: no key ever becomes an attribute.
//
// # Spans
//
// One span per operation, of kind Client, named "{db.operation.name}
// {server}" ("Get 10.0.0.1:11211") for a single-key operation and
// "{db.operation.name}" for the others, from the operation's start to its
// end, with the attributes above and db.response.returned_rows (Get,
// GetMulti), db.operation.batch.size (the keys of a GetMulti, SetMulti or
// DeleteMulti of two or more), memcached.client.batch.size (when callers
// shared a round trip) and memcached.client.wait_time (the part of the
// span spent waiting, in seconds). A failed operation's span has status
// Error with the error's text, which names the key. A span is the child of
// the span in the Event's context: the caller's, for the Context forms
// (GetContext, ...); the plain forms' spans are roots.
//
// # Outcomes and errors
//
// db.response.status_code is libmemcached's return code by its C name
// ([libmemcached.ReturnCode.String]: "MEMCACHED_NOTFOUND",
// "MEMCACHED_TIMEOUT", ...) when the operation did not succeed. A miss (a
// Get, Delete, Touch, Increment, Decrement or CompareAndSwap of an absent
// key; a DeleteMulti whose only failures are absent keys) is an answer, not
// a failure: it has its status code but no error.type, and its span's status
// is left unset; the lookups counter and returned_rows say how often Gets
// miss. Every other outcome, a refused Add or Replace and a CAS conflict
// included, is a failure, and its error.type is:
//
//   - the return code's C name, as in db.response.status_code, for an
//     [*libmemcached.Error] (connection failures, timeouts, and a context
//     deadline that cut a call short inside libmemcached, which is
//     "MEMCACHED_TIMEOUT");
//   - "context.DeadlineExceeded" or "context.Canceled" for a context that
//     ended before the call reached a server or while it waited;
//   - "libmemcached.ErrClosed" for a call on a closed Client or Pool;
//   - otherwise semconv's ErrorType: the error's ErrorType method, or its
//     Go type.
package otelmemcached

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/libmemcached-go/libmemcached/otelmemcached"

// The names of the metrics and attributes that are memcached's own
// (semconv has none for them).
const (
	// LookupsName is the counter of the keys Gets asked for.
	LookupsName = "memcached.client.lookups"
	// BatchSizeName is the histogram of the callers sharing a round trip,
	// and the span attribute of the same meaning.
	BatchSizeName = "memcached.client.batch.size"
	// LookupResultKey is the lookups counter's attribute: "hit" or "miss".
	LookupResultKey = attribute.Key("memcached.lookup.result")
	// WaitTimeKey is the span attribute of the time a call waited, in
	// seconds.
	WaitTimeKey = attribute.Key("memcached.client.wait_time")
)

// DefaultPoolName is db.client.connection.pool.name without WithPoolName.
const DefaultPoolName = "memcached"

// Bucket boundaries: semconv's for db.client.operation.duration (also used
// for the wait time, which semconv gives none) and for
// db.client.response.returned_rows (also used for the batch size).
var (
	durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}
	countBuckets    = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}
)

// Observer turns libmemcached Events into metrics and spans. It is safe for
// concurrent use; one Observer may serve several Clients and Pools.
type Observer struct {
	tracer   trace.Tracer
	duration dbconv.ClientOperationDuration
	rows     dbconv.ClientResponseReturnedRows
	wait     dbconv.ClientConnectionWaitTime
	lookups  metric.Int64Counter
	batch    metric.Int64Histogram
	waitSet  attribute.Set // db.client.connection.pool.name

	cache  sync.Map // seriesKey -> *series
	cached atomic.Int64
}

// Option configures New.
type Option func(*config)

type config struct {
	mp   metric.MeterProvider
	tp   trace.TracerProvider
	pool string
}

// WithMeterProvider records the metrics through mp instead of the global
// MeterProvider (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithTracerProvider records the spans through tp instead of the global
// TracerProvider (otel.GetTracerProvider). A noop TracerProvider turns
// spans off.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithPoolName sets db.client.connection.pool.name on the wait-time
// histogram (default DefaultPoolName). Give each Pool an Observer with a
// name of its own when a program has several.
func WithPoolName(name string) Option {
	return func(c *config) { c.pool = name }
}

// New makes an Observer and its instruments. Pass its Observe method to
// libmemcached.WithObserver.
func New(opts ...Option) (*Observer, error) {
	c := config{pool: DefaultPoolName}
	for _, opt := range opts {
		opt(&c)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	meter := c.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	o := &Observer{
		tracer:  c.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		waitSet: attribute.NewSet(semconv.DBClientConnectionPoolName(c.pool)),
	}
	var err error
	if o.duration, err = dbconv.NewClientOperationDuration(meter, metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	if o.rows, err = dbconv.NewClientResponseReturnedRows(meter, metric.WithExplicitBucketBoundaries(countBuckets...)); err != nil {
		return nil, err
	}
	if o.wait, err = dbconv.NewClientConnectionWaitTime(meter, metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	if o.lookups, err = meter.Int64Counter(LookupsName, metric.WithUnit("{key}"),
		metric.WithDescription("The keys that Get and GetMulti asked for, by result (hit or miss).")); err != nil {
		return nil, err
	}
	if o.batch, err = meter.Int64Histogram(BatchSizeName, metric.WithUnit("{caller}"),
		metric.WithDescription("The callers that shared the round trip of a Get or GetMulti."),
		metric.WithExplicitBucketBoundaries(countBuckets...)); err != nil {
		return nil, err
	}
	return o, nil
}

// Observe records one Event: give it to libmemcached.WithObserver. It
// takes the end of the operation to be now. The span is a child of the span
// in the Event's context (the one the operation was called with, for the
// Context forms), and the metrics are recorded in that context too.
func (o *Observer) Observe(ev libmemcached.Event) {
	end := time.Now()
	ctx := context.Background()
	if ev.Context != nil {
		ctx = context.WithoutCancel(ev.Context) // it may be done by now
	}
	se := o.series(ev)
	o.duration.RecordSet(ctx, ev.Duration.Seconds(), se.set)
	o.wait.RecordSet(ctx, ev.Wait.Seconds(), o.waitSet)
	get := ev.Op == "Get" || ev.Op == "GetMulti"
	if get {
		o.rows.RecordSet(ctx, int64(ev.Hits), se.set)
		o.batch.Record(ctx, int64(ev.Batch), se.opAttrs...)
		if ev.Hits > 0 {
			o.lookups.Add(ctx, int64(ev.Hits), se.hit...)
		}
		// A failed call's keys that were not found may not have been
		// asked: only its hits count.
		if misses := ev.Keys - ev.Hits; misses > 0 && !se.failed {
			o.lookups.Add(ctx, int64(misses), se.miss...)
		}
	}

	// The span's attributes are the metrics' and what is particular to
	// this call.
	attrs := make([]attribute.KeyValue, len(se.attrs), len(se.attrs)+4)
	copy(attrs, se.attrs)
	if get {
		attrs = append(attrs, semconv.DBResponseReturnedRows(ev.Hits))
	}
	if ev.Keys >= 2 && strings.HasSuffix(ev.Op, "Multi") {
		attrs = append(attrs, semconv.DBOperationBatchSize(ev.Keys))
	}
	if ev.Batch > 1 {
		attrs = append(attrs, attribute.Int(BatchSizeName, ev.Batch))
	}
	attrs = append(attrs, WaitTimeKey.Float64(ev.Wait.Seconds()))
	_, span := o.tracer.Start(ctx, se.spanName, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(end.Add(-ev.Duration)), trace.WithAttributes(attrs...))
	if se.failed {
		span.SetStatus(codes.Error, ev.Err.Error())
	}
	span.End(trace.WithTimestamp(end))
}

// seriesKey identifies the attributes an Event's metrics get.
type seriesKey struct{ op, server, status, errType string }

// series are the attributes of the Events of one seriesKey, made once:
// their values are few by design, so the Observer keeps them (up to
// maxSeries) rather than build sets for every Event.
type series struct {
	attrs     []attribute.KeyValue  // of the operation metrics, and the span's first
	set       attribute.Set         // attrs as a set
	opAttrs   []metric.RecordOption // db.system.name and db.operation.name
	hit, miss []metric.AddOption    // those and memcached.lookup.result
	spanName  string
	failed    bool
}

// maxSeries bounds the Observer's cache of series.
const maxSeries = 4096

func (o *Observer) series(ev libmemcached.Event) *series {
	status, errType := outcome(ev.Err)
	k := seriesKey{ev.Op, ev.Server, status, errType}
	if se, ok := o.cache.Load(k); ok {
		return se.(*series)
	}
	host, port := splitServer(ev.Server)
	se := &series{spanName: ev.Op, failed: errType != ""}
	if ev.Server != "" {
		se.spanName += " " + ev.Server
	}
	op := []attribute.KeyValue{semconv.DBSystemNameMemcached, semconv.DBOperationName(ev.Op)}
	se.opAttrs = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(op...))}
	se.hit = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(op, LookupResultKey.String("hit"))...))}
	se.miss = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(op, LookupResultKey.String("miss"))...))}
	se.attrs = op
	if host != "" {
		se.attrs = append(se.attrs, semconv.ServerAddress(host))
	}
	if port > 0 {
		se.attrs = append(se.attrs, semconv.ServerPort(port))
	}
	if status != "" {
		se.attrs = append(se.attrs, semconv.DBResponseStatusCode(status))
	}
	if errType != "" {
		se.attrs = append(se.attrs, semconv.ErrorTypeKey.String(errType))
	}
	se.set = attribute.NewSet(se.attrs...)
	if o.cached.Add(1) <= maxSeries {
		if prev, loaded := o.cache.LoadOrStore(k, se); loaded {
			return prev.(*series)
		}
	}
	return se
}
