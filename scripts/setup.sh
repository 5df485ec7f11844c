#!/usr/bin/env bash
# Prepare a fresh Debian machine: install the real servers the proxy talks to (redis,
# memcached, memcslap) and the headless browser the dashboard tests drive (chromium) when
# missing, then the npm dependencies (which bring the deno and bun binaries). Used by
# .ci/run and by the README's quick start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=()
for tool in redis-server redis-cli memcached memcslap; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    packages=(redis-server memcached libmemcached-tools)
  fi
done
# The dashboard's browser tests drive /usr/bin/chromium headless over the DevTools protocol.
if [ ! -x /usr/bin/chromium ]; then
  packages+=(chromium)
fi
# Debian's nodejs is only a fallback; the project needs Node >= 20.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y "${packages[@]}"
fi

echo "node $(node --version)"
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "Node >= 20 is required" >&2
  exit 1
fi

npm ci

# deno and bun come from npm (devDependencies); these are the binaries the tests use.
./node_modules/.bin/deno --version
echo "bun $(./node_modules/.bin/bun --version)"
redis-server --version
memcached -V
/usr/bin/chromium --version
