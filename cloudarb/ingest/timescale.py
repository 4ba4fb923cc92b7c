"""TimescaleDB's side of the ingest path: whether ``price_ticks_hourly`` is a continuous aggregate,
and materializing the hours an ingest touched once its transaction has committed.

The aggregate's refresh policy used to cover only its recent window (3 days), so a back-filled or
seeded history was never materialized: every hourly query re-aggregated raw ticks in real time
(19 s each at 2M ticks). Each ingest therefore refreshes the hours it touched, after its commit
(TimescaleDB refuses a refresh inside a transaction), so its hours are materialized at once. Hours
below the aggregate's watermark that are not refreshed stay as they were materialized, so that
refresh must not be lost: TimescaleDB (2.2x) refuses a refresh whose window overlaps one in progress
("due to a concurrent refresh", SQLSTATE 55P03) instead of waiting, which two ingest writers (two
providers' refresh jobs, or the bench's two writers: 1 of 40 refreshes at 10M ticks) or the policy
job hit. Such a refresh is retried until the other one is done. What is still lost (a process
killed between its commit and the refresh) is repaired by the policy, which since migration 0015
covers all of history.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cloudarb.db.engine import after_commit, pending_after_commit

log = logging.getLogger(__name__)

_CACHE: dict[str, bool] = {}
_REFRESH_KEY = "ingest.price_ticks_hourly"
_LOCK_NOT_AVAILABLE = "55P03"
REFRESH_WAIT_S = 300.0
"""How long an ingest's refresh waits out concurrent refreshes of overlapping hours before it gives
up with a warning (a forced full refresh of 10M ticks takes about a minute on a busy 2-core host)."""
_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 2.0


def uses_timescale(session: Session) -> bool:
    """Whether ``price_ticks_hourly`` is a continuous aggregate (asked once per database URL)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    url = str(bind.engine.url)
    if url not in _CACHE:
        row = session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first()
        _CACHE[url] = row is not None
    return _CACHE[url]


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _lock_not_available(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE


@dataclass
class HourlyRefresh:
    """Materialize the hourly aggregate over ``[first, last]`` (whole hours), waiting out concurrent
    refreshes of overlapping windows for up to ``wait_s``."""

    engine: Any
    first: datetime
    last: datetime
    wait_s: float = REFRESH_WAIT_S

    def __call__(self) -> None:
        start, end = _hour(self.first), _hour(self.last) + timedelta(hours=1)
        deadline = time.monotonic() + self.wait_s
        delay = _FIRST_DELAY_S
        attempts = 1
        while True:
            try:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("CALL refresh_continuous_aggregate('price_ticks_hourly', :start, :end)"),
                                 {"start": start, "end": end})
            except OperationalError as exc:
                if not _lock_not_available(exc) or time.monotonic() + delay > deadline:
                    raise
            else:
                if attempts > 1:
                    log.info("hourly aggregate refreshed after waiting for a concurrent refresh",
                             extra={"attempts": attempts, "start": start.isoformat(), "end": end.isoformat()})
                return
            # jittered, so two writers that collided do not collide again in lockstep
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, _MAX_DELAY_S)
            attempts += 1


def refresh_hourly_after_commit(session: Session, first: datetime, last: datetime) -> None:
    """Register (or widen) the session's one hourly refresh, run once its transaction has committed."""
    pending = pending_after_commit(session, _REFRESH_KEY)
    if isinstance(pending, HourlyRefresh):
        first, last = min(first, pending.first), max(last, pending.last)
    after_commit(session, _REFRESH_KEY, HourlyRefresh(session.get_bind().engine, first, last))
