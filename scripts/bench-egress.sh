#!/usr/bin/env bash
# The egress-worker benchmark of issue 13: CPU of one room composite on a
# roomcast LiveKit egress worker, requested through the Egress API
# (server-sdk-go's StartRoomCompositeEgress), next to LiveKit Egress's own
# admission cost for the same request (cpu_cost.room_composite_cpu_cost,
# default 4 CPUs: its Chrome + GStreamer pipeline).
#
# redis-server and livekit-server 1.13.5 on 127.0.0.1; four Go publishers
# (two H.264, two VP8, 640x360@30 moving pictures, Opus tones); the worker in
# its own process (the test binary re-executed); the default preset
# H264_720P_30 (1280x720@30, 3 Mb/s) into an MP4. The worker's CPU
# (utime+stime, /proc/<pid>/stat) is read over BENCH_EGRESS_SECONDS (default
# 30) after a 5 s warm-up; then the same for an audio-only composite.
# Harness: egress.TestBenchEgress.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
FF=$(scripts/ffmpeg.sh prefix)
if [[ $FF != system ]]; then
  export PKG_CONFIG_PATH="$FF/lib/pkgconfig" PATH="$FF/bin:$PATH" CGO_LDFLAGS="-Wl,-rpath,$FF/lib"
fi
SECS=${BENCH_EGRESS_SECONDS:-30}
echo "== egress worker: one room composite, 4 publishers -> 720p30, then audio-only, ${SECS} s each (scripts/bench-egress.sh)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! ROOMCAST_BENCH_EGRESS=1 BENCH_EGRESS_SECONDS=$SECS \
  $GO test -count=1 -run '^TestBenchEgress$' -timeout $((SECS * 3 + 300))s -v ./egress/ >"$log" 2>&1; then
  echo "bench-egress: the benchmark failed:" >&2
  grep -v '^        ' "$log" | tail -40 >&2
  exit 1
fi
grep -o 'BENCH .*' "$log" | sed 's/^BENCH //'
