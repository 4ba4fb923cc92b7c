"""Creating one instance safely: the intent row is committed before any provider call, the key is
looked for before creating (where the provider has no idempotency token) and after every unknown
outcome, and whatever is found under the key is adopted, never created twice.

States: requested -> creating -> created (or create_unknown -> created | failed) -> booting ->
reachable -> running. A resumed job (after a crash) starts from the state the row holds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func

from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.deploy import rates
from cloudarb.deploy import states as st
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.errors import (
    FAILOVER_ERRORS,
    CreateUnknown,
    ProviderUnavailable,
    ProvisionError,
    RateLimited,
    Unsupported,
)
from cloudarb.deploy.providers.base import LaunchSpec, Provisioner, RemoteInstance, RemoteState
from cloudarb.deploy.schemas import Plan

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRIES = 4


@dataclass(frozen=True)
class Outcome:
    """How one launch ended: the row's state, and the provider's error when it failed."""

    instance_id: str
    state: str
    error: ProvisionError | None = None

    @property
    def failover(self) -> bool:
        return isinstance(self.error, FAILOVER_ERRORS)

    @property
    def ok(self) -> bool:
        return self.state in st.UP


def launch_spec(row: DeployInstance, deployment: Deployment | None) -> LaunchSpec:
    plan = Plan.model_validate(deployment.spec) if deployment is not None else None
    line = next((ln for ln in plan.lines if ln.index == row.line_index), None) if plan else None
    options = line.launch if line is not None else None
    tags = {"cloudarb-key": row.key, "cloudarb-deployment": row.deployment_id or "",
            "cloudarb-line": str(row.line_index), "cloudarb-workload": row.workload_id,
            "cloudarb-organization": row.organization_id or "",
            "cloudarb-user": deployment.created_by if deployment is not None else ""}
    if row.expires_at is not None:
        tags["cloudarb-expires-at"] = row.expires_at.isoformat(timespec="seconds")
    return LaunchSpec(
        key=row.key, instance_type=row.instance_type, region=row.region, gpu_model=row.gpu_model,
        gpu_count=row.gpu_count, spot=row.spot, price_per_hour=row.price_per_hour,
        expires_at=row.expires_at or row.created_at, image=options.image if options else "",
        zone=row.zone, offer_ref=row.offer_key.rpartition(":")[2] or None,
        ssh_public_key=deployment.ssh_public_key if deployment else None,
        ports=tuple(options.ports) if options else (), env=dict(options.env) if options else {},
        disk_gb=options.disk_gb if options else 100, tags=tags,
    )


def call(env: DeployEnv, what: str, fn: Callable[..., T], *args: object) -> T:
    """A provider call that creates nothing, retried on rate limits and transient failures."""
    for attempt in range(RETRIES):
        try:
            return fn(*args)
        except RateLimited as exc:
            env.sleep(exc.retry_after_s or 2.0 ** attempt)
        except ProviderUnavailable:
            if attempt == RETRIES - 1:
                raise
            env.sleep(2.0 ** attempt)
    raise ProviderUnavailable(f"{what}: still rate limited after {RETRIES} tries")


def look(env: DeployEnv, prov: Provisioner, key: str, *, window_s: float) -> tuple[RemoteInstance | None, bool]:
    """Look for ``key`` for up to ``window_s`` (the provider's listing lag): (found, sure). ``sure`` is
    False when no look could be completed (the provider kept failing): absence is then unproven."""
    steps = max(1, math.ceil(window_s / 5.0)) if window_s > 0 else 1
    sure = False
    for i in range(steps + 1):
        try:
            found = prov.find(key)
            sure = True
        except ProvisionError:
            found = None
        if found is not None and found.state is not RemoteState.TERMINATED:
            return found, True
        if i < steps:
            env.sleep(window_s / steps)
    return None, sure


def adopt(env: DeployEnv, row: DeployInstance, remote: RemoteInstance) -> bool:
    """Record the provider's instance on the row; it is billed from its creation, or from when it runs
    where the provider bills only running instances (``billing_starts``, set by ``_advance``)."""
    now = env.clock()
    started: datetime | None = min(remote.created_at, now) if remote.created_at is not None else now
    if env.provisioner(row.provider, row.account).capabilities.billing_starts == "running":
        started = now if remote.state is RemoteState.RUNNING else None
    with env.db.session() as session:
        moved = st.move(session, row.id, to=st.CREATED, when=st.UNRESOLVED, now=now,
                        provider_id=remote.provider_id, address=remote.address, ssh_port=remote.ssh_port,
                        billing_started_at=started, reported_rate=remote.hourly_rate, last_error=None)
    if moved:
        env.emit("created", {"instance_id": row.id, "key": row.key, "provider_id": remote.provider_id})
    return moved


def _fail(env: DeployEnv, row: DeployInstance, reason: str, *, when: tuple[str, ...] = st.UNRESOLVED) -> None:
    now = env.clock()
    with env.db.session() as session:
        st.move(session, row.id, to=st.FAILED, when=when, now=now, ended_at=now, last_error=reason,
                end_reason=reason)
    env.emit("failed", {"instance_id": row.id, "key": row.key, "reason": reason})


def load_row(env: DeployEnv, instance_id: str) -> DeployInstance:
    with env.db.session() as session:
        row = session.get(DeployInstance, instance_id)
        assert row is not None, instance_id
        return row


def launch(env: DeployEnv, instance_id: str) -> Outcome:
    """Bring one intent row to an instance at its provider (not yet waiting for it to boot)."""
    with env.db.session() as session:
        row = session.get(DeployInstance, instance_id)
        if row is None:
            raise ValueError(f"no instance row {instance_id}")
        deployment = session.get(Deployment, row.deployment_id) if row.deployment_id else None
    if row.state not in st.UNRESOLVED:
        return Outcome(row.id, row.state)
    prov = env.provisioner(row.provider, row.account)
    caps = prov.capabilities
    now = env.clock()
    resumed = row.state != st.REQUESTED
    if resumed and (now - row.state_at).total_seconds() < env.settings.deploy_claim_timeout_s:
        return Outcome(row.id, row.state)  # another worker's create may still be in flight: leave it
    with env.db.session() as session:  # the claim: one worker (of a job run twice) wins each row
        claimed = st.claim(session, row, to=st.CREATING, now=now, launched_at=now)
    if not claimed:
        return Outcome(row.id, load_row(env, row.id).state)
    try:
        if resumed:  # the create may have happened before a crash
            found, sure = look(env, prov, row.key, window_s=caps.listing_lag_s)
            if found is not None:
                adopt(env, row, found)
                return Outcome(row.id, load_row(env, row.id).state)
            if not sure:
                return Outcome(row.id, row.state, ProviderUnavailable("cannot tell whether the create happened"))
        elif not caps.idempotency_token:
            found = call(env, "find", prov.find, row.key)
            if found is not None:
                adopt(env, row, found)
                return Outcome(row.id, load_row(env, row.id).state)
    except ProvisionError as exc:
        _fail(env, row, f"could not look for the key before creating: {exc}", when=(st.CREATING,))
        return Outcome(row.id, load_row(env, row.id).state, exc)
    if row.spot and not caps.spot:  # e.g. RunPod's REST v2: no interruptible pods; the next offer may have it
        refused = Unsupported(f"{row.provider} cannot launch spot instances (its provisioning API has no "
                              "interruptible capacity); trying the next offer", provider=row.provider)
        _fail(env, row, f"{refused.code}: {refused}", when=(st.CREATING,))
        return Outcome(row.id, st.FAILED, refused)
    env.emit("creating", {"instance_id": row.id, "key": row.key, "provider": row.provider,
                          "offer_key": row.offer_key})
    env.crash("after_intent")
    spec = launch_spec(row, deployment)
    try:
        remote = _create(env, prov, spec)
    except CreateUnknown as exc:
        with env.db.session() as session:
            st.move(session, row.id, to=st.CREATE_UNKNOWN, when=(st.CREATING,), now=env.clock(), last_error=str(exc))
        env.emit("create_unknown", {"instance_id": row.id, "key": row.key, "reason": str(exc)})
        found, sure = look(env, prov, row.key, window_s=caps.listing_lag_s)
        if found is not None:
            adopt(env, row, found)
            return Outcome(row.id, load_row(env, row.id).state)
        if sure:
            _fail(env, row, f"the create's outcome was unknown ({exc}) and the key was not listed within "
                            f"{caps.listing_lag_s:g}s; the reconciler destroys it if it appears")
        return Outcome(row.id, load_row(env, row.id).state, exc)
    except ProvisionError as exc:
        _fail(env, row, f"{exc.code}: {exc}")
        return Outcome(row.id, st.FAILED, exc)
    env.crash("after_create")
    adopt(env, row, remote)
    return Outcome(row.id, load_row(env, row.id).state)


def _create(env: DeployEnv, prov: Provisioner, spec: LaunchSpec) -> RemoteInstance:
    """The create call; a rate limit (nothing created) is waited out and tried again."""
    for attempt in range(RETRIES):
        try:
            return prov.create(spec)
        except RateLimited as exc:
            if attempt == RETRIES - 1:
                raise
            env.sleep(exc.retry_after_s or 2.0 ** attempt)
    raise AssertionError("unreachable")


def wait_ready(env: DeployEnv, instance_id: str, *, timeout_s: float, poll_s: float = 5.0) -> str:
    """Follow a created instance to ``running`` (through booting and, where it has an SSH address,
    reachable). Returns the row's state when it got there or the time ran out."""
    row = load_row(env, instance_id)
    if row.provider_id is None or row.state not in (st.CREATED, st.BOOTING, st.REACHABLE):
        return row.state
    prov = env.provisioner(row.provider, row.account)
    waited = queued_s = 0.0
    position: int | None = None
    while True:
        error: ProvisionError | None = None
        remote: RemoteInstance | None | str
        try:
            remote = call(env, "get", prov.get, row.provider_id)
        except ProvisionError as exc:
            remote, error = "error", exc
        now = env.clock()
        if remote is None or (isinstance(remote, RemoteInstance) and remote.state is RemoteState.TERMINATED):
            with env.db.session() as session:
                st.move(session, row.id, to=st.TERMINATED, when=(st.CREATED, st.BOOTING, st.REACHABLE), now=now,
                        ended_at=now, billing_stopped_at=now, end_reason="ended by the provider while booting",
                        interrupted_at=now if row.spot else None)  # a spot reclaim: fleet evidence
            env.emit("terminated", {"instance_id": row.id, "reason": "ended by the provider while booting"})
            return st.TERMINATED
        queued = False
        if isinstance(remote, RemoteInstance):
            done = _advance(env, row, remote)
            if done:
                return st.RUNNING
            queued = prov.capabilities.queues and remote.queue_position is not None
            if queued and remote.queue_position != position:
                position = remote.queue_position
                env.emit("queued", {"instance_id": row.id, "position": position,
                                    "reason": f"queued at the provider, position {position}"})
        elif error is not None:
            log.info("instance read failed while booting", extra={"instance_id": row.id, "error": str(error)})
        limit = env.settings.deploy_queue_timeout_s
        if (queued and limit and queued_s >= limit) or (not queued and waited >= timeout_s):
            return load_row(env, row.id).state
        current = load_row(env, row.id).state
        if current not in (st.CREATED, st.BOOTING, st.REACHABLE):
            return current  # moved on by someone else (a teardown, the reconciler)
        env.sleep(poll_s)
        if queued:  # a legitimate wait for capacity: not counted against the boot timeout
            queued_s += poll_s
        else:
            waited += poll_s


def _advance(env: DeployEnv, row: DeployInstance, remote: RemoteInstance) -> bool:
    now = env.clock()
    address = remote.address or row.address
    port = remote.ssh_port or row.ssh_port
    if remote.state is not RemoteState.RUNNING:
        with env.db.session() as session:
            booting = st.move(session, row.id, to=st.BOOTING, when=(st.CREATED,), now=now)
        if booting:  # published after the commit: a job event is a write of its own (SQLite has one writer)
            env.emit("booting", {"instance_id": row.id, "raw_state": remote.raw_state})
        return False
    with env.db.session() as session:
        if address and port and env.settings.deploy_reachability_check:
            if not env.probe(address, port):
                st.move(session, row.id, to=st.BOOTING, when=(st.CREATED,), now=now, address=address, ssh_port=port)
                return False
            st.move(session, row.id, to=st.REACHABLE, when=(st.CREATED, st.BOOTING), now=now,
                    address=address, ssh_port=port)
        moved = st.move(session, row.id, to=st.RUNNING, when=(st.CREATED, st.BOOTING, st.REACHABLE), now=now,
                        running_at=now, address=address, ssh_port=port,
                        billing_started_at=func.coalesce(DeployInstance.billing_started_at, now),
                        reported_rate=remote.hourly_rate if remote.hourly_rate is not None else row.reported_rate)
        if moved:
            rates.check(session, row, remote.hourly_rate, env.settings.deploy_rate_tolerance)
    if moved:
        env.emit("running", {"instance_id": row.id, "address": address, "ssh_port": port})
    return True


def backoff(attempts: int, *, maximum: float) -> timedelta:
    return timedelta(seconds=min(maximum, 5.0 * 2 ** min(attempts, 20)))
