"""The HTTP API: FastAPI at the edge, calling the same use cases as the CLI."""
