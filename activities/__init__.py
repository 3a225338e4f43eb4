"""Temporal activities: Notion fetches and destination writes."""
