"""The TensorDock provisioning module against its stateful fake over real HTTP on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    InvalidLaunch,
    NoCapacity,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from cloudarb.deploy.providers import tensordock
from cloudarb.deploy.providers.base import LaunchSpec, ProviderConfig, Provisioner, RemoteState
from tests.deploy.fakes.server import FakeServer, serving
from tests.deploy.fakes.tensordock import API_TOKEN, TensorDockFake

PREFIX = "cloudarb-test1-"
KEY_TEXT = "ssh-ed25519 AAAAC3Nza test@cloudarb"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with serving(TensorDockFake()) as running:
        yield running


@pytest.fixture()
def fake(server: FakeServer) -> FakeServer:
    server.reset()
    return server


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make(fake: FakeServer, *, token: str = API_TOKEN, timeout_s: float = 5.0) -> tuple[Provisioner, Sleeps]:
    sleeps = Sleeps()
    config = ProviderConfig(
        credentials={"api_key": token}, base_url=f"{fake.url}/api/v2", timeout_s=timeout_s, sleep=sleeps
    )
    return tensordock.provisioner(config), sleeps


def spec(key: str = PREFIX + "d1-l0-r0-a0", **changes: Any) -> LaunchSpec:
    base: dict[str, Any] = dict(
        key=key,
        instance_type="2x geforcertx4090-pcie-24gb (16 vCPU, 64 GB)",
        region="United States-Texas-Austin",
        gpu_model="RTX 4090",
        gpu_count=2,
        spot=False,
        price_per_hour=0.9,
        expires_at=datetime.now(UTC) + timedelta(hours=4),
        image="",
        zone="hostnode-abc",
        offer_ref="loc-uuid-12345",
        ssh_public_key=KEY_TEXT,
        ports=(8000,),
        env={"MODE": "serve"},
        disk_gb=40,
    )
    base.update(changes)
    return LaunchSpec(**base)


def live(fake: FakeServer) -> list[dict[str, Any]]:
    return [i for i in fake.instances() if i["live"]]


def test_capabilities_are_data() -> None:
    caps = tensordock.CAPABILITIES
    assert (caps.mark, caps.list_filter, caps.idempotency_token, caps.spot) == ("name", False, False, False)
    assert (caps.billing_granularity_s, caps.billing_minimum_s) == (3600, 3600)
    assert caps.requests_per_s == pytest.approx(100 / 60)


def test_happy_path_create_find_get_list_destroy(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec())
    assert created.key == PREFIX + "d1-l0-r0-a0" and created.state is RemoteState.PENDING
    [held] = live(fake)
    assert held["id"] == created.provider_id and held["name"] == created.key
    assert held["resources"] == {
        "vcpu_count": 16, "ram_gb": 64, "storage_gb": 100, "gpus": {"geforcertx4090-pcie-24gb": {"count": 2}}
    }
    assert held["hostnode_id"] == "hostnode-abc" and held["location_id"] is None
    assert held["image"] == "ubuntu2204" and held["useDedicatedIp"] is True and held["ssh_key"] == KEY_TEXT
    script = " ".join(held["cloud_init"]["runcmd"])
    encoded = base64.b64encode(KEY_TEXT.encode()).decode()
    assert f"echo {encoded} | base64 -d >> /root/.ssh/authorized_keys" in script
    assert "/home/user/.ssh/authorized_keys" in script
    assert base64.b64encode(b"MODE=serve\n").decode() in script

    first, second = module.get(created.provider_id), module.get(created.provider_id)
    assert first is not None and first.state is RemoteState.PENDING and first.raw_state == "starting"
    assert second is not None and second.state is RemoteState.RUNNING
    assert second.address == held["ip"] and second.ssh_port == 22 and second.hourly_rate == held["rate"]

    found = module.find(created.key)
    assert found is not None and found.provider_id == created.provider_id
    assert module.find(PREFIX + "nope") is None
    assert [r.provider_id for r in module.list_owned(PREFIX)] == [created.provider_id]

    module.destroy(created.provider_id)
    assert module.get(created.provider_id) is None  # 404: the proof of absence
    assert module.list_owned(PREFIX) == [] and module.find(created.key) is None
    module.destroy(created.provider_id)  # idempotent: already gone


def test_location_placement_and_a_docker_image_through_cloud_init(fake: FakeServer) -> None:
    module, _ = make(fake)
    module.create(spec(zone=None, image="vllm/vllm-openai:latest", disk_gb=250))
    [held] = live(fake)
    assert held["location_id"] == "loc-uuid-12345" and held["hostnode_id"] is None
    assert held["resources"]["storage_gb"] == 250 and held["image"] == "ubuntu2204"
    assert any("docker run -d" in c and "vllm/vllm-openai:latest" in c and "-p 8000:8000" in c
               for c in held["cloud_init"]["runcmd"])


def test_both_list_shapes_are_read(fake: FakeServer) -> None:
    module, _ = make(fake)
    mine = module.create(spec())
    module.create(spec(key="someone-elses-vm"))
    for shape in ("bare", "documented"):
        fake.control(list_shape=shape)
        owned = module.list_owned(PREFIX)
        assert [(r.provider_id, r.key) for r in owned] == [(mine.provider_id, mine.key)]


def test_refused_before_any_call(fake: FakeServer) -> None:
    module, _ = make(fake)
    with pytest.raises(InvalidLaunch, match="instance_type"):
        module.create(spec(instance_type="H100"))
    with pytest.raises(InvalidLaunch, match="ssh_public_key"):
        module.create(spec(ssh_public_key=None))
    with pytest.raises(InvalidLaunch, match="location"):
        module.create(spec(offer_ref=None, zone=None))
    assert fake.app.requests == []


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"error": "no_capacity"}, NoCapacity),
        ({"error": "no_capacity", "status": 200}, NoCapacity),  # the error-in-a-200 seen live
        ({"error": "quota"}, QuotaExceeded),
        ({"error": "invalid"}, InvalidLaunch),
        ({"error": "auth"}, AuthFailed),
    ],
)
def test_create_refusals_map_to_kinds_and_create_nothing(fake: FakeServer, fault: dict[str, Any], kind: type) -> None:
    module, _ = make(fake)
    fake.fault("create", **fault)
    with pytest.raises(kind):
        module.create(spec())
    assert live(fake) == []


def test_the_fakes_own_validation_reaches_the_module_as_invalid_launch(fake: FakeServer) -> None:
    module, _ = make(fake)
    with pytest.raises(InvalidLaunch, match="vcpu"):
        module.create(spec(instance_type="1x h100-sxm5-80gb (0 vCPU, 64 GB)"))


def test_bad_token_is_auth_failed(fake: FakeServer) -> None:
    module, _ = make(fake, token="wrong")
    with pytest.raises(AuthFailed):
        module.list_owned(PREFIX)


def test_429_honours_retry_after_then_raises_with_it(fake: FakeServer) -> None:
    module, sleeps = make(fake)
    fake.fault("list", error="rate_limit", retry_after=3, times=1)
    assert module.list_owned(PREFIX) == []
    assert sleeps.waits == [3.0]
    fake.fault("create", error="rate_limit", retry_after=120, times=-1)
    with pytest.raises(RateLimited) as caught:
        module.create(spec())
    assert caught.value.retry_after_s == 120.0 and live(fake) == []


def test_create_then_500_is_unknown_and_the_instance_is_found_by_name(fake: FakeServer) -> None:
    module, _ = make(fake)
    fake.fault("create", error="server_error", after_effect=True)
    with pytest.raises(CreateUnknown):
        module.create(spec())
    [held] = live(fake)
    found = module.find(spec().key)
    assert found is not None and found.provider_id == held["id"]


def test_create_then_timeout_is_unknown_and_the_instance_exists(fake: FakeServer) -> None:
    module, _ = make(fake, timeout_s=0.3)
    fake.fault("create", after_effect=True, delay_s=1.0)
    with pytest.raises(CreateUnknown):
        module.create(spec())
    [held] = live(fake)
    found = module.find(spec().key)
    assert found is not None and found.provider_id == held["id"]


def test_listing_lag(fake: FakeServer) -> None:
    module, _ = make(fake)
    fake.control(listing_lag_calls=2)
    created = module.create(spec())
    assert module.find(created.key) is None and module.list_owned(PREFIX) == []
    found = module.find(created.key)
    assert found is not None and found.provider_id == created.provider_id


def test_destroy_failing_k_times(fake: FakeServer) -> None:
    module, sleeps = make(fake)
    created = module.create(spec())
    fake.fault("destroy", error="server_error", times=4)
    with pytest.raises(ProviderUnavailable):
        module.destroy(created.provider_id)
    assert len(live(fake)) == 1 and len(sleeps.waits) == 2
    module.destroy(created.provider_id)  # one more 500, then accepted
    assert live(fake) == [] and module.get(created.provider_id) is None


def test_destroy_accepted_but_the_instance_lingers(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec())
    fake.control(destroy_linger_calls=2)
    module.destroy(created.provider_id)
    lingering = [module.get(created.provider_id) for _ in range(2)]
    assert [r.state if r else None for r in lingering] == [RemoteState.TERMINATING] * 2
    assert module.get(created.provider_id) is None


def test_stop_and_start(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec())
    module.stop(created.provider_id)
    states = [module.get(created.provider_id) for _ in range(2)]
    assert [s.raw_state if s else None for s in states] == ["stopping", "stopped"]
    assert states[1] is not None and states[1].state is RemoteState.STOPPED
    module.start(created.provider_id)
    states = [module.get(created.provider_id) for _ in range(2)]
    assert [s.state if s else None for s in states] == [RemoteState.PENDING, RemoteState.RUNNING]


def test_a_malformed_id_never_reaches_a_url(fake: FakeServer) -> None:
    module, _ = make(fake)
    with pytest.raises(InvalidLaunch):
        module.destroy("../instances")


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("starting", RemoteState.PENDING),
        ("running", RemoteState.RUNNING),
        ("stopping", RemoteState.RUNNING),
        ("Stopped", RemoteState.STOPPED),
        ("StoppedDisassociated", RemoteState.STOPPED),
        ("deleting", RemoteState.TERMINATING),
        ("deleted", RemoteState.TERMINATED),
        ("error", RemoteState.UNKNOWN),
        ("", RemoteState.UNKNOWN),
    ],
)
def test_state_translation(word: str, state: RemoteState) -> None:
    assert tensordock.remote_state(word) is state


def test_the_registry_and_the_settings_reach_the_module(fake: FakeServer) -> None:
    from pydantic import SecretStr

    from cloudarb.config import Settings
    from cloudarb.deploy.env import provider_config
    from cloudarb.deploy.providers import registry

    settings = Settings(_env_file=None, tensordock_api_key=SecretStr(API_TOKEN),
                        deploy_base_url_tensordock=f"{fake.url}/api/v2")
    config = provider_config(settings, "tensordock")
    assert config.credentials == {"api_key": API_TOKEN}
    module = registry.provisioner("tensordock", config)
    assert isinstance(module, tensordock.TensorDockProvisioner)
    assert module.list_owned(PREFIX) == []  # authenticated against the fake with the configured token
