#!/usr/bin/env python3
"""Writes the one markdown table of scripts/reproduce.sh from the reports' JSON.

Reads REPRO_DIR/<report>.json (abe, index, scale, gas, covercrypt, findex, python; a
missing file is reported as not run) and the REPRO_* variables the script sets; prints
markdown on stdout. Standard library only.
"""

import json
import os
import platform
from pathlib import Path

OUT = Path(os.environ.get("REPRO_DIR", "target/reproduce"))


def load(name):
    path = OUT / f"{name}.json"
    if not path.exists() or not path.read_text().strip():
        return None
    return json.loads(path.read_text())


def num(x, digits=2):
    if x is None:
        return ""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 100):
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def ratio(x):
    return "" if x is None else f"{x:.2f}×"


def machine():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} logical CPUs, {mem} RAM"
    )


rows = []  # (report, measure, parameter, medseal, peer, peer time / medseal time)
missing = []


def row(report, measure, param, medseal, peer=None, r=None):
    rows.append((report, measure, param, medseal, peer, r))


abe = load("abe")
if abe is None:
    missing.append("abe_report")
else:
    for r in abe:
        floor = f" (floor {num(r['floor_ms'])} ms)" if r.get("floor_ms") else ""
        row("CP-ABE vs rabe AC17", f"{r['op']} ms{floor}", f"n={r['n']}",
            num(r["medseal_ms"]), num(r["rabe_ms"]), ratio(r["ratio"]))

py = load("python")
if py is None:
    missing.append("Python timings")
else:
    for r in py:
        # "peer" is the Rust report's figure; the ratio is the Rust report's over Python's.
        report = r.get("report_ms")
        spread = r.get("report_spread")
        runs = f", report's own spread {spread:.2f}×" if spread else ""
        row("FAME from Python",
            f"{r['op']} ms (Python; peer: the Rust abe_report{runs})",
            f"n={r['n']}", num(r["python_ms"]), num(report),
            ratio(report / r["python_ms"]) if report else None)
        row("FAME from Python", f"{r['op']} binding overhead (vs a Rust loop in-process)",
            f"n={r['n']}", f"{r['overhead_pct']:+.2f} % ({r['overhead_us']:+.1f} µs)")

idx = load("index")
if idx is None:
    missing.append("index_report")
else:
    for s in idx.get("sizes", []):
        p = f"{s['entries']:,} entries"
        row("SSE index", "100-result query µs", p, num(s["us_per_query_100"]))
        row("SSE index", "100-result query, proved + verified µs", p,
            num(s["us_per_query_100_verified"]))
        row("SSE index", "1-hit query, proved + verified µs", p,
            num(s["us_per_query_1_verified"]))
        row("SSE index", "proof bytes, 1 hit", p, num(s["proof_bytes_1"]))
        row("SSE index", f"proof bytes, ~100 hits ({s['results_near_100']})", p,
            num(s["proof_bytes_100"]))
    row("SSE index", "build entries/s (slowest size)", "", num(idx["sse_build_entries_per_s"]))
    row("SSE vs ABKS scan", "speedup at 10^5 records (scan scaled)", "",
        f"{idx['speedup_at_1e5']:.2e}×")

scale = load("scale")
if scale is None:
    missing.append("scale_report")
else:
    for r in scale["rows"]:
        p = f"{r['records']:,} records"
        row("Vault (embedded)", "put ms", p, num(r["put_ms"]))
        row("Vault (embedded)", "warm 1-hit search ms", p, num(r["warm_search_1_hit_ms"], 3))
        row("Vault (embedded)", f"warm common search ms ({r['common_hits']} hits)", p,
            num(r["warm_search_common_ms"]))
        row("Vault (embedded)", "cold search ms", p, num(r["cold_search_ms"]))
        row("Vault (embedded)", "get ms", p, num(r["get_ms"]))
        row("Vault (embedded)", "bulk import records/s", p, num(r["bulk_records_per_s"]))
        row("Vault (embedded)", "proof bytes 1 hit / common", p,
            f"{r['proof_bytes_1_hit']:,} / {r['proof_bytes_common']:,}")
        row("Vault (embedded)", "chain reads per search (warm 1-hit / common / cold)", p,
            f"{r['chain_reads_1_hit']} / {r['chain_reads_common']} / {r['chain_reads_cold']}")
    g = scale["growth"]
    a, b = scale["growth_between"]
    row("Vault (embedded)", f"warm 1-hit growth {a:,}→{b:,} (side by side)", "",
        ratio(g["warm_search_1_hit_side_by_side"]))
    p = scale["partitions"]
    row("Vault (embedded)", "warm 1-hit search ms / chain reads", f"{p['partitions']} partitions",
        f"{num(p['warm_search_1_hit_ms'])} / {p['chain_reads_1_hit']}")

