"""Provider-specific normalization and paging against the recorded responses."""

from __future__ import annotations

import json

import pytest

from ingestion.errors import ProviderAuthError
from tests.ingestion.conftest import FakeSleep, ReplayServer, Reply, recorded
from tests.ingestion.provider_cases import BY_KEY


def _fetch(key: str, server: ReplayServer, sleeps: FakeSleep):  # type: ignore[no-untyped-def]
    case = BY_KEY[key]
    case.install(server)
    return case.build(server, sleeps, True).fetch()


def test_lambda_regions_capacity_and_unknown_gpu(server: ReplayServer, sleeps: FakeSleep) -> None:
    quotes = _fetch("lambda", server, sleeps)
    h100 = sorted((q.region, q.capacity) for q in quotes if q.instance_type == "gpu_1x_h100_sxm5")
    assert h100 == [("us-east-1", "available"), ("us-west-1", "available")]
    a100 = [q for q in quotes if q.instance_type == "gpu_8x_a100_80gb_sxm4"]
    assert [(q.region, q.capacity, q.gpu_model, q.gpu_count, q.price_per_hour) for q in a100] == [
        ("", "unavailable", "A100 80GB SXM", 8, 14.32)
    ]
    unknown = next(q for q in quotes if q.instance_type == "gpu_4x_zx900")
    assert not unknown.gpu_model_known and unknown.gpu_model == "ZX900 (64 GB)" and unknown.gpu_count == 4
    request = server.seen("/instance-types")[0]
    assert request.headers["Authorization"] == "Bearer secret_lambda_key"


def test_vast_offers(server: ReplayServer, sleeps: FakeSleep) -> None:
    quotes = _fetch("vast", server, sleeps)
    body = server.seen("/bundles/")[0].json()
    assert body["rentable"] == {"eq": True} and body["limit"] == 64
    assert server.seen("/bundles/")[0].headers["Authorization"] == "Bearer vast-key-123"
    rtx = [q for q in quotes if q.gpu_model == "RTX 4090"]
    assert sorted((q.spot, q.price_per_hour) for q in rtx) == [(False, 0.3127), (True, 0.18)]
    od = next(q for q in rtx if not q.spot)
    assert (od.region, od.reliability, od.perf_score, od.capacity, od.vcpus) == ("Oregon, US", 0.9961, 74.82, "available", 16.0)
    assert od.ram_gb == pytest.approx(62.7, abs=0.1)
    h100 = next(q for q in quotes if q.gpu_model == "H100 SXM" and not q.spot)
    assert h100.gpu_count == 8 and h100.price_per_gpu_hour == pytest.approx(14.94 / 8)
    odd = [q for q in quotes if q.gpu_model_raw == "RTX 5060"]
    assert len(odd) == 1 and not odd[0].gpu_model_known and odd[0].vram_gb == pytest.approx(8.0, abs=0.1)


def test_runpod_gpu_types(server: ReplayServer, sleeps: FakeSleep) -> None:
    quotes = _fetch("runpod", server, sleeps)
    sent = server.seen("/graphql")[0]
    assert sent.query["api_key"] == ["rpa_TESTKEY"] and "gpuTypes" in sent.json()["query"]
    rtx = {(q.instance_type, q.spot): q.price_per_hour for q in quotes if q.gpu_model == "RTX 4090"}
    assert rtx == {
        ("NVIDIA GeForce RTX 4090 [secure]", False): 0.69,
        ("NVIDIA GeForce RTX 4090 [secure]", True): 0.35,
        ("NVIDIA GeForce RTX 4090 [community]", False): 0.34,
        ("NVIDIA GeForce RTX 4090 [community]", True): 0.2,
    }
    h100 = [q for q in quotes if q.gpu_model == "H100 SXM"]
    assert {q.capacity for q in h100} == {"low"} and len(h100) == 2  # community cloud not offered
    pro = [q for q in quotes if q.gpu_model_raw == "NVIDIA RTX PRO 4500 Blackwell"]
    assert len(pro) == 1 and pro[0].capacity == "unavailable" and not pro[0].gpu_model_known


def test_runpod_graphql_error_with_200_is_auth_failure(server: ReplayServer, sleeps: FakeSleep) -> None:
    case = BY_KEY["runpod"]
    server.add("POST", "/graphql", Reply(200, recorded("runpod/error_unauthorized.json")))
    with pytest.raises(ProviderAuthError):
        case.build(server, sleeps, True).fetch()


