"""The provider refresh job, and submitting it (from the scheduler or ``POST /providers/{p}/refresh``).

``refresh_body`` runs through ``cloudarb.jobs.runtime.execute`` like every job: it builds the provider
from settings, fetches, writes ticks + current offers + price events in one transaction, records the
provider status (with the next slot of its schedule), and only then broadcasts the price changes.
A provider without credentials is skipped: status 'missing_credentials', a log line, a finished job.
A failed fetch fails the job (no job-level retry: the schedule's backoff is the retry).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from cloudarb.db.types import utcnow
from cloudarb.ingest import bulk, events, schedule
from cloudarb.ingest import status as status_store
from cloudarb.ingest.config import provider_config
from cloudarb.ingest.errors import RefreshFailed
from cloudarb.jobs.errors import JobInputError
from cloudarb.jobs.runtime import JobContext
from ingestion.errors import (
    IngestionError,
    MalformedCatalog,
    MalformedResponse,
    MissingCredentials,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderUnavailable,
    UnknownProvider,
)
from ingestion.providers import create_provider
from ingestion.schemas import PriceQuote

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)



def error_state(exc: IngestionError) -> str:
    """The provider status word for an ingestion error (the mapping ingestion.errors documents)."""
    if isinstance(exc, MissingCredentials):
        return "missing_credentials"
    if isinstance(exc, ProviderAuthError):
        return "auth_failed"
    if isinstance(exc, ProviderRateLimited):
        return "rate_limited"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    if isinstance(exc, MalformedResponse | MalformedCatalog):
        return "malformed_response"
    return "error"


@dataclass(frozen=True)
class RefreshOutcome:
    quotes: int
    ticks_inserted: int
    changes: int


def refresh_body(jc: JobContext) -> str:
    """Job body: refresh the provider named by the job's target id."""
    ctx, key = jc.ctx, jc.target_id
    now = utcnow()
    began = time.monotonic()
    with ctx.db.session() as session:
        status_store.started(session, provider=key, job_id=jc.job_id, now=now)
    try:
        provider = create_provider(key, config=provider_config(ctx.settings, key))
    except UnknownProvider as exc:
        raise JobInputError(str(exc)) from exc
    except MissingCredentials as exc:
        recheck = timedelta(seconds=ctx.settings.ingest_missing_credentials_recheck_s)
        log.warning("skipping provider %s: %s (set its CLOUDARB_* credentials)", key, exc,
                    extra={"provider": key})
        with ctx.db.session() as session:
            status_store.failed(session, provider=key, state="missing_credentials", error=str(exc),
                                duration_s=time.monotonic() - began, now=now, next_run_at=now + recheck,
                                count_failure=False)
        jc.progress("skipped", percent=100, message=f"missing credentials: {exc}")
        return "finished"
    jc.progress("fetching", percent=10, message=f"asking {key} for prices")
    try:
        quotes = provider.fetch()
    except IngestionError as exc:
        _record_failure(jc, key, exc, began)
        raise RefreshFailed(key, error_state(exc), str(exc)) from exc
    jc.check_canceled()
    jc.progress("writing", percent=60, message=f"{len(quotes)} quotes", quotes=len(quotes))
    outcome = write_refresh(ctx, key, quotes, began=began)
    jc.progress("done", percent=100, message=f"{outcome.quotes} quotes, {outcome.ticks_inserted} new ticks, "
                f"{outcome.changes} price changes", ticks=outcome.ticks_inserted, changes=outcome.changes)
    return "finished"


def write_refresh(ctx: Context, key: str, quotes: Sequence[PriceQuote], *, began: float) -> RefreshOutcome:
    """Store one fetch and its status in one transaction, then broadcast its price changes."""
    now = utcnow()
    delay = schedule.next_delay_s(ctx.settings, key, failures=0)
    with ctx.db.session() as session:
        result = bulk.write_quotes(session, quotes)
        stored = events.persist(session, result.changes)
        status_store.succeeded(session, provider=key, offers=len(quotes), duration_s=time.monotonic() - began,
                               now=now, next_run_at=now + timedelta(seconds=delay))
    events.broadcast(ctx, stored)
    if stored:
        try:
            with ctx.db.session() as session:
                events.prune(session, older_than=timedelta(days=ctx.settings.price_events_retention_days))
        except Exception:
            log.warning("pruning old price events failed", exc_info=True)
    log.info("refreshed provider %s", key,
             extra={"provider": key, "quotes": len(quotes), "ticks": result.ticks_inserted,
                    "changes": len(stored)})
    return RefreshOutcome(quotes=len(quotes), ticks_inserted=result.ticks_inserted, changes=len(stored))


def _record_failure(jc: JobContext, key: str, exc: IngestionError, began: float) -> None:
    ctx = jc.ctx
    now = utcnow()
    with ctx.db.session() as session:
        failures = status_store.failures(session, key) + 1
        retry_after = exc.retry_after_s if isinstance(exc, ProviderRateLimited) else None
        delay = schedule.next_delay_s(ctx.settings, key, failures=failures, retry_after_s=retry_after)
        status_store.failed(session, provider=key, state=error_state(exc), error=str(exc),
                            duration_s=time.monotonic() - began, now=now, next_run_at=now + timedelta(seconds=delay))
    log.warning("refresh of %s failed (%s); next try in %.0fs", key, error_state(exc), delay,
                extra={"provider": key})


