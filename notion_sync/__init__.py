"""Notion Sync: durable Notion workspace exports on Temporal."""
