"""Pricing providers: one module per provider, listed in the explicit `PROVIDERS` registry.

The registry maps the lowercase provider key (the same key the deploy side and storage use) to the
provider class. Each class takes one keyword-only ``config`` of its ``config_class``. Modules import
their heavy SDKs (boto3) lazily, so importing the registry stays cheap.
"""

from __future__ import annotations

from ingestion.errors import UnknownProvider
from ingestion.providers.aws import AwsProvider
from ingestion.providers.azure import AzureProvider
from ingestion.providers.base import PricingProvider, ProviderConfig, RetryPolicy
from ingestion.providers.gcp import GcpProvider
from ingestion.providers.lambda_cloud import LambdaProvider
from ingestion.providers.local import LocalProvider
from ingestion.providers.runpod import RunPodProvider
from ingestion.providers.tensordock import TensorDockProvider
from ingestion.providers.vast import VastProvider

ProviderClass = (
    type[AwsProvider]
    | type[AzureProvider]
    | type[GcpProvider]
    | type[LambdaProvider]
    | type[LocalProvider]
    | type[RunPodProvider]
    | type[TensorDockProvider]
    | type[VastProvider]
)

PROVIDERS: dict[str, ProviderClass] = {
    "aws": AwsProvider,
    "azure": AzureProvider,
    "gcp": GcpProvider,
    "lambda": LambdaProvider,
    "local": LocalProvider,
    "runpod": RunPodProvider,
    "tensordock": TensorDockProvider,
    "vast": VastProvider,
}


def provider_class(key: str) -> ProviderClass:
    """The class registered under ``key``; UnknownProvider lists the valid keys."""
    try:
        return PROVIDERS[key]
    except KeyError as exc:
        raise UnknownProvider(
            f"unknown pricing provider {key!r}; valid keys: {', '.join(sorted(PROVIDERS))}", provider=key
        ) from exc


def create_provider(key: str, *, config: ProviderConfig | None = None) -> PricingProvider:
    """Build the provider ``key`` from ``config`` (its own config_class; defaults if None).

    Raises MissingCredentials when the provider needs credentials the config lacks, and TypeError
    when the config is of another provider's class.
    """
    cls = provider_class(key)
    cfg = config if config is not None else cls.config_class()
    if not isinstance(cfg, cls.config_class):
        raise TypeError(f"{key} needs a {cls.config_class.__name__}, got {type(cfg).__name__}")
    return cls(config=cfg)  # type: ignore[arg-type]


__all__ = [
    "PROVIDERS",
    "PricingProvider",
    "ProviderConfig",
    "RetryPolicy",
    "create_provider",
    "provider_class",
]
