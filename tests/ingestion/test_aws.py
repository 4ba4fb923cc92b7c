"""AWS: Price List bulk files (httpx) and DescribeSpotPriceHistory through real boto3 over a socket."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr

from ingestion.errors import (
    MalformedResponse,
    MissingCredentials,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from ingestion.providers.aws import AwsConfig, AwsProvider
from tests.ingestion.conftest import FIXED_NOW, FakeSleep, ReplayServer, Reply, recorded
from tests.ingestion.provider_cases import AWS_OFFER, AWS_OFFER_CSV, RETRY, common, ok

XML = "text/xml;charset=UTF-8"


def _provider(server: ReplayServer, sleeps: FakeSleep, *, spot: bool = True, fmt: str = "csv") -> AwsProvider:
    return AwsProvider(
        config=AwsConfig(
            regions=("us-east-1",),
            offer_format=fmt,
            include_spot=spot,
            aws_access_key_id=SecretStr("AKIDEXAMPLE"),
            aws_secret_access_key=SecretStr("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            ec2_endpoint_url=server.url,
            instance_types=("p5.48xlarge", "g5.xlarge", "g4dn.xlarge"),
            **common(server, sleeps),
        )
    )


def _install_price_list(server: ReplayServer) -> None:
    server.add("GET", "/offers/v1.0/aws/AmazonEC2/current/region_index.json", ok(recorded("aws/region_index.json")))
    server.add("GET", AWS_OFFER, ok(recorded("aws/offer_us-east-1.json")))
    server.add("GET", AWS_OFFER_CSV, Reply(200, recorded("aws/offer_us-east-1.csv"), content_type="text/csv"))


def _spot(*replies: Reply) -> list[Reply]:
    return list(replies) + [Reply(200, recorded("aws/spot_page1.xml"), content_type=XML),
                            Reply(200, recorded("aws/spot_page2.xml"), content_type=XML)]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_on_demand_filters_and_prices(server: ReplayServer, sleeps: FakeSleep, fmt: str) -> None:
    _install_price_list(server)
    quotes = _provider(server, sleeps, spot=False, fmt=fmt).fetch()
    assert [r.path for r in server.requests][-1].endswith(f"index.{fmt}")
    by_type = {q.instance_type: q for q in quotes}
    assert set(by_type) == {"p5.48xlarge", "g5.xlarge"}  # Windows, reservation and non-GPU rows dropped
    p5 = by_type["p5.48xlarge"]
    assert (p5.gpu_model, p5.gpu_count, p5.vcpus, p5.ram_gb, p5.price_per_hour) == ("H100 SXM", 8, 192.0, 2048.0, 55.04)
    assert p5.price_per_gpu_hour == pytest.approx(6.88)
    assert not p5.spot and p5.region == "us-east-1" and p5.zone == ""
    assert by_type["g5.xlarge"].gpu_model == "A10G"


def test_spot_pages_and_keeps_latest_price_per_zone(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    server.add("POST", "/", *_spot())
    quotes = [q for q in _provider(server, sleeps).fetch() if q.spot]
    by_key = {(q.instance_type, q.zone): q for q in quotes}
    assert set(by_key) == {("p5.48xlarge", "us-east-1a"), ("g5.xlarge", "us-east-1b"), ("g4dn.xlarge", "us-east-1c")}
    assert by_key[("p5.48xlarge", "us-east-1a")].price_per_hour == 29.11  # the later of two prices
    g4 = by_key[("g4dn.xlarge", "us-east-1c")]
    assert (g4.gpu_model, g4.gpu_count, g4.vcpus) == ("T4", 1, 4.0)  # sized from the table, not the price list
    assert all(q.observed_at == FIXED_NOW for q in quotes)
    calls = [parse_qs(r.body.decode()) for r in server.seen("/")]
    assert len(calls) == 2
    assert calls[0]["Action"] == ["DescribeSpotPriceHistory"] and "NextToken" not in calls[0]
    assert calls[1]["NextToken"] == ["eyJ2IjoiMiIsImMiOiJ0b2tlbjIifQ=="]
    assert calls[0]["ProductDescription.1"] == ["Linux/UNIX"]
    assert "AWS4-HMAC-SHA256" in server.seen("/")[0].headers["Authorization"]


def test_spot_throttling_is_retried(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    limited = Reply(503, recorded("aws/error_request_limit.xml"), content_type=XML)
    server.add("POST", "/", *_spot(limited))
    quotes = _provider(server, sleeps).fetch()
    assert len([q for q in quotes if q.spot]) == 3
    assert len(sleeps.calls) == 1 and 1.0 <= sleeps.calls[0] <= 1.0 + RETRY.jitter_s


def test_spot_throttling_honours_retry_after_header(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    limited = Reply(503, recorded("aws/error_request_limit.xml"), headers={"Retry-After": "4"}, content_type=XML)
    server.add("POST", "/", *_spot(limited))
    _provider(server, sleeps).fetch()
    assert sleeps.calls == [4.0]


def test_spot_throttled_forever(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    server.add("POST", "/", Reply(503, recorded("aws/error_request_limit.xml"), content_type=XML))
    with pytest.raises(ProviderRateLimited) as info:
        _provider(server, sleeps).fetch()
    assert info.value.__cause__ is not None
    assert len(server.seen("/")) == RETRY.max_attempts


def test_spot_5xx_then_success(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    server.add("POST", "/", *_spot(Reply(500, recorded("aws/error_internal.xml"), content_type=XML)))
    assert len(_provider(server, sleeps).fetch()) == 5
    assert len(sleeps.calls) == 1


def test_spot_5xx_forever(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    server.add("POST", "/", Reply(500, recorded("aws/error_internal.xml"), content_type=XML))
    with pytest.raises(ProviderUnavailable):
        _provider(server, sleeps).fetch()


def test_spot_auth_failure(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    server.add("POST", "/", Reply(401, recorded("aws/error_auth_failure.xml"), content_type=XML))
    with pytest.raises(ProviderAuthError) as info:
        _provider(server, sleeps).fetch()
    assert "AuthFailure" in str(info.value) and "EXAMPLEKEY" not in str(info.value)
    assert len(server.seen("/")) == 1 and sleeps.calls == []


def test_spot_malformed_xml(server: ReplayServer, sleeps: FakeSleep) -> None:
    _install_price_list(server)
    server.add("POST", "/", Reply(200, "<DescribeSpotPriceHistoryResponse><spotPriceHistorySet><item>", content_type=XML))
    with pytest.raises(MalformedResponse):
        _provider(server, sleeps).fetch()


def test_spot_without_credentials_is_refused() -> None:
    with pytest.raises(MissingCredentials, match="include_spot=False"):
        AwsProvider(config=AwsConfig())
    assert AwsProvider(config=AwsConfig(include_spot=False)).config.include_spot is False


def test_offer_csv_without_expected_columns(server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add("GET", "/offers/v1.0/aws/AmazonEC2/current/region_index.json", ok(recorded("aws/region_index.json")))
    server.add("GET", AWS_OFFER_CSV, Reply(200, "a\nb\nc\nd\ne\n\"SKU\",\"Price\"\n\"X\",\"1\"\n", content_type="text/csv"))
    with pytest.raises(MalformedResponse, match="lacks columns"):
        _provider(server, sleeps, spot=False).fetch()


def test_offer_csv_stream_retries_opening(server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add("GET", "/offers/v1.0/aws/AmazonEC2/current/region_index.json", ok(recorded("aws/region_index.json")))
    server.add("GET", AWS_OFFER_CSV, Reply(503, "busy", headers={"Retry-After": "5"}),
               Reply(200, recorded("aws/offer_us-east-1.csv"), content_type="text/csv"))
    assert len(_provider(server, sleeps, spot=False).fetch()) == 2
    assert sleeps.calls == [5.0]
