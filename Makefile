# The README's commands: `make test` and `make demo` each install what is
# missing (scripts/install-deps.sh), then build and run.

GO ?= go
export PATH := $(PATH):/usr/local/go/bin
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: all deps generate check-generated fmt-check vet test compat asan demo memctl bench clean

all: test

deps:
	@bash scripts/install-deps.sh

# Regenerate errors_gen.go from the installed libmemcached header.
generate: deps
	$(GO) generate ./...

# Fails when a fresh `go generate` would change a generated file.
check-generated: deps
	@tmp=$$(mktemp -d); cp errors_gen.go $$tmp/; \
	$(GO) generate ./... || { rm -rf $$tmp; exit 1; }; \
	if ! cmp -s $$tmp/errors_gen.go errors_gen.go; then \
		echo "errors_gen.go is stale: a fresh 'go generate' changes it:"; \
		diff -u $$tmp/errors_gen.go errors_gen.go | head -40; \
		cp $$tmp/errors_gen.go errors_gen.go; rm -rf $$tmp; exit 1; \
	fi; rm -rf $$tmp; echo "errors_gen.go is up to date"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi

# integration_test/ is a module of its own (dockertest stays out of the
# library's go.mod); go.work lets these commands name it from the root.
vet: deps
	$(GO) vet ./... ./integration_test/...
	$(GO) vet -tags libmemcached_leakcheck .

# cmd/memctl is a module of its own (its go.mod replaces the library with
# ../..), so that the clients "memctl bench" compares never enter the
# library's module graph: the root's ./... does not include it.
# memctl bench includes douban/libmc, which is C++: without g++, memctl is
# built with -tags nolibmc and the bench reports libmc as absent.
MEMCTL_TAGS = $$(command -v g++ >/dev/null 2>&1 || echo nolibmc)

# otelmemcached is a module of its own too (OpenTelemetry stays out of
# the library's go.mod), vetted and tested from its folder like memctl.
#
# The second run builds the finalizers' leak report (-tags
# libmemcached_leakcheck) and checks it.
test: deps check-generated fmt-check vet
	$(GO) test $(GOTEST_FLAGS) ./... ./integration_test/...
	$(GO) test -tags libmemcached_leakcheck $(GOTEST_FLAGS) -run 'Dropped|LeakReport' .
	cd cmd/memctl && $(GO) vet -tags "$(MEMCTL_TAGS)" ./... && $(GO) test -tags "$(MEMCTL_TAGS)" $(GOTEST_FLAGS) ./...
	cd otelmemcached && $(GO) vet ./... && $(GO) test $(GOTEST_FLAGS) ./...

# The package's tests against the other libmemcached releases users have:
# 1.0.18 (macOS Homebrew, Ubuntu 22.04; from Debian 11's packages) and 1.1.0
# (RHEL 9; from ../shared/compat when it is there), each with its own
# GOCACHE, and a library whose major.minor differs from the headers'
# refused. See scripts/compat.sh.
compat: deps
	bash scripts/compat.sh

# The package's tests under AddressSanitizer (gcc's libasan).
asan: deps
	$(GO) test -asan -count=1 -timeout 20m .

memctl: deps
	@command -v g++ >/dev/null 2>&1 || echo "memctl: no g++: building without douban/libmc (install g++ to compare with it)"
	cd cmd/memctl && $(GO) build -tags "$(MEMCTL_TAGS)" -o ../../bin/memctl .

demo: memctl
	./bin/memctl demo

# Compares this library with gomemcache, douban/libmc, the same loops in C
# and a raw socket loop (the wire row) against a memcached it starts itself
# (-t 2, loopback), then runs the multi-key and concurrent scenarios again
# over three (rows named NAME@3srv; --servers). About 12.5 minutes (the
# estimate it prints: 695 windows of 1 s plus warm-ups); about 8 with
# BENCH_FLAGS="--servers 1". BENCH_FLAGS adds flags, e.g.
# BENCH_FLAGS="--scenario 'par*' --rounds 5".
BENCH_FLAGS ?=
bench: memctl
	./bin/memctl bench --json bench-results.json --chart docs/bench.png $(BENCH_FLAGS)

clean:
	rm -rf bin
