"""The reconciler: rows against what each provider account really holds, under our prefix.

Per provider and account: list every instance whose mark starts with this installation's prefix (all
pages; any error aborts the pass, which never acts on part of a listing), then
- an instance that a live row names (by provider id, or by key for a row still unresolved) is matched
  (an unresolved row adopts it: a crash between the provider's answer and our commit is healed here);
- an instance with no live row is an orphan: adopted into a row as soon as it is seen (so its cost is
  metered from its creation), alerted, and destroyed through the verified path once it has been known
  for ``deploy_orphan_grace_s``;
- a live row whose instance is missing from the listing past the listing lag and ghost grace is read
  afresh; only the provider's proof of absence ends it (``terminated``, reason vanished), alerted; a
  spot row that was up and not being destroyed is an interruption: ``interrupted_at`` is the last pass
  that listed it present (``last_seen_at``; billing still runs to the proof, never stopping before the
  provider's end), alerted as such;
- a row that never reached the provider (no job is working on it) is failed after the same window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from cloudarb import telemetry
from cloudarb.db.models import JobRun
from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.deploy import keys, rates, stopstart_job
from cloudarb.deploy import states as st
from cloudarb.deploy.alerts import raise_alert
from cloudarb.deploy.create import adopt, load_row
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.errors import ProvisionError
from cloudarb.deploy.providers.base import Provisioner, RegionalListing, RemoteInstance, RemoteState

log = logging.getLogger(__name__)


@dataclass
class Report:
    provider: str
    account: str
    listed: int = 0
    matched: int = 0
    adopted: int = 0
    orphans_seen: int = 0
    orphans_destroyed: int = 0
    ghosts: int = 0
    never_created: int = 0
    aborted: str | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def accounts(env: DeployEnv, *, within: timedelta = timedelta(days=7)) -> list[tuple[str, str]]:
    """Provider accounts to look at: any with a live row or a row ended recently (an
    instance whose create was unknown may appear after its row failed)."""
    since = env.clock() - within
    with env.db.session() as session:
        pairs = set(session.execute(
            select(DeployInstance.provider, DeployInstance.account).where(
                or_(DeployInstance.state.in_(st.LIVE), DeployInstance.state_at >= since)).distinct()).all())
    return sorted((str(p), str(a)) for p, a in pairs)


def _row_regions(env: DeployEnv, provider: str, account: str, *, within: timedelta = timedelta(days=7)) -> list[str]:
    """Regions of the account's live rows and of rows ended lately (as ``accounts``)."""
    since = env.clock() - within
    with env.db.session() as session:
        return sorted(str(r) for r in session.scalars(select(DeployInstance.region).where(
            DeployInstance.provider == provider, DeployInstance.account == account,
            or_(DeployInstance.state.in_(st.LIVE), DeployInstance.state_at >= since)).distinct()) if r)


def reconcile_all(env: DeployEnv) -> list[Report]:
    return [reconcile(env, p, a) for p, a in accounts(env)]


