"""How to run each HTTP provider against the replay server: routes, recorded bodies, expectations.

Shared by the contract tests (every provider x success / 429 / 5xx / malformed / auth / missing
credentials) and by the provider-specific tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from ingestion.providers.aws import AwsConfig, AwsProvider
from ingestion.providers.azure import AzureConfig, AzureProvider
from ingestion.providers.base import PricingProvider, RetryPolicy
from ingestion.providers.gcp import GcpConfig, GcpProvider
from ingestion.providers.lambda_cloud import LambdaConfig, LambdaProvider
from ingestion.providers.runpod import RunPodConfig, RunPodProvider
from ingestion.providers.tensordock import TensorDockConfig, TensorDockProvider
from ingestion.providers.vast import VastConfig, VastProvider
from tests.ingestion.conftest import FIXED_NOW, FakeSleep, ReplayServer, Reply, recorded

RETRY = RetryPolicy(max_attempts=4, backoff_initial_s=1.0, backoff_max_s=8.0, jitter_s=0.25, max_retry_after_s=120)


def common(server: ReplayServer, sleeps: FakeSleep, **extra: Any) -> dict[str, Any]:
    return dict(base_url=server.url, sleep=sleeps, clock=lambda: FIXED_NOW, retry=RETRY, timeout_s=5.0, **extra)


def ok(body: str) -> Reply:
    return Reply(200, body)


@dataclass
class Case:
    key: str
    build: Callable[[ReplayServer, FakeSleep, bool], PricingProvider]  # (server, sleeps, with_credentials)
    method: str
    path: str  # the route failures are injected into (the first request the provider makes)
    replies: Callable[[ReplayServer], list[Reply]]  # success replies for that route, in order
    other_routes: Callable[[ReplayServer], list[tuple[str, str, list[Reply]]]] = lambda s: []
    expected_quotes: int = 0
    needs_credentials: bool = True
    auth_reply: Reply = field(default_factory=lambda: Reply(401, '{"error": "unauthorized"}'))

    def install(self, server: ReplayServer, *, before: list[Reply] | None = None) -> None:
        server.add(self.method, self.path, *(before or []), *self.replies(server))
        for method, path, replies in self.other_routes(server):
            server.add(method, path, *replies)


def _lambda(server: ReplayServer, sleeps: FakeSleep, creds: bool) -> PricingProvider:
    key = SecretStr("secret_lambda_key") if creds else None
    return LambdaProvider(config=LambdaConfig(api_key=key, **common(server, sleeps)))


def _vast(server: ReplayServer, sleeps: FakeSleep, creds: bool) -> PricingProvider:
    key = SecretStr("vast-key-123") if creds else None
    return VastProvider(config=VastConfig(api_key=key, limit=64, **common(server, sleeps)))


def _runpod(server: ReplayServer, sleeps: FakeSleep, creds: bool) -> PricingProvider:
    key = SecretStr("rpa_TESTKEY") if creds else None
    return RunPodProvider(config=RunPodConfig(api_key=key, **common(server, sleeps)))


def _tensordock(server: ReplayServer, sleeps: FakeSleep, creds: bool) -> PricingProvider:
    return TensorDockProvider(config=TensorDockConfig(**common(server, sleeps)))


AZURE_SIZES = ("Standard_ND96isr_H100_v5", "Standard_NC24ads_A100_v4")


def _azure(server: ReplayServer, sleeps: FakeSleep, creds: bool) -> PricingProvider:
    return AzureProvider(config=AzureConfig(sizes=AZURE_SIZES, **common(server, sleeps)))


def _gcp(server: ReplayServer, sleeps: FakeSleep, creds: bool) -> PricingProvider:
    key = SecretStr("AIzaTESTKEY") if creds else None
    return GcpProvider(config=GcpConfig(api_key=key, **common(server, sleeps)))


def _aws_on_demand(server: ReplayServer, sleeps: FakeSleep, creds: bool) -> PricingProvider:
    """AWS on-demand needs no credentials; spot is covered by test_aws.py."""
    return AwsProvider(config=AwsConfig(regions=("us-east-1",), include_spot=False, **common(server, sleeps)))


AWS_OFFER = "/offers/v1.0/aws/AmazonEC2/20260728195211/us-east-1/index.json"
AWS_OFFER_CSV = AWS_OFFER.removesuffix(".json") + ".csv"

CASES: list[Case] = [
    Case("lambda", _lambda, "GET", "/instance-types", lambda s: [ok(recorded("lambda/instance_types.json"))],
         expected_quotes=5, auth_reply=Reply(401, recorded("lambda/error_invalid_key.json"))),
    Case("vast", _vast, "POST", "/bundles/", lambda s: [ok(recorded("vast/bundles.json"))],
         expected_quotes=5, auth_reply=Reply(401, recorded("vast/error_unauthorized.json"))),
    Case("runpod", _runpod, "POST", "/graphql", lambda s: [ok(recorded("runpod/gpu_types.json"))],
         expected_quotes=7, auth_reply=Reply(401, recorded("runpod/error_unauthorized.json"))),
    Case("tensordock", _tensordock, "GET", "/client/deploy/hostnodes",
         lambda s: [ok(recorded("tensordock/hostnodes.json"))], expected_quotes=3, needs_credentials=False,
         auth_reply=Reply(403, '{"success": false, "error": "Forbidden"}')),
    Case("azure", _azure, "GET", "/api/retail/prices",
         lambda s: [ok(recorded("azure/h100_page1.json", base_url=s.url)), ok(recorded("azure/h100_page2.json")),
                    ok(recorded("azure/a100_page1.json"))],
         expected_quotes=5, needs_credentials=False,
         auth_reply=Reply(403, '{"Error": {"Code": "Forbidden", "Message": "Access denied"}}')),
    Case("gcp", _gcp, "GET", "/services/6F81-5844-456A/skus",
         lambda s: [ok(recorded("gcp/skus_page1.json")), ok(recorded("gcp/skus_page2.json"))],
         expected_quotes=11, auth_reply=Reply(403, recorded("gcp/error_permission_denied.json"))),
    Case("aws", _aws_on_demand, "GET", "/offers/v1.0/aws/AmazonEC2/current/region_index.json",
         lambda s: [ok(recorded("aws/region_index.json"))],
         other_routes=lambda s: [("GET", AWS_OFFER_CSV, [Reply(200, recorded("aws/offer_us-east-1.csv"),
                                                                content_type="text/csv")])],
         expected_quotes=2, needs_credentials=False,
         auth_reply=Reply(403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")),
]

BY_KEY = {case.key: case for case in CASES}
