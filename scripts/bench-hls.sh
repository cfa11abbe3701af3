#!/usr/bin/env bash
# The HLS viewers benchmark of issue 12: a live 720p30 3 Mb/s `roomcast demo`
# writing HLS and serving its own watch page (--hls --watch 127.0.0.1:0);
# roomcast's CPU (from /proc/<pid>/stat) and RSS for BENCH_HLS_SECONDS
# (default 60) without viewers, then the same with BENCH_HLS_VIEWERS (default
# 200) HLS clients on loopback, each on its own connection, polling the live
# playlist every second and fetching every new segment like a player that
# joins three segments from the live edge: playback starts with the first
# segment, and a client stalls when a segment arrives after the ones before
# it have played (its deadline). Reported:
# stalls, p50/p99/max segment fetch latency, bytes served, the viewer count
# the page reports. The clients run in the harness process on the same cores.
#
# The harness is cmd/roomcast TestBenchHLS (skipped unless ROOMCAST_BENCH_HLS).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
FF=$(scripts/ffmpeg.sh prefix)
if [[ $FF != system ]]; then
  export PKG_CONFIG_PATH="$FF/lib/pkgconfig" PATH="$FF/bin:$PATH" CGO_LDFLAGS="-Wl,-rpath,$FF/lib"
fi
SECS=${BENCH_HLS_SECONDS:-60}
BIN=$PWD/bin/roomcast
$GO build -o "$BIN" ./cmd/roomcast

echo "== hls: ${BENCH_HLS_VIEWERS:-200} viewers of a live 720p broadcast, ${SECS} s (scripts/bench-hls.sh)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! ROOMCAST_BENCH_HLS=1 BENCH_HLS_SECONDS=$SECS ROOMCAST_BIN=$BIN \
  $GO test -count=1 -run '^TestBenchHLS$' -timeout $((SECS * 3 + 120))s -v ./cmd/roomcast/ >"$log" 2>&1; then
  echo "bench-hls: the benchmark failed:" >&2
  grep -v '^        ' "$log" | tail -40 >&2
  grep -o 'BENCH .*' "$log" | sed 's/^BENCH //' >&2 || true
  exit 1
fi
grep -o 'BENCH .*' "$log" | sed 's/^BENCH //'
