"""Reversible, random-looking ids: `(kind, a, b)` <-> dashed UUID string, masked by the seed.

The 120 payload bits (kind 8, a 32, b 32, check 48) go through an invertible mixer keyed by the seed,
so neighbouring indexes give unrelated-looking ids, and random UUIDs fail the check (-> 404).
"""

import hashlib
from enum import IntEnum
from typing import NamedTuple

_BITS = 120
_MASK = (1 << _BITS) - 1
_HALF = _BITS // 2


class Kind(IntEnum):
    PAGE = 1
    DATABASE = 2
    DATA_SOURCE = 3
    BLOCK = 4
    USER = 5
    COMMENT = 6
    DISCUSSION = 7
    OPTION = 8


class Decoded(NamedTuple):
    kind: Kind
    a: int
    b: int


def _derive(seed: int, label: bytes, bits: int) -> int:
    digest = hashlib.blake2b(label, key=str(seed).encode(), digest_size=32).digest()
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)


class IdCodec:
    """Encodes and decodes ids for one seed."""

    def __init__(self, seed: int) -> None:
        self._mul = [_derive(seed, b"mul%d" % i, _BITS) | 1 for i in range(2)]
        self._inv = [pow(m, -1, 1 << _BITS) for m in self._mul]
        self._xor = _derive(seed, b"xor", _BITS)
        self._check = _derive(seed, b"check", 48)

    def _unmix(self, y: int) -> int:
        y ^= self._xor
        for inv in reversed(self._inv):
            y = (y * inv) & _MASK
            y ^= y >> _HALF
        return y

    def number(self, kind: Kind, a: int, b: int = 0) -> int:
        """The mixed 120-bit value; orders exactly like the id strings do."""
        x = (kind << 112) | (a << 80) | (b << 48) | self._check
        first, second = self._mul  # the mixer, unrolled: it runs for every id of every response
        x ^= x >> _HALF
        x = (x * first) & _MASK
        x ^= x >> _HALF
        return ((x * second) & _MASK) ^ self._xor

    def encode(self, kind: Kind, a: int, b: int = 0) -> str:
        h = f"{self.number(kind, a, b):030x}"
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{h[15:18]}-{h[18:]}"

    def decode(self, object_id: str) -> Decoded | None:
        h = object_id.replace("-", "").lower()
        if len(h) != 32 or h[12] != "4" or h[16] != "8":
            return None
        try:
            x = self._unmix(int(h[:12] + h[13:16] + h[17:], 16))
        except ValueError:
            return None
        if x & 0xFFFFFFFFFFFF != self._check:
            return None
        try:
            kind = Kind(x >> 112)
        except ValueError:
            return None
        return Decoded(kind, (x >> 80) & 0xFFFFFFFF, (x >> 48) & 0xFFFFFFFF)
