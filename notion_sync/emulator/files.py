"""Signed, expiring URLs for Notion-hosted files, and the deterministic bytes behind them."""

import hashlib
import hmac
import struct
import time
import zlib
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

BIG_FILE_NAME = "big-archive.bin"
BIG_FILE_SIZE = 8 * 1024 * 1024


@lru_cache(maxsize=8192)  # the same few thousand timestamps are formatted over and over
def iso_ms(ts: float) -> str:
    """Notion's timestamp format: UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


class FileSigner:
    """Signs `{base_url}/_files/{key}?expires=<unix>&sig=<hex hmac>` and checks those signatures."""

    def __init__(self, secret: bytes, expiry_seconds: int, base_url: str = "http://127.0.0.1") -> None:
        self.secret = secret
        self.expiry_seconds = expiry_seconds
        self.base_url = base_url
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)  # copied per use: no re-keying

    def mac(self, message: str) -> str:
        """Hex HMAC-SHA256 of `message` under the secret."""
        mac = self._keyed.copy()
        mac.update(message.encode())
        return mac.hexdigest()

    def _sig(self, key: str, expires: int) -> str:
        return self.mac(f"{key}\n{expires}")

    def url(self, key: str, now: float | None = None) -> tuple[str, str]:
        expires = int(time.time() if now is None else now) + self.expiry_seconds
        url = f"{self.base_url}/_files/{key}?expires={expires}&sig={self._sig(key, expires)}"
        return url, iso_ms(expires)

    def external_url(self, key: str) -> str:
        """Where "external" files live: the emulator too, so nothing ever leaves loopback."""
        return f"{self.base_url}/_external/{key}"

    def verify(self, key: str, expires: int, sig: str, now: float) -> Literal["ok", "expired", "bad"]:
        if not hmac.compare_digest(self._sig(key, expires), sig):
            return "bad"
        return "expired" if now >= expires else "ok"


def _stream(label: bytes, size: int) -> bytes:
    """Deterministic pseudo-random bytes: SHAKE-256 is one call for any size."""
    return hashlib.shake_256(label).digest(size)


def _png(label: bytes, side: int = 16) -> bytes:
    """A small valid PNG, one solid colour picked from the label."""
    r, g, b = hashlib.sha256(label).digest()[:3]
    raw = (b"\x00" + bytes((r, g, b)) * side) * side

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def content_bytes(key: str) -> bytes:
    """The bytes of file `key` (`<token>/<name>`): a PNG for images, else a few KB of noise."""
    name = key.rsplit("/", 1)[-1]
    label = key.encode()
    if name.endswith(".png"):
        return _png(label)
    if name == BIG_FILE_NAME:
        return _stream(label, BIG_FILE_SIZE)
    return _stream(label, 1024 + int.from_bytes(hashlib.sha256(label).digest()[:2], "big") % 4096)
