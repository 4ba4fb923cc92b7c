"""What the installation is doing and spending, read from storage when Prometheus scrapes.

Each figure is one grouped ``SELECT`` over indexed or small sets (live rows, this month's ledger,
unfinished jobs), never a pass over every row ever written; the families are kept for
``CACHE_SECONDS`` so several scrapers (one per API process or replica) cost one query set. Tables
that an older schema lacks (deploy, nodes) are skipped, not an error: each group runs in its own
session and a failed group leaves its families empty in that scrape (still named, without samples).

These are totals for the whole installation (never per organization, except the budget ratio,
which is labelled by organization id). Every API replica reports the same values, so rules take
``max`` over instances.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloudarb.db.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0
ACTIVE_JOB_STATUSES = ("queued", "running")

_jobs = sa.table("job_runs", sa.column("status"), sa.column("kind"), sa.column("created_at", UTCDateTime()),
                 sa.column("started_at", UTCDateTime()), sa.column("heartbeat_at", UTCDateTime()))
_policies = sa.table("policies", sa.column("enabled"), sa.column("current_optimization_id"))
_results = sa.table("optimization_results", sa.column("optimization_id"), sa.column("cost_per_hour"),
                    sa.column("summary", sa.JSON()))
_lines = sa.table("allocation_lines", sa.column("optimization_id"), sa.column("provider"),
                  sa.column("hourly_cost"))
ENDED_INSTANCE_STATES = ("terminated", "failed")
ORPHAN_KEY_PREFIX = "orphan:"
"""The reconciler adopts an instance it finds with our mark and no live row under this key prefix."""

_instances = sa.table("deploy_instances", sa.column("id"), sa.column("provider"), sa.column("state"),
                      sa.column("key"),
                      sa.column("price_per_hour"), sa.column("ended_at", UTCDateTime()),
                      sa.column("expires_at", UTCDateTime()), sa.column("billing_started_at", UTCDateTime()),
                      sa.column("billing_stopped_at", UTCDateTime()))
_ledger = sa.table("cost_ledger", sa.column("instance_id"), sa.column("organization_id"), sa.column("amount"),
                   sa.column("period_end", UTCDateTime()))
_budgets = sa.table("budgets", sa.column("organization_id"), sa.column("monthly_limit"))
_alerts = sa.table("deploy_alerts", sa.column("kind"), sa.column("created_at", UTCDateTime()))
_nodes = sa.table("nodes", sa.column("status"), sa.column("drained"))
_placements = sa.table("node_placements", sa.column("state"))


def _aware(value: Any) -> datetime | None:
    """An aggregate's timestamp (SQLite returns ``min()``/``max()`` as text, naive)."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


Make = Callable[..., GaugeMetricFamily]
"""``make(name, documentation, labels)``: a group declares each of its families first, then fills them."""


def jobs_group(session: Session, ctx: Context, now: datetime, make: Make) -> None:
    active = make("cloudarb_jobs_active", "Unfinished jobs by status and kind", ["status", "kind"])
    oldest = make("cloudarb_job_oldest_seconds", "Age of the oldest unfinished job by status "
                    "(queued: since it was created; running: since it started)", ["status"])
    rows = session.execute(
        sa.select(_jobs.c.status, _jobs.c.kind, sa.func.count(), sa.func.min(_jobs.c.created_at),
                  sa.func.min(_jobs.c.started_at))
        .where(_jobs.c.status.in_(ACTIVE_JOB_STATUSES)).group_by(_jobs.c.status, _jobs.c.kind)).all()
    ages = dict.fromkeys(ACTIVE_JOB_STATUSES, 0.0)
    for status, kind, n, created, started in rows:
        active.add_metric([status, kind], n)
        since = _aware(started if status == "running" else created)
        if since is not None:
            ages[status] = max(ages[status], (now - since).total_seconds())
    for status, age in ages.items():
        oldest.add_metric([status], max(0.0, age))


