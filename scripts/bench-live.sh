#!/usr/bin/env bash
# The live benchmark of issue 4: what `roomcast record` costs while it
# records a real room.
#
# Four Go publishers (two H.264, two VP8, each with an Opus tone) send
# 640x360@30 moving test patterns into a livekit-server on 127.0.0.1; the
# roomcast binary joins with an API key and records the room for
# BENCH_LIVE_SECONDS (default 60) into a 1280x720@30 grid, libx264 veryfast,
# --preset stream --video-bitrate 3M. Then `roomcast compose` composes the
# very same bitstreams (remuxed to MKV) with the same encoding, offline.
# Reported (lines "BENCH ..."):
#   - the recorder's CPU: user+system seconds from rusage at exit, in cores
#     over its wall time, and the steady-state rate read from
#     /proc/<pid>/stat every 250 ms; the ratio to compose's CPU seconds;
#   - its peak RSS: VmHWM from /proc/<pid>/status (and rusage maxrss);
#   - join-to-first-frame: from roomcast's "joined" log line to each track's
#     "first video decoded" line (recorder/roomsink.go), stamped on arrival.
# Targets (issue 4): ≤ 0.6 cores, ≤ 150 MB RSS, first frame ≤ 2 s after join.
#
# The same recording of a Janus VideoRoom (four pion publishers, same codecs
# and sizes, janus 1.1.2 on this machine) follows: "janus record" lines.
#
# The harnesses are recorder.TestBenchLive and TestBenchLiveJanus (skipped
# unless ROOMCAST_BENCH_LIVE is set). Needs livekit-server and janus (make peers) and the FFmpeg the Makefile
# finds. Set GODEBUG=gctrace=1 to see the Go heap's share of the RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
FF=$(scripts/ffmpeg.sh prefix)
if [[ $FF != system ]]; then
  export PKG_CONFIG_PATH="$FF/lib/pkgconfig" PATH="$FF/bin:$PATH" CGO_LDFLAGS="-Wl,-rpath,$FF/lib"
fi
SECS=${BENCH_LIVE_SECONDS:-60}
BIN=$PWD/bin/roomcast
$GO build -o "$BIN" ./cmd/roomcast

echo "== live: roomcast record of a LiveKit room and of a Janus VideoRoom, 4 publishers, ${SECS} s (scripts/bench-live.sh)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! ROOMCAST_BENCH_LIVE=1 BENCH_LIVE_SECONDS=$SECS ROOMCAST_BIN=$BIN \
  $GO test -count=1 -run '^TestBenchLive(Janus)?$' -timeout $((SECS * 5 + 400))s -v ./recorder/ >"$log" 2>&1; then
  echo "bench-live: the benchmark failed:" >&2
  grep -v '^        ' "$log" | tail -40 >&2
  exit 1
fi
grep -o 'BENCH .*' "$log" | sed 's/^BENCH //'
