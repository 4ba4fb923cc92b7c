"""Destroying an instance with proof.

Idempotent: "already gone" is success. An instance is marked ``terminated`` only after a fresh read
gives the provider's proof of absence (``get`` answers None or TERMINATED; an EC2 NotFound right
after terminate is not proof and the module raises instead). Each destroy that is not proven counts
an attempt and schedules the next with back-off; after ``deploy_leaked_after`` attempts the row is
``leaked`` and alerted on, and the scheduler keeps retrying it for as long as it takes.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from cloudarb.db.models_deploy import DeployInstance
from cloudarb.deploy import states as st
from cloudarb.deploy.alerts import raise_alert
from cloudarb.deploy.create import adopt, backoff, load_row, look
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.errors import ProvisionError
from cloudarb.deploy.providers.base import RemoteState

log = logging.getLogger(__name__)


def destroy(env: DeployEnv, instance_id: str, *, reason: str, rounds: int = 3, wait_s: float = 2.0) -> str:
    """Ask the provider to destroy the instance and verify it; returns the row's state after."""
    row = load_row(env, instance_id)
    if row.state in st.ENDED:
        return row.state
    prov = env.provisioner(row.provider, row.account)
    if row.provider_id is None:
        if row.state == st.REQUESTED:
            now = env.clock()
            with env.db.session() as session:
                st.move(session, row.id, to=st.FAILED, when=(st.REQUESTED,), now=now, ended_at=now,
                        end_reason=f"not created: {reason}")
            return load_row(env, row.id).state
        found, sure = look(env, prov, row.key, window_s=prov.capabilities.listing_lag_s)
        if found is None:
            if sure:
                now = env.clock()
                with env.db.session() as session:
                    st.move(session, row.id, to=st.FAILED, when=(st.CREATING, st.CREATE_UNKNOWN), now=now,
                            ended_at=now, end_reason=f"never appeared at the provider; {reason}")
            return load_row(env, row.id).state
        adopt(env, row, found)
        row = load_row(env, row.id)
    now = env.clock()
    with env.db.session() as session:
        moved = st.move(session, row.id, to=st.TERMINATING, when=st.UP, now=now, end_reason=reason)
    if moved:
        env.emit("terminating", {"instance_id": row.id, "key": row.key, "reason": reason})
    env.crash("during_destroy")
    assert row.provider_id is not None
    error: ProvisionError | None = None
    try:
        prov.destroy(row.provider_id)
    except ProvisionError as exc:
        error = exc
    for i in range(max(1, rounds)):
        if verify(env, row.id):
            return st.TERMINATED
        if i < rounds - 1:
            env.sleep(wait_s)
    return _count_failure(env, row.id, error)


def verify(env: DeployEnv, instance_id: str) -> bool:
    """A fresh read: the provider's proof of absence ends the row (billing stops now)."""
    row = load_row(env, instance_id)
    if row.state == st.TERMINATED:
        return True
    if row.provider_id is None:
        return False
    prov = env.provisioner(row.provider, row.account)
    try:
        remote = prov.get(row.provider_id)
    except ProvisionError:
        return False
    if remote is not None and remote.state is not RemoteState.TERMINATED:
        return False
    now = env.clock()
    with env.db.session() as session:
        moved = st.move(session, row.id, to=st.TERMINATED, when=(*st.UP, *st.DESTROYING), now=now, ended_at=now,
                        billing_stopped_at=now, next_action_at=None,
                        end_reason=row.end_reason or "ended at the provider")
    if moved:
        env.emit("terminated", {"instance_id": row.id, "key": row.key, "proof": "absent" if remote is None
                                else remote.raw_state or "terminated"})
    return True


def _count_failure(env: DeployEnv, instance_id: str, error: ProvisionError | None) -> str:
    row = load_row(env, instance_id)
    attempts = row.destroy_attempts + 1
    now = env.clock()
    leaked = attempts >= env.settings.deploy_leaked_after
    message = f"destroy not proven after attempt {attempts}" + (f": {error}" if error else "")
    with env.db.session() as session:
        session.execute(
            update(DeployInstance).where(DeployInstance.id == row.id, DeployInstance.state.in_(st.DESTROYING))
            .values(destroy_attempts=attempts, last_error=message,
                    next_action_at=now + backoff(attempts, maximum=env.settings.deploy_destroy_backoff_max_s))
            .execution_options(synchronize_session=False))
        if leaked and st.move(session, row.id, to=st.LEAKED, when=(st.TERMINATING,), now=now):
            raise_alert(session, kind="leaked", dedupe=f"leaked:{row.id}", organization_id=row.organization_id,
                        message=f"instance {row.provider_id} ({row.provider}, key {row.key}) could not be destroyed "
                                f"after {attempts} attempts; still billed; retried with back-off",
                        instance_id=row.id, provider=row.provider, provider_id=row.provider_id, attempts=attempts)
    log.warning("destroy not proven", extra={"instance_id": row.id, "attempts": attempts})
    env.emit("destroy_retry", {"instance_id": row.id, "attempts": attempts, "reason": message})
    return load_row(env, row.id).state
