#!/usr/bin/env bash
# Local Ethereum node (anvil, from npm, pinned in scripts/anvil/package-lock.json) for the
# medseal-chain RpcChain tests and the gas check. Loopback only.
#
#   scripts/anvil-node.sh install   # npm ci in scripts/anvil/
#   scripts/anvil-node.sh start     # start in the background, wait until it answers,
#                                   # print MEDSEAL_ETH_RPC=http://127.0.0.1:PORT
#   scripts/anvil-node.sh stop      # stop the node started by `start`
#   scripts/anvil-node.sh status
#
# Environment: MEDSEAL_ANVIL_PORT (default 8545). State (pid file, log) lives in .nodes/.
# Typical use:  eval "$(scripts/anvil-node.sh start)"; export MEDSEAL_ETH_RPC
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/scripts/anvil"
anvil="$pkg/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
state="$root/.nodes"
pidfile="$state/anvil.pid"
logfile="$state/anvil.log"
host=127.0.0.1
port="${MEDSEAL_ANVIL_PORT:-8545}"
url="http://$host:$port"

log() { echo "anvil-node: $*" >&2; }

answers() {
  curl -sf --max-time 1 -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$url" >/dev/null 2>&1
}

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

install() {
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
  "$anvil" --version | head -n 1 >&2
}

start() {
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    echo "MEDSEAL_ETH_RPC=$url"
    return 0
  fi
  if [ ! -x "$anvil" ]; then
    log "anvil is not installed; running install first"
    install
  fi
  if answers; then
    log "something else already answers on $url; refusing to start a second node"
    return 1
  fi
  mkdir -p "$state"
  # setsid: the node gets its own session, so it outlives this script and `stop` can kill it.
  setsid "$anvil" --host "$host" --port "$port" --hardfork prague >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    if answers; then
      log "started (pid $(cat "$pidfile")), log: $logfile"
      echo "MEDSEAL_ETH_RPC=$url"
      return 0
    fi
    if ! running_pid >/dev/null; then
      break
    fi
    sleep 0.1
  done
  log "anvil did not become ready on $url; last log lines:"
  tail -n 20 "$logfile" >&2 || true
  stop || true
  return 1
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$pidfile"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "stopped (pid $pid)"
}

status() {
  if pid="$(running_pid)"; then
    log "running (pid $pid) on $url"
  else
    log "not running"
    return 1
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 {install|start|stop|status}" >&2
    exit 2
    ;;
esac
