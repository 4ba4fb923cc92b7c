"""The AWS EC2 provisioning module against moto's EC2 server behind the fault-injecting proxy."""
# ruff: noqa: F811  (fixtures are imported from tests/deploy/fakes/fixtures.py and used as parameters)

from __future__ import annotations

from dataclasses import replace

import pytest

from cloudarb.deploy.errors import (
    AuthFailed,
    CreateUnknown,
    InvalidLaunch,
    ListingIncomplete,
    NoCapacity,
    ProviderUnavailable,
    ProvisionError,
    QuotaExceeded,
    RateLimited,
)
from cloudarb.deploy.providers import aws
from cloudarb.deploy.providers.base import RemoteState
from tests.deploy.fakes.env import PREFIX, FakeControl, ProviderEnv, Sleeps
from tests.deploy.fakes.fixtures import (  # noqa: F401
    aws_config,
    aws_env,
    aws_spec,
    ec2_fake,
    ec2_server,
    moto_server,
)
from tests.deploy.fakes.moto import free_port
from tests.deploy.fakes.server import FakeServer


def _only(fake: FakeControl) -> dict[str, object]:
    instances = fake.instances()
    assert len(instances) == 1, instances
    return instances[0]


def test_spot_launch_carries_token_tags_and_market_options(aws_env: ProviderEnv) -> None:
    spec = aws_spec(PREFIX + "d1-l0-r0-a0", spot=True, price_per_hour=0.42, tags={"deployment": "dep-1"})
    created = aws_env.provisioner.create(spec)
    region, instance_id = aws.split_provider_id(created.provider_id, "nowhere")
    assert region == "us-east-1" and instance_id.startswith("i-")
    held = _only(aws_env.fake)
    assert held["id"] == instance_id
    assert held["client_token"] == spec.key
    assert held["lifecycle"] == "spot"
    assert held["instance_type"] == "g5.xlarge"
    assert held["tags"] == {
        "Name": spec.key,
        "cloudarb:key": spec.key,
        "cloudarb:expires-at": spec.expires_at.isoformat(),
        "deployment": "dep-1",
    }


def test_repeated_client_token_returns_the_same_instance(aws_env: ProviderEnv) -> None:
    spec = aws_spec(PREFIX + "d2-l0-r0-a0")
    first = aws_env.provisioner.create(spec)
    again = aws_env.provisioner.create(spec)
    assert again.provider_id == first.provider_id
    assert len(aws_env.fake.instances()) == 1
    with pytest.raises(InvalidLaunch, match="IdempotentParameterMismatch"):
        aws_env.provisioner.create(replace(spec, instance_type="g5.2xlarge"))
    assert len(aws_env.fake.instances()) == 1


def test_create_retried_after_a_500_with_the_instance_existing_adopts_it(aws_env: ProviderEnv) -> None:
    spec = aws_spec(PREFIX + "d3-l0-r0-a0")
    aws_env.fake.fault("create", error="server_error", after_effect=True)
    with pytest.raises(CreateUnknown):
        aws_env.provisioner.create(spec)
    retried = aws_env.provisioner.create(spec)
    assert retried.provider_id.endswith(str(_only(aws_env.fake)["id"]))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("no_capacity", NoCapacity),
        ("host_capacity", NoCapacity),
        ("unsupported", NoCapacity),
        ("spot_price", NoCapacity),
        ("quota", QuotaExceeded),
        ("instance_limit", QuotaExceeded),
        ("rate_limit", RateLimited),
        ("auth", AuthFailed),
    ],
)
def test_ec2_error_codes_map_to_kinds(aws_env: ProviderEnv, error: str, kind: type[ProvisionError]) -> None:
    aws_env.fake.fault("create", error=error)
    with pytest.raises(kind):
        aws_env.provisioner.create(aws_spec(PREFIX + "d4-l0-r0-a0"))
    assert aws_env.fake.instances() == []


def test_not_found_is_not_proof_of_absence(aws_env: ProviderEnv) -> None:
    with pytest.raises(ProviderUnavailable, match="not proof"):
        aws_env.provisioner.get("us-east-1:i-0123456789abcdef0")
    created = aws_env.provisioner.create(aws_spec(PREFIX + "d5-l0-r0-a0"))
    aws_env.provisioner.destroy(created.provider_id)
    aws_env.fake.fault("get", error="not_found")
    with pytest.raises(ProviderUnavailable):
        aws_env.provisioner.get(created.provider_id)
    seen = aws_env.provisioner.get(created.provider_id)
    assert seen is not None and seen.state is RemoteState.TERMINATED and seen.raw_state == "terminated"
    aws_env.provisioner.destroy(created.provider_id)  # terminating twice is fine


def test_list_owned_reads_every_page(ec2_fake: FakeServer) -> None:
    provisioner = aws.AwsProvisioner(aws_config(ec2_fake, Sleeps()), page_size=5)
    keys = {PREFIX + f"d6-l0-r{i}-a0" for i in range(12)}
    for key in sorted(keys):
        provisioner.create(aws_spec(key))
    provisioner.create(aws_spec("not-ours-1"))
    assert {i.key for i in provisioner.list_owned(PREFIX)} == keys


