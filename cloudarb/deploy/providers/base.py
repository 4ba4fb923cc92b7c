"""The contract between the deploy core and each provider's provisioning module.

A module (``cloudarb/deploy/providers/<key>.py``, the same lowercase key as pricing) implements
``Provisioner`` for one provider and declares what the provider can do as ``Capabilities`` data; the
core reads those figures (look-before-create or an idempotency token, how ownership is marked, what
proves absence, billing granularity and minimum, rate limits) and never branches on provider names.

Ownership: every instance carries a key ``<prefix><...>`` (``LaunchSpec.key``; the prefix is this
installation's, ``cloudarb-<install id>-``) as EC2's ClientToken and tag, or as the label or name
where a provider has nothing else. ``list_owned`` returns only instances whose mark starts with the
prefix, so nothing else in a shared account is ever touched.

Provider words, states and exceptions are translated here: modules return ``RemoteInstance`` with a
``RemoteState`` and raise only ``cloudarb.deploy.errors`` kinds (``from`` the foreign error).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import httpx

Mark = Literal["tags", "label", "name"]


@dataclass(frozen=True)
class Capabilities:
    """What a provider's provisioning API offers, as data the core reads."""

    spot: bool
    """Interruptible capacity can be requested."""
    stop_start: bool
    """Instances can be stopped and started again, keeping their disk or workspace."""
    mark: Mark
    """How ownership is marked: key/value tags, one free-text label, or only the instance name."""
    idempotency_token: bool
    """The create call takes a token that makes retries idempotent (EC2 ClientToken, GCP requestId);
    without one the core looks before creating and after every unknown outcome."""
    list_filter: bool
    """The list call filters by the mark on the server side (else the module filters client side)."""
    billing_granularity_s: int
    """Billing increment in seconds (1 = per second, 60 = one-minute increments, 3600 = hourly)."""
    billing_minimum_s: int
    """Minimum billed seconds per instance run (60 on EC2 Linux)."""
    requests_per_s: float
    """Sustained request rate the core's shared limiter allows for this provider and account."""
    burst: int = 1
    """Requests allowed at once before the rate applies."""
    launch_interval_s: float = 0.0
    """Extra minimum interval between create calls (Lambda: one launch per 12 s)."""
    listing_lag_s: float = 30.0
    """How long a new instance may be missing from lists (look-after-failure window, ghost grace)."""
    max_key_length: int = 64
    """Longest mark the provider keeps intact (names are truncated by some providers)."""
    provider_ttl: bool = False
    """The provider can end the instance itself at ``expires_at`` (GCP maxRunDuration)."""
    reports_rate: bool = False
    """The provider reports the billed hourly rate per instance (reconciled with the launch price)."""
    billing_starts: Literal["created", "running"] = "created"
    """When billing begins: at the instance's creation (clouds bill a booting VM) or once it runs (a
    placement waiting in a local node's queue costs nothing)."""
    stop_spot: bool = False
    """Spot (interruptible) instances can be stopped too. False where CloudArb's spot requests cannot:
    EC2 stops only instances of a *persistent* spot request, and CloudArb asks for one-time ones."""
    stopped_billed: bool = False
    """Compute is still billed while the instance is stopped. False everywhere known: EC2 on-demand
    bills no compute while stopped (its EBS volumes bill on, which CloudArb does not meter), RunPod bills
    a stopped pod's storage only, Vast bills disk only, local placements bill nothing. Where False,
    metering leaves a stopped instance's paused spans out."""
    minimum_per_run: bool = False
    """``billing_minimum_s`` applies to each run (EC2: every start of a stopped instance bills at least
    one minute) rather than once to the instance's total."""
    queues: bool = False
    """A created instance may wait in a queue for capacity (reported ``pending`` with ``queue_position``):
    that wait has no boot timeout (``deploy_queue_timeout_s`` bounds it where set)."""


