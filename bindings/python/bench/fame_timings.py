"""FAME timings from Python, against the same operations in a Rust loop.

The workload of the Rust ``abe_report`` example: an AND policy of n attribute names, a
key with the same n attributes, a warm public key (its attribute-hash cache filled);
ops keygen, encrypt (= encapsulate) and decrypt (= decapsulate); n = 10 and 50. Each
round times one Python call (``time.perf_counter``) and then one call of the same
operation on the same objects in a Rust loop (``medseal._native._time_fame``); rounds
are interleaved so machine noise hits both alike, and medians are reported. The
difference is the binding's overhead (argument conversion, GIL release, result objects).

    python bench/fame_timings.py [--quick] [--json] [--rounds N] [--rust-json FILE]
    python bench/fame_timings.py --against-report PATH/TO/abe_report [--repeat K] [--json]

``--rust-json FILE`` reads the JSON array printed by
``cargo run --release --example abe_report -- --quick --json`` (its last line) and adds
the ratio of the Python time to the report's ``medseal_ms``.

``--against-report BINARY`` compares with the Rust report itself, run K times (default
5) alternately with K runs of this measurement (``--quick`` rounds each), so the
machine's drift between processes hits both alike: per op and n, the median of the
report's K medians against the median of Python's K medians. It also prints the spread
of the report's own K runs (max / min), the noise floor of any comparison between two
processes on this machine. One alternation takes about 30 s (the report times rabe too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

import medseal
from medseal._native import _time_fame

OPS = ("keygen", "encrypt", "decrypt")
NS = (10, 50)


def read_report(path: str) -> Dict[Tuple[str, int], float]:
    """The ``medseal_ms`` of each (op, n) of an ``abe_report --json`` output (the JSON
    array may be preceded by the report's table)."""
    text = open(path, encoding="utf-8").read()
    start = text.rindex("[{")
    rows = json.loads(text[start:].strip())
    return {(r["op"], int(r["n"])): float(r["medseal_ms"]) for r in rows}


def measure(rounds: int) -> List[dict]:
    pk, msk = medseal.Fame.setup()
    rows = []
    for n in NS:
        names = [f"attr:a{i}" for i in range(n)]
        policy = medseal.Policy(" and ".join(names))
        key = medseal.Fame.keygen(pk, msk, names)  # also warms the hash cache
        _, ct = medseal.Fame.encapsulate(pk, policy)
        calls: Dict[str, Callable[[], object]] = {
            "keygen": lambda: medseal.Fame.keygen(pk, msk, names),
            "encrypt": lambda: medseal.Fame.encapsulate(pk, policy),
            "decrypt": lambda: medseal.Fame.decapsulate(key, ct),
        }
        for op in OPS:
            call = calls[op]
            call()  # warm-up
            _time_fame(op, 1, pk, msk, key, ct)
            py_s, rust_s = [], []
            for _ in range(rounds):
                t = time.perf_counter()
                call()
                py_s.append(time.perf_counter() - t)
                rust_s.append(_time_fame(op, 1, pk, msk, key, ct)[0])
            py_ms = statistics.median(py_s) * 1e3
            rust_ms = statistics.median(rust_s) * 1e3
            rows.append(
                {
                    "op": op,
                    "n": n,
                    "python_ms": py_ms,
                    "rust_ms": rust_ms,
                    "overhead_pct": (py_ms - rust_ms) / rust_ms * 100.0,
                    "overhead_us": (py_ms - rust_ms) * 1e3,
                }
            )
            print(f"n = {n}: {op} done", file=sys.stderr)
    return rows


def run_report(binary: str) -> Dict[Tuple[str, int], float]:
    """One run of ``abe_report --quick --json``: its ``medseal_ms`` per (op, n)."""
    out = subprocess.run(
        [binary, "--quick", "--json"], check=True, capture_output=True, text=True
    ).stdout
    last = [line for line in out.splitlines() if line.startswith("[{")][-1]
    return {(r["op"], int(r["n"])): float(r["medseal_ms"]) for r in json.loads(last)}


def against_report(binary: str, repeat: int, rounds: int) -> List[dict]:
    """Alternates ``repeat`` runs of the Rust report with ``repeat`` Python measurements."""
    reports: List[Dict[Tuple[str, int], float]] = []
    measured: List[List[dict]] = []
    for k in range(repeat):
        print(f"alternation {k + 1}/{repeat}: Rust report", file=sys.stderr)
        reports.append(run_report(binary))
        print(f"alternation {k + 1}/{repeat}: Python", file=sys.stderr)
        measured.append(measure(rounds))
    rows = []
    for i, first in enumerate(measured[0]):
        key = (first["op"], first["n"])
        runs = [m[i] for m in measured]
        report = [r[key] for r in reports]
        py_ms = statistics.median(r["python_ms"] for r in runs)
        rust_ms = statistics.median(r["rust_ms"] for r in runs)
        report_ms = statistics.median(report)
        rows.append(
            {
                "op": key[0],
                "n": key[1],
                "python_ms": py_ms,
                "rust_ms": rust_ms,
                "overhead_pct": (py_ms - rust_ms) / rust_ms * 100.0,
                "overhead_us": (py_ms - rust_ms) * 1e3,
                "report_ms": report_ms,
                "python_over_report": py_ms / report_ms,
                "report_spread": max(report) / min(report),
                "repeat": repeat,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="7 rounds instead of 31")
    parser.add_argument("--rounds", type=int, help="rounds per op and n")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--rust-json", metavar="FILE", help="abe_report --json output")
    parser.add_argument(
        "--against-report", metavar="BINARY", help="the abe_report binary, run alternately"
    )
    parser.add_argument("--repeat", type=int, default=5, help="alternations (default 5)")
    args = parser.parse_args()
    if args.against_report:
        rounds = args.rounds or 7
        rows = against_report(args.against_report, args.repeat, rounds)
        report = {(r["op"], r["n"]): r["report_ms"] for r in rows}
    else:
        rounds = args.rounds or (7 if args.quick else 31)
        report = read_report(args.rust_json) if args.rust_json else {}
        rows = measure(rounds)
        for r in rows:
            ref = report.get((r["op"], r["n"]))
            if ref is not None:
                r["report_ms"] = ref
                r["python_over_report"] = r["python_ms"] / ref

    print(f"medseal FAME from Python, medians of {rounds} interleaved rounds; AND policies of n attributes")
    header = f"{'op':<8} {'n':>4} {'python ms':>10} {'rust ms':>10} {'overhead':>10} {'overhead us':>12}"
    if report:
        header += f" {'report ms':>10} {'py/report':>10}"
    if args.against_report:
        header += f" {'report spread':>14}"
        print(
            f"(medians of {args.repeat} alternations of the Rust report and of this"
            " measurement; spread: the report's slowest run over its fastest)"
        )
    print(header)
    for r in rows:
        line = (
            f"{r['op']:<8} {r['n']:>4} {r['python_ms']:>10.3f} {r['rust_ms']:>10.3f}"
            f" {r['overhead_pct']:>9.2f}% {r['overhead_us']:>12.1f}"
        )
        if "report_ms" in r:
            line += f" {r['report_ms']:>10.3f} {r['python_over_report']:>9.3f}x"
        if "report_spread" in r:
            line += f" {r['report_spread']:>13.2f}x"
        print(line)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
