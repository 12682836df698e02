package otelmemcached_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/otelmemcached"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// telemetry is an Observer recording into the SDK's in-memory readers.
type telemetry struct {
	obs    *otelmemcached.Observer
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
}

func newTelemetry(t *testing.T, opts ...otelmemcached.Option) *telemetry {
	t.Helper()
	tm := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tm.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tm.spans))
	t.Cleanup(func() {
		mp.Shutdown(context.Background())
		tp.Shutdown(context.Background())
	})
	obs, err := otelmemcached.New(append([]otelmemcached.Option{
		otelmemcached.WithMeterProvider(mp), otelmemcached.WithTracerProvider(tp)}, opts...)...)
	require.NoError(t, err)
	tm.obs = obs
	return tm
}

// metrics collects what was recorded so far, by metric name.
func (tm *telemetry) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tm.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, otelmemcached.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// histogram returns the points of the histogram name, by db.operation.name
// (the whole attribute set where there are several for one operation
// would hide one: then use where).
func histogram[N int64 | float64](t *testing.T, ms map[string]metricdata.Metrics, name string) []metricdata.HistogramDataPoint[N] {
	t.Helper()
	m, ok := ms[name]
	require.True(t, ok, "no metric %s among %v", name, keys(ms))
	h, ok := m.Data.(metricdata.Histogram[N])
	require.True(t, ok, "%s is a %T", name, m.Data)
	return h.DataPoints
}