gas = load("gas")
if gas is None:
    missing.append("gas_report")
else:
    for op in ["createRecord", "createRecords/record", "grantAccess", "anchorIndex",
               "publishCapsule", "registerMember", "revokeMember"]:
        if op in gas["gas"]:
            row("Registry gas", op, "", num(gas["gas"][op]))
    row("Registry gas", "targets hold", "", str(gas["targets_hold"]).lower())

cc = load("covercrypt")
if cc is None:
    missing.append("covercrypt_report")
else:
    name = f"Capsule vs CoverCrypt {cc['covercrypt_version']}"
    for r in cc["rows"]:
        pol = "" if r["policy"] == "-" else f"{r['policy']} policy"
        row(name, f"{r['op']} ms (peer: classic)", pol, num(r["medseal_ms"], 3),
            num(r["covercrypt_classic_ms"], 3), ratio(r["classic_over_medseal"]))
        row(name, f"{r['op']} ms (peer: hybrid ML-KEM-512)", pol, num(r["medseal_ms"], 3),
            num(r["covercrypt_hybrid_ms"], 3), ratio(r["hybrid_over_medseal"]))
    b = cc["bytes"]
    for what in ["public_key", "user_key"]:
        row(name, f"{what.replace('_', ' ')} bytes (peer: classic / hybrid)", "",
            num(b["medseal"][what]),
            f"{b['covercrypt_classic'][what]:,} / {b['covercrypt_hybrid'][what]:,}")
    for m, c, h in zip(b["medseal"]["encapsulation"], b["covercrypt_classic"]["encapsulation"],
                       b["covercrypt_hybrid"]["encapsulation"]):
        row(name, "encapsulation bytes (peer: classic / hybrid)", f"{m['policy']} policy",
            num(m["bytes"]), f"{c['bytes']:,} / {h['bytes']:,}")

fx = load("findex")
if fx is None:
    missing.append("findex_report")
else:
    name = f"SSE vs Findex {fx['findex_version']}"
    for r in fx["rows"]:
        p = f"{r['entries']:,} entries"
        m, f = r["medseal_insert_entries_per_s"], r["findex_insert_entries_per_s"]
        row(name, "insert entries/s", p, num(m), num(f), ratio(m / f))
        for q in r["queries"]:
            if q["results"] is None:
                row(name, f"search, ~{q['target']:,} results", p,
                    f"n/a (largest list {q['most_results_at_size']:,})")
                continue
            qp = f"{p}, {q['results']:,} result{'' if q['results'] == 1 else 's'}"
            row(name, "search µs", qp, num(q["medseal_us"]), num(q["findex_us"]),
                ratio(q["findex_us"] / q["medseal_us"]))
            row(name, "verified search µs (medseal only)", qp, num(q["medseal_verified_us"]))
            row(name, "proof bytes (medseal only)", qp, num(q["proof_bytes"]))

env = os.environ.get
print("# medseal: reproduced benchmark table\n")
print(f"- commit: `{env('REPRO_COMMIT', '?')}`")
print(f"- date (UTC): {env('REPRO_STARTED', '?')}, {env('REPRO_SECONDS', '?')} s in all, "
      f"mode: {env('REPRO_MODE', '?')}")
print(f"- machine: {machine()}")
print(f"- load average (1, 5, 15 min): {env('REPRO_LOAD_START', '?')} at the start, "
      f"{env('REPRO_LOAD_END', '?')} at the end")
print(f"- toolchain: {env('REPRO_RUSTC', '?')}, Python {platform.python_version()}")
if missing:
    print(f"- not run: {', '.join(missing)}")
print()
print("Times are medians of interleaved rounds in one process; compare ratios, not absolute "
      "times, between machines. What each comparison does and does not say: BENCHMARKS.md.\n")
print("| report | measure | size | medseal | peer | peer time / medseal time |")
print("|---|---|---|---:|---:|---:|")
for report, measure, param, medseal, peer, r in rows:
    print(f"| {report} | {measure} | {param} | {medseal} | {peer or ''} | {r or ''} |")
