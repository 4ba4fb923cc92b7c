"""Provider configurations built from CLOUDARB_* settings: credentials, base URLs, timeouts, retries.

The only place where application settings meet the ingestion library's config classes.
"""

from __future__ import annotations

from typing import Any

from cloudarb.config import Settings
from cloudarb.ingest.credentials import has_secret
from ingestion.providers import ProviderConfig, RetryPolicy, provider_class


def provider_config(settings: Settings, provider: str, **overrides: Any) -> ProviderConfig:
    """The config for ``provider`` (raises UnknownProvider for a key not in the registry).

    Retries inside one refresh are kept short (``ingest_retry_attempts``): the schedule's own backoff
    handles long outages, and a refresh must not hold a worker for minutes.
    """
    cls = provider_class(provider)
    values: dict[str, Any] = {
        "timeout_s": settings.ingest_timeout_s,
        "retry": RetryPolicy(max_attempts=settings.ingest_retry_attempts, backoff_initial_s=0.5,
                             backoff_max_s=5.0, jitter_s=0.25, max_retry_after_s=30.0),
    }
    if provider in settings.ingest_base_urls:
        values["base_url"] = settings.ingest_base_urls[provider]
    values.update({c.field: value for c, value in settings.credentials(provider).items() if has_secret(value)})
    values.update(overrides)
    return cls.config_class(**values)