// where returns the points whose attributes include all of want.
func where[N int64 | float64](points []metricdata.HistogramDataPoint[N], want ...attribute.KeyValue) []metricdata.HistogramDataPoint[N] {
	var out []metricdata.HistogramDataPoint[N]
	for _, p := range points {
		if hasAll(p.Attributes, want) {
			out = append(out, p)
		}
	}
	return out
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// attrs flattens a set for comparing with assert.Equal.
func attrs(kvs ...attribute.KeyValue) map[string]any {
	out := map[string]any{}
	for _, kv := range kvs {
		out[string(kv.Key)] = kv.Value.AsInterface()
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func op(name string) attribute.KeyValue { return attribute.String("db.operation.name", name) }

// The operations of a Client against a live memcached: a histogram point
// per operation with semconv's attributes and buckets, hits and misses
// counted, and a span per operation; a miss is no error.
// A span is the child of the span in the context the operation was
// called with.
func TestSpanParent(t *testing.T) {
	tm := newTelemetry(t)
	mc, err := libmemcached.New([]string{shared.addr}, libmemcached.WithObserver(tm.obs.Observe))
	require.NoError(t, err)
	defer mc.Close()
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, parent := tp.Tracer("caller").Start(context.Background(), "handle request")
	k := "otel-parent-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.NoError(t, mc.SetContext(ctx, &libmemcached.Item{Key: k, Value: []byte("v")}))
	require.NoError(t, mc.Set(&libmemcached.Item{Key: k, Value: []byte("v")}))
	parent.End()
	spans := tm.spans.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, parent.SpanContext().TraceID(), spans[0].SpanContext().TraceID(), "the Context form's span is in the caller's trace")
	assert.Equal(t, parent.SpanContext().SpanID(), spans[0].Parent().SpanID(), "under the caller's span")
	assert.False(t, spans[1].Parent().IsValid(), "the plain form's span is a root")
}

func TestClientOperations(t *testing.T) {
	tm := newTelemetry(t)
	mc, err := libmemcached.New([]string{shared.addr}, libmemcached.WithObserver(tm.obs.Observe))
	require.NoError(t, err)
	defer mc.Close()

	k := "otel-client-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.NoError(t, mc.Set(&libmemcached.Item{Key: k, Value: []byte("v")}))
	_, err = mc.Get(k)
	require.NoError(t, err)
	_, err = mc.Get(k + "-absent")
	require.ErrorIs(t, err, libmemcached.ErrCacheMiss)
	got, err := mc.GetMulti([]string{k, k + "-absent", k + "-absent2"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	err = mc.DeleteMulti([]string{k, k + "-absent"})
	require.ErrorIs(t, err, libmemcached.ErrCacheMiss, "absent keys")
	require.NoError(t, mc.Ping())

	ms := tm.metrics(t)
	dur := histogram[float64](t, ms, "db.client.operation.duration")
	assert.Equal(t, "s", ms["db.client.operation.duration"].Unit)
	counts := map[string]uint64{}
	for _, p := range dur {
		name, _ := p.Attributes.Value("db.operation.name")
		counts[name.AsString()] += p.Count
		assert.Equal(t, []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}, p.Bounds, "semconv's buckets")
		assert.Greater(t, p.Sum, 0.0)
		_, failed := p.Attributes.Value("error.type")
		assert.False(t, failed, "nothing failed: %v", p.Attributes.ToSlice())
	}
	assert.Equal(t, map[string]uint64{"Set": 1, "Get": 2, "GetMulti": 1, "DeleteMulti": 1, "Ping": 1}, counts)

	server := []attribute.KeyValue{attribute.String("db.system.name", "memcached"),
		attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", shared.port)}
	gets := where(dur, op("Get"))
	require.Len(t, gets, 2, "a hit and a miss: two series")
	for _, p := range gets {
		want := append(append([]attribute.KeyValue{}, server...), op("Get"))
		if _, missed := p.Attributes.Value("db.response.status_code"); missed {
			want = append(want, attribute.String("db.response.status_code", "MEMCACHED_NOTFOUND"))
		}
		assert.Equal(t, attrs(want...), attrs(p.Attributes.ToSlice()...), "a miss has its status code and no error.type")
	}
	multi := where(dur, op("GetMulti"))
	require.Len(t, multi, 1)
	assert.Equal(t, attrs(attribute.String("db.system.name", "memcached"), op("GetMulti")), attrs(multi[0].Attributes.ToSlice()...),
		"a multi-key operation has no one server")
	partial := where(dur, op("DeleteMulti"), attribute.String("db.response.status_code", "MEMCACHED_SOME_ERRORS"))
	require.Len(t, partial, 1, "a DeleteMulti that missed keeps its status code, with no error.type")

	rows := histogram[int64](t, ms, "db.client.response.returned_rows")
	require.Len(t, where(rows, op("Get")), 2)
	var getRows, multiRows int64
	for _, p := range where(rows, op("Get")) {
		getRows += p.Sum
	}
	for _, p := range where(rows, op("GetMulti")) {
		multiRows += p.Sum
	}
	assert.Equal(t, int64(1), getRows)
	assert.Equal(t, int64(1), multiRows)

	lookups := map[string]int64{}
	for _, p := range ms[otelmemcached.LookupsName].Data.(metricdata.Sum[int64]).DataPoints {
		name, _ := p.Attributes.Value("db.operation.name")
		result, _ := p.Attributes.Value(otelmemcached.LookupResultKey)
		lookups[name.AsString()+" "+result.AsString()] += p.Value
	}
	assert.Equal(t, map[string]int64{"Get hit": 1, "Get miss": 1, "GetMulti hit": 1, "GetMulti miss": 2}, lookups)

	batch := histogram[int64](t, ms, otelmemcached.BatchSizeName)
	for _, p := range batch {
		max, _ := p.Max.Value()
		assert.Equal(t, int64(1), max, "a Client's calls are alone")
	}

	spans := tm.spans.Ended()
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
		assert.Equal(t, trace.SpanKindClient, s.SpanKind())
		assert.Equal(t, codes.Unset, s.Status().Code, "%s: no failures", s.Name())
		assert.False(t, s.Parent().IsValid(), "a plain form's span is a root")
		assert.True(t, s.EndTime().After(s.StartTime()), s.Name())
		assert.Equal(t, otelmemcached.ScopeName, s.InstrumentationScope().Name)
	}
	assert.Equal(t, []string{"Set " + shared.addr, "Get " + shared.addr, "Get " + shared.addr, "GetMulti",
		"DeleteMulti", "Ping"}, names)
	hitSpan, multiSpan := attrs(spans[1].Attributes()...), attrs(spans[3].Attributes()...)
	for _, a := range []map[string]any{hitSpan, multiSpan} {
		wait, _ := a[string(otelmemcached.WaitTimeKey)].(float64)
		assert.True(t, wait > 0 && wait < 0.1, "the span's wait, %v s: taking the Client's lock", wait)
		delete(a, string(otelmemcached.WaitTimeKey))
	}
	assert.Equal(t, attrs(append(server, op("Get"), attribute.Int("db.response.returned_rows", 1))...), hitSpan)
	assert.Equal(t, attrs(attribute.String("db.system.name", "memcached"), op("GetMulti"),
		attribute.Int("db.response.returned_rows", 1), attribute.Int("db.operation.batch.size", 3)), multiSpan)
}

// failure runs fn and returns its error with the duration point and the
// span that recorded it.
func failure(t *testing.T, tm *telemetry, name string, fn func() error) (error, metricdata.HistogramDataPoint[float64], sdktrace.ReadOnlySpan) {
	t.Helper()
	before := len(tm.spans.Ended())
	err := fn()
	require.Error(t, err, name)
	spans := tm.spans.Ended()
	require.Len(t, spans, before+1, "%s: one span", name)
	span := spans[before]
	v, ok := spanAttr(span, "error.type")
	require.True(t, ok, "%s: error.type on the span: %v", name, span.Attributes())
	points := where(histogram[float64](t, tm.metrics(t), "db.client.operation.duration"), attribute.String("error.type", v.AsString()))
	require.NotEmpty(t, points, "%s: a duration series with error.type %s", name, v.AsString())
	assert.Equal(t, codes.Error, span.Status().Code, name)
	assert.Equal(t, err.Error(), span.Status().Description, name)
	return err, points[len(points)-1], span
}

// spanAttr returns the value of a span's attribute key.
func spanAttr(span sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	set := attribute.NewSet(span.Attributes()...)
	return set.Value(key)
}

// errorType returns a span's error.type.
func errorType(span sdktrace.ReadOnlySpan) string {
	v, _ := spanAttr(span, "error.type")
	return v.AsString()
}

// Real failures get the error.type of their class: the return code of a
// server that refuses connections or hangs past the deadline, a refused
// Add, a context that ended first, a closed Client.
func TestFailures(t *testing.T) {
	tm := newTelemetry(t)

	port, err := closedPort()
	require.NoError(t, err)
	dead, err := libmemcached.New([]string{"127.0.0.1:" + strconv.Itoa(port)}, libmemcached.WithObserver(tm.obs.Observe))
	require.NoError(t, err)
	defer dead.Close()
	err, point, span := failure(t, tm, "refused", func() error { return dead.Set(&libmemcached.Item{Key: "k", Value: []byte("v")}) })
	var e *libmemcached.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "MEMCACHED_CONNECTION_FAILURE", errorType(span), "%v", err)
	assert.Equal(t, attrs(attribute.String("db.system.name", "memcached"), op("Set"),
		attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", port),
		attribute.String("db.response.status_code", "MEMCACHED_CONNECTION_FAILURE"),
		attribute.String("error.type", "MEMCACHED_CONNECTION_FAILURE")), attrs(point.Attributes.ToSlice()...))

	hung := newMemcached(t)
	mc, err := libmemcached.New([]string{hung.addr}, libmemcached.WithObserver(tm.obs.Observe))
	require.NoError(t, err)
	defer mc.Close()
	require.NoError(t, mc.Set(&libmemcached.Item{Key: "k", Value: []byte("v")}))
	resume := hung.pause(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err, point, span = failure(t, tm, "hung", func() error { _, err := mc.GetContext(ctx, "k"); return err })
	resume()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, "MEMCACHED_TIMEOUT", errorType(span), "%v", err)
	if max, ok := point.Max.Value(); assert.True(t, ok) {
		assert.GreaterOrEqual(t, max, 0.1, "the call waited for its deadline")
	}

	live, err := libmemcached.New([]string{shared.addr}, libmemcached.WithObserver(tm.obs.Observe))
	require.NoError(t, err)
	k := "otel-fail-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.NoError(t, live.Set(&libmemcached.Item{Key: k, Value: []byte("v")}))
	_, _, span = failure(t, tm, "add", func() error { return live.Add(&libmemcached.Item{Key: k, Value: []byte("v")}) })
	assert.Equal(t, "MEMCACHED_NOTSTORED", errorType(span))

	done, stop := context.WithCancel(context.Background())
	stop()
	_, _, span = failure(t, tm, "canceled", func() error { _, err := live.GetContext(done, k); return err })
	assert.Equal(t, "context.Canceled", errorType(span))
	expired, stop := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer stop()
	_, _, span = failure(t, tm, "expired", func() error { return live.DeleteContext(expired, k) })
	assert.Equal(t, "context.DeadlineExceeded", errorType(span))

	require.NoError(t, live.Close())
	err, _, span = failure(t, tm, "closed", func() error { _, err := live.Get(k); return err })
	assert.ErrorIs(t, err, libmemcached.ErrClosed)
	assert.Equal(t, "libmemcached.ErrClosed", errorType(span))
}

// A Pool's waits go to db.client.connection.wait_time under its pool
// name, and Gets that share a coalesced round trip on a paused server
// show in the batch-size histogram and on their spans.
func TestPoolWaitsAndBatches(t *testing.T) {
	tm := newTelemetry(t, otelmemcached.WithPoolName("sessions"))
	srv := newMemcached(t)
	pool, err := libmemcached.NewPool([]string{srv.addr}, 1, libmemcached.WithObserver(tm.obs.Observe))
	require.NoError(t, err)
	defer pool.Close()
	seed, err := libmemcached.New([]string{srv.addr}) // no observer: only the Gets are counted
	require.NoError(t, err)
	defer seed.Close()
	const callers = 10
	for i := 0; i < callers; i++ {
		require.NoError(t, seed.Set(&libmemcached.Item{Key: "batch-" + strconv.Itoa(i), Value: []byte("v")}))
	}
	require.NoError(t, pool.Warm(context.Background()))

	resume := srv.pause(t)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		key := "batch-" + strconv.Itoa(i)
		wg.Go(func() {
			_, err := pool.Get(key)
			errs <- err
		})
	}
	time.Sleep(200 * time.Millisecond)
	resume()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	ms := tm.metrics(t)
	wait := histogram[float64](t, ms, "db.client.connection.wait_time")
	require.Len(t, wait, 1, "one series: the pool's")
	assert.Equal(t, attrs(attribute.String("db.client.connection.pool.name", "sessions")), attrs(wait[0].Attributes.ToSlice()...))
	assert.Equal(t, "s", ms["db.client.connection.wait_time"].Unit)
	assert.Equal(t, uint64(callers), wait[0].Count, "one wait per Get")
	assert.Greater(t, wait[0].Sum, 0.1, "the callers after the first waited while the server was paused")

	batch := histogram[int64](t, ms, otelmemcached.BatchSizeName)
	require.Len(t, batch, 1)
	assert.Equal(t, attrs(attribute.String("db.system.name", "memcached"), op("Get")), attrs(batch[0].Attributes.ToSlice()...))
	assert.Equal(t, uint64(callers), batch[0].Count)
	max, _ := batch[0].Max.Value()
	t.Logf("%d Gets on a paused server: largest shared round trip %d callers, %d caller-trips in all", callers, max, batch[0].Sum)
	assert.Greater(t, max, int64(1), "callers shared a round trip")

	shared := 0
	for _, s := range tm.spans.Ended() {
		set := attribute.NewSet(s.Attributes()...)
		if v, ok := set.Value(otelmemcached.BatchSizeName); ok && v.AsInt64() > 1 {
			shared++
			w, ok := set.Value(otelmemcached.WaitTimeKey)
			assert.True(t, ok && w.AsFloat64() > 0, "a caller that shared a batch waited for it")
		}
	}
	assert.Greater(t, shared, 1, "spans of callers that shared a round trip say so")
}

// Servers as the library spells them become server.address and
// server.port: IPv6 in brackets, a socket path as the address alone.
func TestServerAttributes(t *testing.T) {
	tm := newTelemetry(t)
	for _, server := range []string{"[::1]:11211", "/run/memcached/memcached.sock", "cache-1.example:11311", ""} {
		tm.obs.Observe(libmemcached.Event{Op: "Touch", Keys: 1, Server: server, Duration: time.Millisecond, Batch: 1})
	}
	want := map[string]map[string]any{
		"Touch [::1]:11211":                   {"server.address": "::1", "server.port": int64(11211)},
		"Touch /run/memcached/memcached.sock": {"server.address": "/run/memcached/memcached.sock"},
		"Touch cache-1.example:11311":         {"server.address": "cache-1.example", "server.port": int64(11311)},
		"Touch":                               {},
	}
	for _, s := range tm.spans.Ended() {
		w, ok := want[s.Name()]
		require.True(t, ok, s.Name())
		w["db.system.name"], w["db.operation.name"], w[string(otelmemcached.WaitTimeKey)] = "memcached", "Touch", 0.0
		assert.Equal(t, w, attrs(s.Attributes()...), s.Name())
		delete(want, s.Name())
	}
	assert.Empty(t, want)
	assert.Len(t, histogram[float64](t, tm.metrics(t), "db.client.operation.duration"), 4, "a series per server")
}

// Other errors: the library's bare miss sentinel is no failure; an error
// of another type is named by semconv's ErrorType.
func TestOtherErrors(t *testing.T) {
	tm := newTelemetry(t)
	tm.obs.Observe(libmemcached.Event{Op: "Get", Keys: 1, Duration: time.Millisecond, Batch: 1, Err: libmemcached.ErrCacheMiss})
	tm.obs.Observe(libmemcached.Event{Op: "Set", Keys: 1, Duration: time.Millisecond, Batch: 1, Err: fmt.Errorf("boom")})
	spans := tm.spans.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, codes.Unset, spans[0].Status().Code)
	assert.Equal(t, "", errorType(spans[0]))
	assert.Equal(t, codes.Error, spans[1].Status().Code)
	assert.Equal(t, "*errors.errorString", errorType(spans[1]))
}

