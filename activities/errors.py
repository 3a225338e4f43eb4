"""Domain errors turned into Temporal errors with the right retry behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from notion_sync.notion.errors import NotionRejected, NotionUnauthorized, NotionUnavailable

NON_RETRYABLE = ["NotionUnauthorized", "NotionRejected", "UnsafePath"]


@contextmanager
def temporal_errors() -> Iterator[None]:
    try:
        yield
    except NotionUnauthorized as error:
        raise ApplicationError(str(error), type="NotionUnauthorized", non_retryable=True) from None
    except NotionRejected as error:
        raise ApplicationError(str(error), type="NotionRejected", non_retryable=True) from None
    except NotionUnavailable as error:
        delay = timedelta(seconds=error.retry_after_s) if error.retry_after_s else None
        raise ApplicationError(str(error), type="NotionUnavailable", next_retry_delay=delay) from None
