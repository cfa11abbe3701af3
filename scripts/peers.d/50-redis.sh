#!/usr/bin/env bash
# Debian's redis-server (Debian 12: 7.0) for the LiveKit egress-worker tests:
# livekit-server dispatches egress requests over Redis (psrpc). The tests run
# their own redis-server on 127.0.0.1, a free port and no persistence, so the
# packaged service must not start (policy-rc.d refuses it during the install)
# and is disabled afterwards. Idempotent: nothing happens once installed.
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if installed redis-server; then exit 0; fi

made_policy=
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  made_policy=1
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_install redis-server
if [[ -n $made_policy ]]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
if command -v systemctl >/dev/null && systemctl is-enabled redis-server >/dev/null 2>&1; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
