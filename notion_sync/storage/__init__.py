"""Export destinations: staging, atomic publish, manifest."""
