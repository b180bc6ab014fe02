"""The searchable encrypted index through the Python binding: owner batches, the host's
search, verification against shard roots, the ABE-gated partition key."""

from __future__ import annotations

import os

import pytest

import medseal


def _rec() -> bytes:
    return os.urandom(32)


@pytest.fixture()
def setup():
    partition = medseal.Partition(b"dr-house", "role:doctor and dept:cardiology", 0)
    owner = medseal.OwnerPartition.create(partition)
    i10, asthma = medseal.Keyword.icd10("I10"), medseal.Keyword.term("Asthma")
    # Increasing references: a batch stores each keyword's records in sorted order.
    r1, r2, r3 = (bytes([i]) * 32 for i in (1, 2, 3))
    host = medseal.IndexHost()
    s1 = owner.batch([(i10, r1), (asthma, r1), (i10, medseal.RecordRef(r2))])
    s2 = owner.batch([(i10, r3)])
    roots = [host.insert_shard(s1), host.insert_shard(s2)]
    return owner, host, roots, (i10, asthma), (r1, r2, r3)


def test_batch_insert_search_verify(setup):
    owner, host, roots, (i10, asthma), (r1, r2, r3) = setup
    assert host.roots(owner.id) == roots
    assert host.entry_count(owner.id) == 4
    kk = medseal.KeywordKey.derive(owner.id, owner.key, i10)
    token = kk.token()
    assert token.partition_id == owner.id
    values = host.search(token)
    assert len(values) == 3 and all(len(v) == 32 for v in values)
    assert r1 not in values  # the host sees encrypted references only
    assert kk.decrypt(values) == [r1, r2, r3]
    answer = host.prove(token)
    assert answer.values == values and len(answer) == 3 and answer.proof_bytes > 0
    assert kk.verify(roots, answer) == [r1, r2, r3]
    # A token survives encoding; an unknown keyword finds nothing, verifiably.
    again = medseal.SearchToken.from_bytes(token.to_bytes())
    assert host.search(again) == values
    flu = medseal.KeywordKey.derive(owner.id, owner.key, medseal.Keyword("term:flu"))
    assert flu.verify(roots, host.prove(flu.token())) == []
    ak = medseal.KeywordKey.derive(owner.id, owner.key, asthma)
    assert ak.verify(roots, host.prove(ak.token())) == [r1]


def test_tampered_roots_and_answers_fail(setup):
    owner, host, roots, (i10, asthma), _ = setup
    kk = medseal.KeywordKey.derive(owner.id, owner.key, i10)
    answer = host.prove(kk.token())
    bad_root = bytearray(roots[0])
    bad_root[0] ^= 1
    with pytest.raises(medseal.VerifyError):
        kk.verify([bytes(bad_root), roots[1]], answer)
    with pytest.raises(medseal.VerifyError):
        kk.verify(roots[:1], answer)  # a shard withheld
    with pytest.raises(medseal.VerifyError):
        kk.verify(roots[::-1], answer)
    # Another keyword's answer passed off as this one's.
    other = host.prove(medseal.KeywordKey.derive(owner.id, owner.key, asthma).token())
    with pytest.raises(medseal.IntegrityError):  # VerifyError is an IntegrityError
        kk.verify(roots, other)
    with pytest.raises(medseal.InputError):
        kk.verify([b"short"], answer)


def test_owner_state_and_shards_encode(setup):
    owner, host, roots, (i10, _), _ = setup
    restored = medseal.OwnerPartition.from_bytes(owner.to_bytes())
    assert restored.key == owner.key and restored.id == owner.id
    assert restored.count(i10) == 3 and restored.next_shard_seq == 2
    assert restored.padding is None
    # The restored state continues exactly where the owner stopped.
    r = _rec()
    assert restored.batch([(i10, r)]) == owner.batch([(i10, r)])
    shard = restored.batch([(i10, _rec())])
    assert medseal.Shard.from_bytes(shard.to_bytes()) == shard
    root = host.insert_shard(shard)
    assert root == shard.root()
    with pytest.raises(medseal.InputError):
        host.insert_shard(shard)  # the same labels twice
    with pytest.raises(medseal.DecodeError):
        medseal.Shard.from_bytes(b"\x00" * 40)
    with pytest.raises(medseal.DecodeError):
        medseal.OwnerPartition.from_bytes(b"junk")
    with pytest.raises(medseal.DecodeError):
        medseal.SearchToken.from_bytes(b"junk")


def test_padding():
    partition = medseal.Partition(b"o", "a", 1)
    owner = medseal.OwnerPartition.create(partition, padding=4)
    assert owner.padding == 4
    kw = medseal.Keyword.icd10("J45")
    shard = owner.batch([(kw, _rec())])
    assert len(shard) == 4
    assert medseal.OwnerPartition.create(partition, padding="pow2").padding == "pow2"
    with pytest.raises(ValueError):
        medseal.OwnerPartition.create(partition, padding="lots")


def test_capsule_gates_the_partition_key():
    pk, msk = medseal.Fame.setup()
    partition = medseal.Partition(b"dr-house", "role:doctor and dept:cardiology", 0)
    owner = medseal.OwnerPartition.create(partition)
    capsule = medseal.Capsule.seal(pk, partition, owner.key)
    assert capsule.policy == partition.policy
    capsule = medseal.Capsule.from_bytes(capsule.to_bytes())
    doctor = medseal.Fame.keygen(pk, msk, ["role:doctor", "dept:cardiology"])
    nurse = medseal.Fame.keygen(pk, msk, ["role:nurse", "dept:cardiology"])
    assert capsule.open(doctor, partition.id) == owner.key
    with pytest.raises(medseal.AccessDenied):
        capsule.open(nurse, partition.id)
    other = medseal.Partition(b"dr-house", "role:doctor and dept:cardiology", 1)
    with pytest.raises(medseal.IntegrityError):
        capsule.open(doctor, other.id)


def test_keywords_and_record_refs():
    assert str(medseal.Keyword.icd10("I10")) == "icd10:i10"  # normalised
    assert medseal.Keyword.icd10("i10") == medseal.Keyword("icd10:I10")
    assert hash(medseal.Keyword.icd10("i10")) == hash(medseal.Keyword("icd10:I10"))
    t = medseal.Keyword.term("  Asthma ")
    assert (t.kind, t.value) == ("term", "asthma")
    with pytest.raises(medseal.KeywordError):
        medseal.Keyword("I10")  # no type prefix
    with pytest.raises(ValueError):
        medseal.Keyword.term("")
    with pytest.raises(medseal.InputError):
        medseal.RecordRef(bytes(32))  # reserved for padding
    with pytest.raises(ValueError):
        medseal.RecordRef(b"short")
    r = medseal.RecordRef(b"\x01" * 32)
    assert bytes(r) == r.to_bytes() == b"\x01" * 32
    owner = medseal.OwnerPartition.create(medseal.Partition(b"o", "a", 0))
    with pytest.raises(TypeError):
        owner.batch([("icd10:I10", b"\x01" * 32)])  # keywords must be Keyword objects
    with pytest.raises(medseal.InputError):
        owner.batch([(medseal.Keyword.icd10("I10"), bytes(32))])
