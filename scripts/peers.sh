#!/usr/bin/env bash
# Installs the real peers the integration tests talk to (nginx-rtmp,
# node-media-server, livekit-server, Chromium...). Each peer has its own
# idempotent script in scripts/peers.d/; they install through apt-get, npm and
# the Go module proxy only, into the system or $ROOMCAST_CACHE.
set -euo pipefail
cd "$(dirname "$0")"
export ROOMCAST_CACHE=${ROOMCAST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomcast}
mkdir -p "$ROOMCAST_CACHE"
# Only refresh apt's lists when something needs installing (scripts call apt_install).
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ -z ${APT_UPDATED:-} ]]; then apt-get update -q; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
export -f apt_install
for s in peers.d/*.sh; do
  [[ -e $s ]] || continue
  echo "peers: $s" >&2
  bash "$s"
done
