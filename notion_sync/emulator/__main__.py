"""`python -m notion_sync.emulator ...`: the same command as `notion-sync emulator`."""

import typer

from notion_sync.emulator.cli import emulator

if __name__ == "__main__":
    typer.run(emulator)
