"""Offers (the latest quote per offer) and price ticks (every quote, a time series)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, cast

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloudarb.db.models import Offer, PriceSeries, PriceTick
from cloudarb.db.types import utcnow
from ingestion.schemas import PriceQuote

SortKey = Literal["price_per_gpu_hour", "price_per_hour", "vram_gb", "observed_at", "gpu_count"]
_CHUNK = 500


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def quote_row(q: PriceQuote) -> dict[str, Any]:
    return {
        "offer_key": q.offer_key,
        "provider": q.provider,
        "seller": q.seller,
        "region": q.region,
        "zone": q.zone,
        "instance_type": q.instance_type,
        "gpu_model": q.gpu_model,
        "gpu_model_raw": q.gpu_model_raw,
        "gpu_model_known": q.gpu_model_known,
        "gpu_count": q.gpu_count,
        "vram_gb": q.vram_gb,
        "vcpus": q.vcpus,
        "ram_gb": q.ram_gb,
        "spot": q.spot,
        "price_per_hour": q.price_per_hour,
        "price_per_gpu_hour": q.price_per_gpu_hour,
        "capacity": q.capacity,
        "available_instances": q.available_instances,
        "reliability": q.reliability,
        "observed_at": q.observed_at,
    }


def series_ids(session: Session, keys: Iterable[str]) -> dict[str, int]:
    """The `PriceSeries` id of each offer key, creating the missing ones (row-by-row write paths)."""
    wanted = sorted(set(keys))
    ids: dict[str, int] = {}
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        ids.update((k, v) for k, v in session.execute(
            select(PriceSeries.offer_key, PriceSeries.id).where(PriceSeries.offer_key.in_(chunk))))
    missing = [k for k in wanted if k not in ids]
    for i in range(0, len(missing), _CHUNK):
        chunk = missing[i : i + _CHUNK]
        stmt = _insert(session, PriceSeries).values([{"offer_key": k} for k in chunk])
        session.execute(stmt.on_conflict_do_nothing(index_elements=["offer_key"]))
        ids.update((k, v) for k, v in session.execute(
            select(PriceSeries.offer_key, PriceSeries.id).where(PriceSeries.offer_key.in_(chunk))))
    return ids


def upsert_quotes(session: Session, quotes: Iterable[PriceQuote]) -> int:
    """Record quotes as ticks (idempotent) and move each offer's current row forward in time.

    An older quote arriving late is kept in the history but never replaces a newer current price.
    Returns the number of quotes processed.
    """
    rows = [quote_row(q) for q in quotes]
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:
        cur = latest.get(r["offer_key"])
        if cur is None or r["observed_at"] >= cur["observed_at"]:
            latest[r["offer_key"]] = r
    ids = series_ids(session, latest)
    ticks = {
        (r["offer_key"], r["observed_at"]): {
            "series_id": ids[r["offer_key"]],
            "observed_at": r["observed_at"],
            "price_per_hour": r["price_per_hour"],
            "available_instances": r["available_instances"],
        }
        for r in rows
    }
    tick_rows = list(ticks.values())
    for i in range(0, len(tick_rows), _CHUNK):
        stmt = _insert(session, PriceTick).values(tick_rows[i : i + _CHUNK])
        session.execute(stmt.on_conflict_do_nothing(index_elements=["series_id", "observed_at"]))
    offer_rows = list(latest.values())
    updatable = [c for c in offer_rows[0] if c not in ("offer_key",)] if offer_rows else []
    for i in range(0, len(offer_rows), _CHUNK):
        stmt = _insert(session, Offer).values(offer_rows[i : i + _CHUNK])
        stmt = stmt.on_conflict_do_update(
            index_elements=["offer_key"],
            set_={c: stmt.excluded[c] for c in updatable},
            where=stmt.excluded.observed_at >= Offer.observed_at,
        )
        session.execute(stmt)
    return len(rows)


def count_offers(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Offer)) or 0


@dataclass(frozen=True, kw_only=True)
class OfferFilter:
    providers: Sequence[str] = ()
    """Provider keys ('shadeform': every seller in it) or one seller of a marketplace ('shadeform:lambdalabs')."""
    gpu_models: Sequence[str] = ()
    regions: Sequence[str] = ()
    min_vram_gb: float | None = None
    min_gpus: int | None = None
    max_price_per_hour: float | None = None
    max_price_per_gpu_hour: float | None = None
    spot: bool | None = None
    max_age: timedelta | None = None
    max_age_by_provider: Mapping[str, timedelta] = field(default_factory=dict)
    """Stale exclusion: an offer of a listed provider older than its age is left out (see
    cloudarb.ingest.schedule.freshness_limits for the configured ages)."""


def _filtered(f: OfferFilter) -> Select[Offer]:
    stmt = select(Offer)
    if f.providers:
        plain = [p for p in f.providers if ":" not in p]
        sellers = [p.split(":", 1) for p in f.providers if ":" in p]
        stmt = stmt.where(or_(
            Offer.provider.in_(plain),
            *(and_(Offer.provider == provider, Offer.seller == seller) for provider, seller in sellers),
        ))
    if f.gpu_models:
        stmt = stmt.where(func.lower(Offer.gpu_model).in_([g.lower() for g in f.gpu_models]))
    if f.regions:
        stmt = stmt.where(Offer.region.in_(list(f.regions)))
    if f.min_vram_gb is not None:
        stmt = stmt.where(Offer.vram_gb >= f.min_vram_gb)
    if f.min_gpus is not None:
        stmt = stmt.where(Offer.gpu_count >= f.min_gpus)
    if f.max_price_per_hour is not None:
        stmt = stmt.where(Offer.price_per_hour <= f.max_price_per_hour)
    if f.max_price_per_gpu_hour is not None:
        stmt = stmt.where(Offer.price_per_gpu_hour <= f.max_price_per_gpu_hour)
    if f.spot is not None:
        stmt = stmt.where(Offer.spot.is_(f.spot))
    if f.max_age is not None:
        stmt = stmt.where(Offer.observed_at >= utcnow() - f.max_age)
    if f.max_age_by_provider:
        now = utcnow()
        stmt = stmt.where(
            and_(*(or_(Offer.provider != p, Offer.observed_at >= now - age) for p, age in f.max_age_by_provider.items()))
        )
    return stmt


def list_offers(
    session: Session,
    *,
    filters: OfferFilter,
    sort: SortKey = "price_per_gpu_hour",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of current offers as plain column dicts (no ORM objects: this is the API's hot path),
    and the number of offers matching the filters."""
    col = getattr(Offer, sort)
    total_col = func.count().over().label("_total")
    stmt = (
        _filtered(filters)
        .with_only_columns(*Offer.__table__.c, total_col)
        .order_by(col.desc() if descending else col.asc(), Offer.offer_key)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(row) for row in session.execute(stmt).mappings()]
    if rows:
        total = int(rows[0]["_total"])
        for row in rows:
            del row["_total"]
        return rows, total
    if offset == 0:
        return [], 0
    # past the last page: the window count has no row to ride on, so count separately
    return [], session.scalar(select(func.count()).select_from(_filtered(filters).subquery())) or 0


