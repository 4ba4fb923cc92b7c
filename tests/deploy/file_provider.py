"""The in-memory provider with its state in a file, so it outlives a process that is SIGKILLed (the
crash tests: the provider's instances exist whatever happens to our process)."""

from __future__ import annotations

import fcntl
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from cloudarb.db.types import utcnow
from cloudarb.deploy.providers.base import LaunchSpec, RemoteInstance
from tests.deploy.memory_provider import CAPS, Faults, MemoryProvider

FILE_CAPS = replace(CAPS, listing_lag_s=1.0)


class FileProvider(MemoryProvider):
    def __init__(self, path: Path, key: str = "lambda") -> None:
        super().__init__(key, clock=utcnow, capabilities=FILE_CAPS, faults=Faults(boot_reads=0))
        self.path = path

    @contextmanager
    def _state(self) -> Iterator[None]:
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.exists():
                saved = pickle.loads(self.path.read_bytes())
                self.ever, counter = saved["ever"], saved["next"]
            else:
                self.ever, counter = {}, 1
            self._counter = counter
            try:
                yield
            finally:
                self.path.write_bytes(pickle.dumps({"ever": self.ever, "next": self._counter}))

    def _next_id(self) -> str:
        pid = f"f-{self._counter}"
        self._counter += 1
        return pid

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        with self._state():
            self._ids = iter([self._next_id()])  # type: ignore[assignment]
            return super().create(spec)

    def find(self, key: str) -> RemoteInstance | None:
        with self._state():
            return super().find(key)

    def get(self, provider_id: str) -> RemoteInstance | None:
        with self._state():
            return super().get(provider_id)

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        with self._state():
            return super().list_owned(prefix)

    def destroy(self, provider_id: str) -> None:
        with self._state():
            super().destroy(provider_id)

    def snapshot(self) -> dict[str, Any]:
        with self._state():
            return dict(self.ever)
