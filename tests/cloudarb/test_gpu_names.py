"""GPU names as people type them, through the API (/offers, /gpus, /optimize), sellers inside a
marketplace, and the optimizer fields the application fills (capacity kinds, sellers, data sheets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from cloudarb.context import Context
from cloudarb.gpu_names import UnknownGpu, resolve_workload, select
from cloudarb.optimize.capacity import capacity_kind
from cloudarb.optimize.problem import build_problem
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage import offers as offer_store
from ingestion.schemas import PriceQuote
from optimizer.schemas import Workload
from tests.support import Tenant, small_request

A100S = {"A100 80GB SXM", "A100 80GB PCIe", "A100 40GB SXM", "A100 40GB PCIe"}


def offer_models(client: TestClient, tenant: Tenant, **params: object) -> tuple[set[str], dict[str, object]]:
    r = client.get("/offers", params={"limit": 500, **params}, headers=tenant.headers("viewer"))
    assert r.status_code == 200, r.text
    page = r.json()
    return {o["gpu_model"] for o in page["items"]}, page


@pytest.mark.parametrize("text,expected", [
    ("a100", A100S),
    ("A100", A100S),
    ("A100-80GB", {"A100 80GB SXM", "A100 80GB PCIe"}),
    ("a100 80gb", {"A100 80GB SXM", "A100 80GB PCIe"}),
    ("h100_sxm", {"H100 SXM"}),
    ("h100", {"H100 SXM", "H100 PCIe", "H100 NVL"}),
    ("V100", {"V100 16GB", "V100 32GB"}),
])
def test_offers_filter_resolves_names(client: TestClient, tenant: Tenant, text: str, expected: set[str]) -> None:
    models, page = offer_models(client, tenant, gpu_type=text)
    assert page["total"] > 0, f"{text!r} finds offers"
    assert models <= expected and models, models


def test_offers_filter_count_means_gpus_per_instance(client: TestClient, tenant: Tenant) -> None:
    r = client.get("/offers", params={"gpu_type": "H100:8", "limit": 200}, headers=tenant.headers("viewer"))
    items = r.json()["items"]
    assert items and all(o["gpu_count"] >= 8 and o["gpu_model"].startswith("H100") for o in items)


def test_unknown_gpu_name_is_a_422_with_the_closest_names(client: TestClient, tenant: Tenant) -> None:
    r = client.get("/offers", params={"gpu_type": "h1000"}, headers=tenant.headers("viewer"))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "gpu_type" and err["code"] == "unknown_gpu"
    assert "H100" in err["details"][0]["suggestions"]
    body = small_request()
    body["workloads"][0]["allowed_gpu_models"] = ["H100 SXM", "RTX 9999"]
    r = client.post("/optimize", json=body, headers=tenant.headers())
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "workloads.0.allowed_gpu_models.1"


def test_optimize_request_names_are_stored_canonical(client: TestClient, tenant: Tenant) -> None:
    body = small_request()
    body["workloads"][0]["allowed_gpu_models"] = ["h100_sxm", "A100-80GB"]
    body["workloads"][1]["allowed_gpu_models"] = ["L4:1"]
    r = client.post("/optimize", json=body, headers=tenant.headers())
    assert r.status_code == 202, r.text
    opt = client.get(f"/optimize/{r.json()['id']}", headers=tenant.headers()).json()
    train, serve = opt["request"]["workloads"]
    assert train["allowed_gpu_models"] == ["H100 SXM", "A100 80GB SXM", "A100 80GB PCIe"]
    assert serve["allowed_gpu_models"] == ["L4"]


def test_selection_rules() -> None:
    assert select(["H100:8", "h200"], field="g").gpus_per_instance == 8
    with pytest.raises(UnknownGpu) as err:
        select(["a100", "zz999"], field="gpus")
    assert err.value.field == "gpus.1"
    with pytest.raises(Exception, match="different GPU counts"):
        select(["H100:8", "H100:4"], field="g")
    w = resolve_workload(Workload(id="w", gpus_min=16, allowed_gpu_models=["8x H100"]), field="workloads.0")
    assert w.gpus_per_node == 8 and w.allowed_gpu_models == ["H100 SXM", "H100 PCIe", "H100 NVL"]


def test_gpus_lists_models_with_providers_and_cheapest_prices(client: TestClient, tenant: Tenant) -> None:
    r = client.get("/gpus", headers=tenant.headers("viewer"))
    assert r.status_code == 200, r.text
    listing = r.json()
    by_name = {g["name"]: g for g in listing["items"]}
    h100 = by_name["H100 SXM"]
    assert h100["memory_gb"] == 80 and {"aws", "gcp", "lambda"} <= set(h100["providers"])
    assert h100["on_demand"]["price_per_gpu_hour"] > 0 and h100["spot"]["price_per_gpu_hour"] > 0
    assert h100["spot"]["age_s"] > 86_400
    cheapest = client.get("/offers", params={"gpu_type": "H100 SXM", "spot": False, "limit": 1},
                          headers=tenant.headers("viewer")).json()["items"][0]
    assert h100["on_demand"]["price_per_gpu_hour"] == pytest.approx(cheapest["price_per_gpu_hour"])
    assert all(g["offers"] > 0 for g in listing["items"]), "without all=true only models on offer"
    assert "days old" in listing["stale_prices"]
    one = client.get("/gpus", params={"gpu_type": "a100"}, headers=tenant.headers("viewer")).json()
    assert {g["name"] for g in one["items"]} == A100S
    everything = client.get("/gpus", params={"all": True}, headers=tenant.headers("viewer")).json()
    assert len(everything["items"]) > len(listing["items"])
    assert client.get("/gpus", params={"gpu_type": "nope"}, headers=tenant.headers("viewer")).status_code == 422


@pytest.fixture()
def market(ctx: Context) -> None:
    """Two sellers inside one marketplace, priced now."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    quotes = [
        PriceQuote(provider="shadeform", seller=seller, region="us-east", instance_type=f"{seller}_H100x8",
                   gpu_model="H100 SXM", gpu_count=8, vram_gb=80, price_per_hour=price, observed_at=now)
        for seller, price in (("lambdalabs", 16.0), ("hyperstack", 15.0))
    ]
    with ctx.db.session() as session:
        offer_store.upsert_quotes(session, quotes)


