#!/usr/bin/env bash
# Fails unless the committed artifact MedsealRegistry.json is exactly what build.sh produces
# from the committed MedsealRegistry.sol and the pinned compiler. CI calls this.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/build.sh" "$tmp/MedsealRegistry.json" >/dev/null
if ! cmp -s "$tmp/MedsealRegistry.json" "$here/MedsealRegistry.json"; then
  echo "check.sh: crates/chain/contracts/MedsealRegistry.json is stale or was edited by hand." >&2
  echo "check.sh: regenerate it with crates/chain/contracts/build.sh and commit the result." >&2
  diff <(head -c 2000 "$here/MedsealRegistry.json") <(head -c 2000 "$tmp/MedsealRegistry.json") >&2 || true
  exit 1
fi
echo "check.sh: MedsealRegistry.json reproduces byte for byte"
