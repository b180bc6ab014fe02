"""medseal: attribute-based encryption (FAME, BSW07) on BLS12-381, a hybrid envelope and
a searchable encrypted index, for electronic medical records.

>>> import medseal
>>> pk, msk = medseal.Fame.setup()
>>> key = medseal.Fame.keygen(pk, msk, ["role:doctor", "dept:cardiology"])
>>> env = medseal.Fame.encrypt(pk, "role:doctor and dept:cardiology", b"ECG: normal")
>>> medseal.Fame.decrypt(key, env)
b'ECG: normal'

Pairing operations release the GIL, so threads run them in parallel.
"""

from __future__ import annotations

from ._errors import (
    AccessDenied,
    DecodeError,
    Error,
    InputError,
    IntegrityError,
    KeywordError,
    LimitError,
    PolicyError,
    VerifyError,
)
from ._native import (
    Bsw07,
    Bsw07Ciphertext,
    Bsw07MasterKey,
    Bsw07PublicKey,
    Bsw07UserKey,
    Capsule,
    Fame,
    FameCiphertext,
    FameMasterKey,
    FamePublicKey,
    FameUserKey,
    IndexHost,
    Keyword,
    KeywordKey,
    OwnerPartition,
    Partition,
    PartitionKey,
    Policy,
    RecordRef,
    SearchToken,
    Shard,
    VerifiableAnswer,
)

__all__ = [
    "AccessDenied",
    "Bsw07",
    "Bsw07Ciphertext",
    "Bsw07MasterKey",
    "Bsw07PublicKey",
    "Bsw07UserKey",
    "Capsule",
    "DecodeError",
    "Error",
    "Fame",
    "FameCiphertext",
    "FameMasterKey",
    "FamePublicKey",
    "FameUserKey",
    "IndexHost",
    "InputError",
    "IntegrityError",
    "Keyword",
    "KeywordError",
    "KeywordKey",
    "LimitError",
    "OwnerPartition",
    "Partition",
    "PartitionKey",
    "Policy",
    "PolicyError",
    "RecordRef",
    "SearchToken",
    "Shard",
    "VerifiableAnswer",
    "VerifyError",
]
