"""How a failed Notion request is classified: give up, skip the object, or try again.

Every message here is built from redacted text (`NotionGateway` redacts what the server said before
it raises): these messages become problem entries, reports and Temporal failures.
"""

from __future__ import annotations


class NotionUnauthorized(Exception):
    """The token is wrong or revoked: retrying cannot help."""


class ObjectProblem(Exception):
    """One object cannot be had: record it with its reason (`outcome`: its status in the manifest)
    and carry on with the rest."""

    outcome = "failed"

    def __init__(self, object_id: str, reason: str) -> None:
        super().__init__(f"{object_id}: {reason}")
        self.object_id = object_id
        self.reason = reason


class ObjectUnavailable(ObjectProblem):
    """One object is gone or not shared (403/404): skip it, record why, carry on."""

    outcome = "skipped"

    def __init__(self, object_id: str, status: int, code: str, message: str) -> None:
        super().__init__(object_id, f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message


class ObjectMalformed(ObjectProblem):
    """Notion's answer about one object was not what the API promises (not JSON, an HTML page,
    `results` missing...), on every one of a bounded number of attempts."""


class ObjectRejected(ObjectProblem):
    """A 400 to a request about one object (a malformed id, say): that object fails, not the export."""


class ObjectUnreachable(ObjectProblem):
    """Requests about one object kept timing out or failing while Notion answered others."""


class MalformedAnswer(ValueError):
    """A 2xx answer that is not what the API promises: not JSON, or JSON of the wrong shape."""


class NotionRejected(Exception):
    """A 400 from Notion to a listing of the workspace: our request is wrong, retrying cannot help."""


class NotionUnavailable(Exception):
    """Rate limits, 5xx, timeouts or resets outlasted the in-activity retries."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