class RemoteState(enum.StrEnum):
    """A provider's instance state, in the core's words."""

    PENDING = "pending"          # accepted, provisioning or booting
    RUNNING = "running"          # up (billed as compute)
    STOPPED = "stopped"          # stopped or exited (compute not billed; disk may be)
    TERMINATING = "terminating"  # being destroyed (still counts as present)
    TERMINATED = "terminated"    # the provider's own statement that it is gone
    UNKNOWN = "unknown"          # a state the module cannot place (treated as present)


@dataclass(frozen=True)
class LaunchSpec:
    """One instance to create, fully decided by the core."""

    key: str
    """The idempotency key and ownership mark (already prefixed, within ``max_key_length``)."""
    instance_type: str
    region: str
    gpu_model: str
    gpu_count: int
    spot: bool
    price_per_hour: float
    """The price recorded at launch (also the spot bid or price cap where the provider takes one)."""
    expires_at: datetime
    image: str = ""
    zone: str | None = None
    offer_ref: str | None = None
    """The provider's own id for the offer where it has one (a Vast ask id, a TensorDock location)."""
    ssh_public_key: str | None = None
    ports: Sequence[int] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    disk_gb: int = 100
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags (deployment, line, organization, expiry) where the provider has tags or labels."""


@dataclass(frozen=True)
class RemoteInstance:
    """An instance as the provider reports it."""

    provider_id: str
    key: str
    """The ownership mark read back (tag, label or name)."""
    state: RemoteState
    raw_state: str = ""
    """The provider's own word for the state, kept for people and logs."""
    address: str | None = None
    ssh_port: int | None = None
    hourly_rate: float | None = None
    """The billed rate the provider reports, where it reports one."""
    created_at: datetime | None = None
    queue_position: int | None = None
    """Where the provider queues instances: 1 = next to start; None when not queued."""


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach one provider account: what every module's constructor takes.

    ``base_url`` overrides the documented endpoint (tests point it at a fake on loopback; AWS also
    honours ``AWS_ENDPOINT_URL_EC2`` / ``AWS_ENDPOINT_URL``). ``transport`` replaces httpx's network
    transport in unit tests; ``sleep`` and ``monotonic`` are injectable for retry and lag windows.
    """

    credentials: Mapping[str, str] = field(default_factory=dict)
    """Named secrets as the provider documents them (``api_key``; AWS ``access_key_id``...)."""
    base_url: str | None = None
    timeout_s: float = 30.0
    account: str = "default"
    """A name for the account (the rate limiter and the reconciler work per provider and account)."""
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


@runtime_checkable
class Provisioner(Protocol):
    """One provider's provisioning calls. Every method may raise only ``cloudarb.deploy.errors`` kinds."""

    key: str
    capabilities: Capabilities

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        """Ask for one instance marked with ``spec.key``. Raises ``CreateUnknown`` when the outcome is
        unknown (timeout, 5xx after the request was sent); the core then looks for the key."""
        ...

    def find(self, key: str) -> RemoteInstance | None:
        """The live instance marked ``key``, or None (terminated instances are not returned)."""
        ...

    def get(self, provider_id: str) -> RemoteInstance | None:
        """A fresh read of one instance; None only on the provider's proof of absence (RunPod 404,
        Vast ``{"instances": null}``, Lambda 404, TensorDock 404). EC2 reports ``terminated``
        instead (its NotFound right after terminate is not proof and raises ``ProviderUnavailable``)."""
        ...

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        """Every non-terminated instance whose mark starts with ``prefix``, all pages read; raises
        ``ListingIncomplete`` (or another error) rather than return part of a listing."""
        ...

    def destroy(self, provider_id: str) -> None:
        """Ask for the instance to be destroyed. Idempotent: an instance already gone is success."""
        ...

    def stop(self, provider_id: str) -> None:
        """Stop (only where ``capabilities.stop_start``)."""
        ...

    def start(self, provider_id: str) -> None:
        """Start a stopped instance again (only where ``capabilities.stop_start``)."""
        ...


@runtime_checkable
class RegionalListing(Protocol):
    """A provisioner whose listing reaches only the regions it knows of (EC2: the configured ones):
    before each pass the reconciler names every region where a row of ours is, so nothing hides."""

    def also_list(self, regions: Iterable[str]) -> None:
        ...
