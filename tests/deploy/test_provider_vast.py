"""The Vast.ai provisioning module against its stateful fake over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    InvalidLaunch,
    ListingIncomplete,
    NoCapacity,
    OfferGone,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from cloudarb.deploy.providers import vast
from cloudarb.deploy.providers.base import LaunchSpec, ProviderConfig, Provisioner, RemoteState
from tests.deploy.fakes.server import FakeServer, serving
from tests.deploy.fakes.vast import API_KEY, VastFake

PREFIX = "cloudarb-test1-"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with serving(VastFake()) as running:
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


def make(
    fake: FakeServer, *, key: str = API_KEY, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None
) -> tuple[vast.VastProvisioner, Sleeps]:
    sleeps = Sleeps()
    config = ProviderConfig(
        credentials={"api_key": key}, base_url=fake.url, timeout_s=timeout_s, sleep=sleeps, transport=transport
    )
    return vast.VastProvisioner(config), sleeps


def spec(key: str = PREFIX + "d1-l0-r0-a0", **changes: Any) -> LaunchSpec:
    base: dict[str, Any] = dict(
        key=key,
        instance_type="1x RTX 4090 #4242",
        region="US",
        gpu_model="RTX 4090",
        gpu_count=1,
        spot=False,
        price_per_hour=0.42,
        expires_at=datetime.now(UTC) + timedelta(hours=4),
        image="pytorch/pytorch:latest",
        offer_ref="4242",
        ssh_public_key="ssh-ed25519 AAAAC3Nza test@cloudarb",
        ports=(8000,),
        env={"MODE": "train"},
        disk_gb=40,
    )
    base.update(changes)
    return LaunchSpec(**base)


def live(fake: FakeServer) -> list[dict[str, Any]]:
    return [i for i in fake.instances() if i["live"]]


def test_is_a_provisioner_with_vast_capabilities(fake: FakeServer) -> None:
    module, _ = make(fake)
    assert isinstance(vast.provisioner(ProviderConfig(credentials={"api_key": "k"})), Provisioner)
    caps = module.capabilities
    assert (caps.mark, caps.idempotency_token, caps.list_filter) == ("label", False, True)
    assert (caps.billing_granularity_s, caps.requests_per_s, caps.burst) == (1, 1.0, 2)
    assert caps.listing_lag_s >= 240


def test_happy_path_create_find_get_list_destroy(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec())
    assert created.key == PREFIX + "d1-l0-r0-a0" and created.state is RemoteState.PENDING
    [held] = live(fake)
    assert held["id"] == created.provider_id and held["label"] == created.key and held["ask_id"] == 4242
    assert held["env"] == {"MODE": "train", "-p 8000:8000": "1"}
    assert held["runtype"] == "ssh" and held["disk"] == 40.0 and held["intended_status"] == "running"
    assert held["is_bid"] is False  # no price for on-demand
    assert held["ssh_keys"] == ["ssh-ed25519 AAAAC3Nza test@cloudarb"]
    assert "base64 -d >> /root/.ssh/authorized_keys" in held["onstart"]

    states = [module.get(created.provider_id) for _ in range(3)]
    assert [s.state if s else None for s in states] == [
        RemoteState.PENDING, RemoteState.PENDING, RemoteState.RUNNING
    ]
    running = states[-1]
    assert running is not None and running.hourly_rate == held["dph_total"] and running.ssh_port
    assert running.address and running.raw_state == "running/running" and running.created_at

    found = module.find(created.key)
    assert found is not None and found.provider_id == created.provider_id
    assert module.find(PREFIX + "other") is None
    assert [r.provider_id for r in module.list_owned(PREFIX)] == [created.provider_id]
    assert module.list_owned("cloudarb-elsewhere-") == []

    module.destroy(created.provider_id)
    assert module.get(created.provider_id) is None  # {"instances": null}: the proof of absence
    assert module.find(created.key) is None and module.list_owned(PREFIX) == []
    module.destroy(created.provider_id)  # idempotent
    module.destroy("999999")  # never existed: already gone


def test_the_ask_id_falls_back_to_the_instance_type_ingestion_writes(fake: FakeServer) -> None:
    module, _ = make(fake)
    module.create(spec(offer_ref="0f3a9c2b7d1e4a5b6c7d8e9f", instance_type="1x RTX 4090 #5151"))
    module.create(spec(key=PREFIX + "x", offer_ref=None, instance_type="2x A100 #6161"))
    assert sorted(i["ask_id"] for i in live(fake)) == [5151, 6161]


def test_spot_sends_the_bid_as_price(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec(spot=True, price_per_hour=0.31))
    [held] = live(fake)
    assert held["is_bid"] is True and held["dph_total"] == 0.31
    assert created.provider_id == held["id"]


def test_missing_offer_id_is_refused_before_any_call(fake: FakeServer) -> None:
    module, _ = make(fake)
    with pytest.raises(InvalidLaunch, match="ask\\) id is missing"):
        module.create(spec(offer_ref=None, instance_type="1x RTX 4090"))
    with pytest.raises(InvalidLaunch, match="ask\\) id is missing"):
        module.create(spec(offer_ref="0f3a9c2b7d1e4a5b6c7d8e9f", instance_type="1x RTX 4090"))
    with pytest.raises(InvalidLaunch, match="image"):
        module.create(spec(image=""))
    assert live(fake) == []


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"error": "offer_gone"}, OfferGone),
        ({"error": "offer_gone", "status": 410}, OfferGone),
        ({"error": "no_capacity"}, NoCapacity),
        ({"error": "quota"}, QuotaExceeded),
        ({"error": "invalid"}, InvalidLaunch),
    ],
)
def test_create_refusals_map_to_kinds_and_create_nothing(fake: FakeServer, fault: dict[str, Any], kind: type) -> None:
    module, _ = make(fake)
    fake.fault("create", **fault)
    with pytest.raises(kind):
        module.create(spec())
    assert live(fake) == []


def test_a_gone_ask_in_the_catalog_is_offer_gone(fake: FakeServer) -> None:
    module, _ = make(fake)
    fake.control(gone_asks=[4242])
    with pytest.raises(OfferGone):
        module.create(spec())


def test_bad_key_is_auth_failed(fake: FakeServer) -> None:
    module, _ = make(fake, key="wrong")
    with pytest.raises(AuthFailed):
        module.create(spec())
    with pytest.raises(AuthFailed):
        module.list_owned(PREFIX)
    with pytest.raises(AuthFailed):
        vast.VastProvisioner(ProviderConfig(base_url=fake.url))


def test_429_without_retry_after_backs_off_then_raises_without_a_wait(fake: FakeServer) -> None:
    module, sleeps = make(fake)
    fake.fault("create", error="rate_limit", times=1)
    created = module.create(spec())  # waited out once (a 429 creates nothing)
    assert sleeps.waits == [1.0] and len(live(fake)) == 1
    fake.fault("list", error="rate_limit", times=-1)
    with pytest.raises(RateLimited) as caught:
        module.find(created.key)
    assert caught.value.retry_after_s is None  # Vast never says how long


def test_create_then_500_is_unknown_and_the_instance_is_found_by_key(fake: FakeServer) -> None:
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


def test_success_false_with_a_contract_is_adopted(fake: FakeServer) -> None:
    module, _ = make(fake)
    fake.control(bid_success_false=True)
    created = module.create(spec(spot=True))
    [held] = live(fake)
    assert created.provider_id == held["id"]


def test_listing_lag_hides_a_new_instance_from_lists_not_from_get(fake: FakeServer) -> None:
    module, _ = make(fake)
    fake.control(listing_lag_calls=2)
    created = module.create(spec())
    assert module.find(created.key) is None
    assert module.list_owned(PREFIX) == []
    assert module.get(created.provider_id) is not None
    found = module.find(created.key)
    assert found is not None and found.provider_id == created.provider_id


def test_listing_reads_every_page(fake: FakeServer) -> None:
    module, _ = make(fake)
    ids = {module.create(spec(key=f"{PREFIX}d2-l0-r{n}-a0", ssh_public_key=None)).provider_id for n in range(11)}
    module.create(spec(key="someone-else-entirely", ssh_public_key=None))
    fake.control(page_size=5)  # the fake's pages shrink below Vast's 25 so a few instances make 3 pages
    owned = module.list_owned(PREFIX)
    assert {r.provider_id for r in owned} == ids and len(owned) == 11
    lists = [p for m, p in fake.app.requests if p.startswith("/api/v1/")]
    assert len(lists) == 3  # 5 + 5 + 2 (the foreign one is on the last page)
    app = fake.app
    assert isinstance(app, VastFake)
    assert app.queries[-1]["order_by"] == ['[{"col":"id","dir":"asc"}]']
    assert app.queries[-1]["select_filters"] == ["{}"] and "after_token" in app.queries[-1]


class FailSecondList(httpx.HTTPTransport):
    """Real HTTP, except that the second v1 listing page breaks mid-exchange."""

    def __init__(self) -> None:
        super().__init__()
        self.lists = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/"):
            self.lists += 1
            if self.lists >= 2:
                raise httpx.ReadError("connection reset", request=request)
        return super().handle_request(request)


def test_a_failed_page_aborts_the_listing(fake: FakeServer) -> None:
    module, _ = make(fake)
    for n in range(6):
        module.create(spec(key=f"{PREFIX}d3-l0-r{n}-a0", ssh_public_key=None))
    fake.control(page_size=5)
    broken, _ = make(fake, transport=FailSecondList())
    with pytest.raises(ListingIncomplete):
        broken.list_owned(PREFIX)
    fake.fault("list", error="server_error", times=-1)
    with pytest.raises(ListingIncomplete):
        module.list_owned(PREFIX)


def test_destroy_failing_k_times(fake: FakeServer) -> None:
    module, sleeps = make(fake)
    created = module.create(spec())
    fake.fault("destroy", error="server_error", times=5)
    with pytest.raises(ProviderUnavailable):
        module.destroy(created.provider_id)  # 3 attempts, all 500
    assert len(live(fake)) == 1 and len(sleeps.waits) == 2
    module.destroy(created.provider_id)  # two more 500s, then accepted
    assert live(fake) == [] and module.get(created.provider_id) is None


def test_destroy_accepted_but_the_instance_lingers(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec())
    fake.control(destroy_linger_calls=2)
    module.destroy(created.provider_id)
    lingering = [module.get(created.provider_id) for _ in range(2)]
    assert all(r is not None and r.state is not RemoteState.TERMINATED for r in lingering)
    assert module.get(created.provider_id) is None


def test_stop_and_start(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec())
    module.stop(created.provider_id)
    stopped = module.get(created.provider_id)
    assert stopped is not None and stopped.state is RemoteState.STOPPED
    module.start(created.provider_id)
    for _ in range(3):
        started = module.get(created.provider_id)
    assert started is not None and started.state is RemoteState.RUNNING


def test_a_404_on_show_is_not_proof_of_absence(fake: FakeServer) -> None:
    module, _ = make(fake)
    created = module.create(spec())
    fake.fault("get", status=404, body={"success": False, "error": "not_found", "msg": "Not found"})
    with pytest.raises(ProviderUnavailable, match="not Vast's proof"):
        module.get(created.provider_id)
    assert module.get(created.provider_id) is not None


@pytest.mark.parametrize(
    ("actual", "cur", "state"),
    [
        (None, "running", RemoteState.PENDING),
        ("loading", "running", RemoteState.PENDING),
        ("running", "running", RemoteState.RUNNING),
        ("frozen", "running", RemoteState.RUNNING),
        ("stopped", "stopped", RemoteState.STOPPED),
        ("exited", "running", RemoteState.STOPPED),
        ("offline", "running", RemoteState.UNKNOWN),
        ("something-new", "running", RemoteState.UNKNOWN),
        ("running", "unloaded", RemoteState.TERMINATED),
    ],
)
def test_state_translation(actual: str | None, cur: str, state: RemoteState) -> None:
    assert vast.remote_state(actual, cur) is state


def test_the_registry_and_the_settings_reach_the_module(fake: FakeServer) -> None:
    from pydantic import SecretStr

    from cloudarb.config import Settings
    from cloudarb.deploy.env import provider_config
    from cloudarb.deploy.providers import registry

    settings = Settings(_env_file=None, vast_api_key=SecretStr(API_KEY),
                        deploy_base_url_vast=fake.url)
    module = registry.provisioner("vast", provider_config(settings, "vast"))
    assert isinstance(module, vast.VastProvisioner)
    assert module.list_owned(PREFIX) == []
