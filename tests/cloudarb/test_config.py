"""Settings: sections declared apart, one flat CLOUDARB_* name per field, provider credentials
declared beside their provider key."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from cloudarb.config import (
    PROVIDER_CREDENTIALS,
    SECTIONS,
    CredentialsSettings,
    ForecastsSettings,
    JobsSettings,
    Settings,
)
from cloudarb.ingest.config import provider_config
from cloudarb.ingest.credentials import credentials_state
from ingestion.keys import PROVIDER_KEYS


def test_every_setting_belongs_to_exactly_one_section() -> None:
    owned = [name for section in SECTIONS for name in section.model_fields]
    assert len(owned) == len(set(owned)), "a field declared in two sections"
    assert set(owned) == set(Settings.model_fields)


def test_environment_names_and_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDARB_JOB_TIMEOUT_S", "77")
    monkeypatch.setenv("CLOUDARB_INGEST_PROVIDERS", "Lambda, vast")
    monkeypatch.setenv("CLOUDARB_FORECAST_QUANTILES", "[0.1, 0.9]")
    s = Settings(_env_file=None)
    jobs = s.section(JobsSettings)
    assert isinstance(jobs, JobsSettings) and jobs.job_timeout_s == 77
    assert s.ingest_providers == ["lambda", "vast"]
    assert s.section(ForecastsSettings).forecast_quantiles == [0.1, 0.9]
    monkeypatch.setenv("CLOUDARB_JOB_TIMEOUT_S", "0")
    with pytest.raises(ValidationError, match="job_timeout_s"):
        Settings(_env_file=None)


def test_provider_credentials_are_declared_beside_their_keys() -> None:
    assert set(PROVIDER_CREDENTIALS) <= set(PROVIDER_KEYS), "credentials of a provider that does not exist"
    declared = {c.setting for creds in PROVIDER_CREDENTIALS.values() for c in creds}
    assert declared == set(CredentialsSettings.model_fields), "every secret belongs to one provider"
    s = Settings(_env_file=None, lambda_api_key=SecretStr("k"), aws_access_key_id=SecretStr("id"))
    assert credentials_state(s, "lambda") == "configured"
    assert credentials_state(s, "runpod") == "missing"
    assert credentials_state(s, "aws") == "missing", "the secret access key is required too"
    assert credentials_state(s, "local") == "not needed"
    both = s.model_copy(update={"aws_secret_access_key": SecretStr("secret")})
    assert credentials_state(both, "aws") == "configured", "the session token is optional"
    assert provider_config(s, "lambda").api_key.get_secret_value() == "k"  # type: ignore[attr-defined]
    assert provider_config(both, "aws").aws_secret_access_key.get_secret_value() == "secret"  # type: ignore[attr-defined]
