"""Submitting a provider refresh (from the scheduler or ``POST /providers/{p}/refresh``).

Light on purpose: the API process imports this, so it names the job body by dotted path and checks
provider keys against ``ingestion.keys`` without importing any provider client or SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudarb.ingest.errors import UnknownProviderKey
from cloudarb.jobs.enqueue import enqueue
from cloudarb.storage import accounts
from ingestion.keys import PROVIDER_KEYS

if TYPE_CHECKING:
    from cloudarb.context import Context
    from cloudarb.db.models import JobRun

REFRESH_FUNCTION = "cloudarb.ingest.jobs.refresh_body"
SYSTEM_ORG = "cloudarb:market-data"
"""Scheduled refreshes are jobs of this organization (market data belongs to no customer)."""


def system_org_id(ctx: Context) -> str:
    with ctx.db.session() as session:
        return accounts.get_or_create_org(session, name=SYSTEM_ORG).id


def submit_refresh(ctx: Context, *, provider: str, actor: str, organization_id: str | None = None) -> JobRun:
    """Store a refresh job for ``provider`` and enqueue it by id; raises UnknownProviderKey."""
    if provider not in PROVIDER_KEYS:
        raise UnknownProviderKey(f"unknown provider {provider!r}; valid keys: {', '.join(PROVIDER_KEYS)}",
                                 field="provider")
    org = organization_id or system_org_id(ctx)
    return enqueue(ctx, organization_id=org, kind="ingest", function=REFRESH_FUNCTION, target_id=provider,
                   message=f"refresh of {provider} requested by {actor}", max_attempts=1)
