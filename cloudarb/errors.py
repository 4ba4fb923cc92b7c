"""The application's one error root.

Every error CloudArb raises on purpose is a ``CloudArbError`` with a machine-readable ``code``, a
message a person can act on, and optionally the ``field`` it is about and structured ``details``.
The categories below say what went wrong in the caller's terms; ``cloudarb.api.errors`` maps them to
HTTP status codes in one table, the CLI prints them without a traceback, and the job runtime maps the
job errors (``cloudarb.jobs.errors``) to job outcomes. Feature folders subclass these categories
(``UnknownProviderKey(InvalidInput)``, ``QueueUnavailable(Unavailable)``), so no route or command
translates errors by hand.
"""

from __future__ import annotations

from typing import Any


class CloudArbError(Exception):
    """Root of every error the application raises on purpose."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or []
        self.headers = headers


class InvalidInput(CloudArbError):
    """The caller's input cannot be used (names the field)."""

    code = "invalid"


class BadRequest(CloudArbError):
    """A request that is well-formed but not acceptable as a whole."""

    code = "bad_request"


class NotFound(CloudArbError):
    """No such resource for this caller (another organization's resource is 'not found' too)."""

    code = "not_found"


class Conflict(CloudArbError):
    """The resource's current state does not allow the request."""

    code = "conflict"


class Unauthorized(CloudArbError):
    """No credentials, or credentials that are not valid."""

    code = "unauthorized"


class Forbidden(CloudArbError):
    """Valid credentials without the role the request needs."""

    code = "forbidden"


class PayloadTooLarge(CloudArbError):
    code = "payload_too_large"


class RateLimited(CloudArbError):
    code = "rate_limited"


RETRY_AFTER_S = 5  # what an outage answer's Retry-After says


class Unavailable(CloudArbError):
    """A service the request needs (database, queue, provider) is unavailable right now."""

    code = "unavailable"
