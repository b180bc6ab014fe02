#!/usr/bin/env bash
# Reruns the headline reports of BENCHMARKS.md in one go, on this machine, and writes one
# markdown table with the machine's description, the commit and the date. Not included
# (each has its own command in BENCHMARKS.md): revocation_report, clinic_report,
# abks_guessing and the criterion benches.
#
#   scripts/reproduce.sh [--quick] [--out DIR] [--skip-python] [--skip-comparisons]
#
# Runs, one after another (never two at once: they would share the cores):
#   * abe_report          FAME vs rabe AC17 vs the pairing floor   (examples/abe_report.rs)
#   * index_report        SSE build/search/proofs vs the ABKS scan (examples/index_report.rs)
#   * scale_report        the whole vault at 10^2..10^4 records    (always --quick: ~3 min)
#   * gas_report          registry gas on the embedded chain       (examples/gas_report.rs)
#   * covercrypt_report   record-key capsule vs Cosmian CoverCrypt (comparisons/)
#   * findex_report       SSE vs Cosmian Findex                     (comparisons/)
#   * fame_timings.py     FAME from Python vs the Rust report, run alternately 3 times
#                         (bindings/python/; pip installs it into a venv in DIR)
# --quick passes --quick to the reports that have it (the published tables use full runs
# except for the scale report; see BENCHMARKS.md). Each report's JSON and log go to DIR
# (default target/reproduce); the table is DIR/REPORT.md and is also printed.
# Needs: cargo, python3 (for the table, and with venv + pip for the Python package).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=()
out=target/reproduce
python=1
comparisons=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=(--quick) ;;
        --out) out="${2:?--out needs a directory}"; shift ;;
        --skip-python) python=0 ;;
        --skip-comparisons) comparisons=0 ;;
        *)
            echo "usage: scripts/reproduce.sh [--quick] [--out DIR] [--skip-python] [--skip-comparisons]" >&2
            exit 2
            ;;
    esac
    shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v python3 >/dev/null || { echo "reproduce: python3 is needed to write the table" >&2; exit 1; }

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
t0=$SECONDS

# Runs one report: its stdout's last line (the JSON) to NAME.json, everything to NAME.log.
report() {
    local name=$1
    shift
    echo "== $name: $*" >&2
    local t=$SECONDS
    if ! "$@" >"$out/$name.log" 2>&1; then
        tail -n 20 "$out/$name.log" >&2
        echo "reproduce: $name failed (log: $out/$name.log)" >&2
        exit 1
    fi
    grep -E '^[[:space:]]*[[{]' "$out/$name.log" | tail -n 1 >"$out/$name.json"
    echo "   $((SECONDS - t)) s" >&2
}

echo "== building the reports (release)" >&2
cargo build --release --quiet --example abe_report --example index_report \
    --example scale_report --example gas_report
bin=${CARGO_TARGET_DIR:-target}/release/examples

report abe "$bin/abe_report" --json "${quick[@]}"
report index "$bin/index_report" --json "${quick[@]}"
report scale "$bin/scale_report" --json --quick
report gas "$bin/gas_report" --json --records 1000

if [ "$comparisons" = 1 ]; then
    # In the root's target directory too: the crates they share are built once.
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" \
        cargo build --release --quiet --manifest-path comparisons/Cargo.toml --bins
    cbin=${CARGO_TARGET_DIR:-target}/release
    report covercrypt "$cbin/covercrypt_report" --json "${quick[@]}"
    report findex "$cbin/findex_report" --json "${quick[@]}"
fi

if [ "$python" = 1 ]; then
    echo "== the Python package (pip install ./bindings/python into $out/venv)" >&2
    python3 -m venv "$out/venv"
    "$out/venv/bin/pip" install --quiet --upgrade pip
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" \
        "$out/venv/bin/pip" install --quiet ./bindings/python
    # Alternately with 3 more runs of the Rust report (~30 s each): the comparison of two
    # processes needs it on a shared machine (see BENCHMARKS.md, "Python binding").
    report python "$out/venv/bin/python" bindings/python/bench/fame_timings.py --json \
        --against-report "$bin/abe_report" --repeat 3
fi

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD -- 2>/dev/null; then commit="$commit (with uncommitted changes)"; fi
export REPRO_DIR="$out" REPRO_COMMIT="$commit" REPRO_STARTED="$started" \
    REPRO_LOAD_START="$load_start" REPRO_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")" \
    REPRO_SECONDS=$((SECONDS - t0)) REPRO_MODE="${quick[*]:-full}" \
    REPRO_RUSTC="$(rustc --version)"
python3 scripts/reproduce_table.py >"$out/REPORT.md"
cat "$out/REPORT.md"
echo "reproduce: wrote $out/REPORT.md" >&2
