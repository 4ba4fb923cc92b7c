"""The generator's workloads over the real catalogs (the bench's ``real-*`` cases)."""

from __future__ import annotations

from pathlib import Path

from cloudarb.optimize.offers import shared_catalog_offers
from optimizer import SolveConfig, solve
from optimizer.synthetic import generate_on_offers
from optimizer.validate import validate


def test_generated_workloads_over_the_real_catalogs_solve_and_validate(shared_data: Path) -> None:
    offers = shared_catalog_offers(shared_data / "prices")
    p = generate_on_offers(offers, 20, seed=3)
    regions = {o.region for o in offers}
    restricted = [w for w in p.workloads if w.allowed_regions]
    assert restricted, "the seed draws data-residency workloads"
    for w in restricted:  # mapped onto the catalog's own European regions, which exist
        assert w.allowed_regions and set(w.allowed_regions) <= regions
        assert all(r.lower().startswith(("eu", "europe")) for r in w.allowed_regions)
    assert p.budget_per_hour is not None and p.default_available_instances == 4
    sol = solve(p, SolveConfig(time_limit_s=20, compute_baselines=False, isolate="never"))
    assert sol.status in ("optimal", "feasible") and validate(p, sol) == []
    assert sol.totals is not None and sol.totals.cost_per_hour <= p.budget_per_hour + 1e-6
    assert sol.stats.gap is not None and sol.stats.gap < 0.01
