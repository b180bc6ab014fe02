"""The committed golden files of the Rust crates, read from Python: the same objects
decode and work (the checks of crates/abe/tests/golden.rs and
crates/index/tests/golden.rs that need no regeneration from a seeded RNG)."""

from __future__ import annotations

from pathlib import Path

import pytest

import medseal

REPO = Path(__file__).resolve().parents[3]
ABE_DATA = REPO / "crates" / "abe" / "tests" / "data"
INDEX_DATA = REPO / "crates" / "index" / "tests" / "data"

# The constants of crates/abe/tests/golden.rs.
POLICY = "role:doctor and (dept:cardiology or 2 of (site:north, site:south, level >= 3))"
ATTRIBUTES = ["role:doctor", "site:north", "level=5"]
PAYLOAD = b"golden payload: ECG 2026-11-21, sinus rhythm, 72 bpm"
AAD = b"record-1"


@pytest.mark.parametrize(
    "prefix,scheme,classes",
    [
        ("fame", medseal.Fame, (medseal.FamePublicKey, medseal.FameMasterKey, medseal.FameUserKey, medseal.FameCiphertext)),
        ("bsw07", medseal.Bsw07, (medseal.Bsw07PublicKey, medseal.Bsw07MasterKey, medseal.Bsw07UserKey, medseal.Bsw07Ciphertext)),
    ],
)
def test_abe_golden_files(prefix, scheme, classes):
    pk_cls, msk_cls, uk_cls, ct_cls = classes
    read = lambda name: (ABE_DATA / f"{prefix}_{name}.bin").read_bytes()  # noqa: E731
    pk = pk_cls.from_bytes(read("public_key"))
    msk = msk_cls.from_bytes(read("master_key"))
    key = uk_cls.from_bytes(read("user_key"))
    ct = ct_cls.from_bytes(read("ciphertext"))
    envelope = read("envelope")
    # Encodings are canonical: decoding and encoding gives the committed bytes back.
    assert pk.to_bytes() == read("public_key")
    assert msk.to_bytes() == read("master_key")
    assert key.to_bytes() == read("user_key")
    assert ct.to_bytes() == read("ciphertext")
    assert str(ct.policy) == str(medseal.Policy(POLICY))
    assert sorted(key.attributes) == sorted(ATTRIBUTES)
    assert len(scheme.decapsulate(key, ct)) == 32
    assert scheme.decrypt(key, envelope, aad=AAD) == PAYLOAD
    assert scheme.inspect_policy(envelope) == medseal.Policy(POLICY)
    with pytest.raises(medseal.IntegrityError):
        scheme.decrypt(key, envelope, aad=b"record-2")
    # The committed master key issues working keys for the committed public key.
    other = scheme.keygen(pk, msk, ["role:doctor", "dept:cardiology"])
    assert scheme.decrypt(other, envelope, aad=AAD) == PAYLOAD


def _record(i: int) -> bytes:
    return bytes([i]) * 32


def test_index_golden_files():
    first_bytes = (INDEX_DATA / "shard_first.bin").read_bytes()
    second_bytes = (INDEX_DATA / "shard_second.bin").read_bytes()
    token_bytes = (INDEX_DATA / "token_i10.bin").read_bytes()
    fresh_bytes = (INDEX_DATA / "owner_partition_new.bin").read_bytes()
    state_bytes = (INDEX_DATA / "owner_partition.bin").read_bytes()

    partition = medseal.Partition(b"dr-golden", "role:doctor and dept:cardiology", 3)
    i10, asthma = medseal.Keyword.icd10("I10"), medseal.Keyword.term("asthma")

    first = medseal.Shard.from_bytes(first_bytes)
    second = medseal.Shard.from_bytes(second_bytes)
    assert (len(first), len(second)) == (6, 3)
    assert first.to_bytes() == first_bytes and second.to_bytes() == second_bytes
    assert first.partition_id == partition.id == second.partition_id

    # The fresh state rebuilds both shards byte for byte and ends in the committed state.
    fresh = medseal.OwnerPartition.from_bytes(fresh_bytes)
    assert fresh.padding == 3
    assert fresh.id == partition.id
    assert fresh.partition.policy == medseal.Policy("role:doctor and dept:cardiology")
    rebuilt = fresh.batch([(i10, _record(1)), (asthma, medseal.RecordRef(_record(1))), (i10, _record(2))])
    assert rebuilt.to_bytes() == first_bytes
    assert rebuilt == first and rebuilt.root() == first.root()
    assert fresh.batch([(i10, _record(3))]).to_bytes() == second_bytes
    assert fresh.to_bytes() == state_bytes

    restored = medseal.OwnerPartition.from_bytes(state_bytes)
    assert (restored.count(i10), restored.count(asthma)) == (6, 3)
    assert restored.next_shard_seq == 2

    # The committed token is the one derived from the owner's key, and it finds the
    # committed records in the committed shards, with proofs.
    kk = medseal.KeywordKey.derive(restored.id, restored.key, i10)
    assert kk.token().to_bytes() == token_bytes
    token = medseal.SearchToken.from_bytes(token_bytes)
    host = medseal.IndexHost()
    roots = [host.insert_shard(first), host.insert_shard(second)]
    assert roots == [first.root(), second.root()]
    assert kk.decrypt(host.search(token)) == [_record(1), _record(2), _record(3)]
    assert kk.verify(roots, host.prove(token)) == [_record(1), _record(2), _record(3)]
