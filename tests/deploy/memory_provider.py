"""An in-memory provider with fault knobs: a test double of the provider edge only.

It behaves as the deploy notes describe real providers: lists lag behind creates, a create can fail
after the instance exists, destroys can fail or linger, listings can fail part way, and quota or
capacity refusals name the offer. It keeps a full history (``ever``) so tests can check that every
instance it ever held is accounted for.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cloudarb.deploy.errors import (
    CreateUnknown,
    ListingIncomplete,
    NoCapacity,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from cloudarb.deploy.providers.base import Capabilities, LaunchSpec, RemoteInstance, RemoteState

CAPS = Capabilities(spot=True, stop_start=False, mark="name", idempotency_token=False, list_filter=False,
                    billing_granularity_s=1, billing_minimum_s=60, requests_per_s=1000.0, burst=1000,
                    listing_lag_s=10.0)


class FakeClock:
    """A clock that moves only when something sleeps (or a test advances it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


@dataclass
class Faults:
    no_capacity: set[str] = field(default_factory=set)
    """Instance types (or ``type@region``) that answer no capacity."""
    quota: set[str] = field(default_factory=set)
    create_then_error: int = 0
    """Next creates that make the instance and then answer an unknown outcome (RunPod's 500)."""
    create_error_nothing: int = 0
    """Next creates that time out without making anything."""
    rate_limited: int = 0
    list_fail: int = 0
    find_fail: int = 0
    get_fail: int = 0
    destroy_fail: int = 0
    destroy_ignored: int = 0
    """Next destroys that answer success but leave the instance running."""
    linger_reads: int = 0
    """Reads during which a destroyed instance still shows as terminating."""
    listing_lag_s: float = 0.0
    boot_reads: int = 1
    """Reads an instance stays pending before it runs."""
    stop_ignored: int = 0
    """Next stops or starts that answer success and change nothing (a call lost in a crash)."""


@dataclass
class Held:
    instance: RemoteInstance
    created_at: datetime
    ended_at: datetime | None = None
    reads: int = 0
    linger: int = 0
    stopped: bool = False
    stops: list[list[datetime | None]] = field(default_factory=list)
    """Every span the instance was stopped: [start, end or None while stopped]."""


class MemoryProvider:
    """One provider account held in memory."""

    def __init__(self, key: str = "memory", *, clock: Callable[[], datetime] | None = None,
                 capabilities: Capabilities = CAPS, faults: Faults | None = None) -> None:
        self.key = key
        self.capabilities = capabilities
        self.faults = faults or Faults()
        self.clock = clock or FakeClock()
        self.ever: dict[str, Held] = {}
        self.calls: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    def _use(self, knob: str) -> bool:
        left = getattr(self.faults, knob)
        if left > 0:
            setattr(self.faults, knob, left - 1)
            return True
        return False

    def _visible(self, held: Held) -> bool:
        return (self.clock() - held.created_at).total_seconds() >= self.faults.listing_lag_s

    def live(self) -> list[Held]:
        return [h for h in self.ever.values() if h.ended_at is None]

    def create(self, spec: LaunchSpec) -> RemoteInstance:
        with self._lock:
            self.calls.append(f"create {spec.key}")
            if self._use("rate_limited"):
                raise RateLimited("slow down", provider=self.key, retry_after_s=1.0)
            if {spec.instance_type, f"{spec.instance_type}@{spec.region}"} & self.faults.no_capacity:
                raise NoCapacity(f"no {spec.instance_type} left", provider=self.key)
            if spec.instance_type in self.faults.quota:
                raise QuotaExceeded(f"quota for {spec.instance_type}", provider=self.key)
            if self._use("create_error_nothing"):
                raise CreateUnknown("timed out", provider=self.key)
            pid = f"m-{next(self._ids)}"
            inst = RemoteInstance(provider_id=pid, key=spec.key, state=RemoteState.PENDING, raw_state="pending",
                                  address="127.0.0.1", ssh_port=None, hourly_rate=spec.price_per_hour,
                                  created_at=self.clock())
            self.ever[pid] = Held(inst, self.clock())
            if self._use("create_then_error"):
                raise CreateUnknown("500 after create", provider=self.key)
            return inst

    def _read(self, held: Held) -> RemoteInstance:
        held.reads += 1
        if held.ended_at is not None:
            if held.linger > 0:
                held.linger -= 1
                return replace(held.instance, state=RemoteState.TERMINATING, raw_state="terminating")
            return replace(held.instance, state=RemoteState.TERMINATED, raw_state="terminated")
        if held.stopped:
            return replace(held.instance, state=RemoteState.STOPPED, raw_state="stopped")
        if held.reads > self.faults.boot_reads:
            return replace(held.instance, state=RemoteState.RUNNING, raw_state="running")
        return held.instance

    def find(self, key: str) -> RemoteInstance | None:
        with self._lock:
            self.calls.append(f"find {key}")
            if self._use("find_fail"):
                raise ProviderUnavailable("find failed", provider=self.key)
            for held in self.live():
                if held.instance.key == key and self._visible(held):
                    return self._read(held)
            return None

    def get(self, provider_id: str) -> RemoteInstance | None:
        with self._lock:
            if self._use("get_fail"):
                raise ProviderUnavailable("get failed", provider=self.key)
            held = self.ever.get(provider_id)
            if held is None:
                return None
            inst = self._read(held)
            return None if inst.state is RemoteState.TERMINATED else inst

    def list_owned(self, prefix: str) -> list[RemoteInstance]:
        with self._lock:
            self.calls.append("list")
            if self._use("list_fail"):
                raise ListingIncomplete("page 2 failed", provider=self.key)
            return [self._read(h) for h in self.live()
                    if h.instance.key.startswith(prefix) and self._visible(h)]

    def destroy(self, provider_id: str) -> None:
        with self._lock:
            self.calls.append(f"destroy {provider_id}")
            if self._use("destroy_fail"):
                raise ProviderUnavailable("destroy failed", provider=self.key)
            held = self.ever.get(provider_id)
            if held is None or held.ended_at is not None:
                return
            if self._use("destroy_ignored"):
                return
            held.ended_at = self.clock()
            held.linger = self.faults.linger_reads

    def stop(self, provider_id: str) -> None:
        self._stop_start(provider_id, stopped=True)

    def start(self, provider_id: str) -> None:
        self._stop_start(provider_id, stopped=False)

    def _stop_start(self, provider_id: str, *, stopped: bool) -> None:
        if not self.capabilities.stop_start:
            raise AssertionError("stop/start asked of a provider that cannot: the core must refuse first")
        with self._lock:
            self.calls.append(f"{'stop' if stopped else 'start'} {provider_id}")
            held = self.ever.get(provider_id)
            if held is None or held.ended_at is not None or self._use("stop_ignored"):
                return
            self._set(held, stopped)

    def set_stopped(self, provider_id: str, stopped: bool = True) -> None:
        """The provider (or a node's agent) stops or starts the instance by itself."""
        self._set(self.ever[provider_id], stopped)

    def _set(self, held: Held, stopped: bool) -> None:
        if stopped and not held.stopped:
            held.stops.append([self.clock(), None])
        elif not stopped and held.stopped:
            held.stops[-1][1] = self.clock()
        held.stopped = stopped

    def leak(self, key: str) -> str:
        """Something with our mark that no row names (an orphan a crash left behind)."""
        pid = f"m-{next(self._ids)}"
        self.ever[pid] = Held(RemoteInstance(provider_id=pid, key=key, state=RemoteState.RUNNING,
                                             created_at=self.clock()), self.clock())
        return pid
