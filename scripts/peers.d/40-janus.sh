#!/usr/bin/env bash
# Janus WebRTC gateway (Debian 12: 1.1.2) for room/janus and the Janus e2e
# tests, and Janus's own JavaScript library (libjs-janus-gateway: janus.js)
# for the Chromium publisher page. The tests write their own loopback-only
# configuration and run janus in the foreground, so the packaged service must
# not start (policy-rc.d refuses it during the install). Idempotent: nothing
# happens when both packages are installed.
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if installed janus && installed libjs-janus-gateway; then exit 0; fi

made_policy=
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  made_policy=1
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_install janus libjs-janus-gateway
if [[ -n $made_policy ]]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
# The package enables a system service; the tests never use it.
if command -v systemctl >/dev/null && systemctl is-enabled janus >/dev/null 2>&1; then
  systemctl disable --now janus >/dev/null 2>&1 || true
fi
