"""Pricing providers: schedule and freshness of each, and a manual "refresh now"."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cloudarb.api.deps import CtxDep, Editor, SessionDep, Viewer, job_ws_url
from cloudarb.db.types import utcnow
from cloudarb.ingest import schedule
from cloudarb.ingest import status as status_store
from cloudarb.ingest.credentials import credentials_state
from cloudarb.ingest.submit import submit_refresh
from ingestion.keys import PROVIDER_KEYS

router = APIRouter(tags=["providers"])


class ProviderOut(BaseModel):
    provider: str = Field(description="Lowercase provider key, the same everywhere.")
    scheduled: bool = Field(description="Refreshed on a schedule (listed in CLOUDARB_INGEST_PROVIDERS).")
    state: str = Field(description="ok, never_run, disabled, missing_credentials, auth_failed, rate_limited, "
                                   "unavailable, malformed_response or error.")
    credentials: Literal["configured", "missing", "not needed"]
    interval_s: float
    max_age_s: float = Field(description="Offers older than this count as stale.")
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    last_duration_s: float | None
    consecutive_failures: int
    next_run_at: datetime | None
    offers_count: int = Field(description="Quotes in the provider's last successful refresh.")
    current_offers: int = Field(description="Offers of this provider in the current-offers table.")
    newest_observed_at: datetime | None
    lag_s: float | None = Field(description="Age of the provider's newest price, in seconds.")


class RefreshAccepted(BaseModel):
    provider: str
    job_id: str
    status: str
    websocket_url: str
    status_url: str


@router.get("/providers", operation_id="list_providers", response_model=list[ProviderOut])
def list_providers(_: Viewer, ctx: CtxDep, session: SessionDep) -> list[ProviderOut]:
    """Every registered pricing provider with its last success, last error, offers and lag."""
    rows = status_store.all_rows(session)
    stats = status_store.offer_stats(session)
    scheduled = set(schedule.scheduled_providers(ctx.settings))
    now = utcnow()
    out = []
    for key in PROVIDER_KEYS:
        row = rows.get(key)
        count, newest = stats.get(key, (0, None))
        state = row.state if row is not None else ("never_run" if key in scheduled else "disabled")
        out.append(
            ProviderOut(
                provider=key,
                scheduled=key in scheduled,
                state=state,
                credentials=credentials_state(ctx.settings, key),
                interval_s=schedule.interval_s(ctx.settings, key),
                max_age_s=schedule.max_age_s(ctx.settings, key),
                last_attempt_at=row.last_attempt_at if row else None,
                last_success_at=row.last_success_at if row else None,
                last_error_at=row.last_error_at if row else None,
                last_error=row.last_error if row else None,
                last_duration_s=row.last_duration_s if row else None,
                consecutive_failures=row.consecutive_failures if row else 0,
                next_run_at=row.next_run_at if row and key in scheduled else None,
                offers_count=row.offers_count if row else 0,
                current_offers=count,
                newest_observed_at=newest,
                lag_s=max(0.0, (now - newest).total_seconds()) if newest else None,
            )
        )
    return out


@router.post("/providers/{provider}/refresh", operation_id="refresh_provider", status_code=202,
             response_model=RefreshAccepted)
def refresh_provider(
    provider: Annotated[str, Path(min_length=1, max_length=40)], request: Request, ctx: CtxDep, principal: Editor
) -> JSONResponse:
    """Queue a refresh of one provider now; follow it on the returned WebSocket URL."""
    job = submit_refresh(ctx, provider=provider.lower(), actor=principal.actor,
                         organization_id=principal.organization_id)
    body = RefreshAccepted(provider=provider.lower(), job_id=job.id, status=job.status,
                           websocket_url=job_ws_url(request, ctx, job.id), status_url=f"/jobs/{job.id}")
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": f"/jobs/{job.id}"})
