"""The benchmark aid and the benchmark script's reading of the Rust report."""

from __future__ import annotations

import importlib.util
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
