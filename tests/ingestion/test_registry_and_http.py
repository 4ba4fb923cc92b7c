"""The provider registry, the local provider and the shared HTTP helper's edge cases."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from ingestion.errors import (
    IngestionError,
    MissingCredentials,
    ProviderRequestRejected,
    ProviderUnavailable,
    UnknownProvider,
)
from ingestion.providers import PROVIDERS, PricingProvider, create_provider, provider_class
from ingestion.providers.base import ProviderConfig, RetryPolicy
from ingestion.providers.http import HttpClient, parse_retry_after, redact_url
from ingestion.providers.lambda_cloud import LambdaConfig
from ingestion.providers.local import LocalConfig, LocalProvider, Workstation
from tests.ingestion.conftest import FIXED_NOW, FakeSleep


def test_registry_keys_match_provider_keys() -> None:
    assert set(PROVIDERS) == {"aws", "azure", "gcp", "lambda", "local", "runpod", "tensordock", "vast"}
    for key, cls in PROVIDERS.items():
        assert cls.key == key


def test_unknown_provider_names_the_valid_keys() -> None:
    with pytest.raises(UnknownProvider) as info:
        provider_class("oracle")
    assert isinstance(info.value, IngestionError) and isinstance(info.value, KeyError)
    assert "aws, azure, gcp, lambda, local, runpod, tensordock, vast" in str(info.value)


def test_create_provider_defaults_and_credentials() -> None:
    assert isinstance(create_provider("azure"), PricingProvider)
    assert isinstance(create_provider("tensordock"), PricingProvider)
    for key in ("lambda", "vast", "runpod", "gcp", "aws"):
        with pytest.raises(MissingCredentials):
            create_provider(key)
    made = create_provider("lambda", config=LambdaConfig(api_key=SecretStr("k")))
    assert made.key == "lambda"
    with pytest.raises(TypeError, match="LambdaConfig"):
        create_provider("lambda", config=LocalConfig())


def test_blank_api_key_is_missing() -> None:
    with pytest.raises(MissingCredentials):
        create_provider("vast", config=PROVIDERS["vast"].config_class(api_key=SecretStr("  ")))


def test_local_workstations() -> None:
    config = LocalConfig(
        clock=lambda: FIXED_NOW,
        workstations=(
            Workstation(name="lab-1", gpu_model="NVIDIA GeForce RTX 4090", gpu_count=2, vcpus=32, ram_gb=128,
                        price_per_hour=0.5, site="office-berlin"),
            Workstation(name="lab-2", gpu_model="Prototype X", gpu_count=1, vram_gb=40, price_per_hour=0.0,
                        available=False),
        ),
    )
    quotes = create_provider("local", config=config).fetch()
    first, second = quotes
    assert (first.provider, first.region, first.gpu_model, first.gpu_count, first.capacity) == (
        "local", "office-berlin", "RTX 4090", 2, "available")
    assert first.price_per_gpu_hour == 0.25
    assert (second.gpu_model, second.gpu_model_known, second.vram_gb, second.capacity, second.price_per_hour) == (
        "Prototype X", False, 40.0, "unavailable", 0.0)


def test_local_names_must_be_unique() -> None:
    ws = Workstation(name="a", gpu_model="T4", gpu_count=1, price_per_hour=0.1)
    with pytest.raises(ValueError):
        LocalProvider(config=LocalConfig(workstations=(ws, ws)))


def test_parse_retry_after() -> None:
    now = datetime(2026, 7, 30, 12, 0, tzinfo=UTC)
    assert parse_retry_after("12", now=now) == 12.0
    assert parse_retry_after("1.5", now=now) == 1.5
    assert parse_retry_after("Thu, 30 Jul 2026 12:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Thu, 30 Jul 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_redact_url() -> None:
    assert redact_url("https://x/y?key=abc&pageToken=t") == "https://x/y?key=REDACTED&pageToken=t"
    assert redact_url("https://x/y") == "https://x/y"


def _client(handler: httpx.MockTransport, sleeps: FakeSleep, **retry: float) -> HttpClient:
    config = ProviderConfig(transport=handler, sleep=sleeps, retry=RetryPolicy(max_attempts=3, jitter_s=0, **retry))
    return HttpClient(provider="unit", config=config, default_base_url="https://example.test/api")


def test_timeouts_are_retried_then_reported(sleeps: FakeSleep) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderUnavailable) as info, _client(httpx.MockTransport(handler), sleeps) as http:
        http.request_json("GET", "/x")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(calls) == 3 and sleeps.calls == [1.0, 2.0]


def test_backoff_is_capped(sleeps: FakeSleep) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(503))
    with pytest.raises(ProviderUnavailable), _client(transport, sleeps, backoff_initial_s=5, backoff_max_s=6) as http:
        http.request_json("GET", "/x")
    assert sleeps.calls == [5.0, 6.0]


def test_other_4xx_is_rejected_without_retry(sleeps: FakeSleep) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={"error": "no such"}))
    with pytest.raises(ProviderRequestRejected) as info, _client(transport, sleeps) as http:
        http.request_json("GET", "/x")
    assert info.value.status_code == 404 and sleeps.calls == []


def test_base_url_override_and_defaults(sleeps: FakeSleep) -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    with _client(httpx.MockTransport(handler), sleeps) as http:
        assert http.request_json("GET", "/x") == {"ok": True}
    assert str(seen[0].url) == "https://example.test/api/x"
    assert seen[0].headers["User-Agent"].startswith("cloudarb-ingestion")


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        ProviderConfig(timeout_s=0)
    with pytest.raises(ValidationError):
        ProviderConfig(unknown_setting=1)  # type: ignore[call-arg]


def test_light_key_list_matches_the_registry() -> None:
    from ingestion.keys import PROVIDER_KEYS
    from ingestion.providers import PROVIDERS

    assert PROVIDER_KEYS == tuple(sorted(PROVIDERS))
