"""CP-ABE through the Python binding: both schemes, the envelope, encodings, errors."""

from __future__ import annotations

import pytest

import medseal

SCHEMES = [
    pytest.param(
        (medseal.Fame, medseal.FamePublicKey, medseal.FameMasterKey, medseal.FameUserKey, medseal.FameCiphertext),
        id="fame",
    ),
    pytest.param(
        (medseal.Bsw07, medseal.Bsw07PublicKey, medseal.Bsw07MasterKey, medseal.Bsw07UserKey, medseal.Bsw07Ciphertext),
        id="bsw07",
    ),
]
POLICY = "role:doctor and (dept:cardiology or 2 of (site:north, site:south, level >= 3))"


@pytest.fixture(scope="module", params=SCHEMES)
def scheme(request):
    s, pk_cls, msk_cls, uk_cls, ct_cls = request.param
    pk, msk = s.setup()
    return s, pk, msk, (pk_cls, msk_cls, uk_cls, ct_cls)


def test_kem_round_trip(scheme):
    s, pk, msk, _ = scheme
    key = s.keygen(pk, msk, ["role:doctor", "site:north", "level=5"])
    k1, ct = s.encapsulate(pk, POLICY)
    assert isinstance(k1, bytes) and len(k1) == 32
    assert s.decapsulate(key, ct) == k1
    # A Policy object works the same and is reported back in canonical form.
    k2, ct2 = s.encapsulate(pk, medseal.Policy(POLICY))
    assert k2 != k1
    assert ct2.policy == medseal.Policy(POLICY)
    assert s.decapsulate(key, ct2) == k2


def test_unsatisfied_key_is_denied(scheme):
    s, pk, msk, _ = scheme
    nurse = s.keygen(pk, msk, ["role:nurse", "dept:cardiology"])
    _, ct = s.encapsulate(pk, "role:doctor and dept:cardiology")
    with pytest.raises(medseal.AccessDenied):
        s.decapsulate(nurse, ct)
    env = s.encrypt(pk, "role:doctor and dept:cardiology", b"secret")
    with pytest.raises(medseal.AccessDenied):
        s.decrypt(nurse, env)


def test_envelope_round_trip_and_tampering(scheme):
    s, pk, msk, _ = scheme
    key = s.keygen(pk, msk, ["role:doctor", "dept:cardiology"])
    payload = bytes(range(256)) * 300  # several segments
    env = s.encrypt(pk, "role:doctor and dept:cardiology", payload, aad=b"record-7")
    assert s.decrypt(key, env, aad=b"record-7") == payload
    assert str(s.inspect_policy(env)) == "role:doctor and dept:cardiology"
    with pytest.raises(medseal.IntegrityError):
        s.decrypt(key, env, aad=b"record-8")
    with pytest.raises(medseal.IntegrityError):
        s.decrypt(key, env)  # aad defaults to b""
    flipped = bytearray(env)
    flipped[-40] ^= 1
    with pytest.raises(medseal.IntegrityError):
        s.decrypt(key, bytes(flipped), aad=b"record-7")
    with pytest.raises(medseal.Error):
        s.decrypt(key, env[:-1], aad=b"record-7")
    assert s.decrypt(key, s.encrypt(pk, "role:doctor", b"")) == b""


def test_encodings_round_trip(scheme):
    s, pk, msk, (pk_cls, msk_cls, uk_cls, ct_cls) = scheme
    key = s.keygen(pk, msk, ["role:doctor", "dept:cardiology"])
    kem, ct = s.encapsulate(pk, "role:doctor and dept:cardiology")
    pk2 = pk_cls.from_bytes(pk.to_bytes())
    msk2 = msk_cls.from_bytes(msk.to_bytes())
    key2 = uk_cls.from_bytes(key.to_bytes())
    ct2 = ct_cls.from_bytes(ct.to_bytes())
    assert pk2.to_bytes() == pk.to_bytes()
    assert msk2.to_bytes() == msk.to_bytes()
    assert key2.to_bytes() == key.to_bytes()
    assert key2.attributes == ["dept:cardiology", "role:doctor"]
    assert s.decapsulate(key2, ct2) == kem
    # Keys decoded from bytes still work together.
    key3 = s.keygen(pk2, msk2, ["role:doctor", "dept:cardiology"])
    assert s.decapsulate(key3, ct) == kem


