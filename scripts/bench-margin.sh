#!/usr/bin/env bash
# The sustained real-time margin of issue 10: how much slower the encoder
# could be before a live broadcast has to skip frames.
#
# The live pipeline (synthetic speakers → compositor → libx264 + AAC → MP4)
# runs as fast as the machine allows: `roomcast demo --fast` (a virtual
# clock), 4 speakers that look like webcams to the encoder (--camera: a
# panning textured room, a swaying person) at 1280x720@30, for BENCH_MARGIN_SECONDS (default 20)
# of media, once per x264 preset from veryfast to slower, with the stream
# preset (what a live broadcast sends) and the record preset (the default
# of `record`) at veryfast. For each run, timed with GNU time:
#   - speed = media seconds / wall seconds: the real-time margin on this
#     machine as loaded now (a live run at that preset skips frames once it
#     is below 1.00);
#   - work per frame = wall / frames, against the 33.3 ms frame period;
#   - cores = CPU seconds / media seconds: what a live run of it costs, and
#     the margin on an idle 2-core machine = 2 / cores.
# The summary names the default (veryfast, stream) margin and the slowest
# preset that still ran faster than real time.
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
SECS=${BENCH_MARGIN_SECONDS:-20}
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "bench-margin: GNU time is missing: run make peers" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CORES=$(nproc)

echo "== real-time margin: roomcast demo --fast --camera, 4 speakers, 1280x720@30, ${SECS} s of media per run, ${CORES} cores (scripts/bench-margin.sh)"
printf '%-20s %8s %8s %12s %8s %10s\n' "preset" "wall-s" "speed" "ms/frame" "cores" "idle-margin"
slowest=""
default=""
run() { # label preset x264preset
  local out=$WORK/m.mp4
  if ! $TIME -f '%e %U %S' -o "$WORK/time" "$BIN" demo --fast --camera --speakers 4 --size 1280x720 --fps 30 \
    --preset "$2" --x264-preset "$3" --duration "${SECS}s" --overwrite -o "$out" >"$WORK/log" 2>&1; then
    echo "bench-margin: $1 failed:" >&2
    tail -20 "$WORK/log" >&2
    exit 1
  fi
  read -r e u s <"$WORK/time"
  awk -v l="$1" -v e="$e" -v u="$u" -v s="$s" -v m="$SECS" -v n="$CORES" 'BEGIN {
    printf "%-20s %8.2f %7.2fx %12.1f %8.2f %9.2fx\n", l, e, m/e, 1000*e/(m*30), (u+s)/m, n/((u+s)/m) }'
  if awk -v e="$e" -v m="$SECS" 'BEGIN { exit !(m/e >= 1) }'; then slowest=$1; fi
  [[ $1 == "stream veryfast" ]] && default=$(awk -v e="$e" -v m="$SECS" 'BEGIN { printf "%.2fx (%.1f ms of work per 33.3 ms frame)", m/e, 1000*e/(m*30) }')
  return 0
}
run "record veryfast" record veryfast
for p in veryfast faster fast medium slow slower; do
  run "stream $p" stream "$p"
done
echo "margin: the live default (stream, veryfast) runs at ${default} real time on this machine now"
echo "margin: slowest x264 preset that ran faster than real time here: ${slowest:-none}"
