"""The RunPod provisioning module against its stateful REST v1 fake over real HTTP on loopback."""
# ruff: noqa: F811  (fixtures are imported from tests/deploy/fakes/fixtures.py and used as parameters)

from __future__ import annotations

import pytest

from cloudarb.deploy.env import provider_config
from cloudarb.deploy.errors import (
    AuthFailed,
    InvalidLaunch,
    NoCapacity,
    ProviderUnavailable,
    QuotaExceeded,
    Unsupported,
)
from cloudarb.deploy.providers import runpod
from cloudarb.deploy.providers.base import ProviderConfig, RemoteState
from cloudarb.deploy.providers.runpod_v2 import RunPodV2Provisioner
from tests.deploy.fakes.env import PREFIX, ProviderEnv, Sleeps
from tests.deploy.fakes.fixtures import (  # noqa: F401
    runpod_config,
    runpod_env,
    runpod_fake,
    runpod_server,
    runpod_spec,
    runpod_v2_config,
    runpod_v2_env,
    runpod_v2_fake,
    runpod_v2_server,
)
from tests.deploy.fakes.runpod import NO_CAPACITY
from tests.deploy.fakes.server import FakeServer
from tests.support import make_settings


def test_create_sends_the_documented_body_and_reads_the_billed_rate(runpod_env: ProviderEnv) -> None:
    spec = runpod_spec(PREFIX + "d1-l0-r0-a0", instance_type="NVIDIA A40 [community]", gpu_count=2, spot=True,
                       env={"MODE": "serve"}, ports=(8000,), region="EU-RO-1")
    created = runpod_env.provisioner.create(spec)
    pods = runpod_env.fake.instances()
    assert len(pods) == 1
    pod = pods[0]
    assert pod["id"] == created.provider_id and pod["name"] == spec.key
    assert pod["gpu"]["id"] == "NVIDIA A40" and pod["gpu"]["count"] == 2
    assert pod["interruptible"] is True
    assert pod["ports"] == ["8000/http", "22/tcp"]
    assert pod["env"] == {"MODE": "serve", "PUBLIC_KEY": spec.ssh_public_key}
    assert created.state is RemoteState.PENDING and created.address is None

    running = runpod_env.provisioner.get(created.provider_id)
    running = runpod_env.provisioner.get(created.provider_id)
    assert running is not None and running.state is RemoteState.RUNNING
    assert running.address and running.ssh_port and running.ssh_port >= 10_000
    assert running.hourly_rate == pytest.approx(pod["adjustedCostPerHr"])


def test_gpu_types_from_the_pricing_name_or_the_gpu_model() -> None:
    spec = runpod_spec("k", instance_type="NVIDIA GeForce RTX 4090 [community]")
    assert runpod.gpu_selection(spec) == ("NVIDIA GeForce RTX 4090", "COMMUNITY")
    assert runpod.gpu_selection(runpod_spec("k", instance_type="8x", gpu_model="H100 SXM")) == (
        "NVIDIA H100 80GB HBM3", "SECURE")
    with pytest.raises(InvalidLaunch, match="no RunPod GPU type"):
        runpod.gpu_selection(runpod_spec("k", instance_type="x", gpu_model="Voodoo 5"))


def test_a_pod_needs_an_image(runpod_env: ProviderEnv) -> None:
    with pytest.raises(InvalidLaunch, match="image"):
        runpod_env.provisioner.create(runpod_spec(PREFIX + "d2-l0-r0-a0", image=""))


def test_invalid_input_is_invalid_launch(runpod_env: ProviderEnv) -> None:
    runpod_env.fake.fault("create", error="invalid")
    with pytest.raises(InvalidLaunch):
        runpod_env.provisioner.create(runpod_spec(PREFIX + "d3-l0-r0-a0"))


def test_no_capacity_is_read_from_the_message_whatever_the_status(runpod_env: ProviderEnv) -> None:
    runpod_env.fake.fault("create", status=500, body={"message": NO_CAPACITY})
    with pytest.raises(NoCapacity):
        runpod_env.provisioner.create(runpod_spec(PREFIX + "d4-l0-r0-a0"))
    runpod_env.fake.fault("create", error="quota")
    with pytest.raises(QuotaExceeded):
        runpod_env.provisioner.create(runpod_spec(PREFIX + "d4-l0-r0-a1"))
    assert runpod_env.fake.instances() == []


def test_find_matches_the_exact_name(runpod_env: ProviderEnv) -> None:
    key = PREFIX + "d5-l0-r0-a0"
    runpod_env.provisioner.create(runpod_spec(key + "0"))
    created = runpod_env.provisioner.create(runpod_spec(key))
    found = runpod_env.provisioner.find(key)
    assert found is not None and found.provider_id == created.provider_id


