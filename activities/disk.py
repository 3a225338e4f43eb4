"""Destination failures that another attempt cannot fix: they end the run at once, with a message a
user can act on, instead of minutes of silent retries."""

from __future__ import annotations

import errno
import resource
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from notion_sync.models import StagingRef
from notion_sync.settings import Settings
from notion_sync.storage.destination import open_destination
from notion_sync.storage.local import LocalDestination, UnsafePath, no_space_message


@contextmanager
def destination_errors(destination: LocalDestination, staging_id: str) -> Iterator[None]:
    try:
        yield
    except UnsafePath as error:
        raise ApplicationError(str(error), type="UnsafePath", non_retryable=True) from None
    except sqlite3.OperationalError as error:
        # The export index lives in the destination too: SQLite says "database or disk is full".
        if error.sqlite_errorcode != sqlite3.SQLITE_FULL:
            raise
        message = no_space_message(destination, staging_id)
        raise ApplicationError(message, type="DestinationFull", non_retryable=True) from None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            message = no_space_message(destination, staging_id)
            raise ApplicationError(message, type="DestinationFull", non_retryable=True) from None
        if error.errno == errno.EFBIG:
            # A file size limit (ulimit -f, RLIMIT_FSIZE) or the file system's largest file.
            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            cap = "none" if limit == resource.RLIM_INFINITY else f"{limit >> 20} MB"
            message = (
                f"a file grew past the file size limit at {destination.root} (this worker's limit: {cap}, "
                "ulimit -f); staging is removed and the last snapshot stays current"
            )
            raise ApplicationError(message, type="DestinationFull", non_retryable=True) from None
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            message = f"{destination.root} is not writable: {error.strerror}"
            raise ApplicationError(message, type="DestinationUnwritable", non_retryable=True) from None
        raise


@contextmanager
def on_destination(settings: Settings, staging: StagingRef) -> Iterator[None]:
    """`destination_errors` for an activity that writes a run's staging or index."""
    with destination_errors(open_destination(staging.destination, settings), staging.staging_id):
        yield
