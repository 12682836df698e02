package otelmemcached_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"

	"github.com/libmemcached-go/libmemcached"
	"github.com/libmemcached-go/libmemcached/otelmemcached"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func Example() {
	// A program would set up its exporters and call otelmemcached.New()
	// with the global providers; here the SDK's in-memory readers show what
	// is recorded.
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewSpanRecorder()
	obs, err := otelmemcached.New(
		otelmemcached.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		otelmemcached.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))))
	if err != nil {
		log.Fatal(err)
	}

	servers := strings.Split(os.Getenv("MEMCACHED_SERVERS"), ",") // e.g. []string{"127.0.0.1:11211"}
	mc, err := libmemcached.New(servers, libmemcached.WithObserver(obs.Observe))
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	if err := mc.Set(&libmemcached.Item{Key: "greeting", Value: []byte("hello")}); err != nil {
		log.Fatal(err)
	}
	if _, err := mc.Get("greeting"); err != nil {
		log.Fatal(err)
	}
	if _, err := mc.Get("no-such-key"); !errors.Is(err, libmemcached.ErrCacheMiss) {
		log.Fatal(err)
	}

	for _, s := range spans.Ended() {
		op, _ := spanAttr(s, "db.operation.name")
		line := fmt.Sprintf("span %s: status %s", op.AsString(), s.Status().Code)
		if code, ok := spanAttr(s, "db.response.status_code"); ok {
			line += ", db.response.status_code " + code.AsString() // a miss: no error.type
		}
		fmt.Println(line)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var names []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		names = append(names, m.Name+" ("+m.Unit+")")
	}
	slices.Sort(names)
	fmt.Println(strings.Join(names, "\n"))
	// Output:
	// span Set: status Unset
	// span Get: status Unset
	// span Get: status Unset, db.response.status_code MEMCACHED_NOTFOUND
	// db.client.connection.wait_time (s)
	// db.client.operation.duration (s)
	// db.client.response.returned_rows ({row})
	// memcached.client.batch.size ({caller})
	// memcached.client.lookups ({key})
}
