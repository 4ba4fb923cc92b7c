"""AWS EC2: on-demand prices from the Price List bulk files, spot prices per availability zone.

On-demand follows the AWS Price List Bulk API (https://docs.aws.amazon.com/awsaccountbilling/
latest/aboutv2/using-the-aws-price-list-bulk-api.html), offer file format v1.0:
``GET https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/region_index.json``
-> ``{"regions": {<code>: {"regionCode", "currentVersionUrl"}}}``, then each wanted region's
``currentVersionUrl``. Public, unauthenticated. Regional EC2 offer files are large (hundreds of
MB), so by default the CSV rendition of the same version (``.../index.csv``: five metadata lines,
then one row per price dimension with columns "TermType", "Unit", "PricePerUnit", "Currency",
"Product Family", "Instance Type", "vCPU", "Memory", "GPU", "Operating System", "Tenancy",
"Pre Installed S/W", "CapacityStatus") is streamed line by line in constant memory.
``offer_format="json"`` reads the JSON offer file instead (``products[sku] = {productFamily,
attributes: {instanceType, vcpu, memory "2048 GiB", gpu, operatingSystem, tenancy, preInstalledSw,
capacitystatus}}``, ``terms.OnDemand[sku][offerTermCode].priceDimensions[rateCode] = {unit: "Hrs",
pricePerUnit: {"USD": "98.3200000000"}}``), whole. Either way only Linux, shared tenancy, no
pre-installed software, capacitystatus "Used" rows of GPU families are kept.

Spot follows EC2 ``DescribeSpotPriceHistory`` (API version 2016-11-15) through boto3, with
``ProductDescriptions=["Linux/UNIX"]``, ``StartTime=now`` (so each (type, zone) answers its current
price) and ``NextToken`` paging. Signed requests need AWS credentials: without them the provider
raises MissingCredentials unless ``include_spot=False``. botocore's own retries are switched off;
throttling (RequestLimitExceeded, 503) and 5xx go through the shared retry policy instead.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ingestion.errors import (
    MalformedResponse,
    MissingCredentials,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from ingestion.gpus import GpuMatch, resolve_aws_instance
from ingestion.providers.aws_sizes import AWS_GPU_SIZES, AwsSize
from ingestion.providers.base import ProviderConfig, make_quote
from ingestion.providers.http import HttpClient, RetryableFailure, parse_retry_after, run_with_retries
from ingestion.schemas import PriceQuote

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

DEFAULT_BASE_URL = "https://pricing.us-east-1.amazonaws.com"
REGION_INDEX = "/offers/v1.0/aws/AmazonEC2/current/region_index.json"

_THROTTLED = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}
_AUTH = {"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
         "AccessDenied", "AccessDeniedException", "OptInRequired"}
_MEMORY = re.compile(r"([\d.,]+)\s*GiB")
_CSV_METADATA_LINES = 5
_CSV_COLUMNS = frozenset({"TermType", "Unit", "PricePerUnit", "Currency", "Product Family", "Instance Type",
                          "vCPU", "Memory", "GPU", "Operating System", "Tenancy", "Pre Installed S/W",
                          "CapacityStatus"})


class AwsConfig(ProviderConfig):
    """``base_url`` overrides the Price List host; ``ec2_endpoint_url`` the EC2 endpoint (tests)."""

    regions: tuple[str, ...] = Field(default=("us-east-1", "us-east-2", "us-west-2", "eu-west-1",
                                              "eu-central-1", "ap-northeast-1"))
    include_spot: bool = True
    offer_format: Literal["csv", "json"] = Field(default="csv", description="csv streams; json loads whole.")
    instance_types: tuple[str, ...] = Field(default=tuple(AWS_GPU_SIZES), description="For spot.")
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    ec2_endpoint_url: str | None = None


class _RegionEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    regionCode: str
    currentVersionUrl: str


class _RegionIndex(BaseModel):
    model_config = ConfigDict(extra="ignore")
    regions: dict[str, _RegionEntry]


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sku: str
    productFamily: str = ""
    attributes: dict[str, str]


class _Dimension(BaseModel):
    model_config = ConfigDict(extra="ignore")
    unit: str
    pricePerUnit: dict[str, str]


class _Term(BaseModel):
    model_config = ConfigDict(extra="ignore")
    priceDimensions: dict[str, _Dimension]


class _OfferFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    products: dict[str, _Product]
    terms: dict[str, dict[str, dict[str, _Term]]]


def _keep(product: _Product) -> bool:
    a = product.attributes
    return (
        product.productFamily == "Compute Instance"
        and a.get("operatingSystem") == "Linux"
        and a.get("tenancy") == "Shared"
        and a.get("preInstalledSw", "NA") == "NA"
        and a.get("capacitystatus", "Used") == "Used"
    )


class AwsProvider:
    """EC2 on-demand (Price List) + spot (DescribeSpotPriceHistory) -> quotes."""

    key: ClassVar[str] = "aws"
    config_class: ClassVar[type[ProviderConfig]] = AwsConfig

    def __init__(self, *, config: AwsConfig) -> None:
        self.config = config
        if config.include_spot and (config.aws_access_key_id is None or config.aws_secret_access_key is None):
            raise MissingCredentials(
                "aws: spot prices need aws_access_key_id/aws_secret_access_key (or set include_spot=False)",
                provider=self.key,
            )

    def fetch(self) -> list[PriceQuote]:
        now = self.config.clock()
        quotes, sizes = self.fetch_on_demand(now)
        if self.config.include_spot:
            for region in self.config.regions:
                quotes.extend(self.fetch_spot(region, now, sizes))
        return quotes

    # -- on-demand: Price List bulk files ------------------------------------------------------

    def fetch_on_demand(self, now: datetime) -> tuple[list[PriceQuote], dict[str, AwsSize]]:
        quotes: list[PriceQuote] = []
        sizes: dict[str, AwsSize] = {}
        with HttpClient(provider=self.key, config=self.config, default_base_url=DEFAULT_BASE_URL) as http:
            index = http.get_model(REGION_INDEX, _RegionIndex)
            for region in self.config.regions:
                entry = index.regions.get(region)
                if entry is None:
                    continue
                if self.config.offer_format == "json":
                    offer = http.get_model(entry.currentVersionUrl, _OfferFile)
                    quotes.extend(self._on_demand_quotes(region, offer, now, sizes))
                    continue
                csv_url = re.sub(r"\.json$", ".csv", entry.currentVersionUrl)
                with http.stream_lines(csv_url) as lines:
                    quotes.extend(self._csv_quotes(region, lines, now, sizes))
        return quotes, sizes

    def _csv_quotes(
        self, region: str, lines: Iterator[str], now: datetime, sizes: dict[str, AwsSize]
    ) -> list[PriceQuote]:
        for _ in range(_CSV_METADATA_LINES):
            next(lines, None)
        reader = csv.DictReader(lines)
        missing = _CSV_COLUMNS - set(reader.fieldnames or [])
        if missing:
            raise MalformedResponse(f"aws: offer CSV lacks columns {sorted(missing)}", provider=self.key)
        quotes: list[PriceQuote] = []
        for row in reader:
            if row["TermType"] != "OnDemand" or row["Unit"] != "Hrs" or row["Currency"] != "USD":
                continue
            match = resolve_aws_instance(row["Instance Type"])
            if match is None:
                continue
            attrs = {
                "operatingSystem": row["Operating System"], "tenancy": row["Tenancy"],
                "preInstalledSw": row["Pre Installed S/W"], "capacitystatus": row["CapacityStatus"],
                "gpu": row["GPU"], "vcpu": row["vCPU"], "memory": row["Memory"],
            }
            if not _keep(_Product(sku="", productFamily=row["Product Family"], attributes=attrs)):
                continue
            try:
                price = float(row["PricePerUnit"])
            except ValueError as exc:
                raise MalformedResponse(f"aws: bad price {row['PricePerUnit']!r}", provider=self.key) from exc
            size = self._size(row["Instance Type"], attrs)
            if price <= 0 or size is None:
                continue
            sizes[row["Instance Type"]] = size
            quotes.append(self._quote(region, "", row["Instance Type"], match, size, False, price, now))
        return quotes

    def _on_demand_quotes(
        self, region: str, offer: _OfferFile, now: datetime, sizes: dict[str, AwsSize]
    ) -> list[PriceQuote]:
        on_demand = offer.terms.get("OnDemand", {})
        quotes: list[PriceQuote] = []
        for sku, product in offer.products.items():
            itype = product.attributes.get("instanceType", "")
            match = resolve_aws_instance(itype)
            if match is None or not _keep(product):
                continue
            price = self._hourly_usd(on_demand.get(sku, {}))
            if price is None:
                continue
            size = self._size(itype, product.attributes)
            if size is None:
                continue
            sizes[itype] = size
            quotes.append(self._quote(region, "", itype, match, size, False, price, now))
        return quotes

    @staticmethod
    def _hourly_usd(terms: dict[str, _Term]) -> float | None:
        for term in terms.values():
            for dim in term.priceDimensions.values():
                if dim.unit == "Hrs" and "USD" in dim.pricePerUnit:
                    try:
                        value = float(dim.pricePerUnit["USD"])
                    except ValueError as exc:
                        raise MalformedResponse(f"aws: bad price {dim.pricePerUnit}", provider="aws") from exc
                    return value if value > 0 else None
        return None

    @staticmethod
    def _size(itype: str, attrs: dict[str, str]) -> AwsSize | None:
        known = AWS_GPU_SIZES.get(itype)
        try:
            gpus = int(attrs["gpu"]) if attrs.get("gpu", "").isdigit() else (known.gpus if known else 0)
            vcpus = int(attrs["vcpu"]) if attrs.get("vcpu", "").isdigit() else (known.vcpus if known else 0)
            mem = _MEMORY.search(attrs.get("memory", ""))
            ram = float(mem.group(1).replace(",", "")) if mem else (known.ram_gb if known else 0.0)
        except ValueError as exc:
            raise MalformedResponse(f"aws: bad attributes for {itype}: {attrs}", provider="aws") from exc
        return AwsSize(gpus, vcpus, ram) if gpus >= 1 else None

    def _quote(
        self, region: str, zone: str, itype: str, match: GpuMatch, size: AwsSize, spot: bool, price: float,
        now: datetime,
    ) -> PriceQuote:
        data: dict[str, Any] = dict(
            region=region,
            zone=zone,
            instance_type=itype,
            gpu_model=match.model,
            gpu_model_raw=match.raw,
            gpu_model_known=match.known,
            gpu_count=size.gpus,
            vram_gb=match.vram_gb,
            vcpus=float(size.vcpus),
            ram_gb=size.ram_gb,
            spot=spot,
            price_per_hour=price,
            observed_at=now,
        )
        return make_quote(self.key, data)

    # -- spot: DescribeSpotPriceHistory ----------------------------------------------------------

    def _ec2(self, region: str) -> EC2Client:
        import boto3  # heavy; only when spot prices are wanted
        from botocore.config import Config

        cfg = self.config
        if cfg.aws_access_key_id is None or cfg.aws_secret_access_key is None:
            raise MissingCredentials("aws: spot prices need AWS credentials", provider=self.key)
        return boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=cfg.ec2_endpoint_url,
            aws_access_key_id=cfg.aws_access_key_id.get_secret_value(),
            aws_secret_access_key=cfg.aws_secret_access_key.get_secret_value(),
            aws_session_token=cfg.aws_session_token.get_secret_value() if cfg.aws_session_token else None,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=cfg.timeout_s,
                read_timeout=cfg.timeout_s,
                user_agent_extra=cfg.user_agent,
            ),
        )

    def fetch_spot(self, region: str, now: datetime, sizes: dict[str, AwsSize]) -> list[PriceQuote]:
        client = self._ec2(region)
        latest: dict[tuple[str, str], tuple[datetime, float]] = {}
        token = ""
        while True:
            page = run_with_retries(functools.partial(self._spot_page, client, token, now), provider=self.key,
                                    config=self.config)
            for item in page.get("SpotPriceHistory", []):
                try:
                    key = (item["InstanceType"], item["AvailabilityZone"])
                    stamp, price = item["Timestamp"], float(item["SpotPrice"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise MalformedResponse(f"aws: bad spot price item {item}", provider=self.key) from exc
                if key not in latest or stamp > latest[key][0]:
                    latest[key] = (stamp, price)
            token = page.get("NextToken") or ""
            if not token:
                break
        quotes = []
        for (itype, zone), (_, price) in sorted(latest.items()):
            match = resolve_aws_instance(itype)
            size = sizes.get(itype) or AWS_GPU_SIZES.get(itype)
            if match is None or size is None or price <= 0:
                continue
            quotes.append(self._quote(region, zone, itype, match, size, True, price, now))
        return quotes

    def _spot_page(self, client: EC2Client, token: str, now: datetime) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError
        from botocore.parsers import ResponseParserError

        kwargs: dict[str, Any] = {
            "InstanceTypes": list(self.config.instance_types),
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": now,
            "MaxResults": 1000,
        }
        if token:
            kwargs["NextToken"] = token
        try:
            return dict(client.describe_spot_price_history(**kwargs))
        except ClientError as exc:
            raise self._translate(exc) from exc
        except ResponseParserError as exc:
            raise MalformedResponse(f"aws: unparseable EC2 answer: {exc}", provider=self.key) from exc
        except (ConnectionError, ReadTimeoutError) as exc:
            raise RetryableFailure(ProviderUnavailable(f"aws: {exc}", provider=self.key), None) from exc
        except BotoCoreError as exc:
            raise ProviderUnavailable(f"aws: {exc}", provider=self.key) from exc

    def _translate(self, exc: Any) -> Exception:
        """ClientError -> our error; throttling and 5xx come back wrapped as retryable."""
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code, status = str(err.get("Code", "")), int(meta.get("HTTPStatusCode", 0) or 0)
        message = f"aws: {code or status}: {err.get('Message', '')}"
        retry_after = parse_retry_after(meta.get("HTTPHeaders", {}).get("retry-after"), now=self.config.clock())
        error: ProviderError
        if code in _THROTTLED or status == 429:
            error = ProviderRateLimited(message, provider=self.key, status_code=status, retry_after_s=retry_after)
            return RetryableFailure(error, retry_after)
        if status >= 500 or code in {"InternalError", "Unavailable", "ServiceUnavailable"}:
            error = ProviderUnavailable(message, provider=self.key, status_code=status)
            return RetryableFailure(error, retry_after)
        if code in _AUTH or status in (401, 403):
            return ProviderAuthError(message, provider=self.key, status_code=status)
        return ProviderRequestRejected(message, provider=self.key, status_code=status)
