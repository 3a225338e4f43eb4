"""Secret redaction: every registered secret, and anything shaped like a Notion token, is masked.

The registered secrets are one set per process, so a secret registered anywhere is masked everywhere.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote

_secrets: set[str] = set()
# Notion tokens and bearer headers, even ones never registered (another worker's, a typo's).
_TOKEN_PATTERN = re.compile(r"\b(?:ntn|secret)_[A-Za-z0-9]{16,}|(?<=Bearer )[^\s'\"]+")
REDACTED = "[redacted]"


def register_secret(value: str | None) -> None:
    """Masks `value` wherever `redact` runs: as is, URL-encoded and JSON-escaped (a server or proxy
    that echoes a request may quote it either way)."""
    if value:
        _secrets.update(
            variant for variant in (value, quote(value, safe=""), json.dumps(value)[1:-1]) if variant
        )


def redact(text: str) -> str:
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _TOKEN_PATTERN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in records of a logger whose handlers we do not format (a library's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and redact(str(error)) != str(error):
            # A traceback prints the exception's text: leave the traceback out.
            record.exc_info, record.exc_text = None, None
            record.msg = f"{record.msg} ({type(error).__name__}, text withheld: it held a secret)"
        return True
