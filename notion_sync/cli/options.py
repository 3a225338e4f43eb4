"""Export options from command-line flags, for `export` and `schedule create` alike, and the
retention flags that `export`, `schedule create` and `prune` share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from notion_sync.cli.session import fail
from notion_sync.models import ExportOptions, RetentionPolicy

# The flag that sets an option, where its name is not the option's.
_FLAGS = {"max_parallel_batches": "parallel", "keep_snapshots": "keep", "keep_last": "keep"}
_Model = TypeVar("_Model", bound=BaseModel)

KeepOption = Annotated[
    int | None, typer.Option("--keep", metavar="N", help="Retention: keep the N newest snapshots.")
]
KeepDailyOption = Annotated[
    int | None,
    typer.Option(
        "--keep-daily",
        metavar="D",
        help="Retention: keep the newest snapshot of each of the last D days that have one (days in UTC).",
    ),
]
KeepWeeklyOption = Annotated[
    int | None,
    typer.Option(
        "--keep-weekly",
        metavar="W",
        help="Retention: keep the newest snapshot of each of the last W ISO weeks that have one (UTC).",
    ),
]
KeepMonthlyOption = Annotated[
    int | None,
    typer.Option(
        "--keep-monthly",
        metavar="M",
        help="Retention: keep the newest snapshot of each of the last M months that have one (UTC).",
    ),
]


def export_options(**fields: object) -> ExportOptions:
    """The options, or the end of the command (exit 2) with the flag whose value they refuse."""
    options = _validated(ExportOptions, fields)
    keep = options.retention.keep_last
    if keep is not None and options.retention == RetentionPolicy(keep_last=keep):
        # `--keep N` alone also travels as `keep_snapshots`, which workers from before retention by
        # age understand: a worker not yet upgraded still prunes.
        options = options.model_copy(update={"keep_snapshots": keep, "retention": RetentionPolicy()})
    return options


def retention_policy(
    keep: int | None, keep_daily: int | None, keep_weekly: int | None, keep_monthly: int | None
) -> RetentionPolicy:
    """The retention flags as a policy (a snapshot any of them keeps stays), or the end of the command."""
    fields = {
        "keep_last": keep,
        "keep_daily": keep_daily,
        "keep_weekly": keep_weekly,
        "keep_monthly": keep_monthly,
    }
    return _validated(RetentionPolicy, fields)


def _validated(model: type[_Model], fields: Mapping[str, object]) -> _Model:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][-1])
        fail(f"--{_FLAGS.get(name, name).replace('_', '-')}: {first['msg']}", code=2)