def queue_group(ctx: Context, make: Make) -> None:
    depth = make("cloudarb_queue_depth", "Jobs waiting in each queue", ["queue"])
    workers = make("cloudarb_workers", "Job workers alive (RQ workers registered on the queue with a "
                     "fresh heartbeat; embedded mode: the API process itself)", ["queue"])
    name = ctx.settings.queue_name
    depth.add_metric([name], ctx.queue.depth())
    rq_queue = getattr(ctx.queue, "queue", None)
    if rq_queue is None:
        workers.add_metric([name], 1)
    else:
        from rq import Worker

        workers.add_metric([name], Worker.count(queue=rq_queue))


def allocation_group(session: Session, ctx: Context, now: datetime, make: Make) -> None:
    """The current allocations are those the enabled policies hold (one optimization each)."""
    allocated = make("cloudarb_allocated_dollars_per_hour", "Hourly cost of the current allocations of "
                       "enabled policies, by provider", ["provider"])
    savings = make("cloudarb_savings_dollars_per_hour", "Hourly savings of the current allocations against "
                     "each baseline", ["baseline"])
    current = sa.select(_policies.c.current_optimization_id).where(
        _policies.c.enabled.is_(True), _policies.c.current_optimization_id.is_not(None))
    for provider, cost in session.execute(
            sa.select(_lines.c.provider, sa.func.sum(_lines.c.hourly_cost))
            .where(_lines.c.optimization_id.in_(current)).group_by(_lines.c.provider)):
        allocated.add_metric([provider], float(cost or 0.0))
    totals: dict[str, float] = {}
    for (summary,) in session.execute(sa.select(_results.c.summary).where(_results.c.optimization_id.in_(current))):
        for item in (summary or {}).get("savings") or []:
            if isinstance(item, dict) and item.get("savings_per_hour") is not None and item.get("baseline"):
                key = str(item["baseline"])
                totals[key] = totals.get(key, 0.0) + float(item["savings_per_hour"])
    for baseline, value in sorted(totals.items()):
        savings.add_metric([baseline], value)


def deploy_group(session: Session, ctx: Context, now: datetime, make: Make) -> None:
    instances = make("cloudarb_instances", "Provider instances not yet ended (state leaked: a destroy the "
                     "provider did not confirm), by provider and state",
                       ["provider", "state"])
    running_cost = make("cloudarb_instance_dollars_per_hour", "Hourly price of the instances being billed now",
                          ["provider"])
    overdue = make("cloudarb_instances_past_expiry", "Instances still alive after their expiry (leaked)",
                     ["provider"])
    spend = make("cloudarb_spend_dollars_month", "Metered spend since the start of this month (UTC)",
                   ["provider"])
    burn = make("cloudarb_budget_used_ratio", "This month's spend over the monthly budget", ["organization"])
    live = _instances.c.state.not_in(ENDED_INSTANCE_STATES)
    for provider, state, n in session.execute(
            sa.select(_instances.c.provider, _instances.c.state, sa.func.count()).where(live)
            .group_by(_instances.c.provider, _instances.c.state)):
        instances.add_metric([provider, state], n)
    billed = sa.and_(live, _instances.c.billing_started_at.is_not(None), _instances.c.billing_stopped_at.is_(None))
    for provider, cost in session.execute(
            sa.select(_instances.c.provider, sa.func.sum(_instances.c.price_per_hour)).where(billed)
            .group_by(_instances.c.provider)):
        running_cost.add_metric([provider], float(cost or 0.0))
    for provider, n in session.execute(
            sa.select(_instances.c.provider, sa.func.count()).where(live, _instances.c.expires_at < now)
            .group_by(_instances.c.provider)):
        overdue.add_metric([provider], n)
    this_month = _ledger.c.period_end >= month_start(now)
    for provider, amount in session.execute(
            sa.select(_instances.c.provider, sa.func.sum(_ledger.c.amount))
            .select_from(_ledger.join(_instances, _ledger.c.instance_id == _instances.c.id))
            .where(this_month).group_by(_instances.c.provider)):
        spend.add_metric([provider], float(amount or 0.0))
    month = (sa.select(_ledger.c.organization_id, sa.func.sum(_ledger.c.amount).label("spent"))
             .where(this_month).group_by(_ledger.c.organization_id).subquery())
    for org, limit, spent in session.execute(
            sa.select(_budgets.c.organization_id, _budgets.c.monthly_limit, month.c.spent)
            .select_from(_budgets.outerjoin(month, month.c.organization_id == _budgets.c.organization_id))):
        if limit and limit > 0:
            burn.add_metric([org], float(spent or 0.0) / float(limit))


