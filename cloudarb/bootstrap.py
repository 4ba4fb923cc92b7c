"""First-run preparation of the embedded mode: migrate the SQLite file, load the bundled prices."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from cloudarb.db import migrate

if TYPE_CHECKING:
    from cloudarb.context import Context

log = logging.getLogger(__name__)


def snapshot_path() -> Path:
    return Path(str(resources.files("cloudarb") / "data" / "price_snapshot.csv"))


def seed_snapshot(ctx: Context, *, force: bool = False) -> int:
    """Load the bundled real price snapshot (origin in cloudarb/data/SNAPSHOT.md) into an empty store."""
    from cloudarb.storage import offers as offer_store
    from ingestion.catalogs import load_snapshot

    with ctx.db.session() as session:
        if not force and offer_store.count_offers(session) > 0:
            return 0
        quotes = load_snapshot(snapshot_path())
        n = offer_store.upsert_quotes(session, quotes)
    log.info("loaded bundled price snapshot", extra={"quotes": n})
    return n


def prepare_embedded(ctx: Context) -> None:
    migrate.ensure_current(ctx.db.engine, ctx.settings.database_url)
    if ctx.settings.seed_snapshot:
        seed_snapshot(ctx)
