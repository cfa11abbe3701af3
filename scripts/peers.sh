#!/usr/bin/env bash
# Installs the real peers the integration tests talk to. Idempotent; as root.
set -euo pipefail
need=()
for p in ca-certificates; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
