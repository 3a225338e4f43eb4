"""S3 destinations by URL: `s3://bucket/prefix`, and where each one's local working mirror is."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from notion_sync.settings import Settings
from notion_sync.snapshot import SNAPSHOTS

SCHEME = "s3://"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class S3UrlError(ValueError):
    """A destination that starts like an S3 URL but is not a usable one."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing slash; "" for the bucket's root

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def snapshot_prefix(self, snapshot: str) -> str:
        return self.key(SNAPSHOTS, snapshot) + "/"


def is_s3(destination: str | Path) -> bool:
    # `Path("s3://b/p")` is `s3:/b/p` (and `Path("s3://")` is `s3:`): destinations that went through a
    # Path are recognised too.
    text = str(destination)
    return text == "s3:" or text.startswith("s3:/")


def parse_s3_url(destination: str | Path) -> S3Location:
    """`s3://bucket[/prefix]` (also in the `s3:/bucket/prefix` form a Path makes of it)."""
    text = str(destination)
    if not is_s3(text):
        raise S3UrlError(f"{text} is not an s3:// URL")
    rest = text[len("s3:") :].lstrip("/")
    text = SCHEME + rest
    bucket, _, prefix = rest.partition("/")
    prefix = "/".join(part for part in prefix.split("/") if part)
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise S3UrlError(
            f"{text}: expected s3://BUCKET/PREFIX with a bucket name of 3-63 lowercase letters, digits, "
            "dots and hyphens"
        )
    if any(part in (".", "..") for part in prefix.split("/")):
        raise S3UrlError(f"{text}: the prefix may not contain . or .. segments")
    return S3Location(bucket=bucket, prefix=prefix)


def mirror_path(location: S3Location, settings: Settings) -> Path:
    """The local working mirror of an S3 destination (staging, index, the last snapshot)."""
    digest = hashlib.sha256(location.prefix.encode()).hexdigest()[:16]
    return Path(settings.state_dir).expanduser() / "s3" / location.bucket / digest