def test_offers_filter_by_seller(client: TestClient, tenant: Tenant, market: None) -> None:
    h = tenant.headers("viewer")
    everyone = client.get("/offers", params={"provider": "shadeform"}, headers=h).json()
    assert {o["seller"] for o in everyone["items"]} == {"lambdalabs", "hyperstack"}
    one = client.get("/offers", params={"provider": "shadeform:lambdalabs"}, headers=h).json()
    assert [o["seller"] for o in one["items"]] == ["lambdalabs"]
    mixed = client.get("/offers", params={"provider": ["shadeform:hyperstack", "lambda"], "limit": 500}, headers=h).json()
    assert {o["provider"] for o in mixed["items"]} == {"shadeform", "lambda"}
    assert all(o["seller"] == "hyperstack" for o in mixed["items"] if o["provider"] == "shadeform")
    assert mixed["stale_prices"] is None, "a price five minutes old is not stale"


def test_denying_one_seller_keeps_the_other(ctx: Context, market: None) -> None:
    req = OptimizeRequest.model_validate({"workloads": [
        {"id": "w", "gpus_min": 8, "gpus_per_node": 8, "allowed_providers": ["shadeform"],
         "denied_providers": ["shadeform:hyperstack"]}]})
    with ctx.db.session() as session:
        rows = offer_store.offers_for_problem(session, filters=offer_store.OfferFilter(providers=["shadeform"]))
        problem = build_problem(req, rows, settings=ctx.settings)
    w = problem.workloads[0]
    assert w.allowed_providers is not None
    assert set(w.allowed_providers) == {"shadeform", "shadeform:lambdalabs", "shadeform:hyperstack"}
    assert w.denied_providers == ["shadeform:hyperstack"]
    assert {o.provider for o in problem.offers} == {"shadeform:lambdalabs", "shadeform:hyperstack"}
    assert {o.seller for o in problem.offers} == {"lambdalabs", "hyperstack"}
    import optimizer

    solution = optimizer.solve(problem)
    assert solution.status in ("optimal", "feasible")
    assert {a.provider for a in solution.allocations} == {"shadeform:lambdalabs"}


def test_problem_fields_from_offers_and_settings(ctx: Context) -> None:
    req = OptimizeRequest.model_validate({**small_request(), "pareto_points": 2})
    with ctx.db.session() as session:
        rows = offer_store.offers_for_problem(session, filters=offer_store.OfferFilter(providers=["vast", "gcp"]))
        problem = build_problem(req, rows, settings=ctx.settings.model_copy(
            update={"offer_default_available_instances": 4, "offer_capacity_kinds": {"gcp": "listing"}}))
    kinds = {o.provider: o.capacity_kind for o in problem.offers}
    assert kinds == {"vast": "listing", "gcp": "listing"}
    assert problem.default_available_instances == 4 and problem.pareto_points == 2
    assert problem.gpu_figures["H100 SXM"].fp16_tflops == 989
    assert any(o.zone is None for o in problem.offers) and all(o.seller is None for o in problem.offers)
    assert capacity_kind("aws") == "pool" and capacity_kind("local") == "listing"
    assert capacity_kind("newcloud") == "pool"


def test_policy_requests_resolve_names_when_saved(client: TestClient, tenant: Tenant) -> None:
    body = {"name": "nightly", "interval_s": 3600, "enabled": False, "request": small_request()}
    body["request"]["workloads"][0]["allowed_gpu_models"] = ["h100_sxm"]
    r = client.post("/policies", json=body, headers=tenant.headers())
    assert r.status_code == 201, r.text
    assert r.json()["request"]["workloads"][0]["allowed_gpu_models"] == ["H100 SXM"]
    body["request"]["workloads"][0]["allowed_gpu_models"] = ["h1000"]
    r = client.post("/policies", json=body, headers=tenant.headers())
    assert r.status_code == 422 and r.json()["error"]["field"] == "workloads.0.allowed_gpu_models"
