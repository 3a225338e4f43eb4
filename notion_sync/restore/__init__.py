"""Putting a snapshot back into Notion (issue 16): the pure conversion from saved JSON to create
requests lives here; the workflow and activities that send them come with the restore command."""