def test_a_failing_later_page_aborts_the_listing(ec2_fake: FakeServer) -> None:
    provisioner = aws.AwsProvisioner(aws_config(ec2_fake, Sleeps()), page_size=5)
    for i in range(7):
        provisioner.create(aws_spec(PREFIX + f"d7-l0-r{i}-a0"))
    ec2_fake.fault("list", error="server_error", skip=1)
    with pytest.raises(ListingIncomplete):
        provisioner.list_owned(PREFIX)


def test_stop_and_start(aws_env: ProviderEnv) -> None:
    created = aws_env.provisioner.create(aws_spec(PREFIX + "d8-l0-r0-a0"))
    aws_env.provisioner.stop(created.provider_id)
    stopped = aws_env.provisioner.get(created.provider_id)
    assert stopped is not None and stopped.state is RemoteState.STOPPED
    aws_env.provisioner.start(created.provider_id)
    started = aws_env.provisioner.get(created.provider_id)
    assert started is not None and started.state in (RemoteState.PENDING, RemoteState.RUNNING)


def test_the_standard_endpoint_variable_is_honoured(ec2_fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", ec2_fake.url)
    provisioner = aws.provisioner(replace(aws_config(ec2_fake, Sleeps()), base_url=None))
    created = provisioner.create(aws_spec(PREFIX + "d9-l0-r0-a0"))
    assert created.provider_id.endswith(str(_only(ec2_fake)["id"]))


def test_machine_image_and_container_user_data(ec2_fake: FakeServer) -> None:
    bare = dict(aws_config(ec2_fake, Sleeps()).credentials)
    del bare["ami"]
    provisioner = aws.provisioner(replace(aws_config(ec2_fake, Sleeps()), credentials=bare))
    with pytest.raises(InvalidLaunch, match="CLOUDARB_AWS_AMI"):  # moto has no DLAMI parameter
        provisioner.create(aws_spec(PREFIX + "d10-l0-r0-a0", image="nvcr.io/nvidia/pytorch:24.01-py3"))
    created = provisioner.create(aws_spec(PREFIX + "d10-l0-r0-a1", image="ami-0fedcba9876543210"))
    assert created.state in (RemoteState.PENDING, RemoteState.RUNNING)


def test_unreachable_endpoint_create_is_unknown_and_reads_are_unavailable(ec2_fake: FakeServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    provisioner = aws.provisioner(replace(aws_config(ec2_fake, Sleeps()), base_url=dead))
    with pytest.raises(CreateUnknown):
        provisioner.create(aws_spec(PREFIX + "d11-l0-r0-a0"))
    with pytest.raises(ProviderUnavailable):
        provisioner.list_owned(PREFIX)


def test_capabilities_are_ec2s() -> None:
    caps = aws.CAPABILITIES
    assert (caps.idempotency_token, caps.mark, caps.list_filter, caps.stop_start, caps.spot) == (
        True, "tags", True, True, True)
    assert (caps.billing_granularity_s, caps.billing_minimum_s, caps.max_key_length) == (1, 60, 64)



def test_configured_regions_plus_the_regions_launched_in(ec2_fake: FakeServer) -> None:
    provisioner = aws.AwsProvisioner(aws_config(ec2_fake, Sleeps()))  # regions: us-east-1
    west = provisioner.create(aws_spec(PREFIX + "d12-l0-r0-a0", region="us-west-2"))
    assert west.provider_id.startswith("us-west-2:")
    assert [i.provider_id for i in provisioner.list_owned(PREFIX)] == [west.provider_id]
    fresh = aws.AwsProvisioner(aws_config(ec2_fake, Sleeps()))  # a restarted worker: us-east-1 only
    assert fresh.list_owned(PREFIX) == []
    seen = fresh.get(west.provider_id)  # the region travels in the provider id
    assert seen is not None and seen.key == PREFIX + "d12-l0-r0-a0"
    fresh.also_list(["us-west-2"])  # the reconciler names the regions of its rows
    assert [i.provider_id for i in fresh.list_owned(PREFIX)] == [west.provider_id]


@pytest.mark.slow
def test_without_configured_regions_every_enabled_region_is_listed(ec2_fake: FakeServer) -> None:
    creds = {k: v for k, v in aws_config(ec2_fake, Sleeps()).credentials.items() if k != "regions"}
    launcher = aws.AwsProvisioner(aws_config(ec2_fake, Sleeps(), credentials=creds, timeout_s=30.0))
    created = launcher.create(aws_spec(PREFIX + "d13-l0-r0-a0", region="eu-west-1"))
    fresh = aws.AwsProvisioner(aws_config(ec2_fake, Sleeps(), credentials=creds, timeout_s=30.0))
    assert [i.provider_id for i in fresh.list_owned(PREFIX)] == [created.provider_id]
