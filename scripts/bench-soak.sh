#!/usr/bin/env bash
# The soak figure of issue 10 (not CI): a 20-minute live recording of a
# LiveKit room, its A/V drift in ms/hour measured on the file as a player
# shows it, and the recorder's RSS slope in MB/hour.
#
# Two Go publishers capture a white flash and a 1 kHz beep at the same
# instants, twice every 4 s, into a livekit-server on 127.0.0.1; the roomcast
# binary records the room for BENCH_SOAK_SECONDS (default 1200) with its
# default encoding at 1280x720@30 while its VmRSS is read from /proc every
# second. The harness is recorder.TestBenchSoak (skipped unless
# ROOMCAST_BENCH_SOAK is set); see it for the method. It mostly waits: run
# it under `nice -n 10` on a shared machine. Needs livekit-server (make peers).
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
SECS=${BENCH_SOAK_SECONDS:-1200}
$GO build -o "$BIN" ./cmd/roomcast
echo "== soak: roomcast record of a LiveKit room, 2 flash+beep publishers, ${SECS} s (scripts/bench-soak.sh)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! ROOMCAST_BENCH_SOAK=1 BENCH_SOAK_SECONDS=$SECS ROOMCAST_BIN=$BIN \
  $GO test -count=1 -run '^TestBenchSoak$' -timeout $((SECS * 2 + 600))s -v ./recorder/ >"$log" 2>&1; then
  echo "bench-soak: the benchmark failed:" >&2
  grep -v '^        ' "$log" | tail -40 >&2
  exit 1
fi
grep -o 'BENCH .*' "$log" | sed 's/^BENCH //'
