# roomcast — see README.md. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
GO ?= go
BIN := bin/roomcast
ROOMCAST_CACHE ?= $(HOME)/.cache/roomcast
export ROOMCAST_CACHE

# Every recipe that compiles cgo or runs ffmpeg/ffprobe starts with $(ENV): it
# finds (or builds, once, into the cache) FFmpeg 7 and points pkg-config, the
# linker and PATH at it.
ENV = set -e; FF=$$(scripts/ffmpeg.sh prefix); \
	if [ "$$FF" != system ]; then \
	  export PKG_CONFIG_PATH="$$FF/lib/pkgconfig" PATH="$$FF/bin:$$PATH" CGO_LDFLAGS="-Wl,-rpath,$$FF/lib"; \
	fi;

SERVE_DATA ?= serve-data

# The binary's first segment starts 4 kB past a 2 MB boundary (GNU ld's
# default is on one), so no file offset of it lines up with a 2 MB page of
# its address: Linux (6.x, ext4/xfs) keeps a freshly written or read-ahead
# binary in 2 MB page-cache folios and maps every aligned one whole
# (FilePmdMapped in /proc/PID/smaps), which made the entire ~45 MB of code
# and read-only data resident in every roomcast process, touched or not
# (57 MB file-backed RSS for a compose, 40 MB without). README "Benchmarks".
comma := ,
BUILD_LDFLAGS := $(if $(filter Linux,$(shell uname -s)),-ldflags=-extldflags=-Wl$(comma)-Ttext-segment=0x401000)

.PHONY: help build demo serve test test-short peers bench lint fuzz clean ffmpeg hlsjs

# hls.js, the watch page's player where the browser has no native HLS: from
# npm at this pinned version into the cache, copied into the embed directory
# (not committed; `go build` works without it, the page then uses native HLS).
HLSJS_VERSION := 1.7.4
HLSJS_EMBED := hls/watch/assets/vendor/hls.min.js

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

ffmpeg: ## find or build FFmpeg 7.1 (cached in ~/.cache/roomcast)
	@scripts/ffmpeg.sh prefix

hlsjs: ## install the pinned hls.js from npm and embed it in the watch page
	@d=$(ROOMCAST_CACHE)/npm/hlsjs-$(HLSJS_VERSION); \
	if ! [[ -s $$d/node_modules/hls.js/dist/hls.min.js ]]; then \
	  mkdir -p $$d && npm install --no-audit --no-fund --loglevel=error --save-exact --prefix $$d hls.js@$(HLSJS_VERSION) >&2; fi; \
	cmp -s $$d/node_modules/hls.js/dist/hls.min.js $(HLSJS_EMBED) || cp $$d/node_modules/hls.js/dist/hls.min.js $(HLSJS_EMBED)

build: hlsjs ## build bin/roomcast
	@$(ENV) $(GO) build $(BUILD_LDFLAGS) -o $(BIN) ./cmd/roomcast

demo: build ## record the embedded synthetic room to demo.mp4 (no network)
	@$(ENV) ./$(BIN) demo --duration 10s --overwrite --output demo.mp4
	@echo "wrote demo.mp4"

serve: build ## run the host page and API on http://127.0.0.1:8080 (data in ./serve-data; try the room demo:)
	@$(ENV) ./$(BIN) serve --listen 127.0.0.1:8080 --data $(SERVE_DATA)

peers: ## install the real peers the tests run against (root, apt/npm/go)
	@scripts/peers.sh

# Packages run one at a time (-p 1): the live e2e suites of cmd/roomcast,
# recorder, room/* and serve each hold real-time encoders, browsers and
# servers, and two at once on 2 cores starve each other (~19 min in all on a fresh clone).
# The churn test runs once more without -race, where the resident memory it
# measures holds nothing of the race detector's.
test: build peers ## install test peers, then run every test with -race
	@$(ENV) $(GO) vet ./... && $(GO) test -race -count=1 -p 1 -timeout 60m ./... && \
	  $(GO) test -count=1 -run '^TestLiveChurn$$' ./recorder/

test-short: ## unit tests only (no servers, no browser)
	@$(ENV) $(GO) test -short -count=1 ./...

bench: build peers ## CPU figures: roomcast vs ffmpeg on the same inputs, Go benchmarks
	@$(ENV) scripts/bench.sh

fuzz: ## run each fuzz target for 30 s
	@$(ENV) for t in $$(grep -rl '^func Fuzz' --include='*_test.go' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | cut -c6-); do \
	    $(GO) test -run=^$$ -fuzz=^$$f$$ -fuzztime=30s $$t || exit 1; done; done

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@$(ENV) $(GO) vet ./...

clean: ## remove build outputs (not the FFmpeg cache)
	rm -rf bin demo.mp4 serve-data