// Without options the global providers record.
func TestGlobalProviders(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec := tracetest.NewSpanRecorder()
	otel.SetMeterProvider(mp)
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() {
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
	})
	obs, err := otelmemcached.New()
	require.NoError(t, err)
	obs.Observe(libmemcached.Event{Op: "Version", Duration: time.Millisecond, Batch: 1})
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	assert.NotEmpty(t, rm.ScopeMetrics[0].Metrics)
	require.Len(t, rec.Ended(), 1)
	assert.Equal(t, "Version", rec.Ended()[0].Name())
}

// The cost an Observer adds to each operation, with the SDK recording
// every metric and span (sampled, into a recorder that keeps them).
func BenchmarkObserve(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	for _, tc := range []struct {
		name string
		opts []otelmemcached.Option
	}{
		{"metrics+spans", []otelmemcached.Option{otelmemcached.WithMeterProvider(mp), otelmemcached.WithTracerProvider(tp)}},
		{"metrics", []otelmemcached.Option{otelmemcached.WithMeterProvider(mp), otelmemcached.WithTracerProvider(tracenoop.NewTracerProvider())}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			obs, err := otelmemcached.New(tc.opts...)
			require.NoError(b, err)
			ev := libmemcached.Event{Op: "Get", Keys: 1, Hits: 1, Server: "127.0.0.1:11211", Duration: 30 * time.Microsecond, Batch: 1}
			b.ReportAllocs()
			for b.Loop() {
				obs.Observe(ev)
			}
		})
	}
}
