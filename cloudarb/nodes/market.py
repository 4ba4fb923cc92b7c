"""A node's free GPUs as offers of provider ``local`` in the offers table the optimizer reads.

One offer per (node, unit label, size): one GPU (or MIG device) per instance, ``available_instances`` =
the free units of that label, at the owner's price (per model, else the node's default; a MIG device at
its share of the GPU's price); whole GPUs also as larger instances of every size from 2 to 8 GPUs, and of
multiples of 8 beyond (``sizes``: a 6-GPU host offers 1..6, a 20-GPU host 1..8 and 16; at most 15 sizes
per label at the optimizer's largest instance of 64), up to the free count of that model on the node, at
size x the per-GPU price, ``available_instances`` = free // size. Every size of one label draws on the
same free GPUs: the optimizer gets them as one capacity pool ``local:<node>/<label>`` holding the free
count (``cloudarb.optimize.offers.capacity_pools`` reads it back from these instance types), so no
solve rents more of a host than is free, whatever sizes it combines (before the pool, sizes were powers
of two and x1 + x4 of a 4-GPU host could be chosen together: 8 GPUs; the placement's atomic GPU
assignment still refuses any excess, as a second line of defence). Seller = the node's name (solver
provider id ``local:<node>``), region = its site (else its name), instance type ``<node>/<label>`` for
one unit and ``<node>/<label>/x<size>`` for more, which the local provisioner reads back. An unhealthy or
drained node has no offers; an offer whose units are all taken is removed, and comes back when one frees
up. Rows are written only when something changed, so heartbeats do not grow the price history.
"""

from __future__ import annotations

import re
from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloudarb.db.models import Offer
from cloudarb.db.models_nodes import Node
from cloudarb.db.types import utcnow
from cloudarb.ingest.bulk import write_quotes
from cloudarb.nodes.inventory import Unit, free_units
from ingestion.gpu_specs import GPU_MODELS
from ingestion.schemas import PriceQuote

PROVIDER = "local"
_PROFILE_GB = re.compile(r"\.(\d+(?:\.\d+)?)gb$")
SEPARATOR = "/"
_SIZE = re.compile(r"^(?P<label>.+)/x(?P<size>[1-9]\d{0,1})$")
MAX_SIZE = 64  # the optimizer's largest ``gpus_per_instance``


def instance_type(node_name: str, label: str, size: int = 1) -> str:
    base = f"{node_name}{SEPARATOR}{label}"
    return base if size == 1 else f"{base}{SEPARATOR}x{size}"


def parse_instance_type(value: str) -> tuple[str, str]:
    """``<node>/<label>[/x<size>]`` -> (node name, unit label)."""
    node, label, _ = parse_sized(value)
    return node, label


def parse_sized(value: str) -> tuple[str, str, int | None]:
    """``<node>/<label>`` -> (node, label, None); ``<node>/<label>/x<size>`` -> (node, label, size); a value
    without a node is ("", value, None)."""
    node, sep, label = value.partition(SEPARATOR)
    if not sep:
        return "", value, None
    sized = _SIZE.match(label)
    if sized is not None:
        return node, sized.group("label"), int(sized.group("size"))
    return node, label, None


EVERY_SIZE_UP_TO = 8
"""Every instance size up to this is offered; beyond it only multiples of it (one NVLink domain is 8 GPUs)."""


def sizes(free: int) -> list[int]:
    """Instance sizes a host with ``free`` whole GPUs of one model offers: 1, 2, ..., 8, then 16, 24, ...,
    each <= free and <= the optimizer's largest instance."""
    top = min(free, MAX_SIZE)
    small = list(range(1, min(top, EVERY_SIZE_UP_TO) + 1))
    return small + list(range(2 * EVERY_SIZE_UP_TO, top + 1, EVERY_SIZE_UP_TO))


def unit_price(node: Node, unit: Unit) -> float:
    per_gpu = node.model_prices.get(unit.model, node.price_per_gpu_hour)
    return round(float(per_gpu) * unit.share, 6)


def vram_gb(unit: Unit) -> float:
    """Memory per unit as offers state it: the data sheet's for a whole GPU of a known model (drivers
    report 81,559 MiB for an 80 GB H100, which a ``min_vram_gb: 80`` workload would refuse), the MIG
    profile's (``3g.40gb``) for a MIG device, else what the driver reports."""
    spec = GPU_MODELS.get(unit.model)
    if unit.share >= 1.0 and spec is not None:
        return spec.vram_gb
    size = _PROFILE_GB.search(unit.label)
    return float(size.group(1)) if size else round(unit.memory_mib / 1024, 1)


def quotes_for(node: Node, free: list[Unit], *, mig_offers: bool) -> list[PriceQuote]:
    if node.status != "healthy" or node.drained:
        return []
    by_label: dict[str, list[Unit]] = defaultdict(list)
    for unit in free:
        if unit.share < 1.0 and not mig_offers:
            continue
        by_label[unit.label].append(unit)
    now = utcnow()
    quotes = []
    for label, group in sorted(by_label.items()):
        first = group[0]
        for size in sizes(len(group)) if first.share >= 1.0 else [1]:  # MIG slices stay single
            quotes.append(PriceQuote(
                provider=PROVIDER, seller=node.name, region=node.site or node.name, instance_type=instance_type(
                    node.name, label, size), gpu_model=first.model, gpu_model_raw=label, gpu_count=size,
                vram_gb=vram_gb(first), price_per_hour=round(unit_price(node, first) * size, 6),
                capacity="available", available_instances=len(group) // size, reliability=None, observed_at=now,
                vcpus=(node.host_report.get("cpus") or None), spot=False,
                ram_gb=round(node.host_report["memory_mib"] / 1024, 1) if node.host_report.get("memory_mib") else None,
            ))
    return quotes


def refresh_offers(session: Session, node: Node, *, mig_offers: bool = True) -> int:
    """Make the node's offers match its free units; returns the number of offers it has now."""
    quotes = quotes_for(node, free_units(session, node.id), mig_offers=mig_offers)
    current = {row.offer_key: row for row in session.scalars(
        select(Offer).where(Offer.provider == PROVIDER, Offer.seller == node.name))}
    wanted = {q.offer_key: q for q in quotes}
    gone = [key for key in current if key not in wanted]
    if gone:
        session.execute(delete(Offer).where(Offer.offer_key.in_(gone)))
    changed = [q for key, q in wanted.items() if key not in current or _differs(current[key], q)]
    if changed:
        write_quotes(session, changed)  # ticks, hourly rows and current offers: the one tick writer
    return len(wanted)


def remove_offers(session: Session, node_name: str) -> None:
    session.execute(delete(Offer).where(Offer.provider == PROVIDER, Offer.seller == node_name))


def _differs(row: Offer, quote: PriceQuote) -> bool:
    return (row.available_instances != quote.available_instances or abs(row.price_per_hour - quote.price_per_hour) > 1e-9
            or row.region != quote.region or row.vram_gb != quote.vram_gb or row.gpu_model != quote.gpu_model)
