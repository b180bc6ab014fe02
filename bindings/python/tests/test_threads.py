"""The GIL is released around pairing operations: threads do not deadlock and get the
right answers (no timing assertions)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import medseal


def test_threads_decapsulate_concurrently():
    pk, msk = medseal.Fame.setup()
    key = medseal.Fame.keygen(pk, msk, ["a", "b"])
    kem, ct = medseal.Fame.encapsulate(pk, "a and b")

    def work(i: int) -> bytes:
        if i % 2:
            return medseal.Fame.decapsulate(key, ct)
        return medseal.Fame.decrypt(key, medseal.Fame.encrypt(pk, "a and b", b"x%d" % i))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(16)))
    for i, r in enumerate(results):
        assert r == (kem if i % 2 else b"x%d" % i)
