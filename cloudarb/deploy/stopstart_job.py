"""Stop and start, the worker's side: the job that asks each provider and verifies its answer, and
what every reconcile pass does with a stopped or running-again instance (see ``stopstart`` for the
command, the intent and the refusals).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import DeployInstance
from cloudarb.deploy import states as st
from cloudarb.deploy.create import load_row
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.errors import ProvisionError
from cloudarb.deploy.metering import close_pause, open_pause
from cloudarb.deploy.providers.base import Provisioner, RemoteInstance, RemoteState
from cloudarb.deploy.stopstart import RUNNING, STOPPED

ROUNDS, WAIT_S = 20, 3.0
"""How long the job follows a call before leaving the rest to the reconciler (20 reads, 3 s apart)."""


def carry_out(env: DeployEnv, deployment_id: str) -> list[tuple[str, str]]:
    """The job: every row of the deployment with a stop or start asked, asked and verified; returns
    (instance id, state after) per row. Rows left unverified are the reconciler's (``resume``)."""
    with env.db.session() as session:
        ids = list(session.scalars(select(DeployInstance.id).where(
            DeployInstance.deployment_id == deployment_id, DeployInstance.desired_state.is_not(None),
            DeployInstance.state.in_(st.UP)).order_by(DeployInstance.line_index, DeployInstance.replica)))
    return [(i, converge(env, i)) for i in ids]


def converge(env: DeployEnv, instance_id: str, *, rounds: int = ROUNDS, wait_s: float = WAIT_S) -> str:
    """Ask for the row's desired state unless the provider reports it already, then read until it does
    (or ``rounds`` reads have passed); returns the row's state after."""
    row = load_row(env, instance_id)
    if row.desired_state is None or row.provider_id is None or row.state not in st.UP:
        return row.state
    prov = env.provisioner(row.provider, row.account)
    remote = _read(env, prov, row)
    if remote is None:
        return load_row(env, instance_id).state
    known_stopped = env.clock()  # the first read: stopped then, if it is stopped
    if not _there(row.desired_state, remote):
        known_stopped = env.clock()  # the call: it cannot run again before this
        _seen(env, row, known_stopped)
        _call(env, prov, row)
        for i in range(max(1, rounds)):
            if i:
                env.sleep(wait_s)
            remote = _read(env, prov, row)
            if remote is None or _there(row.desired_state, remote) or _queued(prov, remote):
                break
    if remote is not None:
        observe(env, prov, load_row(env, instance_id), remote, stopped_until=known_stopped)
    after = load_row(env, instance_id)
    if after.desired_state is not None:
        env.emit("waiting", {"instance_id": after.id, "key": after.key, "reason":
                             f"{'start' if after.desired_state == RUNNING else 'stop'} not yet verified "
                             f"({remote.raw_state if remote else 'no answer'}); the reconciler follows it"})
    return after.state


def _seen(env: DeployEnv, row: DeployInstance, at: datetime) -> None:
    """The read before a call saw the instance present (as a reconcile pass would record): a pause
    still open at the next pass covers at least until here."""
    with env.db.session() as session:
        session.execute(update(DeployInstance).where(
            DeployInstance.id == row.id,
            (DeployInstance.last_seen_at.is_(None)) | (DeployInstance.last_seen_at < at))
            .values(last_seen_at=at).execution_options(synchronize_session=False))


def _there(desired: str | None, remote: RemoteInstance) -> bool:
    return (desired == STOPPED and remote.state is RemoteState.STOPPED) or \
        (desired == RUNNING and remote.state is RemoteState.RUNNING)


def _queued(prov: Provisioner, remote: RemoteInstance) -> bool:
    """A start accepted into a provider's queue (a local node with no free GPU): it runs when one frees."""
    return prov.capabilities.queues and remote.state is RemoteState.PENDING and remote.queue_position is not None


def _read(env: DeployEnv, prov: Provisioner, row: DeployInstance) -> RemoteInstance | None:
    try:
        return prov.get(row.provider_id or "")
    except ProvisionError as exc:
        env.emit("read_failed", {"instance_id": row.id, "reason": str(exc)})
        return None