def reconcile(env: DeployEnv, provider: str, account: str = "default") -> Report:
    started = time.monotonic()
    report = Report(provider, account)
    listed_at = env.clock()
    try:
        prov = env.provisioner(provider, account)
        if isinstance(prov, RegionalListing):
            prov.also_list(_row_regions(env, provider, account))
        remotes = prov.list_owned(env.prefix())
    except ProvisionError as exc:
        report.aborted = f"{exc.code}: {exc}"
        report.seconds = time.monotonic() - started
        log.warning("reconcile pass aborted", extra={"provider": provider, "account": account, "error": str(exc)})
        telemetry.reconcile_pass(provider, "failed")
        return report
    report.listed = len(remotes)
    now = env.clock()
    with env.db.session() as session:
        rows = list(session.scalars(select(DeployInstance).where(
            DeployInstance.provider == provider, DeployInstance.account == account,
            DeployInstance.state.in_(st.LIVE))))
    by_pid = {r.provider_id: r for r in rows if r.provider_id}
    unresolved = {r.key: r for r in rows if r.provider_id is None}
    seen: set[str] = set()
    orphans: list[RemoteInstance] = []
    for remote in remotes:
        if not remote.key.startswith(env.prefix()) or remote.state is RemoteState.TERMINATED:
            continue
        seen.add(remote.provider_id)
        matched = by_pid.get(remote.provider_id)
        if matched is not None:
            report.matched += 1
            if remote.state is RemoteState.RUNNING and remote.hourly_rate and remote.hourly_rate != matched.reported_rate:
                _rate_seen(env, matched, remote.hourly_rate)
            if remote.state is RemoteState.RUNNING and matched.billing_started_at is None:
                _billing_starts(env, matched, now)  # ran with no job following it (e.g. left the queue later)
            if remote.state is RemoteState.STOPPED and matched.spot and matched.state in INTERRUPTIBLE:
                _interrupted(env, matched, now, stopped=True)  # an interruptible pod/instance stopped for us
            _stop_start(env, prov, matched, remote)
            if _orphan_due(env, matched, now):
                try:
                    if destroy(env, matched.id, reason="orphan: at the provider under our prefix with no live "
                                                       "row", rounds=2, wait_s=1.0) == st.TERMINATED:
                        report.orphans_destroyed += 1
                except ProvisionError as exc:
                    report.errors.append(f"orphan {remote.provider_id}: {exc}")
            continue
        row = unresolved.pop(remote.key, None)
        if row is not None and adopt(env, row, remote):
            report.adopted += 1
            continue
        orphans.append(remote)
    _mark_seen(env, [r for r in rows if r.provider_id in seen], now)
    for remote in _ended_since(env, provider, account, orphans, listed_at):
        report.orphans_seen += 1
        _adopt_orphan(env, provider, account, remote)
    lag = timedelta(seconds=prov.capabilities.listing_lag_s + env.settings.deploy_ghost_grace_s)
    for row in rows:
        if row.provider_id and row.provider_id not in seen and now - row.state_at >= lag:
            if _ghost(env, prov, row):
                report.ghosts += 1
    busy = _busy_deployments(env)
    for row in unresolved.values():
        if now - row.state_at >= lag and row.deployment_id not in busy:
            if _never_created(env, prov, row):
                report.never_created += 1
    report.seconds = time.monotonic() - started
    telemetry.reconcile_pass(provider, "failed" if report.errors else "ok", orphans=report.orphans_seen)
    return report


ORPHAN_KEY = "orphan:"


def _ended_since(env: DeployEnv, provider: str, account: str, remotes: list[RemoteInstance],
                 listed_at: datetime) -> list[RemoteInstance]:
    """Orphan candidates less those whose row ended (with proof) after the listing was taken: they were
    live when listed, and a teardown running beside this pass has ended them since."""
    if not remotes:
        return []
    with env.db.session() as session:
        ended = set(session.scalars(select(DeployInstance.provider_id).where(
            DeployInstance.provider == provider, DeployInstance.account == account,
            DeployInstance.provider_id.in_([r.provider_id for r in remotes]),
            DeployInstance.ended_at >= listed_at)))
    return [r for r in remotes if r.provider_id not in ended]


def _orphan_due(env: DeployEnv, row: DeployInstance, now: datetime) -> bool:
    """An adopted orphan is destroyed once it has been known for the grace window."""
    return (row.key.startswith(ORPHAN_KEY) and row.state in st.UP
            and (now - row.created_at).total_seconds() >= env.settings.deploy_orphan_grace_s)


