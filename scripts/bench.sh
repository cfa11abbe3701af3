#!/usr/bin/env bash
# make bench: what roomcast costs, measured next to the tool people would use
# otherwise, in the same invocation on the same inputs.
#
# 1. `roomcast compose` of four 640x360@30 recordings (two H.264+AAC MP4, two
#    VP8+Opus WebM, each with its own tone) into a 1280x720@30 grid, then
#    into 1920x1080, then nine of them (cycled) into 1280x720, each versus
#    the equivalent ffmpeg command line: scale + xstack + amix, the same libx264
#    settings as roomcast's `record` preset (av/video_encoder.go: veryfast,
#    CRF 21, High profile, keyframe every 2 s exactly, no scene-cut keyframes,
#    x264's default B-frames and threads), AAC 128 kb/s, MP4 with the index in
#    front. Each is timed with GNU time (user+sys CPU seconds, wall, peak
#    RSS), BENCH_RUNS times alternately; medians are printed with the ratios,
#    and a summary of every ratio (with the RTMP path's) ends the output.
# 2. The Go benchmarks of the composite step (compositor) and of av.
# 3. scripts/bench-rtmp.sh (issue 3), scripts/bench-live.sh (issue 4) and
#    scripts/bench-hls.sh (issue 12).
#    scripts/bench-bbb.sh (issue 11: a 60-minute BBB raw folder).
#    scripts/bench-egress.sh (issue 13: a room composite on an egress worker).
#    scripts/bench-margin.sh (issue 10: the sustained real-time margin, how
#    much slower the encoder could be before a live run skips frames) and
#    scripts/bench-soak.sh (issue 10: a 20-minute live recording's A/V drift
#    and RSS slope; BENCH_SOAK_SECONDS=0 leaves it out).
#
# Environment: BENCH_ONLY (the parts to run, space-separated among compose,
# go, rtmp, live, serve, hls, bbb, egress, margin, soak; default all: only the
# listed parts run), BENCH_RUNS (default 3), BENCH_SECONDS (input length, default
# 60), BENCHTIME (go test -benchtime, default 1s), ROOMCAST_CACHE (inputs are
# cached in $ROOMCAST_CACHE/bench).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${BENCH_RUNS:-3}
ONLY=" ${BENCH_ONLY:-compose go rtmp live serve hls bbb egress margin soak} "
want() { [[ $ONLY == *" $1 "* ]]; }
SECS=${BENCH_SECONDS:-60}
BENCHTIME=${BENCHTIME:-1s}
GO=${GO:-go}
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}

# The same FFmpeg as the build and the tests (the Makefile does this too;
# repeated so the script also runs on its own).
FF=$(scripts/ffmpeg.sh prefix)
if [[ $FF != system ]]; then
  export PKG_CONFIG_PATH="$FF/lib/pkgconfig" PATH="$FF/bin:$PATH" CGO_LDFLAGS="-Wl,-rpath,$FF/lib"
fi
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "bench: GNU time is missing: run make peers (scripts/peers.d/10-base.sh)" >&2; exit 1; }
BIN=bin/roomcast
[[ -x $BIN ]] || $GO build -ldflags=-extldflags=-Wl,-Ttext-segment=0x401000 -o "$BIN" ./cmd/roomcast # as make build (Makefile BUILD_LDFLAGS)

# --- inputs ---------------------------------------------------------------
# Moving test patterns (x264 and the decoders get real work), one tint and
# one tone per speaker. The version in the names invalidates old caches.
CACHE=$ROOMCAST_CACHE/bench
mkdir -p "$CACHE"
INPUTS=()
gen() { # index source tone ext vcodec-args acodec-args
  local out=$CACHE/v1-speaker$1-${SECS}s.$4
  INPUTS+=("$out")
  [[ -s $out ]] && return 0
  echo "bench: generating $out" >&2
  ffmpeg -nostdin -hide_banner -v error -y \
    -f lavfi -i "$2,format=yuv420p" \
    -f lavfi -i "sine=f=$3:sample_rate=48000,volume=0.3,aformat=channel_layouts=stereo" \
    -t "$SECS" $5 $6 "$out.tmp.$4"
  mv "$out.tmp.$4" "$out"
}
X264="-c:v libx264 -preset medium -b:v 800k -g 60"
VP8="-c:v libvpx -deadline good -cpu-used 4 -b:v 800k -g 60"
gen 0 "testsrc2=s=640x360:r=30" 330 mp4 "$X264" "-c:a aac -b:a 96k"
gen 1 "testsrc=s=640x360:r=30,lutrgb=r=val*0.6" 440 webm "$VP8" "-c:a libopus -b:a 48k"
gen 2 "testsrc2=s=640x360:r=30,hflip,lutrgb=b=val*0.5" 550 mp4 "$X264" "-c:a aac -b:a 96k"
gen 3 "testsrc=s=640x360:r=30,hflip,lutrgb=g=val*0.7" 660 webm "$VP8" "-c:a libopus -b:a 48k"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# measure NAME CMD...: one timed run, appends "cpu user sys wall rss_kb" to $WORK/NAME.
measure() {
  local name=$1
  shift
  if ! "$TIME" -f '%U %S %e %M' -o "$WORK/time" "$@" >"$WORK/$name.log" 2>&1; then
    echo "bench: $name failed:" >&2
    tail -20 "$WORK/$name.log" >&2
    exit 1
  fi
  read -r u s e m <"$WORK/time"
  echo "$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}') $u $s $e $m" >>"$WORK/$name"
}