def _call(env: DeployEnv, prov: Provisioner, row: DeployInstance) -> None:
    action = "start" if row.desired_state == RUNNING else "stop"
    env.emit(action, {"instance_id": row.id, "key": row.key, "provider": row.provider,
                      "provider_id": row.provider_id})
    try:
        (prov.start if action == "start" else prov.stop)(row.provider_id or "")
    except ProvisionError as exc:  # verified by the reads that follow; the reconciler asks again
        with env.db.session() as session:
            session.execute(update(DeployInstance).where(DeployInstance.id == row.id)
                            .values(last_error=f"{action}: {exc}").execution_options(synchronize_session=False))
        env.emit(f"{action}_failed", {"instance_id": row.id, "reason": str(exc)})


def observe(env: DeployEnv, prov: Provisioner, row: DeployInstance, remote: RemoteInstance, *,
            stopped_until: datetime | None = None) -> None:
    """What a fresh read or a listing says about a stop or a start, written to the row: seen stopped,
    the row is ``stopped`` (a pause opens where stopped compute is not billed); seen running after a
    stop, ``running`` again (the pause closes at ``stopped_until``: the last moment it was known
    stopped, the start call or the previous reconcile pass; now when unknown, never before the pause
    opened). A stop asked and not yet taken effect is left alone."""
    if not _news(prov, row, remote):
        return
    now = env.clock()
    moved = False
    with env.db.session() as session:
        if remote.state is RemoteState.STOPPED and row.state in (st.RUNNING, st.REACHABLE, st.STOPPING, st.STOPPED) \
                and row.desired_state != RUNNING:
            moved = st.move(session, row.id, to=st.STOPPED, when=(st.RUNNING, st.REACHABLE, st.STOPPING), now=now)
            _settle(session, row, STOPPED)
            if not prov.capabilities.stopped_billed:
                open_pause(session, row.id, now)
        elif remote.state is RemoteState.RUNNING and row.state in (st.STOPPED, st.STOPPING) \
                and row.desired_state != STOPPED:
            moved = st.move(session, row.id, to=st.RUNNING, when=(st.STOPPED, st.STOPPING), now=now)
            _settle(session, row, RUNNING)
            close_pause(session, row.id, stopped_until or now)
        elif remote.state is RemoteState.RUNNING and row.paused_at is not None and row.desired_state != STOPPED:
            close_pause(session, row.id, stopped_until or now)
            _settle(session, row, RUNNING)
        elif _there(row.desired_state, remote):
            _settle(session, row, row.desired_state or "")
    if moved:
        asked = row.desired_state is not None
        env.emit(STOPPED if remote.state is RemoteState.STOPPED else "started",
                 {"instance_id": row.id, "key": row.key, "provider_id": row.provider_id, "status": remote.raw_state,
                  "reason": None if asked else f"{remote.raw_state} at the provider without a command of ours"})


def _news(prov: Provisioner, row: DeployInstance, remote: RemoteInstance) -> bool:
    """Whether the read says anything ``observe`` would write (most passes see nothing new)."""
    if row.desired_state is not None:
        return True
    if remote.state is RemoteState.RUNNING:
        return row.state in (st.STOPPED, st.STOPPING) or row.paused_at is not None
    if remote.state is RemoteState.STOPPED:
        pausable = not prov.capabilities.stopped_billed and row.billing_started_at is not None \
            and row.billing_stopped_at is None and row.paused_at is None
        return row.state in (st.RUNNING, st.REACHABLE, st.STOPPING) or (row.state == st.STOPPED and pausable)
    return False


def _settle(session: Session, row: DeployInstance, reached: str) -> None:
    """Clear the intent once the provider reports what it asked."""
    session.execute(update(DeployInstance).where(DeployInstance.id == row.id, DeployInstance.desired_state == reached)
                    .values(desired_state=None).execution_options(synchronize_session=False))


def resume(env: DeployEnv, prov: Provisioner, row: DeployInstance, remote: RemoteInstance) -> bool:
    """Reconciler: a stop or start whose job died before its call took effect is asked again (no
    waiting here; the next pass verifies). True if a call was made."""
    if row.desired_state is None or _there(row.desired_state, remote) or _queued(prov, remote) \
            or remote.state not in (RemoteState.RUNNING, RemoteState.STOPPED):
        return False
    _call(env, prov, row)
    return True
