"""The deploy stage's invariants, checked after every test scenario and chaos schedule:

1. every provider instance with our prefix matches exactly one live row (by provider id);
2. no key has two instances at the provider;
3. nothing billed is unaccounted: every instance the provider ever held under our prefix has a row
   whose billing covers its life (started no later than it was created, stopped no earlier than it
   ended), and whose pauses lie within spans the provider had it stopped (where the history has them);
4. the ledger of each instance equals rate x billed seconds, and its billed seconds equal the
   provider's rounding of the metered span.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import CostEntry, DeployInstance
from cloudarb.deploy import states as st
from cloudarb.deploy.metering import accrued, pauses_of


@dataclass(frozen=True)
class Lived:
    """One instance's life as the provider saw it."""

    provider_id: str
    key: str
    created_at: datetime
    ended_at: datetime | None
    stopped: tuple[tuple[datetime, datetime | None], ...] | None = None
    """Spans the provider had it stopped (end None: still stopped); None where unknown."""


def check(session: Session, *, provider: str, prefix: str, present: Iterable[tuple[str, str]],
          history: Iterable[Lived] = (), tolerance_s: float = 1.0) -> dict[str, list[str]]:
    """Problems by invariant (empty lists when all hold). ``present``: (provider id, key) listed now."""
    rows = list(session.scalars(select(DeployInstance).where(DeployInstance.provider == provider)))
    live_by_pid = Counter(r.provider_id for r in rows if r.state in st.LIVE and r.provider_id)
    by_pid = {r.provider_id: r for r in rows if r.provider_id}
    present = [(pid, key) for pid, key in present if key.startswith(prefix)]
    problems: dict[str, list[str]] = {"orphans": [], "duplicate_keys": [], "unaccounted": [], "cost_mismatches": []}
    for pid, key in present:
        if live_by_pid[pid] != 1:
            problems["orphans"].append(f"{pid} ({key}) matches {live_by_pid[pid]} live rows")
    for key, n in Counter(key for _, key in present).items():
        if n > 1:
            problems["duplicate_keys"].append(f"{key} x{n}")
    slack = timedelta(seconds=tolerance_s)
    for lived in history:
        if not lived.key.startswith(prefix):
            continue
        row = by_pid.get(lived.provider_id)
        if row is None or row.billing_started_at is None:
            problems["unaccounted"].append(f"{lived.provider_id} has no billed row")
        elif row.billing_started_at > lived.created_at + slack:
            problems["unaccounted"].append(f"{lived.provider_id} billed from {row.billing_started_at}, "
                                           f"created {lived.created_at}")
        elif lived.ended_at is not None and row.billing_stopped_at is not None \
                and row.billing_stopped_at + slack < lived.ended_at:
            problems["unaccounted"].append(f"{lived.provider_id} billing stopped before it ended")
        elif lived.ended_at is None and row.billing_stopped_at is not None:
            problems["unaccounted"].append(f"{lived.provider_id} still exists but its billing stopped")
        elif lived.stopped is not None:
            problems["unaccounted"].extend(
                f"{lived.provider_id} paused {start}..{end or 'now'} while it ran"
                for start, end in pauses_of(row) if not _within(start, end, lived.stopped, slack))
    sums = {iid: (billed, amount) for iid, billed, amount in session.execute(
        select(CostEntry.instance_id, func.sum(CostEntry.billed_seconds), func.sum(CostEntry.amount))
        .group_by(CostEntry.instance_id)).all()}
    for row in rows:
        billed, amount = sums.get(row.id, (0.0, 0.0))
        expect = accrued(row, row.metered_until)[1] if row.metered_until is not None else 0.0
        if abs(billed - expect) > 1e-6 or abs(amount - billed * row.price_per_hour / 3600.0) > 1e-6:
            problems["cost_mismatches"].append(
                f"{row.id}: ledger {billed}s ${amount:.6f}, expected {expect}s at {row.price_per_hour}/h")
    return problems


def _within(start: datetime, end: datetime | None, stopped: tuple[tuple[datetime, datetime | None], ...],
            slack: timedelta) -> bool:
    """A pause (end None: still open) inside one span the provider had the instance stopped."""
    for s0, s1 in stopped:
        if s0 - slack <= start and (s1 is None or (end is not None and end <= s1 + slack)
                                    or (end is None and start <= s1 + slack)):
            return True
    return False
