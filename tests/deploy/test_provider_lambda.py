"""The Lambda Cloud provisioning module against its stateful fake over real HTTP on loopback."""
# ruff: noqa: F811  (fixtures are imported from tests/deploy/fakes/fixtures.py and used as parameters)

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    InvalidLaunch,
    ProviderUnavailable,
    RateLimited,
)
from cloudarb.deploy.providers import lambda_
from cloudarb.deploy.providers._http import parse_retry_after
from cloudarb.deploy.providers.base import ProviderConfig, RemoteState
from tests.deploy.fakes.env import PREFIX, ProviderEnv, Sleeps
from tests.deploy.fakes.fixtures import lambda_config, lambda_env, lambda_fake, lambda_server, lambda_spec  # noqa: F401
from tests.deploy.fakes.server import FakeServer


def test_launch_registers_the_key_once_and_marks_the_instance(lambda_env: ProviderEnv) -> None:
    spec = lambda_spec(PREFIX + "d1-l0-r0-a0", tags={"Deployment ID": "dep-1"},
                       image="nvcr.io/nvidia/pytorch:24.01-py3", ports=(8000,), env={"MODE": "serve"})
    created = lambda_env.provisioner.create(spec)
    lambda_env.provisioner.create(replace(spec, key=PREFIX + "d1-l0-r1-a0"))
    held = {i["name"]: i for i in lambda_env.fake.instances()}
    assert set(held) == {spec.key, PREFIX + "d1-l0-r1-a0"}
    first = held[spec.key]
    assert first["id"] == created.provider_id
    assert first["region"]["name"] == "us-east-1" and first["instance_type"]["name"] == "gpu_1x_a10"
    assert {t["key"]: t["value"] for t in first["tags"]} == {
        "deployment-id": "dep-1",
        "cloudarb:key": spec.key,
        "cloudarb:expires-at": spec.expires_at.isoformat(),
    }
    assert "docker run" in first["user_data"] and "-p 8000:8000" in first["user_data"]
    assert "MODE=serve" in first["user_data"]
    key_names = {i["ssh_key_names"][0] for i in held.values()}
    assert len(key_names) == 1 and next(iter(key_names)).startswith("cloudarb-")

    seen = lambda_env.provisioner.get(created.provider_id)
    assert seen is not None and seen.key == spec.key and seen.hourly_rate == pytest.approx(1.29)
    assert seen.address and seen.ssh_port == 22


def test_booting_then_active(lambda_env: ProviderEnv) -> None:
    created = lambda_env.provisioner.create(lambda_spec(PREFIX + "d2-l0-r0-a0"))
    assert created.state is RemoteState.PENDING
    states = [lambda_env.provisioner.get(created.provider_id) for _ in range(2)]
    assert [s.state if s else None for s in states] == [RemoteState.PENDING, RemoteState.RUNNING]


def test_a_launch_without_any_ssh_key_is_refused(lambda_env: ProviderEnv) -> None:
    with pytest.raises(InvalidLaunch, match="SSH"):
        lambda_env.provisioner.create(lambda_spec(PREFIX + "d3-l0-r0-a0", ssh_public_key=None))


@pytest.mark.parametrize(
    ("error", "kind"),
    [("account_inactive", AuthFailed), ("invalid", InvalidLaunch), ("upstream", CreateUnknown)],
)
def test_documented_error_codes(lambda_env: ProviderEnv, error: str, kind: type[Exception]) -> None:
    lambda_env.fake.fault("create", error=error)
    with pytest.raises(kind):
        lambda_env.provisioner.create(lambda_spec(PREFIX + "d4-l0-r0-a0"))


def test_the_fake_rejects_what_the_spec_rejects(lambda_env: ProviderEnv) -> None:
    with pytest.raises(InvalidLaunch, match="invalid-parameters"):
        lambda_env.provisioner.create(lambda_spec(PREFIX + "d5-l0-r0-a0", region="mars-1"))
    assert lambda_env.fake.instances() == []


def test_wrong_or_missing_api_key(lambda_fake: FakeServer) -> None:
    bad = lambda_.provisioner(lambda_config(lambda_fake, Sleeps(), credentials={"api_key": "nope"}))
    with pytest.raises(AuthFailed):
        bad.list_owned(PREFIX)
    with pytest.raises(AuthFailed, match="api_key"):
        lambda_.provisioner(ProviderConfig(credentials={}))


def test_429_waits_as_told_then_succeeds(lambda_env: ProviderEnv) -> None:
    lambda_env.fake.fault("list", error="rate_limit", retry_after="3")
    lambda_env.fake.fault("list", error="rate_limit")
    assert lambda_env.provisioner.list_owned(PREFIX) == []
    assert lambda_env.sleeps.waits == [3.0, 2.0]  # as told, then the backoff of the second attempt


def test_a_long_retry_after_goes_to_the_core_at_once(lambda_env: ProviderEnv) -> None:
    lambda_env.fake.fault("create", error="rate_limit", retry_after="120")
    with pytest.raises(RateLimited) as caught:
        lambda_env.provisioner.create(lambda_spec(PREFIX + "d6-l0-r0-a0"))
    assert caught.value.retry_after_s == 120.0 and lambda_env.sleeps.waits == []
    assert lambda_env.fake.instances() == []


def test_absence_needs_the_documented_not_found_code(lambda_env: ProviderEnv) -> None:
    assert lambda_env.provisioner.get("0920582c7ff041399e34823a0be62549") is None
    lambda_env.fake.fault("get", status=404, body={"detail": "no route"})
    with pytest.raises(ProviderUnavailable):
        lambda_env.provisioner.get("0920582c7ff041399e34823a0be62549")


def test_terminate_of_a_missing_instance_is_success(lambda_env: ProviderEnv) -> None:
    lambda_env.provisioner.destroy("0920582c7ff041399e34823a0be62549")


def test_no_stop_start(lambda_env: ProviderEnv) -> None:
    assert lambda_env.provisioner.capabilities.stop_start is False
    with pytest.raises(InvalidLaunch):
        lambda_env.provisioner.stop("x")


def test_capabilities() -> None:
    caps = lambda_.CAPABILITIES
    assert (caps.launch_interval_s, caps.billing_granularity_s, caps.billing_minimum_s) == (12.0, 60, 60)
    assert (caps.mark, caps.idempotency_token, caps.list_filter, caps.spot) == ("tags", False, False, False)


def test_tag_keys_follow_the_documented_pattern() -> None:
    assert lambda_.tag_key("Deployment ID") == "deployment-id"
    assert lambda_.tag_key("9lives") == "x-9lives"
    assert len(lambda_.tag_key("k" * 80)) == 55


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon", now=now) is None and parse_retry_after(None) is None
