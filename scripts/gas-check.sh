#!/usr/bin/env bash
# Gas check of the MedsealRegistry contract: runs the gas_report example on the embedded revm
# chain and against the JSON-RPC node at MEDSEAL_ETH_RPC (loopback only, e.g. anvil from
# scripts/anvil-node.sh), and fails unless
#   * both runs measure the same gas for every operation (same EVM rules, same calldata =>
#     same gas), and
#   * the gas targets hold, as judged by gas_report itself against the targets defined in
#     medseal-chain (gas_report::GAS_TARGETS), also with MEDSEAL_GAS_RECORDS records already
#     in the registry (default 1000).
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
  # Full table on stderr for the log; the last line (the JSON object) on stdout. gas_report
  # exits non-zero when a target is missed.
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
  let failed = false;
  const keys = new Set([...Object.keys(embedded.gas), ...Object.keys(node.gas)]);
  for (const key of keys) {
    if (embedded.gas[key] !== node.gas[key]) {
      console.error(`gas-check: ${key}: embedded ${embedded.gas[key]} != node ${node.gas[key]}`);
      failed = true;
    }
  }
  for (const [name, report] of [["embedded", embedded], ["node", node]]) {
    for (const [op, verdict] of Object.entries(report.targets)) {
      if (!verdict.holds) {
        console.error(`gas-check: ${name}: the ${op} target (${verdict.max} gas) does not hold`);
      }
    }
    if (report.targets_hold !== true) {
      console.error(`gas-check: ${name}: gas_report says the targets do not hold`);
      failed = true;
    }
  }
  if (failed) process.exit(1);
  console.error(`gas-check: OK — ${keys.size} operations agree between the embedded chain and the node; targets hold`);
' "$embedded" "$node_json"
