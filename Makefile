# Inlet. `make run` and `make test` work on a fresh machine with Go alone.
GO      ?= go
PKGS    ?= ./...
# The race detector needs cgo (a C compiler); without one the tests run
# without it rather than not at all (`make test` says so).
ifeq ($(origin RACE),undefined)
RACE    := $(if $(filter 1,$(shell $(GO) env CGO_ENABLED 2>/dev/null)),-race,)
endif

.PHONY: check-rules loadtest run test test-integration test-memory vet fmt fmt-check fuzz bench bench-ingest bench-processor build services-up services-down compose-check clean

## run: the whole system on embedded infrastructure (data in .inlet/)
## Built, then exec'd: a signal to make reaches the stack itself (with
## `go run` a SIGTERM to make left the stack running on its ports).
run:
	$(GO) build -o bin/inlet-dev ./services/dev
	exec bin/inlet-dev

## test: vet, formatting and every test on embedded infrastructure (nothing to install)
test: vet fmt-check
	@[ -n "$(RACE)" ] || echo "note: cgo is off (no C compiler?): testing without -race; apt-get install gcc for the race detector"
	$(GO) test $(RACE) -count=1 $(PKGS)

## test-integration: the TestIntegration* suites against real Kafka and Redis.
## Uses INLET_KAFKA_BROKERS / INLET_REDIS_URL when set, else starts both via deploy/local.
test-integration:
	deploy/local/with-services.sh $(GO) test $(RACE) -count=1 -run Integration -p 1 $(PKGS)

## test-memory: the memory-bound tests, which skip under -race (it changes the heap and is too slow for them)
test-memory:
	$(GO) test -count=1 -run 'Memory' ./pkg/processor/

vet:
	$(GO) vet $(PKGS)

# Every directory with Go files (deploy/ has tests too).
GOFMT_DIRS := services pkg schemas loadtest deploy

fmt:
	gofmt -w $(GOFMT_DIRS)

# gofmt's own failure counts: a file it cannot parse (one built only on
# another OS, which go vet here never compiles) is an error on stderr, not a
# name in the list checked below.
fmt-check:
	@out=$$(gofmt -l $(GOFMT_DIRS)) || exit 1; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: each fuzz target for FUZZTIME (default 10s)
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: the Go micro-benchmarks, then the ingest and processor benchmarks
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(MAKE) bench-ingest
	$(MAKE) bench-processor

## check-rules: promtool check + unit tests of the alert rules, dashboard queries
check-rules:
	deploy/prometheus/check.sh

## loadtest: the steady scenario against `make run`'s stack; prints the report path
loadtest:
	$(GO) run ./loadtest/cmd/inlet-load -scenario steady -rate 200 -duration 20s

## bench-ingest: bare handler vs naive ProduceSync vs Inlet's ingest, 16/64/256 connections
bench-ingest:
	$(GO) run ./loadtest/benchingest

## bench-processor: bare consume vs naive processor vs Inlet's processor over one pre-loaded raw topic
bench-processor:
	$(GO) run ./loadtest/benchprocessor -count 3

build:
	mkdir -p bin
	$(GO) build -o bin/ ./services/...

## services-up / services-down: real Kafka and Redis on loopback for manual runs
services-up:
	deploy/local/kafka/kafka.sh start
	deploy/local/redis/redis.sh start
	@deploy/local/env.sh
services-down:
	-deploy/local/kafka/kafka.sh stop
	-deploy/local/redis/redis.sh stop

compose-check:
	docker compose config -q

clean:
	rm -rf bin .inlet