def _adopt_orphan(env: DeployEnv, provider: str, account: str, remote: RemoteInstance) -> str:
    """A row for the orphan as soon as it is seen (so it is metered from its creation and matched like any
    instance; deployment and price from its key where we know them), and an alert. It is destroyed once
    it has been known for ``deploy_orphan_grace_s``."""
    now = env.clock()
    first_seen = now
    with env.db.session() as session:
        origin = session.scalars(select(DeployInstance).where(DeployInstance.key == remote.key)).first()
        deployment: Deployment | None = None
        if origin is None:
            parsed = keys.parse_key(env.install_id(), remote.key)
            if parsed is not None:
                deployment = session.scalars(select(Deployment).where(Deployment.id.startswith(parsed[0]))).first()
        dep_id = origin.deployment_id if origin is not None else (deployment.id if deployment else None)
        org = origin.organization_id if origin is not None else (deployment.organization_id if deployment else None)
        started = min(remote.created_at or first_seen, first_seen)
        row = DeployInstance(
            organization_id=org, deployment_id=dep_id, key=f"{ORPHAN_KEY}{provider}:{remote.provider_id}"[:200],
            provider=provider, account=account, state=st.CREATED, provider_id=remote.provider_id,
            line_index=origin.line_index if origin else 0,
            offer_key=origin.offer_key if origin else "", region=origin.region if origin else "",
            instance_type=origin.instance_type if origin else "", gpu_model=origin.gpu_model if origin else "",
            gpu_count=origin.gpu_count if origin else 0, spot=origin.spot if origin else False,
            price_per_hour=origin.price_per_hour if origin else (remote.hourly_rate or 0.0),
            reported_rate=remote.hourly_rate,
            billing_granularity_s=origin.billing_granularity_s if origin else 1,
            billing_minimum_s=origin.billing_minimum_s if origin else 0,
            billing_started_at=started, created_at=now, state_at=now, end_reason="orphan",
        )
        session.add(row)
        session.flush()
        raise_alert(session, kind="orphan", dedupe=f"orphan:{provider}:{account}:{remote.provider_id}",
                    organization_id=org,
                    message=f"{provider} instance {remote.provider_id} (mark {remote.key}) has no live row; "
                            f"adopted, destroyed after {env.settings.deploy_orphan_grace_s:g}s",
                    provider=provider, provider_id=remote.provider_id, key=remote.key)
        return row.id


def _ghost(env: DeployEnv, prov: Provisioner, row: DeployInstance) -> bool:
    """A live row missing from the listing: ended only on a fresh read's proof of absence."""
    try:
        remote = prov.get(row.provider_id or "")
    except ProvisionError:
        return False
    if remote is not None and remote.state is not RemoteState.TERMINATED:
        return False
    now = env.clock()
    if row.spot and row.state in INTERRUPTIBLE:
        return _interrupted(env, row, now)
    with env.db.session() as session:
        moved = st.move(session, row.id, to=st.TERMINATED, when=st.LIVE, now=now, ended_at=now,
                        billing_stopped_at=now, end_reason=row.end_reason or "vanished at the provider")
        if moved and row.state not in st.DESTROYING and row.interrupted_at is None:
            raise_alert(session, kind="ghost", dedupe=f"ghost:{row.id}", organization_id=row.organization_id,
                        message=f"{row.provider} instance {row.provider_id} (key {row.key}) vanished while "
                                f"{row.state}; marked terminated", instance_id=row.id)
    return moved


INTERRUPTIBLE = (st.CREATED, st.BOOTING, st.REACHABLE, st.RUNNING)
"""States in which a spot instance's end, with no destroy asked, is the provider's interruption."""


def _mark_seen(env: DeployEnv, rows: list[DeployInstance], now: datetime) -> None:
    """Record that these rows' instances were listed present (an interruption is dated after this)."""
    if not rows:
        return
    with env.db.session() as session:
        session.execute(update(DeployInstance).where(DeployInstance.id.in_([r.id for r in rows]))
                        .values(last_seen_at=now).execution_options(synchronize_session=False))