class QuoteFields(Protocol):
    """What the conversion to an optimizer offer (``cloudarb.optimize.offers.to_offer``) reads of a
    quote: an ``ingestion.schemas.PriceQuote`` or a stored offer row."""

    @property
    def offer_key(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def seller(self) -> str | None: ...

    @property
    def region(self) -> str: ...

    @property
    def zone(self) -> str | None: ...

    @property
    def instance_type(self) -> str: ...

    @property
    def gpu_model(self) -> str: ...

    @property
    def gpu_count(self) -> int: ...

    @property
    def vram_gb(self) -> float: ...

    @property
    def vcpus(self) -> float | None: ...

    @property
    def ram_gb(self) -> float | None: ...

    @property
    def spot(self) -> bool: ...

    @property
    def price_per_hour(self) -> float: ...

    @property
    def available_instances(self) -> int | None: ...

    @property
    def reliability(self) -> float | None: ...


class OfferFields(QuoteFields, Protocol):
    """What a solve reads of an offer (read-only): an ``Offer`` row, or the plain row that
    ``offers_for_problem`` gives."""

    @property
    def interruption_rate_per_hour(self) -> float | None: ...


_PROBLEM_COLUMNS = tuple(name for cls in (QuoteFields, OfferFields) for name, attr in vars(cls).items()
                         if isinstance(attr, property))


def offers_for_problem(session: Session, *, filters: OfferFilter) -> Sequence[OfferFields]:
    """The offers a solve considers, as plain read-only rows with ``OfferFields``' columns as
    attributes: building an ORM instance per offer cost 0.17 s of the 0.43 s an optimize job spent
    loading 3,956 offers (measured in process; more in a fresh work horse), and the columns a solve
    does not read (the two timestamps need a conversion per row, the raw GPU name, capacity) are
    not fetched."""
    table = Offer.__table__.c
    stmt = _filtered(filters).order_by(Offer.offer_key).with_only_columns(*(table[c] for c in _PROBLEM_COLUMNS))
    return cast(Sequence[OfferFields], session.execute(stmt).all())


def newest_observation(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Offer.observed_at)))


def gpu_price_groups(session: Session, *, max_age: timedelta | None = None) -> list[dict[str, Any]]:
    """Per (GPU model, provider, spot): offers, the cheapest USD per GPU-hour and the newest price."""
    stmt = select(
        Offer.gpu_model, Offer.provider, Offer.spot,
        func.count().label("offers"),
        func.min(Offer.price_per_gpu_hour).label("min_price_per_gpu_hour"),
        func.max(Offer.observed_at).label("newest"),
    ).group_by(Offer.gpu_model, Offer.provider, Offer.spot)
    if max_age is not None:
        stmt = stmt.where(Offer.observed_at >= utcnow() - max_age)
    return [dict(row) for row in session.execute(stmt).mappings()]
