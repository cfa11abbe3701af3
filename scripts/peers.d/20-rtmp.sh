#!/usr/bin/env bash
# RTMP ingest servers for the rtmp/ package's integration tests:
# - nginx with Debian's RTMP module (libnginx-mod-rtmp); the tests write their
#   own config and run it in the foreground, so the packaged service must not
#   start (policy-rc.d refuses it during the install);
# - node-media-server 2.7.4 (what PeerTube embeds) and 4.x (RTMPS) from npm,
#   into $ROOMCAST_CACHE/nms2 and $ROOMCAST_CACHE/nms4.
set -euo pipefail
: "${ROOMCAST_CACHE:?}"

if ! dpkg-query -W -f='${Status}' libnginx-mod-rtmp 2>/dev/null | grep -q 'install ok installed'; then
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_install nginx libnginx-mod-rtmp
  if [[ -n $made_policy ]]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

nms_install() { # dir version
  local dir=$ROOMCAST_CACHE/$1 want=$2
  local have
  have=$(node -p "require('$dir/node_modules/node-media-server/package.json').version" 2>/dev/null || true)
  [[ $have == "$want" ]] && return 0
  mkdir -p "$dir"
  npm install --no-audit --no-fund --loglevel=error --prefix "$dir" "node-media-server@$want"
}
command -v node >/dev/null || apt_install nodejs npm
nms_install nms2 2.7.4
nms_install nms4 4.4.3
