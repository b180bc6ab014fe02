#!/usr/bin/env bash
# Regenerates crates/chain/contracts/MedsealRegistry.json from MedsealRegistry.sol with the
# solcjs version pinned in package-lock.json (installs it with `npm ci` when missing).
#
# Usage: crates/chain/contracts/build.sh [OUTPUT.json]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -d node_modules/solc ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
out="${1:-MedsealRegistry.json}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
node build.js "$out"
