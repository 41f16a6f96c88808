#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing:
# PostgreSQL server binaries, redis-server (shared rate limits and leases) and Debian's
# Chromium (browser tests; no browser download).
set -euo pipefail
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_redis() { command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; }
have_chromium() { command -v chromium >/dev/null 2>&1; }
missing=()
have_pg || missing+=(postgresql)
have_redis || missing+=(redis-server)
have_chromium || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing for the test suite (apt): ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
have_pg && have_redis && have_chromium
