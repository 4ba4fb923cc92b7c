"""``cloudarb.optimize.offers.to_offer`` builds offers of checked quotes without validating them again:
the offers it makes must equal pydantic-validated ones field for field (values and their types, the
fields set, the JSON), on every offer of the bundled snapshot, as quotes and as stored rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import pytest
from pydantic import ValidationError

from cloudarb.bootstrap import snapshot_path
from cloudarb.db.engine import Database
from cloudarb.db.models import Base
from cloudarb.ingest import catalog_import
from cloudarb.optimize.offers import QuoteFields, to_offer
from cloudarb.storage.offers import OfferFilter, offers_for_problem
from ingestion.catalog_result import CatalogLoad
from optimizer.schemas import CapacityKind, Offer


@pytest.fixture(scope="module")
def snapshot() -> CatalogLoad:
    return catalog_import.load(snapshot_path(), fmt=catalog_import.SNAPSHOT_FORMAT)


@pytest.fixture(scope="module")
def stored_rows(snapshot: CatalogLoad, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        Sequence[QuoteFields]]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('offers') / 'store.db'}")
    Base.metadata.create_all(db.engine)
    with db.session() as session:
        catalog_import.store(session, snapshot)
    with db.session() as session:
        rows = offers_for_problem(session, filters=OfferFilter())
    yield rows
    db.engine.dispose()


def assert_same(made: Offer, validated: Offer) -> None:
    assert made == validated
    assert list(made.__dict__) == list(validated.__dict__)
    for name, value in validated.__dict__.items():
        assert made.__dict__[name] == value, name
        assert type(made.__dict__[name]) is type(value), name
    assert made.model_fields_set == validated.model_fields_set
    assert made.model_dump_json() == validated.model_dump_json()
    assert made.__pydantic_extra__ is validated.__pydantic_extra__ is None
    assert made.__pydantic_private__ is validated.__pydantic_private__ is None


def test_snapshot_quotes_make_the_offers_validation_makes(snapshot: CatalogLoad) -> None:
    assert len(snapshot.offers) == 3956
    for quote in snapshot.offers:
        assert_same(to_offer(quote), to_offer(quote, validate=True))


def test_stored_rows_make_the_offers_validation_makes(stored_rows: Sequence[QuoteFields]) -> None:
    assert len(stored_rows) == 3956
    kinds: dict[str, CapacityKind] = {"aws": "listing", "vast": "pool"}
    for i, row in enumerate(stored_rows):
        rate = 0.02 * (i % 3) if i % 2 else None
        scenarios = [row.price_per_hour * 0.9, 0.0] if i % 2 else None
        periods = [row.price_per_hour] * 3 if i % 4 == 1 else None
        made = to_offer(row, capacity_kinds=kinds, interruption_rate=rate, price_scenarios=scenarios,
                        price_per_period=periods)
        validated = to_offer(row, capacity_kinds=kinds, interruption_rate=rate, price_scenarios=scenarios,
                             price_per_period=periods, validate=True)
        assert_same(made, validated)


@dataclass(frozen=True)
class Quote:
    offer_key: str = "k1"
    provider: str = "vast"
    seller: str | None = None
    region: str = "us"
    zone: str | None = None
    instance_type: str = "1x RTX 4090"
    gpu_model: str = "RTX 4090"
    gpu_count: int = 1
    vram_gb: float = 24.0
    vcpus: float | None = 16.0
    ram_gb: float | None = 64.0
    spot: bool = False
    price_per_hour: float = 0.4
    available_instances: int | None = None
    reliability: float | None = 0.98


def test_a_constructed_offer_behaves_as_a_validated_one() -> None:
    made = to_offer(Quote())
    assert made.capacity_kind == "listing" and made.price_per_gpu_hour == pytest.approx(0.4)
    with pytest.raises(ValidationError):
        made.price_per_hour = 1.0  # type: ignore[misc]  # frozen, as validated offers are
    assert made.model_copy(update={"price_per_hour": 0.5}).price_per_hour == 0.5
    assert Offer.model_validate(made.model_dump()) == made
    assert hash(made) == hash(to_offer(Quote(), validate=True))


@pytest.mark.parametrize("figures, field", [
    ({"price_scenarios": [0.4, -0.1]}, "price_scenarios"),
    ({"price_per_period": [float("nan")]}, "price_per_period"),
    ({"interruption_rate": -1.0}, "interruption_rate_per_hour"),
])
def test_forecast_figures_out_of_range_are_refused_naming_the_field(figures: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        to_offer(Quote(), **figures)  # type: ignore[arg-type]
    assert caught.value.errors()[0]["loc"][0] == field


def test_validate_refuses_a_quote_that_breaks_the_offer_rules() -> None:
    with pytest.raises(ValidationError) as caught:
        to_offer(replace(Quote(), gpu_count=0), validate=True)
    assert caught.value.errors()[0]["loc"] == ("gpus_per_instance",)
