"""Pure conversion of Notion API JSON to Markdown, CSV and file names."""
