"""What the provider contract test needs from each provider's fake: ``ProviderEnv``.

A provider joins the contract test with one fixture returning a ``ProviderEnv`` (a provisioner
pointed at its fake, the fake's control handle, and a launch-spec factory the fake accepts) and one
line in ``tests/deploy/test_provider_contract.py``'s ``ENVS``. The fakes share the control
vocabulary of ``server.py``: operations ``create``, ``list``, ``get``, ``destroy`` and the named
errors ``no_capacity``, ``quota``, ``auth``, ``rate_limit``, ``server_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cloudarb.deploy.providers.base import LaunchSpec, Provisioner

PREFIX = "cloudarb-test1-"
"""The ownership prefix the tests use (an installation id of ``test1``)."""


class FakeControl(Protocol):
    """The control handle of a fake (``FakeServer`` or the EC2 proxy)."""

    def control(self, **payload: Any) -> None: ...

    def fault(self, op: str, **fields: Any) -> None: ...

    def reset(self) -> None: ...

    def instances(self) -> list[dict[str, Any]]: ...


class Sleeps:
    """An injectable ``sleep`` that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class ProviderEnv:
    key: str
    provisioner: Provisioner
    fake: FakeControl
    make_spec: Callable[..., LaunchSpec]
    """``make_spec(key, **overrides)``: a launch the fake accepts."""
    sleeps: Sleeps = field(default_factory=Sleeps)
    timeout_s: float = 1.0
    """The client timeout the provisioner was built with (a longer fault delay is a timeout)."""


def base_spec(key: str, **overrides: Any) -> LaunchSpec:
    """A launch with the fields every provider needs; providers override type, region, image."""
    fields: dict[str, Any] = dict(
        key=key,
        instance_type="",
        region="",
        gpu_model="",
        gpu_count=1,
        spot=False,
        price_per_hour=1.0,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(hours=4),
        ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmXqg3bOqVdvsV2hSYcJYk6MfqG3ZJHzTq0Qk8H0bCo test",
        tags={"deployment": "dep-1"},
    )
    fields.update(overrides)
    return LaunchSpec(**fields)