def deploy_alerts_group(session: Session, ctx: Context, now: datetime, make: Make) -> None:
    alerts = make("cloudarb_deploy_alerts_last_hour", "Deploy alerts raised in the last hour, by kind "
                  "(orphan, leaked, ghost, budget)", ["kind"])
    orphans = make("cloudarb_orphan_instances", "Instances found at a provider with our mark and no live row, "
                   "adopted by the reconciler and not yet destroyed (it destroys them after the grace window)",
                   ["provider"])
    for kind, n in session.execute(
            sa.select(_alerts.c.kind, sa.func.count()).where(_alerts.c.created_at >= now - timedelta(hours=1))
            .group_by(_alerts.c.kind)):
        alerts.add_metric([kind], n)
    for provider, n in session.execute(
            sa.select(_instances.c.provider, sa.func.count())
            .where(_instances.c.state.not_in(ENDED_INSTANCE_STATES), _instances.c.key.startswith(ORPHAN_KEY_PREFIX))
            .group_by(_instances.c.provider)):
        orphans.add_metric([provider], n)


def nodes_group(session: Session, ctx: Context, now: datetime, make: Make) -> None:
    nodes = make("cloudarb_nodes", "The team's own GPU hosts, by status", ["status"])
    placements = make("cloudarb_placements", "Container placements on own hosts, by state (live and queued)",
                        ["state"])
    for status, n in session.execute(sa.select(_nodes.c.status, sa.func.count()).group_by(_nodes.c.status)):
        nodes.add_metric([status], n)
    for state, n in session.execute(
            sa.select(_placements.c.state, sa.func.count())
            .where(_placements.c.state.not_in(("destroyed", "failed"))).group_by(_placements.c.state)):
        placements.add_metric([state], n)


SessionGroup = Callable[[Session, "Context", datetime, Make], None]
GROUPS: tuple[SessionGroup, ...] = (jobs_group, allocation_group, deploy_group, deploy_alerts_group, nodes_group)


class BusinessCollector(Collector):
    """Scrape-time gauges from storage and the queue, computed at most once per ``ttl`` seconds."""

    def __init__(self, ctx: Context, *, ttl: float = CACHE_SECONDS) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= self.ttl:
                self._cached = (time.monotonic(), self._compute())
            families = self._cached[1]
        yield from families

    def _compute(self) -> list[GaugeMetricFamily]:
        """Every family is always there (empty when its table is missing or the query failed), so
        the exposition names the same metrics on every schema and through every outage."""
        now = utcnow()
        out: list[GaugeMetricFamily] = []
        for group in GROUPS:
            made = _Maker()
            try:
                with self.ctx.db.session() as session:
                    group(session, self.ctx, now, made)
            except SQLAlchemyError as exc:  # a table of a later migration, or the database is down
                made.clear()
                log.debug("metrics group skipped", extra={"group": group.__name__, "error": str(exc)[:200]})
            out.extend(made.families)
        made = _Maker()
        try:
            queue_group(self.ctx, made)
        except Exception as exc:  # noqa: BLE001 - the broker down leaves these empty; the scrape still answers
            made.clear()
            log.warning("queue metrics unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        out.extend(made.families)
        return out


class _Maker:
    def __init__(self) -> None:
        self.families: list[GaugeMetricFamily] = []

    def __call__(self, name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, documentation, labels=labels or [])
        self.families.append(family)
        return family

    def clear(self) -> None:
        for family in self.families:
            family.samples.clear()
