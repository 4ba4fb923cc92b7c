"""Fixtures of the agent tests: a private Podman service (session) and an engine on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from cloudarb.agent.engines.libpod import LibpodEngine
from tests.agent.podman_service import PodmanService, start_service


@pytest.fixture(scope="session")
def podman_service() -> Iterator[PodmanService]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/services installs it)")
    service = start_service()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def libpod(podman_service: PodmanService) -> Iterator[LibpodEngine]:
    engine = LibpodEngine(podman_service.socket)
    try:
        yield engine
    finally:
        podman_service.podman("rm", "-af", "-t", "0")
        engine.close()
