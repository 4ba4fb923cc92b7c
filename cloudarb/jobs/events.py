"""The events of a job, as typed models: what ``GET /jobs/{id}/events`` returns and what the job
WebSocket sends, one JSON object per event. They are exported in the OpenAPI document, so the
dashboard's types for them are generated, not written by hand.

Every event is stored before it is broadcast and carries the job's id and a per-job sequence number
(``seq``: 1, 2, ... without gaps), so a client that reconnects with ``after=seq`` misses nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloudarb.schemas import JobStatus


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    job_id: str
    seq: Annotated[int, Field(ge=1, description="Per-job sequence number, from 1 without gaps.")]
    ts: str = Field(description="When the event was stored (ISO 8601, UTC).")
    message: str = ""


class StatusEvent(_Event):
    """A change of the job's status; the one with ``terminal: true`` is the job's last event."""

    type: Literal["status"]
    status: JobStatus
    terminal: bool
    attempt: int | None = Field(default=None, description="The attempt that ended, on a retry.")


class ProgressEvent(_Event):
    """Progress of the job's body: its phase (loading, building, the solver's phases, storing...), a
    0-100 percentage when known, and the solver's figures where it has them. Job kinds may add
    fields of their own (``decision``, ``demand``, ``provider``...)."""

    type: Literal["progress"]
    phase: str
    percent: float | None = None
    incumbent: float | None = Field(default=None, description="Best objective found so far.")
    bound: float | None = Field(default=None, description="Best bound on the objective so far.")
    gap: float | None = Field(default=None, description="Relative gap between incumbent and bound.")
    offers: int | None = None
    decision: str | None = None


JobEvent = Annotated[StatusEvent | ProgressEvent, Field(discriminator="type")]
