"""A real HTTP server on loopback: the application under uvicorn in a thread (agent and CLI tests)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from cloudarb.api.app import create_app
from cloudarb.context import Context
from tests.support import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(ctx: Context, port: int | None = None) -> Iterator[str]:
    """The app on http://127.0.0.1:<port> until the block ends (the scheduler thread too); ``port``
    lets a test bring the same control plane back at the same address."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx=ctx), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
