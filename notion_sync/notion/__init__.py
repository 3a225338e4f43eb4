"""Access to the Notion API: client, request budget, error classification."""
