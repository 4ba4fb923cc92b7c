"""moto's EC2 server as a subprocess on loopback: ``moto_server -H 127.0.0.1 -p <free port>``.

Started from the virtual environment's ``bin`` (beside the running interpreter), awaited until it
answers, reset between tests with ``POST /moto-api/reset``, stopped (terminate, then kill) at the
end. ``moto_server`` fixture: one per test session.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

MOTO_BIN = Path(sys.executable).parent / "moto_server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """One ``moto_server`` process."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 60.0) -> MotoServer:
        if not MOTO_BIN.exists():
            raise RuntimeError(f"moto_server not found at {MOTO_BIN} (install the test extra)")
        self._process = subprocess.Popen(
            [str(MOTO_BIN), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode}")
            try:
                if httpx.get(f"{self.url}/moto-api/", timeout=1.0).status_code < 500:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {wait_s:.0f} s")

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=10.0).raise_for_status()

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()
