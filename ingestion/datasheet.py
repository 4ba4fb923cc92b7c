"""The data-sheet check every offer passes before anyone may use it.

A catalog row that names a GPU the table does not know, reports a memory per GPU that no variant of
the model has, or a price per GPU-hour no seller charges, is a misread row (wrong unit, memory per
instance read as per GPU, a monthly price), not an offer. The check says which, so the loader can
quarantine the row with that reason instead of letting the optimizer buy it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ingestion.gpu_specs import GPU_MODELS, LEGACY_NAMES
from ingestion.gpus import MEMORY_TOLERANCE, memory_fits
from ingestion.schemas import PriceQuote

CheckReason = Literal["unknown GPU model", "memory outside data sheet", "implausible price"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PricePolicy:
    """The band of plausible prices per GPU-hour (USD), on-demand and spot alike.

    The bounds are wide on purpose: they catch unit errors (a monthly price, a per-second price,
    a price for 1/8 of a GPU) rather than judging a seller. The dearest real on-demand price in the
    shared catalogs is about 14 USD per GPU-hour (B200 at AWS), the cheapest spot about 0.02.
    """

    min_usd_per_gpu_hour: float = 0.01
    max_usd_per_gpu_hour: float = 40.0


DEFAULT_PRICE_POLICY = PricePolicy()


@dataclass(frozen=True, slots=True)
class DatasheetVerdict:
    """ok, or the reason (a short fixed phrase, for counting) and a sentence for people."""

    ok: bool
    reason: CheckReason | None = None
    detail: str = ""


_OK = DatasheetVerdict(ok=True)


def check_offer(
    model: str,
    *,
    memory_gb: float,
    price_per_gpu_hour: float,
    policy: PricePolicy = DEFAULT_PRICE_POLICY,
) -> DatasheetVerdict:
    """Check one offer's GPU model, memory per GPU (GB) and price per GPU-hour (USD).

    The memory must be one of the model's data-sheet sizes within `MEMORY_TOLERANCE`; the price
    must lie inside ``policy``'s band.
    """
    spec = GPU_MODELS.get(LEGACY_NAMES.get(model, model))
    if spec is None:
        return DatasheetVerdict(False, "unknown GPU model", f"{model!r} is not in the GPU table")
    if not memory_fits(spec, memory_gb):
        sizes = "/".join(f"{s:g}" for s in spec.memory_options_gb)
        low, high = MEMORY_TOLERANCE
        return DatasheetVerdict(
            False,
            "memory outside data sheet",
            f"{memory_gb:g} GB per GPU, but a {spec.name} has {sizes} GB "
            f"(accepted {low:g}-{high:g} x that)",
        )
    if not policy.min_usd_per_gpu_hour <= price_per_gpu_hour <= policy.max_usd_per_gpu_hour:
        return DatasheetVerdict(
            False,
            "implausible price",
            f"{price_per_gpu_hour:g} USD per GPU-hour is outside "
            f"{policy.min_usd_per_gpu_hour:g}-{policy.max_usd_per_gpu_hour:g}",
        )
    return _OK


def check_quote(quote: PriceQuote, *, policy: PricePolicy = DEFAULT_PRICE_POLICY) -> DatasheetVerdict:
    """`check_offer` on a quote: its canonical model, memory per GPU and price per GPU-hour."""
    return check_offer(
        quote.gpu_model, memory_gb=quote.vram_gb, price_per_gpu_hour=quote.price_per_gpu_hour, policy=policy
    )
