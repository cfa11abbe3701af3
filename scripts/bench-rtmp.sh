#!/usr/bin/env bash
# CPU cost of roomcast's RTMP path per minute of a 3 Mb/s stream (fed as a
# broadcast feeds it, and packet by packet), next to
# `ffmpeg -re -i same.mp4 -c copy -f flv rtmp://...` pushing the same clip
# to the same nginx-rtmp server (on 127.0.0.1) in the same run. Prints both
# and the ratio. See rtmp/internal/rtmpbench for what each side includes.
#
# Environment: BENCH_SECONDS (clip length, default 60; each side streams it
# in real time), BENCH_RTMP_RUNS (runs of each side, alternating, default 1),
# ROOMCAST_CACHE (the clip is cached in $ROOMCAST_CACHE/bench).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECONDS:-60}
RUNS=${BENCH_RTMP_RUNS:-1}
GO=${GO:-go}
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
FF=$(scripts/ffmpeg.sh prefix)
if [[ $FF != system ]]; then
  # rtmpbench feeds the Publisher through recorder's output queue, whose
  # package links FFmpeg.
  export PKG_CONFIG_PATH="$FF/lib/pkgconfig" PATH="$FF/bin:$PATH" CGO_LDFLAGS="-Wl,-rpath,$FF/lib"
fi

mkdir -p "$ROOMCAST_CACHE/bench"
# 1280x720@30, 3 Mb/s CBR (HRD filler keeps the rate up on an easy
# pattern), keyframe every 2 s, AAC 128 kb/s. v1: bump when this changes.
clip="$ROOMCAST_CACHE/bench/rtmp-720p30-3M-${SECS}s-v1.mp4"
if [[ ! -s $clip ]]; then
  echo "bench-rtmp: encoding $clip" >&2
  ffmpeg -v error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t "$SECS" -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
    -g 60 -keyint_min 60 -sc_threshold 0 -b:v 3M -minrate 3M -maxrate 3M -bufsize 3M -x264-params nal-hrd=cbr \
    -c:a aac -b:a 128k -ac 2 "$clip.tmp.mp4"
  mv "$clip.tmp.mp4" "$clip"
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
$GO build -o "$bin/rtmpbench" ./rtmp/internal/rtmpbench
"$bin/rtmpbench" -mp4 "$clip" -runs "$RUNS"
