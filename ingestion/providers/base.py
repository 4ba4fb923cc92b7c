"""The small contract every pricing provider implements, and the configuration it is built from.

A provider is constructed with one keyword-only ``config`` object (credentials, timeouts, retry
policy, a base URL override and an injectable HTTP transport for tests) and answers one question:
``fetch() -> list[PriceQuote]``, every offer it can price right now. Construction fails with
`MissingCredentials` when the provider needs a key the config does not hold, so the application can
skip that provider with a visible status before any request is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ingestion.errors import MalformedResponse, MissingCredentials
from ingestion.schemas import PriceQuote


def utc_now() -> datetime:
    return datetime.now(UTC)


class RetryPolicy(BaseModel):
    """How hard to insist on 429 / 5xx / network failures before giving up."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=20, description="Attempts per request, first included.")
    backoff_initial_s: float = Field(default=1.0, ge=0, description="First exponential backoff wait.")
    backoff_max_s: float = Field(default=60.0, ge=0, description="Cap of one exponential backoff wait.")
    jitter_s: float = Field(default=0.5, ge=0, description="Uniform random extra wait, against herds.")
    max_retry_after_s: float = Field(
        default=300.0, ge=0, description="Longest Retry-After we honour; longer means give up now."
    )


class ProviderConfig(BaseModel):
    """Settings common to every HTTP provider; provider modules subclass it for their own knobs.

    ``transport`` lets tests (and proxies) replace the network; ``sleep`` and ``clock`` let tests
    check that a Retry-After was honoured without waiting for it.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    api_key: SecretStr | None = Field(default=None, description="The provider's API key, if it needs one.")
    base_url: str | None = Field(default=None, description="Override of the documented endpoint (tests).")
    timeout_s: float = Field(default=30.0, gt=0, description="Connect/read/write/pool timeout per request.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    user_agent: str = "cloudarb-ingestion/0.1"
    transport: httpx.BaseTransport | None = Field(default=None, exclude=True)
    sleep: Callable[[float], None] = Field(default=time.sleep, exclude=True)
    clock: Callable[[], datetime] = Field(default=utc_now, exclude=True)

    def require_api_key(self, provider: str) -> str:
        """The API key, or MissingCredentials naming the provider."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise MissingCredentials(f"{provider}: no API key configured", provider=provider)
        return self.api_key.get_secret_value().strip()


@runtime_checkable
class PricingProvider(Protocol):
    """One seller's pricing API. ``key`` is the lowercase provider key used everywhere."""

    key: ClassVar[str]

    def fetch(self) -> list[PriceQuote]:
        """Every offer the provider prices now, normalized; raises only `IngestionError`s."""
        ...


def make_quote(provider: str, data: Mapping[str, Any]) -> PriceQuote:
    """Validate one normalized quote; values a provider sent that break the schema (a negative
    price, zero GPUs...) are the provider's malformed data, not our crash."""
    try:
        return PriceQuote.model_validate({"provider": provider, **data})
    except ValidationError as exc:
        raise MalformedResponse(f"{provider}: offer does not normalize: {exc}", provider=provider) from exc
