# The README's commands: `make test` and `make demo` each install what is
# missing (scripts/install-deps.sh), then build and run.

GO ?= go
export PATH := $(PATH):/usr/local/go/bin
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: all deps generate check-generated fmt-check vet test demo memctl clean

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

vet: deps
	$(GO) vet ./...

test: deps check-generated fmt-check vet
	$(GO) test $(GOTEST_FLAGS) ./...

memctl: deps
	$(GO) build -o bin/memctl ./cmd/memctl

demo: memctl
	./bin/memctl demo

clean:
	rm -rf bin
