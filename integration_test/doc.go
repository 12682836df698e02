// Package integration holds the integration tests of the libmemcached
// binding: they run the client against a real memcached cluster (Docker
// containers built from the host's memcached, or local memcached processes
// where no Docker engine is reachable) and inject the faults a production
// client must survive: dead, hung and partitioned nodes, restarts under
// load, replication, SASL, and big and odd values.
//
// Run them with `go test ./integration_test/...` (add -v to see the
// measured figures, which are logged as `FIGURE name=value unit`). Set
// LIBMEMCACHED_IT_BACKEND=docker or =local to force a backend.
package integration