def test_stop_and_start(runpod_env: ProviderEnv) -> None:
    created = runpod_env.provisioner.create(runpod_spec(PREFIX + "d6-l0-r0-a0"))
    runpod_env.provisioner.stop(created.provider_id)
    stopped = runpod_env.provisioner.get(created.provider_id)
    assert stopped is not None and stopped.state is RemoteState.STOPPED and stopped.raw_state == "EXITED"
    runpod_env.provisioner.start(created.provider_id)
    started = runpod_env.provisioner.get(created.provider_id)
    assert started is not None and started.raw_state == "RUNNING"


def test_absence_and_idempotent_delete(runpod_env: ProviderEnv) -> None:
    assert runpod_env.provisioner.get("nosuchpod") is None
    runpod_env.provisioner.destroy("nosuchpod")


def test_reads_retry_5xx_and_timeouts_then_give_up(runpod_env: ProviderEnv) -> None:
    runpod_env.fake.fault("get", error="server_error", times=2)
    assert runpod_env.provisioner.get("nosuchpod") is None
    assert runpod_env.sleeps.waits == [1.0, 2.0]
    runpod_env.fake.fault("list", delay_s=runpod_env.timeout_s + 0.3, times=-1)
    with pytest.raises(ProviderUnavailable):
        runpod_env.provisioner.list_owned(PREFIX)


def test_wrong_api_key(runpod_fake: FakeServer) -> None:
    bad = runpod.provisioner(runpod_config(runpod_fake, Sleeps(), credentials={"api_key": "nope"}))
    with pytest.raises(AuthFailed):
        bad.find(PREFIX + "x")


def test_capabilities() -> None:
    caps = runpod.CAPABILITIES
    assert (caps.mark, caps.idempotency_token, caps.list_filter, caps.stop_start, caps.spot) == (
        "name", False, True, True, True)
    assert (caps.billing_granularity_s, caps.reports_rate, caps.max_key_length) == (1, True, 191)


# -- REST v2 -----------------------------------------------------------------------------------------
def test_v2_is_the_default_and_v1_stays_selectable(runpod_v2_fake: FakeServer) -> None:
    chosen = runpod.provisioner(runpod_v2_config(runpod_v2_fake, Sleeps()))
    assert isinstance(chosen, RunPodV2Provisioner) and chosen.capabilities.spot is False
    assert isinstance(runpod.provisioner(ProviderConfig(credentials={"api_key": "k"})), RunPodV2Provisioner)
    by_setting = runpod.provisioner(ProviderConfig(credentials={"api_key": "k", "api_version": "v1"}))
    assert isinstance(by_setting, runpod.RunPodProvisioner)
    by_url = runpod.provisioner(ProviderConfig(credentials={"api_key": "k"}, base_url="http://127.0.0.1:1/v1"))
    assert isinstance(by_url, runpod.RunPodProvisioner)
    default = make_settings(runpod_api_key="k")
    assert isinstance(runpod.provisioner(provider_config(default, "runpod")), RunPodV2Provisioner)
    v1 = make_settings(runpod_api_key="k", deploy_runpod_api="v1")
    assert isinstance(runpod.provisioner(provider_config(v1, "runpod")), runpod.RunPodProvisioner)


def test_v2_nested_body_ssh_and_rate(runpod_v2_env: ProviderEnv) -> None:
    spec = runpod_spec(PREFIX + "d9-l0-r0-a0", gpu_count=2, ports=(8000,), region="US-TX-3")
    created = runpod_v2_env.provisioner.create(spec)
    pod = runpod_v2_env.fake.instances()[0]
    assert pod["gpu"] == {"id": "NVIDIA GeForce RTX 4090", "count": 2} and pod["cloud"] == "SECURE"
    assert pod["ports"] == ["8000/http", "22/tcp"] and pod["env"]["PUBLIC_KEY"] == spec.ssh_public_key
    assert created.state is RemoteState.PENDING
    runpod_v2_env.provisioner.get(created.provider_id)
    running = runpod_v2_env.provisioner.get(created.provider_id)
    assert running is not None and running.state is RemoteState.RUNNING
    assert running.address and running.ssh_port and running.hourly_rate == pytest.approx(pod["cost"])
    runpod_v2_env.provisioner.stop(created.provider_id)
    stopped = runpod_v2_env.provisioner.get(created.provider_id)
    assert stopped is not None and stopped.state is RemoteState.STOPPED and stopped.hourly_rate == 0.0


def test_v2_refuses_spot_and_honours_retry_after(runpod_v2_env: ProviderEnv) -> None:
    with pytest.raises(Unsupported, match="spot"):
        runpod_v2_env.provisioner.create(runpod_spec(PREFIX + "d10-l0-r0-a0", spot=True))
    runpod_v2_env.fake.fault("list", error="rate_limit", retry_after="12")
    assert runpod_v2_env.provisioner.list_owned(PREFIX) == []
    assert runpod_v2_env.sleeps.waits == [12.0]
    runpod_v2_env.fake.fault("create", error="no_capacity")
    with pytest.raises(NoCapacity):
        runpod_v2_env.provisioner.create(runpod_spec(PREFIX + "d10-l0-r0-a1"))
