"""The `notion-sync` command line: one module per group of commands, assembled here."""

from __future__ import annotations

import os
import sys

import typer
from pydantic import ValidationError

from notion_sync.cli import export
from notion_sync.cli.archive import archive_command
from notion_sync.cli.history import diff_command, log_command
from notion_sync.cli.render import render_command
from notion_sync.cli.restore import restore_command
from notion_sync.cli.restore_files import restore_files_command
from notion_sync.cli.retention import gc_command, prune_command
from notion_sync.cli.schedules import schedule_app
from notion_sync.cli.verify import verify_command
from notion_sync.emulator.cli import emulator
from notion_sync.settings import settings_problem

app = typer.Typer(
    help="Durable exports and backups of Notion workspaces, on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# `--help` lists the commands in this order.
app.command(help="Run the Notion API emulator (a local server speaking Notion's API).")(emulator)
app.command("archive")(archive_command)
app.command("verify")(verify_command)
app.command("restore-files")(restore_files_command)
app.command("restore")(restore_command)
app.command("log")(log_command)
app.command("diff")(diff_command)
app.command("prune")(prune_command)
app.command("gc")(gc_command)
app.command("render")(render_command)
app.command()(export.export)
app.command()(export.status)
app.command()(export.pause)
app.command()(export.resume)
app.command()(export.cancel)
app.command()(export.worker)
app.add_typer(schedule_app, name="schedule")


def main() -> None:
    """The `notion-sync` process: runs the app, then leaves without interpreter teardown.

    The Temporal SDK's native runtime can crash while a short-lived process tears down
    (temporalio/sdk-python#300); by then every result is printed, so skip the teardown.
    """
    code = 0
    try:
        app()
    except ValidationError as error:
        if error.title != "Settings":
            raise
        print(f"error: settings: {settings_problem(error)}", file=sys.stderr)  # from the environment
        code = 2
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            code = 1
        else:
            code = exit_.code or 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
