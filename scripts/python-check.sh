#!/usr/bin/env bash
# The Python package's gate: format and lints of its crate, `pip install` of the package
# into a fresh virtual environment, its pytest suite, and a quick run of the benchmark.
#
#   scripts/python-check.sh            # from anywhere in the repository
#
# Needs python3 (>= 3.9, with venv and pip; pip fetches maturin and pytest) and the Rust
# toolchain. The crate is built in CARGO_TARGET_DIR (default: the root's target/, so the
# curve crates are shared with the workspace build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
manifest=bindings/python/Cargo.toml
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

echo "python-check: format and clippy of $manifest"
cargo fmt --manifest-path "$manifest" -- --check
cargo clippy --manifest-path "$manifest" --all-targets -- -D warnings

venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
echo "python-check: pip install ./bindings/python into a fresh venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet ./bindings/python pytest

echo "python-check: pytest"
# From outside the source tree, so the installed package (not bindings/python/python) is
# what the tests import.
(cd "$venv" && "$venv/bin/python" -m pytest -q "$root/bindings/python/tests")

echo "python-check: benchmark (quick)"
"$venv/bin/python" bindings/python/bench/fame_timings.py --quick
