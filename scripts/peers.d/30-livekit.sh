#!/usr/bin/env bash
# Peers for room/livekit and the recorder's live tests: livekit-server (built
# from the Go module proxy), Debian's Chromium, and livekit-client from npm for
# the browser publisher page. Idempotent: each step is skipped when its result
# is already there with the pinned version.
set -euo pipefail
: "${ROOMCAST_CACHE:?run through scripts/peers.sh}"

LK_VERSION=1.13.5
LK_CLIENT_VERSION=2.23.0
bin="$ROOMCAST_CACHE/bin"
mkdir -p "$bin"

# livekit-server: `go install` names the binary after its directory
# (cmd/server -> "server"); keep a versioned copy so several versions can sit
# side by side and tests find the pinned one by name.
lk="$bin/livekit-server-$LK_VERSION"
if ! [[ -x $lk ]] || ! go version -m "$lk" 2>/dev/null | grep -q "livekit-server.*v$LK_VERSION"; then
  GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/livekit/livekit-server/cmd/server@v$LK_VERSION"
  mv -f "$bin/server" "$lk"
fi

apt_install chromium

client="$ROOMCAST_CACHE/lkclient"
if ! [[ -f $client/node_modules/livekit-client/package.json ]] ||
  ! grep -q "\"version\": \"$LK_CLIENT_VERSION\"" "$client/node_modules/livekit-client/package.json"; then
  mkdir -p "$client"
  [[ -f $client/package.json ]] || echo '{"name":"roomcast-lkclient","private":true}' >"$client/package.json"
  (cd "$client" && npm install --no-audit --no-fund --save-exact "livekit-client@$LK_CLIENT_VERSION")
fi
