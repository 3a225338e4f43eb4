"""A Notion API emulator: a real HTTP server that speaks the 2025-09-03 API."""
