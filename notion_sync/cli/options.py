"""Export options from command-line flags, for `export` and `schedule create` alike."""

from __future__ import annotations

from pydantic import ValidationError

from notion_sync.cli.session import fail
from notion_sync.models import ExportOptions

# The flag that sets an option, where its name is not the option's.
_FLAGS = {"max_parallel_batches": "parallel", "keep_snapshots": "keep"}


def export_options(**fields: object) -> ExportOptions:
    """The options, or the end of the command (exit 2) with the flag whose value they refuse."""
    try:
        return ExportOptions.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0])
        fail(f"--{_FLAGS.get(name, name).replace('_', '-')}: {first['msg']}", code=2)
