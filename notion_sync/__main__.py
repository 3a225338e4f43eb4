from notion_sync.cli import app

app()
