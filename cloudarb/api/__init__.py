"""HTTP and WebSocket API (FastAPI). Reads storage and enqueues jobs by name; never solves."""
