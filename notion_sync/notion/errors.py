"""How a failed Notion request is classified: give up, skip the object, or try again."""

from __future__ import annotations


class NotionUnauthorized(Exception):
    """The token is wrong or revoked: retrying cannot help."""


class ObjectUnavailable(Exception):
    """One object is gone or not shared (403/404): skip it, record why, carry on."""

    def __init__(self, object_id: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{object_id}: {status} {code}: {message}")
        self.object_id = object_id
        self.status = status
        self.code = code
        self.message = message


class NotionRejected(Exception):
    """A 400 from Notion: our request is wrong, so retrying cannot help."""


class NotionUnavailable(Exception):
    """Rate limits, 5xx, timeouts or resets outlasted the in-activity retries."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
