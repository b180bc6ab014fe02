"""The exceptions raised by medseal.

Every exception is a :class:`medseal.Error`. Errors caused by bad input are also
:class:`ValueError` (through :class:`InputError`), so ``except ValueError`` works as
usual. Decryption failures are deliberately opaque: :class:`IntegrityError` does not say
why (wrong key, tampered envelope, wrong ``aad``).
"""

from __future__ import annotations

__all__ = [
    "Error",
    "InputError",
    "PolicyError",
    "DecodeError",
    "KeywordError",
    "LimitError",
    "AccessDenied",
    "IntegrityError",
    "VerifyError",
]


class Error(Exception):
    """Base class of every medseal error."""


class InputError(Error, ValueError):
    """Invalid input not covered by a more specific class (a wrong length, the reserved
    all-zero record reference, a master key of another setup, a conflicting shard)."""


class PolicyError(InputError):
    """A policy or attribute list does not parse or exceeds its limits (the message has
    the byte offset of the problem)."""


class DecodeError(InputError):
    """Bytes are not a valid canonical encoding of the expected object (wrong magic,
    version, kind, scheme, a truncated input, trailing bytes, an invalid point)."""


class KeywordError(InputError):
    """A search keyword is invalid (unknown type, empty, too long)."""


class LimitError(InputError):
    """An input exceeds a documented size limit."""


class AccessDenied(Error):
    """The key's attributes do not satisfy the policy (public information)."""


class IntegrityError(Error):
    """Decryption or authentication failed: a tampered or truncated envelope, a wrong
    ``aad`` or key (opaque by design)."""


class VerifyError(IntegrityError):
    """A search answer does not match the anchored shard roots."""
