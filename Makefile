# make test: everything CI checks, in the order a failure is cheapest to see.
# The Go tests run against a throwaway PostgreSQL that scripts/with-postgres.sh
# starts (and installs, on Debian, when initdb is missing).

GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOTESTFLAGS ?= -race -timeout 30m

.PHONY: test fmt-check vet staticcheck gotest build

test: fmt-check vet staticcheck gotest

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

gotest:
	scripts/with-postgres.sh $(GO) test $(GOTESTFLAGS) ./...

build:
	$(GO) build -o trackerd ./cmd/trackerd
