#!/usr/bin/env bash
# GDPR tests: the standard age tool decrypts a finished encrypted recording
# (interoperability), and nftables counts packets that try to leave the
# loopback-only network namespace of the no-third-party test.
set -euo pipefail
apt_install age nftables
