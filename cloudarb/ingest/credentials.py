"""Which providers have credentials configured: light, for the API process (no provider clients)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from cloudarb.config import Settings

CredentialsState = Literal["configured", "missing", "not needed"]


def credentials_state(settings: Settings, provider: str) -> CredentialsState:
    """'configured', 'missing' or 'not needed' (for /providers; never reveals a value)."""
    credentials = settings.credentials(provider)
    if not credentials:
        return "not needed"
    return "configured" if all(has_secret(v) for c, v in credentials.items() if c.required) else "missing"


def has_secret(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())
