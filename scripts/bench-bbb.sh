#!/usr/bin/env bash
# make bench, BigBlueButton part: `roomcast compose --from-bbb` of a long
# BBB-style raw folder (3 webcams 640x360@30 VP8 for the whole meeting,
# talkers taking 20 s turns, Opus meeting audio, recording on throughout),
# written by bbb/bbbtest (cached in $ROOMCAST_CACHE/bench). Prints CPU-s,
# wall time, peak RSS and the speed as × real time (output length / wall)
# and per CPU second (output length / CPU-s).
#
# Environment: BBB_MINUTES (meeting length, default 60), BBB_SIZE (output
# canvas, default 1280x720), BENCH_RUNS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${BBB_MINUTES:-60}
SIZE=${BBB_SIZE:-1280x720}
RUNS=${BENCH_RUNS:-1}
GO=${GO:-go}
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
FF=$(scripts/ffmpeg.sh prefix)
if [[ $FF != system ]]; then
  export PKG_CONFIG_PATH="$FF/lib/pkgconfig" PATH="$FF/bin:$PATH" CGO_LDFLAGS="-Wl,-rpath,$FF/lib"
fi
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "bench-bbb: GNU time is missing: run make peers" >&2; exit 1; }
BIN=bin/roomcast
[[ -x $BIN ]] || $GO build -o "$BIN" ./cmd/roomcast

CACHE=$ROOMCAST_CACHE/bench/bbb-v1-${MIN}min
if [[ ! -s $CACHE/done ]]; then
  echo "bench-bbb: generating a ${MIN}-minute raw folder in $CACHE (once)" >&2
  rm -rf "$CACHE"
  mkdir -p "$CACHE"
  $GO run ./bbb/bbbtest/cmd/bbb-fixture -minutes "$MIN" -o "$CACHE" >"$CACHE/done.tmp"
  mv "$CACHE/done.tmp" "$CACHE/done"
fi
RAW=$(cat "$CACHE/done")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== roomcast compose --from-bbb: ${MIN}-minute meeting, 3 webcams 640x360@30 + audio → $SIZE@30, $RUNS run(s)"
for ((r = 1; r <= RUNS; r++)); do
  "$TIME" -f '%U %S %e %M' -o "$WORK/time" "$BIN" --log-level warn compose --from-bbb "$RAW" -y -o "$WORK/out.mp4" --size "$SIZE" \
    >"$WORK/log" 2>&1 || { tail -20 "$WORK/log" >&2; exit 1; }
  read -r u s e m <"$WORK/time"
  d=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$WORK/out.mp4")
  awk -v u="$u" -v s="$s" -v e="$e" -v m="$m" -v d="$d" 'BEGIN{
    cpu = u + s
    printf "run: output %.1f s; %.1f CPU-s (user %.1f, sys %.1f), wall %.1f s, peak RSS %.0f MB\n", d, cpu, u, s, e, m/1024
    printf "     speed %.2f× real time (wall), %.2f s of output per CPU-s (%.2f cores to keep up with real time)\n", d/e, d/cpu, cpu/d }'
done
