"""Pytest fixtures for the provider fakes (one server per session, reset per test).

Import the ones a test module uses (``from tests.deploy.fakes.fixtures import lambda_env  # noqa:
F401``); they are kept out of ``tests/deploy/conftest.py`` so the deploy-core fixtures there and
these evolve independently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cloudarb.deploy.providers import aws, lambda_, runpod
from cloudarb.deploy.providers.base import LaunchSpec, ProviderConfig
from tests.deploy.fakes.ec2_proxy import Ec2Proxy
from tests.deploy.fakes.env import ProviderEnv, Sleeps, base_spec
from tests.deploy.fakes.lambda_cloud import API_KEY as LAMBDA_KEY
from tests.deploy.fakes.lambda_cloud import LambdaFake
from tests.deploy.fakes.moto import MotoServer, moto_server
from tests.deploy.fakes.runpod import API_KEY as RUNPOD_KEY
from tests.deploy.fakes.runpod import RunPodFake
from tests.deploy.fakes.runpod_v2 import API_KEY as RUNPOD_V2_KEY
from tests.deploy.fakes.runpod_v2 import RunPodV2Fake
from tests.deploy.fakes.server import FakeServer, serving


@pytest.fixture(scope="session")
def lambda_server() -> Iterator[FakeServer]:
    with serving(LambdaFake()) as server:
        yield server


@pytest.fixture()
def lambda_fake(lambda_server: FakeServer) -> FakeServer:
    lambda_server.reset()
    return lambda_server


def lambda_config(server: FakeServer, sleeps: Sleeps, **overrides: Any) -> ProviderConfig:
    fields: dict[str, Any] = dict(
        credentials={"api_key": LAMBDA_KEY}, base_url=f"{server.url}/api/v1", timeout_s=1.0, sleep=sleeps
    )
    fields.update(overrides)
    return ProviderConfig(**fields)


def lambda_spec(key: str, **overrides: Any) -> LaunchSpec:
    return base_spec(key, **{"instance_type": "gpu_1x_a10", "region": "us-east-1", "gpu_model": "A10",
                             "price_per_hour": 1.29, **overrides})


@pytest.fixture()
def lambda_env(lambda_fake: FakeServer) -> ProviderEnv:
    sleeps = Sleeps()
    return ProviderEnv("lambda", lambda_.provisioner(lambda_config(lambda_fake, sleeps)), lambda_fake,
                       lambda_spec, sleeps)


@pytest.fixture(scope="session")
def runpod_server() -> Iterator[FakeServer]:
    with serving(RunPodFake()) as server:
        yield server


@pytest.fixture()
def runpod_fake(runpod_server: FakeServer) -> FakeServer:
    runpod_server.reset()
    return runpod_server


def runpod_config(server: FakeServer, sleeps: Sleeps, **overrides: Any) -> ProviderConfig:
    fields: dict[str, Any] = dict(
        credentials={"api_key": RUNPOD_KEY}, base_url=f"{server.url}/v1", timeout_s=1.0, sleep=sleeps
    )
    fields.update(overrides)
    return ProviderConfig(**fields)


def runpod_spec(key: str, **overrides: Any) -> LaunchSpec:
    return base_spec(key, **{"instance_type": "NVIDIA GeForce RTX 4090 [secure]", "gpu_model": "RTX 4090",
                             "image": "runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel-ubuntu22.04",
                             "ports": (8888,), "price_per_hour": 0.69, **overrides})


@pytest.fixture()
def runpod_env(runpod_fake: FakeServer) -> ProviderEnv:
    sleeps = Sleeps()
    return ProviderEnv("runpod", runpod.provisioner(runpod_config(runpod_fake, sleeps)), runpod_fake,
                       runpod_spec, sleeps)


@pytest.fixture(scope="session")
def runpod_v2_server() -> Iterator[FakeServer]:
    with serving(RunPodV2Fake()) as server:
        yield server


@pytest.fixture()
def runpod_v2_fake(runpod_v2_server: FakeServer) -> FakeServer:
    runpod_v2_server.reset()
    return runpod_v2_server


def runpod_v2_config(server: FakeServer, sleeps: Sleeps, **overrides: Any) -> ProviderConfig:
    fields: dict[str, Any] = dict(
        credentials={"api_key": RUNPOD_V2_KEY}, base_url=f"{server.url}/v2", timeout_s=1.0, sleep=sleeps
    )
    fields.update(overrides)
    return ProviderConfig(**fields)


@pytest.fixture()
def runpod_v2_env(runpod_v2_fake: FakeServer) -> ProviderEnv:
    sleeps = Sleeps()
    return ProviderEnv("runpod", runpod.provisioner(runpod_v2_config(runpod_v2_fake, sleeps)), runpod_v2_fake,
                       runpod_spec, sleeps)


# -- AWS: moto's EC2 server behind the fault-injecting proxy -----------------------------------------
AWS_TIMEOUT_S = 2.0
"""moto answers in well under a second once warm; a longer fault delay is a client timeout."""
AWS_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                   "regions": "us-east-1", "ami": "ami-0a1b2c3d4e5f60718"}


@pytest.fixture(scope="session")
def ec2_server(moto_server: MotoServer) -> Iterator[FakeServer]:
    with serving(Ec2Proxy(moto_server.url)) as server:
        # moto's first RunInstances loads its catalogs (seconds): pay that before any timed test
        warm = aws.provisioner(aws_config(server, Sleeps(), timeout_s=60.0))
        warm.create(aws_spec("warm-up"))
        yield server


@pytest.fixture()
def ec2_fake(ec2_server: FakeServer) -> FakeServer:
    ec2_server.reset()
    return ec2_server


def aws_config(server: FakeServer, sleeps: Sleeps, **overrides: Any) -> ProviderConfig:
    fields: dict[str, Any] = dict(credentials=dict(AWS_CREDENTIALS), base_url=server.url, timeout_s=AWS_TIMEOUT_S,
                                  sleep=sleeps)
    fields.update(overrides)
    return ProviderConfig(**fields)


def aws_spec(key: str, **overrides: Any) -> LaunchSpec:
    return base_spec(key, **{"instance_type": "g5.xlarge", "region": "us-east-1", "gpu_model": "A10G",
                             "price_per_hour": 1.006, **overrides})


@pytest.fixture()
def aws_env(ec2_fake: FakeServer) -> ProviderEnv:
    sleeps = Sleeps()
    return ProviderEnv("aws", aws.provisioner(aws_config(ec2_fake, sleeps)), ec2_fake, aws_spec, sleeps,
                       timeout_s=AWS_TIMEOUT_S)


__all__ = ["moto_server"]
