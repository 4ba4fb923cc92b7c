"""Provider configurations built from CLOUDARB_* settings: credentials, base URLs, timeouts, retries.

The only place where application settings meet the ingestion library's config classes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr

from cloudarb.config import Settings
from ingestion.providers import ProviderConfig, RetryPolicy, provider_class

_API_KEYS = {"lambda": "lambda_api_key", "runpod": "runpod_api_key", "vast": "vast_api_key", "gcp": "gcp_api_key"}


CredentialsState = Literal["configured", "missing", "not needed"]


def credentials_state(settings: Settings, provider: str) -> CredentialsState:
    """'configured', 'missing' or 'not needed' (for /providers; never reveals a value)."""
    if provider in _API_KEYS:
        return "configured" if _secret(getattr(settings, _API_KEYS[provider])) else "missing"
    if provider == "aws":
        both = _secret(settings.aws_access_key_id) and _secret(settings.aws_secret_access_key)
        return "configured" if both else "missing"
    return "not needed"


def _secret(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


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
    if provider in _API_KEYS and _secret(getattr(settings, _API_KEYS[provider])):
        values["api_key"] = getattr(settings, _API_KEYS[provider])
    if provider == "aws":
        values["aws_access_key_id"] = settings.aws_access_key_id
        values["aws_secret_access_key"] = settings.aws_secret_access_key
        values["aws_session_token"] = settings.aws_session_token
    values.update(overrides)
    return cls.config_class(**values)
