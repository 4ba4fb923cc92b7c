"""The one error tree of the ingestion package.

Everything ingestion raises on purpose derives from `IngestionError`, carries the provider key, and
is raised ``from`` the foreign exception it translates (httpx, botocore, json, csv...). The
application maps these classes to provider statuses in one place: MissingCredentials -> "skipped",
ProviderAuthError -> "auth failed", ProviderRateLimited / ProviderUnavailable -> "retry later",
MalformedResponse -> "provider changed its API".
"""

from __future__ import annotations


class IngestionError(Exception):
    """Root of every error ingestion raises on purpose."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.provider = provider


class UnknownProvider(IngestionError, KeyError):
    """A provider key that is not in the registry; the message lists the valid keys."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class MissingCredentials(IngestionError):
    """The provider needs credentials that the configuration does not hold; skip it, visibly."""


class ProviderError(IngestionError):
    """A failure while talking to a provider's API."""

    def __init__(
        self, message: str, *, provider: str = "", status_code: int | None = None, url: str = ""
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        self.url = url


class ProviderAuthError(ProviderError):
    """The provider rejected the credentials (HTTP 401/403 or the API's own auth error)."""


class ProviderRateLimited(ProviderError):
    """HTTP 429 (or the API's throttling error) still returned after every retry."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = 429,
        url: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code, url=url)
        self.retry_after_s = retry_after_s


class ProviderUnavailable(ProviderError):
    """5xx, timeouts and connection failures still failing after every retry."""


class ProviderRequestRejected(ProviderError):
    """Any other 4xx: our request is wrong for this API (a bug or an API change)."""


class MalformedResponse(ProviderError):
    """The body is not in the documented shape (not JSON, missing fields, wrong types)."""


class MalformedCatalog(IngestionError):
    """A catalog file (CSV) lacks required columns or holds unparseable values."""


class UnknownGpuName(IngestionError, ValueError):
    """A GPU name that the identity table cannot place; carries the input and the closest names."""

    def __init__(self, name: str, *, suggestions: tuple[str, ...] = (), field: str = "") -> None:
        where = f"{field}: " if field else ""
        hint = f"; closest known: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"{where}unknown GPU {name!r}{hint}")
        self.name = name
        self.suggestions = suggestions
        self.field = field


class UnknownCatalogConvention(IngestionError, KeyError):
    """A catalog convention key that is not registered; the message lists the valid keys."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""
