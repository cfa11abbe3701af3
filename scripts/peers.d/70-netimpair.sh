#!/usr/bin/env bash
# The recorder's impaired-network test (TestLiveImpairedNetwork) creates a
# network namespace (ip, from iproute2) and drops, for random loss and a
# blackout, packets with nftables inside it. Idempotent: nothing happens
# when both are installed.
set -euo pipefail
apt_install iproute2 nftables
