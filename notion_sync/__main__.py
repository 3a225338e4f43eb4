from notion_sync.cli import main

main()
