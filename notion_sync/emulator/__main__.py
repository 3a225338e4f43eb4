"""`python -m notion_sync.emulator ...`: the same command as `notion-sync emulator`."""

from notion_sync.emulator.cli import main

if __name__ == "__main__":
    main()
