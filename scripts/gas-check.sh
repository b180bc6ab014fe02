#!/usr/bin/env bash
# Gas check of the MedsealRegistry contract: runs the gas_report example on the embedded revm
# chain and against the JSON-RPC node at MEDSEAL_ETH_RPC (loopback only, e.g. anvil from
# scripts/anvil-node.sh), and fails unless
#   * both runs print the same JSON object (same EVM rules, same calldata => same gas), and
#   * the gas targets hold (createRecord <= 120k, grantAccess <= 50k, anchorIndex <= 60k,
#     also with MEDSEAL_GAS_RECORDS records already in the registry, default 1000).
#
# Usage: MEDSEAL_ETH_RPC=http://127.0.0.1:8545 scripts/gas-check.sh
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rpc="${MEDSEAL_ETH_RPC:-}"
if [ -z "$rpc" ]; then
  echo "gas-check: MEDSEAL_ETH_RPC is not set (start a node: scripts/anvil-node.sh start)" >&2
  exit 1
fi
case "$rpc" in
  http://127.*|http://localhost:*|http://localhost|http://\[::1\]*) ;;
  *)
    echo "gas-check: MEDSEAL_ETH_RPC must be a loopback http URL, got $rpc" >&2
    exit 1
    ;;
esac
records="${MEDSEAL_GAS_RECORDS:-1000}"

run_report() {
  # Full table on stderr for the log; the last line (the JSON object) on stdout.
  local out
  if ! out="$(cargo run --release --quiet --example gas_report -- --json --records "$records" "$@")"; then
    printf '%s\n' "$out" >&2
    echo "gas-check: gas_report $* failed" >&2
    return 1
  fi
  printf '%s\n' "$out" >&2
  printf '%s\n' "$out" | tail -n 1
}

echo "gas-check: embedded chain" >&2
embedded="$(run_report)" || exit 1
echo "gas-check: node at $rpc" >&2
node_json="$(run_report --rpc "$rpc")" || exit 1

node -e '
  const [embedded, node] = process.argv.slice(1).map((s) => JSON.parse(s));
  const targets = { createRecord: 120000, grantAccess: 50000, anchorIndex: 60000 };
  let failed = false;
  const keys = new Set([...Object.keys(embedded), ...Object.keys(node)]);
  for (const key of keys) {
    if (embedded[key] !== node[key]) {
      console.error(`gas-check: ${key}: embedded ${embedded[key]} != node ${node[key]}`);
      failed = true;
    }
  }
  for (const [op, target] of Object.entries(targets)) {
    const measured = Object.keys(embedded).filter((k) => k === op || k.startsWith(op + "@"));
    if (measured.length === 0) {
      console.error(`gas-check: ${op} was not measured`);
      failed = true;
    }
    for (const key of measured) {
      if (embedded[key] > target) {
        console.error(`gas-check: ${key} = ${embedded[key]} gas exceeds the target ${target}`);
        failed = true;
      }
    }
  }
  if (failed) process.exit(1);
  console.error(`gas-check: OK — ${keys.size} operations agree between the embedded chain and the node; targets hold`);
' "$embedded" "$node_json"
