"""What an offer's capacity means, by the kind of provider that sells it (declared as data).

A hyperscaler or GPU cloud rents many instances of one type in a region: an offer is a *pool*, and
when the provider does not state how many it can rent now, the solver assumes
``CLOUDARB_OFFER_DEFAULT_AVAILABLE_INSTANCES`` (16 by default; unknown is not infinite). A marketplace
listing (Vast.ai, TensorDock) or one of the team's own workstations (provider ``local``) is one
machine: a *listing*, never more than one instance. A reseller (Shadeform) sells instance types of
the clouds behind it, so its offers are pools. A provider missing here is a pool;
``CLOUDARB_OFFER_CAPACITY_KINDS`` overrides or adds entries (e.g. a user's imported catalog of a
marketplace).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from optimizer.schemas import CapacityKind

ProviderKind = Literal["hyperscaler", "gpu_cloud", "reseller", "marketplace", "own_hosts"]

PROVIDER_KINDS: dict[str, ProviderKind] = {
    "aws": "hyperscaler",
    "gcp": "hyperscaler",
    "azure": "hyperscaler",
    "lambda": "gpu_cloud",
    "runpod": "gpu_cloud",
    "nebius": "gpu_cloud",
    "cudo": "gpu_cloud",
    "shadeform": "reseller",
    "vast": "marketplace",
    "tensordock": "marketplace",
    "local": "own_hosts",
}
"""Provider key -> the kind of seller it is."""

CAPACITY_BY_KIND: dict[ProviderKind, CapacityKind] = {
    "hyperscaler": "pool",
    "gpu_cloud": "pool",
    "reseller": "pool",
    "marketplace": "listing",
    "own_hosts": "listing",
}
"""Provider kind -> what one of its offers is when it states no capacity."""


def capacity_kind(provider: str, overrides: Mapping[str, CapacityKind] | None = None) -> CapacityKind:
    """The capacity kind of a provider's offers: an override, else its kind's, else 'pool'."""
    if overrides and provider in overrides:
        return overrides[provider]
    kind = PROVIDER_KINDS.get(provider)
    return CAPACITY_BY_KIND[kind] if kind is not None else "pool"
