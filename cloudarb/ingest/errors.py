"""Errors of the ingest service (one root, mapped to job outcomes and HTTP codes at the edges)."""

from __future__ import annotations

from cloudarb.errors import CloudArbError, NotFound


class IngestServiceError(CloudArbError):
    """Root of the errors cloudarb.ingest raises on purpose."""

    code = "ingest_error"


class UnknownProviderKey(NotFound, IngestServiceError):
    """A provider key not in the pricing registry; the message names the valid keys."""


class RefreshFailed(IngestServiceError):
    """A provider refresh failed; the provider status holds the details and the next attempt time."""

    code = "refresh_failed"

    def __init__(self, provider: str, state: str, message: str) -> None:
        super().__init__(f"{provider}: {state}: {message}")
        self.provider = provider
        self.state = state
