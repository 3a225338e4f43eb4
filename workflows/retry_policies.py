"""The retry policies the workflows give their activities, in one place for the export and the
restore: Notion work retried with backoff up to a minute apart (the failures that retrying cannot
fix excepted), disk work retried a few times."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from activities.errors import NON_RETRYABLE


def notion_retry(*refusals: str) -> RetryPolicy:
    """For activities that talk to Notion; `refusals` are the caller's own non-retryable errors."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=20,
        non_retryable_error_types=[*NON_RETRYABLE, *refusals],
    )


def disk_retry(*refusals: str) -> RetryPolicy:
    """For activities that only touch the disk (or a bucket)."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_attempts=10,
        non_retryable_error_types=list(refusals) or None,
    )


NOTION_RETRY = notion_retry()
DISK_RETRY = disk_retry()