# Both outputs must be the same job done: size, frames, duration, bitrate.
describe() {
  ffprobe -v error -count_packets -select_streams v:0 -show_entries stream=width,height,nb_read_packets:format=duration,bit_rate \
    -of default=nw=1:nk=1 "$1" | paste -sd' ' | awk '{printf "%sx%s, %s frames, %.2f s, %.0f kb/s", $1, $2, $3, $4, $5/1000}'
}
median() { # file column
  cut -d' ' -f"$2" "$1" | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}

# compose CASE W H N: roomcast compose of N inputs (the four above, cycled)
# into a WxH grid versus ffmpeg doing the same job: each input scaled to its
# grid cell (bicubic, as roomcast's scaler), xstack, amix. Both: x264
# veryfast CRF 21 capped at 3 Mb/s (VBV maxrate 3M, 6M buffer: roomcast's
# --video-bitrate cap), High profile, keyframe every 2 s exactly, AAC 128k,
# no labels, MP4 with the index in front. Runs alternate; ratios compare
# medians of the same run.
SUMMARY=()
compose() {
  local name=$1 W=$2 H=$3 N=$4
  local cols=1
  while ((cols * cols < N)); do cols=$((cols + 1)); done
  local rows=$(((N + cols - 1) / cols))
  local cw=$((W / cols / 2 * 2)) ch=$((H / rows / 2 * 2))
  local rc=("$BIN" --log-level warn compose -y -o "$WORK/roomcast.mp4" --size "${W}x${H}" --no-labels --video-bitrate 3M)
  local ff=(ffmpeg -nostdin -hide_banner -v error -y)
  local vf="" af="" lay="" i
  for ((i = 0; i < N; i++)); do
    local f=${INPUTS[$((i % ${#INPUTS[@]}))]}
    rc+=(--input "file=$f,name=Speaker $((i + 1))")
    ff+=(-i "$f")
    vf+="[$i:v]scale=${cw}:${ch}:force_original_aspect_ratio=decrease:flags=bicubic,pad=${cw}:${ch}:-1:-1:color=0x202228,setsar=1[v$i];"
    af+="[$i:a]"
    lay+="$((i % cols * cw))_$((i / cols * ch))|"
  done
  local stack=""
  for ((i = 0; i < N; i++)); do stack+="[v$i]"; done
  ff+=(-filter_complex "${vf}${stack}xstack=inputs=$N:layout=${lay%|}:fill=0x202228,pad=${W}:${H}:-1:-1:color=0x202228[v];${af}amix=inputs=$N:normalize=0[a]"
    -map "[v]" -map "[a]"
    -c:v libx264 -preset veryfast -crf 21 -maxrate 3M -bufsize 6M -profile:v high -pix_fmt yuv420p -r 30
    -g 60 -keyint_min 60 -sc_threshold 0
    -c:a aac -b:a 128k -ar 48000 -ac 2
    -movflags +faststart "$WORK/ffmpeg.mp4")
  rm -f "$WORK/roomcast" "$WORK/ffmpeg"
  echo
  echo "== $name: roomcast compose vs ffmpeg, $N × ${SECS} s 640x360@30 → ${W}x${H}@30 grid, x264 veryfast CRF 21 ≤3 Mb/s, AAC 128k, $RUNS runs each"
  local r
  for ((r = 1; r <= RUNS; r++)); do
    measure roomcast "${rc[@]}"
    measure ffmpeg "${ff[@]}"
    echo "run $r: roomcast $(tail -1 "$WORK/roomcast" | cut -d' ' -f1) CPU-s, ffmpeg $(tail -1 "$WORK/ffmpeg" | cut -d' ' -f1) CPU-s" >&2
  done
  echo "roomcast output: $(describe "$WORK/roomcast.mp4")"
  echo "ffmpeg output:   $(describe "$WORK/ffmpeg.mp4")"
  printf '%-10s %9s %8s %8s %8s %9s %7s\n' "median of" "CPU-s" "user" "sys" "wall-s" "RSS-MB" "cores"
  local n
  for n in roomcast ffmpeg; do
    printf '%-10s %9.2f %8.2f %8.2f %8.2f %9.1f %7.2f\n' "$n" "$(median "$WORK/$n" 1)" "$(median "$WORK/$n" 2)" \
      "$(median "$WORK/$n" 3)" "$(median "$WORK/$n" 4)" "$(awk -v k="$(median "$WORK/$n" 5)" 'BEGIN{print k/1024}')" \
      "$(awk -v c="$(median "$WORK/$n" 1)" -v w="$(median "$WORK/$n" 4)" 'BEGIN{print c/w}')"
  done
  local line
  line=$(awk -v c1="$(median "$WORK/roomcast" 1)" -v c2="$(median "$WORK/ffmpeg" 1)" \
    -v m1="$(median "$WORK/roomcast" 5)" -v m2="$(median "$WORK/ffmpeg" 5)" \
    -v w1="$(median "$WORK/roomcast" 4)" -v w2="$(median "$WORK/ffmpeg" 4)" -v name="$name" 'BEGIN{
      printf "%-22s CPU %.2f  peak RSS %.2f  wall %.2f", name, c1/c2, m1/m2, w1/w2 }')
  echo "ratios roomcast/ffmpeg: $line (targets ≤ 1.00, ≤ 1.10, ≤ 1.05)"
  SUMMARY+=("$line")
  echo "all runs (CPU-s user sys wall RSS-kB):"
  sed 's/^/  roomcast /' "$WORK/roomcast"
  sed 's/^/  ffmpeg   /' "$WORK/ffmpeg"
}

if want compose; then
  compose "720p, 4 inputs" 1280 720 4
  compose "1080p, 4 inputs" 1920 1080 4
  compose "720p, 9 inputs" 1280 720 9
fi

# --- Go benchmarks ----------------------------------------------------------
if want go; then
echo
echo "== Go benchmarks (-benchtime $BENCHTIME)"
$GO test -run='^$' -bench=. -benchmem -benchtime="$BENCHTIME" ./compositor/
if grep -qs '^func Benchmark' av/*_test.go; then
  $GO test -run='^$' -bench=. -benchmem -benchtime="$BENCHTIME" ./av/
fi
fi

# --- other benchmarks -------------------------------------------------------
if want rtmp && [[ -x scripts/bench-rtmp.sh ]]; then
  echo
  echo "== scripts/bench-rtmp.sh"
  scripts/bench-rtmp.sh | tee "$WORK/rtmp"
fi
if want live && [[ -x scripts/bench-live.sh ]]; then
  echo
  echo "== scripts/bench-live.sh"
  scripts/bench-live.sh
fi

if want serve && [[ -x scripts/bench-serve.sh ]]; then
  echo
  echo "== scripts/bench-serve.sh"
  scripts/bench-serve.sh
fi
if want hls && [[ -x scripts/bench-hls.sh ]]; then
  echo
  echo "== scripts/bench-hls.sh"
  scripts/bench-hls.sh
fi
if want bbb && [[ -x scripts/bench-bbb.sh ]]; then
  echo
  echo "== scripts/bench-bbb.sh"
  scripts/bench-bbb.sh
fi
if want egress && [[ -x scripts/bench-egress.sh ]]; then
  echo
  echo "== scripts/bench-egress.sh"
  scripts/bench-egress.sh
fi

if want margin && [[ -x scripts/bench-margin.sh ]]; then
  echo
  scripts/bench-margin.sh | tee "$WORK/margin"
fi
if want soak && [[ -x scripts/bench-soak.sh && ${BENCH_SOAK_SECONDS:-1200} != 0 ]]; then
  echo
  scripts/bench-soak.sh | tee "$WORK/soak"
fi

echo
echo "== summary, roomcast/ffmpeg ratios measured in this run (targets: CPU ≤ 1.00, peak RSS ≤ 1.10, wall ≤ 1.05; RTMP ≤ 1.3)"
for l in "${SUMMARY[@]}"; do echo "  $l"; done
if [[ -s $WORK/rtmp ]]; then
  grep -i 'ratio' "$WORK/rtmp" | sed 's/^/  RTMP path: /'
fi
[[ -s $WORK/margin ]] && grep '^margin:' "$WORK/margin" | sed 's/^/  /'
[[ -s $WORK/soak ]] && grep -E '^soak (A/V|RSS):' "$WORK/soak" | sed 's/^/  /'
true