def _interrupted(env: DeployEnv, row: DeployInstance, now: datetime, *, stopped: bool = False) -> bool:
    """A spot instance the provider ended without our asking: flagged with ``interrupted_at``, the last
    pass that saw it (its exposure ends there; billing ends at this proof, as for any end), and alerted.
    One the provider only stopped (an interruptible pod, a spot VM with stop behaviour) still exists:
    it becomes ``stopped``; its compute pauses (``stopstart_job.observe``) where the provider bills none while
    stopped, and it is destroyed like any other."""
    at = min(now, max(t for t in (row.last_seen_at, row.running_at, row.launched_at, row.billing_started_at,
                                  row.created_at) if t is not None))
    with env.db.session() as session:
        if stopped:
            moved = st.move(session, row.id, to=st.STOPPED, when=INTERRUPTIBLE, now=now, interrupted_at=at,
                            end_reason="interrupted by the provider (spot): stopped")
        else:
            moved = st.move(session, row.id, to=st.TERMINATED, when=INTERRUPTIBLE, now=now, ended_at=now,
                            billing_stopped_at=now, interrupted_at=at,
                            end_reason="interrupted by the provider (spot)")
        if moved:
            raise_alert(session, kind="interruption", dedupe=f"interruption:{row.id}",
                        organization_id=row.organization_id,
                        message=f"{row.provider} spot instance {row.provider_id} ({row.instance_type} in "
                                f"{row.zone or row.region}) was interrupted by the provider while {row.state}",
                        instance_id=row.id, interrupted_at=at.isoformat())
    if moved:
        env.emit("interrupted", {"instance_id": row.id, "at": at.isoformat()})
    return moved


def _stop_start(env: DeployEnv, prov: Provisioner, row: DeployInstance, remote: RemoteInstance) -> None:
    """A stopped or running-again instance moves its row and opens or closes its pause; a stop or start
    whose job died before it took effect is asked again (``cloudarb.deploy.stopstart_job``)."""
    if remote.state not in (RemoteState.STOPPED, RemoteState.RUNNING):
        return
    stopstart_job.observe(env, prov, row, remote, stopped_until=row.last_seen_at)  # the previous pass
    if row.desired_state is not None and row.deployment_id not in _busy_deployments(env):
        try:
            stopstart_job.resume(env, prov, load_row(env, row.id), remote)
        except ProvisionError as exc:
            log.warning("stop/start resume failed", extra={"instance_id": row.id, "error": str(exc)})


def _rate_seen(env: DeployEnv, row: DeployInstance, reported: float) -> None:
    """A running instance's reported rate changed: kept on the row, alerted once when off the launch price."""
    with env.db.session() as session:
        session.execute(update(DeployInstance).where(DeployInstance.id == row.id).values(reported_rate=reported)
                        .execution_options(synchronize_session=False))
        rates.check(session, row, reported, env.settings.deploy_rate_tolerance)


def _billing_starts(env: DeployEnv, row: DeployInstance, now: datetime) -> None:
    with env.db.session() as session:
        session.execute(update(DeployInstance).where(DeployInstance.id == row.id,
                                                     DeployInstance.billing_started_at.is_(None),
                                                     DeployInstance.state.in_(st.UP))
                        .values(billing_started_at=now).execution_options(synchronize_session=False))


def _busy_deployments(env: DeployEnv) -> set[str | None]:
    with env.db.session() as session:
        ids = session.scalars(select(Deployment.id).join(JobRun, JobRun.id == Deployment.job_id).where(
            JobRun.status.in_(("queued", "running"))))
        return set(ids)


def _never_created(env: DeployEnv, prov: Provisioner, row: DeployInstance) -> bool:
    if row.state != st.REQUESTED:
        try:
            found = prov.find(row.key)
        except ProvisionError:
            return False
        if found is not None and found.state is not RemoteState.TERMINATED:
            return adopt(env, row, found)
    now = env.clock()
    with env.db.session() as session:
        return st.move(session, row.id, to=st.FAILED, when=st.UNRESOLVED, now=now, ended_at=now,
                       end_reason="never reached the provider (no job working on it)")
