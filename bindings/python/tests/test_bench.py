"""The benchmark aid and the benchmark script's reading of the Rust report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import medseal
from medseal._native import _time_fame

BENCH = Path(__file__).resolve().parents[1] / "bench" / "fame_timings.py"


def test_time_fame():
    pk, msk = medseal.Fame.setup()
    key = medseal.Fame.keygen(pk, msk, ["a", "b"])
    _, ct = medseal.Fame.encapsulate(pk, "a and b")
    for op in ("keygen", "encrypt", "decrypt"):
        times = _time_fame(op, 3, pk, msk, key, ct)
        assert len(times) == 3 and all(t > 0 for t in times)
    with pytest.raises(medseal.InputError):
        _time_fame("sign", 1, pk, msk, key, ct)
    # A key that does not satisfy the ciphertext's policy fails like decapsulate does.
    other = medseal.Fame.keygen(pk, msk, ["a"])
    with pytest.raises(medseal.AccessDenied):
        _time_fame("decrypt", 1, pk, msk, other, ct)


def test_read_report(tmp_path):
    spec = importlib.util.spec_from_file_location("fame_timings", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = tmp_path / "abe.txt"
    report.write_text(
        "medseal FAME vs rabe ...\nop n medseal ms\n"
        '[{"medseal_ms":1.5,"n":10,"op":"decrypt","rabe_ms":9.0,"ratio":6.0,"floor_ms":1.4},'
        '{"medseal_ms":40.0,"n":50,"op":"encrypt","rabe_ms":90.0,"ratio":2.25}]\n'
    )
    assert bench.read_report(str(report)) == {("decrypt", 10): 1.5, ("encrypt", 50): 40.0}


def test_against_report_alternates_with_the_report(tmp_path):
    """The alternating mode runs the given report binary once per alternation and
    compares medians; a stand-in report (a script printing the JSON line) is used."""
    spec = importlib.util.spec_from_file_location("fame_timings", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls = tmp_path / "calls"
    fake = tmp_path / "abe_report"
    rows = [
        {"op": op, "n": n, "medseal_ms": ms, "rabe_ms": 1.0, "ratio": 1.0}
        for op, ms in (("keygen", 10.0), ("encrypt", 8.0), ("decrypt", 2.0))
        for n in (10, 50)
    ]
    fake.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{calls}"\n'
        'echo "medseal FAME vs rabe (table)"\n'
        f"echo '{json.dumps(rows)}'\n"
    )
    fake.chmod(0o755)
    out = bench.against_report(str(fake), 2, 1)
    assert calls.read_text().count("run") == 2
    assert {(r["op"], r["n"]) for r in out} == {(r["op"], r["n"]) for r in rows}
    for r in out:
        expected = {"keygen": 10.0, "encrypt": 8.0, "decrypt": 2.0}[r["op"]]
        assert r["report_ms"] == expected
        assert r["report_spread"] == 1.0
        assert abs(r["python_over_report"] - r["python_ms"] / expected) < 1e-12
        assert r["python_ms"] > 0 and r["repeat"] == 2
