#!/usr/bin/env bash
# A throw-away js-ipfs node on loopback for the medseal-storage KuboStore tests.
#
#   scripts/ipfs-node.sh install   # npm install from the pinned lockfile (js-ipfs 0.66.1)
#   scripts/ipfs-node.sh start     # fresh repo in a temp dir, daemon in background;
#                                  # prints MEDSEAL_IPFS_API=http://127.0.0.1:5001
#   scripts/ipfs-node.sh stop      # stops the daemon and deletes its repo
#
# The node listens on 127.0.0.1 only and is configured never to reach any other
# address: no bootstrap peers, no MDNS/webRTCStar discovery, no delegate
# routers, no preload nodes, no NAT port mapping (UPnP).
# Ports can be changed with MEDSEAL_IPFS_API_PORT / MEDSEAL_IPFS_SWARM_PORT.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
package_dir="$here/ipfs"
state_dir="$here/../.nodes/ipfs"
pid_file="$state_dir/daemon.pid"
repo_file="$state_dir/repo-path"
log_file="$state_dir/daemon.log"
api_port="${MEDSEAL_IPFS_API_PORT:-5001}"
swarm_port="${MEDSEAL_IPFS_SWARM_PORT:-4002}"
api_url="http://127.0.0.1:$api_port"
jsipfs="$package_dir/node_modules/.bin/jsipfs"

die() {
    echo "ipfs-node.sh: $*" >&2
    exit 1
}

# Succeeds when something answers the version RPC on our API port.
api_answers() {
    curl --silent --fail --max-time 2 -X POST "$api_url/api/v0/version" >/dev/null 2>&1
}

running_pid() {
    [[ -f "$pid_file" ]] || return 1
    local pid
    pid="$(cat "$pid_file")"
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

cmd_install() {
    command -v npm >/dev/null || die "npm not found: install Node.js 18+ (e.g. apt-get install nodejs npm)"
    cd "$package_dir"
    # Not `npm ci`: an optional dependency of js-ipfs (electron-eval -> headless) points at
    # a GitHub tarball that is never fetched here, so the lockfile cannot list it and
    # `npm ci` rejects the lockfile as out of sync. `npm install --no-save` installs exactly
    # the locked versions and never rewrites the lockfile.
    npm install --no-save --no-audit --no-fund --loglevel=error
}

cmd_start() {
    command -v curl >/dev/null || die "curl not found"
    [[ -x "$jsipfs" ]] || die "js-ipfs is not installed: run '$0 install' first"
    if pid="$(running_pid)"; then
        api_answers || die "daemon (pid $pid) is running but $api_url does not answer"
        echo "MEDSEAL_IPFS_API=$api_url"
        return 0
    fi
    if api_answers; then
        die "something else already answers on $api_url; stop it or set MEDSEAL_IPFS_API_PORT"
    fi
    mkdir -p "$state_dir"
    local repo
    repo="$(mktemp -d "${TMPDIR:-/tmp}/medseal-ipfs.XXXXXX")"
    echo "$repo" >"$repo_file"
    IPFS_PATH="$repo" "$jsipfs" init --empty-repo >"$log_file" 2>&1 ||
        die "jsipfs init failed: $(tail -n 20 "$log_file")"
    IPFS_CONFIG="$repo/config" API_PORT="$api_port" SWARM_PORT="$swarm_port" node -e '
        const fs = require("fs");
        const path = process.env.IPFS_CONFIG;
        const c = JSON.parse(fs.readFileSync(path, "utf8"));
        c.Addresses.API = `/ip4/127.0.0.1/tcp/${process.env.API_PORT}`;
        c.Addresses.Swarm = [`/ip4/127.0.0.1/tcp/${process.env.SWARM_PORT}`];
        c.Addresses.Gateway = "";
        c.Addresses.RPC = "";
        c.Addresses.Delegates = [];
        c.Addresses.Announce = [];
        c.Bootstrap = [];
        c.Discovery = { MDNS: { Enabled: false, Interval: 10 }, webRTCStar: { Enabled: false } };
        c.Swarm = Object.assign({}, c.Swarm, { DisableNatPortMap: true });
        fs.writeFileSync(path, JSON.stringify(c, null, 2));
    '
    # The daemon is a child of this shell only until setsid detaches it, so
    # it outlives the caller; its pid goes into the pid file.
    IPFS_PATH="$repo" setsid "$jsipfs" daemon --enable-preload=false >>"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"
    local waited=0
    until api_answers; do
        if ! running_pid >/dev/null; then
            die "daemon exited during start-up: $(tail -n 20 "$log_file")"
        fi
        if ((waited >= 120)); then
            cmd_stop >/dev/null 2>&1 || true
            die "daemon did not answer on $api_url within 60 s: $(tail -n 20 "$log_file")"
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    echo "MEDSEAL_IPFS_API=$api_url"
}

cmd_stop() {
    if pid="$(running_pid)"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped js-ipfs daemon (pid $pid)"
    else
        echo "no js-ipfs daemon running"
    fi
    rm -f "$pid_file"
    if [[ -f "$repo_file" ]]; then
        local repo
        repo="$(cat "$repo_file")"
        case "$repo" in
            */medseal-ipfs.*) rm -rf "$repo" ;;
        esac
        rm -f "$repo_file"
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    *)
        echo "usage: $0 install|start|stop" >&2
        exit 2
        ;;
esac
