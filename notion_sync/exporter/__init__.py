"""Export steps as plain async functions over a gateway, an index and a destination."""
