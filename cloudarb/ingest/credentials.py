"""Which providers have credentials configured: light, for the API process (no provider clients)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from cloudarb.config import Settings

API_KEY_SETTINGS = {
    "lambda": "lambda_api_key",
    "runpod": "runpod_api_key",
    "vast": "vast_api_key",
    "gcp": "gcp_api_key",
}


CredentialsState = Literal["configured", "missing", "not needed"]


def credentials_state(settings: Settings, provider: str) -> CredentialsState:
    """'configured', 'missing' or 'not needed' (for /providers; never reveals a value)."""
    if provider in API_KEY_SETTINGS:
        return "configured" if has_secret(getattr(settings, API_KEY_SETTINGS[provider])) else "missing"
    if provider == "aws":
        both = has_secret(settings.aws_access_key_id) and has_secret(settings.aws_secret_access_key)
        return "configured" if both else "missing"
    return "not needed"


def has_secret(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())
