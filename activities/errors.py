"""Domain errors turned into Temporal errors with the right retry behaviour.

Everything that leaves an activity becomes a failure in Temporal's history (and the run's report,
and the CLI's last line): its text is redacted here, whatever raised it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from notion_sync.notion.errors import NotionRejected, NotionUnauthorized, NotionUnavailable, ObjectProblem
from notion_sync.observability import redact

NON_RETRYABLE = ["NotionUnauthorized", "NotionRejected", "UnsafePath"]


@contextmanager
def temporal_errors() -> Iterator[None]:
    try:
        yield
    except ApplicationError:
        raise
    except NotionUnauthorized as error:
        raise ApplicationError(redact(str(error)), type="NotionUnauthorized", non_retryable=True) from None
    except NotionRejected as error:
        raise ApplicationError(redact(str(error)), type="NotionRejected", non_retryable=True) from None
    except NotionUnavailable as error:
        delay = timedelta(seconds=error.retry_after_s) if error.retry_after_s else None
        raise ApplicationError(redact(str(error)), type="NotionUnavailable", next_retry_delay=delay) from None
    except ObjectProblem as error:
        # One object's problem that no step caught: the step is retried, as any unexpected error.
        raise ApplicationError(redact(str(error)), type=type(error).__name__) from None
    except Exception as error:
        # Anything else keeps its type (retry policies match on it) and its stack, not its raw text.
        failure = ApplicationError(redact(str(error)), type=type(error).__name__)
        raise failure.with_traceback(error.__traceback__) from None
