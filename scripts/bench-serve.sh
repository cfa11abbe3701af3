#!/usr/bin/env bash
# make bench, part 4: how many concurrent 720p30 broadcasts one machine holds
# in real time under `roomcast serve`, with zero dropped output frames.
#
# Inputs cost what cameras cost to encode: demo:?busy=1 (room/synth's Busy:
# moving noise around each speaker's colour patch, 4 speakers). For N = 1, 2,
# ... the script starts N broadcasts through the API, lets them run
# BENCH_SERVE_SECONDS (default 30), stops them and reads each one's
# dropped_frames (video frames that reached the recording more than 2 s after
# their real-time due moment). It stops at the first N with a drop and
# reports the largest N without one. Admission control is switched off
# (--cpu-capacity 1000) so the machine itself is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SERVE_SECONDS:-30}
MAXN=${BENCH_SERVE_MAX:-6}
BIN=bin/roomcast
[[ -x $BIN ]] || { echo "bench-serve: build first (make build)" >&2; exit 1; }
DATA=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
URL=http://127.0.0.1:$PORT
ROOMCAST_ADMIN_PASSWORD=bench-password-1 $BIN --log-level warn serve --listen 127.0.0.1:$PORT --data "$DATA" \
  --cpu-capacity 1000 2>"$DATA/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -fs "$URL/healthz" >/dev/null && break; sleep 0.2; done
TOKEN=$($BIN token --data "$DATA" --user admin)
api() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }
best=0
for n in $(seq 1 "$MAXN"); do
  ids=()
  for _ in $(seq "$n"); do
    id=$(api -X POST "$URL/api/v1/broadcasts" -d '{"room":"demo:?busy=1","size":"1280x720"}' | sed -E 's/.*"id":"([^"]+)".*/\1/')
    ids+=("$id")
  done
  sleep "$SECS"
  drops=0 frames=0
  for id in "${ids[@]}"; do
    s=$(api "$URL/api/v1/broadcasts/$id")
    d=$(sed -E 's/.*"dropped_frames":([0-9]+).*/\1/' <<<"$s")
    f=$(sed -E 's/.*"frames_out":([0-9]+).*/\1/' <<<"$s")
    drops=$((drops + d)) frames=$((frames + f))
    api -X POST "$URL/api/v1/broadcasts/$id/stop" >/dev/null
  done
  # Let them finalise before the next round.
  for id in "${ids[@]}"; do
    for _ in $(seq 120); do api "$URL/api/v1/broadcasts/$id" | grep -q '"state":"done"' && break; sleep 0.5; done
  done
  cpu=$(grep -o '^roomcast_cpu_cores_used [0-9.]*' <(curl -fs "$URL/metrics") | cut -d' ' -f2)
  awk -v n="$n" -v s="$SECS" -v f="$frames" -v d="$drops" -v c="${cpu:-?}" \
    'BEGIN { printf "serve: %d x 720p30 busy for %ds: %d frames out (%.1f fps each, want 30), %d dropped, %s cores\n", n, s, f, f/n/s, d, c }'
  [[ $drops -eq 0 ]] || break
  best=$n
done
echo "serve: concurrent 720p30 broadcasts held in real time with zero dropped frames: $best"
