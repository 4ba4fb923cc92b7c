"""The agent's state file: its node id and credential, and the command it was carrying out.

One JSON file (``<state dir>/agent.json``), written atomically (temporary file + rename) with mode
0600 in a 0700 directory: it holds the node's credential. ``in_flight`` is the command being carried
out, written before the engine is touched and cleared after its last progress report, so an agent
killed in between finishes (or rolls back) that command when it starts again. ``drained`` and
``expiries`` are the control plane's last word, which the agent acts on while it cannot reach it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from cloudarb.agent.protocol import Command

STATE_FILE = "agent.json"


class StateError(RuntimeError):
    """The state file exists but cannot be read or written."""


class AgentState(BaseModel):
    server: str
    node_id: str
    node_token: str
    in_flight: Command | None = None
    drained: bool = False
    """The control plane's last word on draining (kept across restarts while it cannot be reached)."""
    expiries: dict[str, datetime | None] = Field(default_factory=dict)
    """The last expiry the control plane gave for each placement (extensions included)."""


class StateStore:
    """Reads and writes ``agent.json`` in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE

    def load(self) -> AgentState | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc}") from exc
        try:
            return AgentState.model_validate_json(raw)
        except ValidationError as exc:
            raise StateError(f"{self.path} is not a valid agent state file: {exc}") from exc

    def save(self, state: AgentState) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(state.model_dump_json(indent=2).encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise StateError(f"cannot write {self.path}: {exc}") from exc