def test_garbage_raises_decode_error(scheme):
    s, pk, msk, (pk_cls, msk_cls, uk_cls, ct_cls) = scheme
    for cls in (pk_cls, msk_cls, uk_cls, ct_cls):
        with pytest.raises(medseal.DecodeError):
            cls.from_bytes(b"not a medseal object")
        with pytest.raises(ValueError):
            cls.from_bytes(b"")
    # A public key is not a ciphertext; trailing bytes are rejected.
    with pytest.raises(medseal.DecodeError):
        ct_cls.from_bytes(pk.to_bytes())
    with pytest.raises(medseal.DecodeError):
        pk_cls.from_bytes(pk.to_bytes() + b"\0")
    with pytest.raises(medseal.DecodeError):
        s.inspect_policy(b"garbage")


def test_master_key_of_another_setup(scheme):
    s, pk, _, _ = scheme
    _, other_msk = s.setup()
    with pytest.raises(medseal.InputError):
        s.keygen(pk, other_msk, ["role:doctor"])


def test_cross_scheme_objects_raise_type_error():
    fpk, fmsk = medseal.Fame.setup()
    bpk, bmsk = medseal.Bsw07.setup()
    fkey = medseal.Fame.keygen(fpk, fmsk, ["a"])
    _, fct = medseal.Fame.encapsulate(fpk, "a")
    with pytest.raises(TypeError):
        medseal.Bsw07.keygen(fpk, fmsk, ["a"])
    with pytest.raises(TypeError):
        medseal.Bsw07.encapsulate(fpk, "a")
    with pytest.raises(TypeError):
        medseal.Bsw07.decapsulate(fkey, fct)
    with pytest.raises(TypeError):
        medseal.Bsw07.decrypt(fkey, medseal.Fame.encrypt(fpk, "a", b"x"))
    with pytest.raises(TypeError):
        medseal.Fame.keygen(bpk, bmsk, ["a"])
    # FAME bytes do not decode as BSW07 objects either.
    with pytest.raises(medseal.DecodeError):
        medseal.Bsw07PublicKey.from_bytes(fpk.to_bytes())
    # Wrong argument kinds.
    with pytest.raises(TypeError):
        medseal.Fame.keygen(fpk, fmsk, "role:doctor")  # a str, not an iterable of str
    with pytest.raises(TypeError):
        medseal.Fame.encapsulate(fpk, 42)


def test_policies():
    p = medseal.Policy("role:doctor AND (dept:cardiology OR level >= 3)")
    assert str(p) == "role:doctor and (dept:cardiology or level >= 3)"
    assert medseal.Policy(str(p)) == p
    assert hash(medseal.Policy(str(p))) == hash(p)
    assert p != medseal.Policy("role:doctor")
    assert p.attributes == ["role:doctor", "dept:cardiology", "level"]
    assert p.is_satisfied_by(["role:doctor", "level=4"])
    assert not p.is_satisfied_by(["role:doctor", "level=2"])
    assert repr(p).startswith("Policy(")
    with pytest.raises(medseal.PolicyError) as e:
        medseal.Policy("role:doctor and")
    assert isinstance(e.value, ValueError)
    assert "byte" in str(e.value)
    with pytest.raises(ValueError):
        medseal.Policy("")
    pk, msk = medseal.Fame.setup()
    with pytest.raises(medseal.PolicyError):
        medseal.Fame.encrypt(pk, "a or or b", b"x")
    with pytest.raises(medseal.PolicyError):
        medseal.Fame.keygen(pk, msk, ["bad attribute!"])
