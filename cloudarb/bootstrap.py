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
    """Load the bundled real price snapshot (origin in cloudarb/data/SNAPSHOT.md) into an empty store,
    through the same checked path as `cloudarb catalog import` (ticks, hourly rows, current offers).
    A store seeded before seeding kept the hourly price table gets its hourly rows instead
    (`cloudarb.ingest.hourly.heal_if_empty`: two index probes when there is nothing to do)."""
    from cloudarb.storage import offers as offer_store

    with ctx.db.session() as session:
        if not force and offer_store.count_offers(session) > 0:
            from cloudarb.ingest import hourly

            hourly.heal_if_empty(session)
            return 0
        from cloudarb.ingest import catalog_import  # the loader and its checks: only for a first run

        loaded = catalog_import.load(snapshot_path(), fmt=catalog_import.SNAPSHOT_FORMAT)
        n = catalog_import.store(session, loaded)
    log.info("loaded bundled price snapshot", extra={"quotes": n, "quarantined": len(loaded.quarantined)})
    return n


def prepare_embedded(ctx: Context) -> None:
    migrate.ensure_current(ctx.db.engine, ctx.settings.database_url)
    if ctx.settings.seed_snapshot:
        seed_snapshot(ctx)
