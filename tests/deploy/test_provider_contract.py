"""The provisioning contract, checked for every provider against its fake over real HTTP.

Add a provider with one line in ``ENVS`` (provider key -> the fixture returning its ``ProviderEnv``,
see ``tests/deploy/fakes/env.py``) and its fixture in the import below.
"""

from __future__ import annotations

import pytest

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    NoCapacity,
    ProviderUnavailable,
    ProvisionError,
    QuotaExceeded,
    RateLimited,
)
from cloudarb.deploy.providers.base import Provisioner, RemoteInstance, RemoteState
from tests.deploy.fakes.env import PREFIX, ProviderEnv
from tests.deploy.fakes.fixtures import (  # noqa: F401
    aws_env,
    ec2_fake,
    ec2_server,
    lambda_env,
    lambda_fake,
    lambda_server,
    moto_server,
    runpod_env,
    runpod_fake,
    runpod_server,
    runpod_v2_env,
    runpod_v2_fake,
    runpod_v2_server,
)
from tests.deploy.fakes.tensordock import tensordock_env, tensordock_fake, tensordock_server  # noqa: F401
from tests.deploy.fakes.vast import vast_env, vast_fake, vast_server  # noqa: F401

ENVS = {
    "lambda": "lambda_env",
    "runpod": "runpod_env",
    "runpod-v2": "runpod_v2_env",
    "tensordock": "tensordock_env",
    "vast": "vast_env",
    "aws": "aws_env",
}


@pytest.fixture(params=sorted(ENVS))
def env(request: pytest.FixtureRequest) -> ProviderEnv:
    value: ProviderEnv = request.getfixturevalue(ENVS[request.param])
    return value


def _gone(provisioner: Provisioner, provider_id: str, reads: int = 8) -> bool:
    """A fresh read proves absence within a few reads (None, or the provider's terminated state)."""
    for _ in range(reads):
        try:
            seen = provisioner.get(provider_id)
        except ProviderUnavailable:
            continue
        if seen is None or seen.state is RemoteState.TERMINATED:
            return True
    return False


def _create(env: ProviderEnv, key: str) -> RemoteInstance:
    return env.provisioner.create(env.make_spec(key))


def test_declares_its_key_and_capabilities(env: ProviderEnv) -> None:
    caps = env.provisioner.capabilities
    assert env.provisioner.key == env.key
    assert isinstance(env.provisioner, Provisioner)
    assert caps.mark in ("tags", "label", "name")
    assert caps.billing_granularity_s >= 1 and caps.billing_minimum_s >= 0
    assert caps.requests_per_s > 0 and caps.max_key_length >= 32


def test_create_find_list_destroy_with_proof(env: ProviderEnv) -> None:
    key = PREFIX + "d1-l0-r0-a0"
    created = _create(env, key)
    assert created.key == key and created.provider_id
    found = env.provisioner.find(key)
    assert found is not None and found.provider_id == created.provider_id
    assert found.state in (RemoteState.PENDING, RemoteState.RUNNING)
    owned = env.provisioner.list_owned(PREFIX)
    assert [i.provider_id for i in owned] == [created.provider_id]
    seen = env.provisioner.get(created.provider_id)
    assert seen is not None and seen.key == key

    env.provisioner.destroy(created.provider_id)
    assert _gone(env.provisioner, created.provider_id)
    assert env.provisioner.find(key) is None
    assert env.provisioner.list_owned(PREFIX) == []
    env.provisioner.destroy(created.provider_id)  # idempotent: already gone is success


def test_list_owned_ignores_instances_without_the_prefix(env: ProviderEnv) -> None:
    ours = _create(env, PREFIX + "d2-l0-r0-a0")
    _create(env, "someone-elses-box")
    _create(env, "cloudarb-other-install-d2")
    owned = env.provisioner.list_owned(PREFIX)
    assert [i.provider_id for i in owned] == [ours.provider_id]
    assert env.provisioner.find("someone-elses-box") is not None


@pytest.mark.parametrize(("error", "kind"), [("no_capacity", NoCapacity), ("quota", QuotaExceeded)])
def test_refusals_are_failover_kinds_and_create_nothing(
    env: ProviderEnv, error: str, kind: type[ProvisionError]
) -> None:
    env.fake.fault("create", error=error)
    with pytest.raises(kind):
        _create(env, PREFIX + "d3-l0-r0-a0")
    assert env.provisioner.list_owned(PREFIX) == []


def test_bad_credentials_are_auth_failed(env: ProviderEnv) -> None:
    env.fake.fault("list", error="auth", times=-1)
    with pytest.raises(AuthFailed):
        env.provisioner.list_owned(PREFIX)


def test_persistent_throttling_is_rate_limited(env: ProviderEnv) -> None:
    env.fake.fault("list", error="rate_limit", times=-1)
    with pytest.raises(RateLimited):
        env.provisioner.list_owned(PREFIX)


@pytest.mark.parametrize("how", ["500", "timeout"])
def test_create_that_fails_after_the_instance_exists_is_unknown_then_found(env: ProviderEnv, how: str) -> None:
    key = PREFIX + "d4-l0-r0-a0"
    if how == "500":
        env.fake.fault("create", error="server_error", after_effect=True)
    else:
        env.fake.fault("create", after_effect=True, delay_s=env.timeout_s + 0.5)
    with pytest.raises(CreateUnknown):
        _create(env, key)
    found = env.provisioner.find(key)
    assert found is not None and found.key == key
    assert len(env.provisioner.list_owned(PREFIX)) == 1


def test_listing_lag_hides_a_new_instance_for_a_while(env: ProviderEnv) -> None:
    env.fake.control(listing_lag_calls=2)
    key = PREFIX + "d5-l0-r0-a0"
    created = _create(env, key)
    assert env.provisioner.find(key) is None
    assert env.provisioner.list_owned(PREFIX) == []
    found = env.provisioner.find(key)
    assert found is not None and found.provider_id == created.provider_id


def test_destroy_failing_k_times_then_succeeding(env: ProviderEnv) -> None:
    created = _create(env, PREFIX + "d6-l0-r0-a0")
    env.fake.fault("destroy", error="server_error", times=4)
    failures = 0
    for _ in range(6):
        try:
            env.provisioner.destroy(created.provider_id)
            break
        except ProviderUnavailable:
            failures += 1
    else:
        pytest.fail("destroy never succeeded")
    assert failures >= 1
    assert _gone(env.provisioner, created.provider_id)


def test_destroy_accepted_but_lingering_is_not_proof(env: ProviderEnv) -> None:
    env.fake.control(destroy_linger_calls=2)
    created = _create(env, PREFIX + "d7-l0-r0-a0")
    env.provisioner.destroy(created.provider_id)
    first = env.provisioner.get(created.provider_id)
    assert first is not None and first.state is not RemoteState.TERMINATED
    assert _gone(env.provisioner, created.provider_id)
