#!/usr/bin/env bash
# Base tools for the benchmarks: GNU time (/usr/bin/time -f) measures the
# CPU seconds and peak RSS of roomcast and of the ffmpeg command it is
# compared with (scripts/bench.sh).
set -euo pipefail
apt_install time