def test_tensordock_prices_from_parts(server: ReplayServer, sleeps: FakeSleep) -> None:
    quotes = _fetch("tensordock", server, sleeps)
    rtx = sorted((q for q in quotes if q.gpu_model == "RTX 4090"), key=lambda q: q.gpu_count)
    assert [q.gpu_count for q in rtx] == [1, 4]
    assert rtx[0].price_per_hour == pytest.approx(0.35 + 8 * 0.003 + 32 * 0.002 + 100 * 0.00005)
    assert rtx[1].price_per_hour == pytest.approx(4 * 0.35 + 32 * 0.003 + 128 * 0.002 + 100 * 0.00005)
    assert rtx[0].region == "United States-Illinois-Chicago" and rtx[0].available_instances == 4
    a100 = next(q for q in quotes if q.gpu_model == "A100 80GB PCIe")
    assert a100.ram_gb == 16  # capped by what the node has free
    assert not any(q.gpu_model == "L40" for q in quotes)  # none free


def test_azure_pages_and_meter_filtering(server: ReplayServer, sleeps: FakeSleep) -> None:
    quotes = _fetch("azure", server, sleeps)
    got = {(q.instance_type, q.region, q.spot): q.price_per_hour for q in quotes}
    assert got == {
        ("Standard_ND96isr_H100_v5", "eastus", False): 98.32,
        ("Standard_ND96isr_H100_v5", "eastus", True): 39.328,
        ("Standard_ND96isr_H100_v5", "westeurope", False): 109.12,  # page 2, latest effectiveStartDate
        ("Standard_NC24ads_A100_v4", "eastus", False): 3.673,
        ("Standard_NC24ads_A100_v4", "eastus", True): 0.6611,
    }
    a100 = next(q for q in quotes if q.instance_type == "Standard_NC24ads_A100_v4")
    assert (a100.gpu_model, a100.gpu_count, a100.vcpus) == ("A100 80GB PCIe", 1, 24.0)
    seen = server.seen("/api/retail/prices")
    assert len(seen) == 3
    assert seen[0].query["api-version"] == ["2023-01-01-preview"]
    assert "armSkuName eq 'Standard_ND96isr_H100_v5'" in seen[0].query["$filter"][0]
    assert seen[1].query["$skip"] == ["100"]  # followed NextPageLink


def test_gcp_combines_parts_across_pages(server: ReplayServer, sleeps: FakeSleep) -> None:
    quotes = _fetch("gcp", server, sleeps)
    seen = server.seen("/services/6F81-5844-456A/skus")
    assert len(seen) == 2 and "pageToken" not in seen[0].query
    assert seen[1].query["pageToken"] == ["CiQxOTcwLTAxLTAxVDAwOjAwOjAwWg"]
    assert seen[0].query["key"] == ["AIzaTESTKEY"] and seen[0].query["currencyCode"] == ["USD"]
    by = {(q.instance_type, q.spot): q for q in quotes}
    assert {t for t, s in by if not s} == {"a3-highgpu-1g", "a3-highgpu-2g", "a3-highgpu-4g", "a3-highgpu-8g",
                                           "n1-standard-4+1xnvidia-tesla-t4", "n1-standard-8+1xnvidia-tesla-t4",
                                           "n1-standard-16+4xnvidia-tesla-t4"}
    assert {t for t, s in by if s} == {"a3-highgpu-1g", "a3-highgpu-2g", "a3-highgpu-4g", "a3-highgpu-8g"}
    t4 = by[("n1-standard-16+4xnvidia-tesla-t4", False)]
    assert (t4.gpu_model, t4.gpu_count) == ("T4", 4)
    assert t4.price_per_hour == pytest.approx(4 * 0.35 + 16 * 0.031611 + 60 * 0.004237, rel=1e-6)
    a3 = by[("a3-highgpu-8g", False)]
    assert a3.price_per_hour == pytest.approx(8 * 9.79655057 + 208 * 0.02290217 + 1872 * 0.00306911, rel=1e-6)
    assert (a3.gpu_model, a3.region, a3.vcpus, a3.ram_gb) == ("H100 SXM", "us-central1", 208.0, 1872.0)
    spot = by[("a3-highgpu-1g", True)]
    assert spot.price_per_hour == pytest.approx(2.25 + 26 * 0.00524 + 234 * 0.0007, rel=1e-6)


def test_gcp_invalid_key_400_is_auth_failure(server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add("GET", "/services/6F81-5844-456A/skus", Reply(400, recorded("gcp/error_invalid_key.json")))
    with pytest.raises(ProviderAuthError) as info:
        BY_KEY["gcp"].build(server, sleeps, True).fetch()
    assert "AIzaTESTKEY" not in str(info.value) and "REDACTED" in info.value.url


def test_gcp_429_resource_exhausted_body(server: ReplayServer, sleeps: FakeSleep) -> None:
    case = BY_KEY["gcp"]
    case.install(server, before=[Reply(429, recorded("gcp/error_rate_limited.json"), headers={"Retry-After": "2"})])
    assert len(case.build(server, sleeps, True).fetch()) == case.expected_quotes
    assert sleeps.calls == [2.0]


def test_recorded_bodies_are_valid_json() -> None:
    from tests.ingestion.conftest import RECORDED

    for path in RECORDED.rglob("*.json"):
        json.loads(path.read_text())
