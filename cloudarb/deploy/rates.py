"""Provider-reported rates beside the launch price (RunPod ``adjustedCostPerHr`` / v2 ``cost``, Vast
``dph_total``). Billing stays at the price recorded at launch; the reported rate is kept on the row,
and a difference beyond ``deploy_rate_tolerance`` (a share of the launch price) raises one
``rate_mismatch`` alert per instance, so a person can check the provider's bill."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudarb.db.models_deploy import DeployAlert, DeployInstance
from cloudarb.deploy.alerts import raise_alert


def differs(launch_rate: float, reported: float | None, tolerance: float) -> bool:
    """Whether a reported rate is off the launch price by more than ``tolerance`` (a share). A missing
    or zero report (a stopped pod reports 0) says nothing about the running rate."""
    if reported is None or reported <= 0 or launch_rate <= 0:
        return False
    return abs(reported - launch_rate) > tolerance * launch_rate + 1e-9


def check(session: Session, row: DeployInstance, reported: float | None, tolerance: float) -> bool:
    """Raise the instance's ``rate_mismatch`` alert (once) when ``reported`` differs; True if new."""
    if not differs(row.price_per_hour, reported, tolerance):
        return False
    assert reported is not None
    share = (reported - row.price_per_hour) / row.price_per_hour
    return raise_alert(
        session, kind="rate_mismatch", dedupe=f"rate_mismatch:{row.id}", organization_id=row.organization_id,
        message=f"{row.provider} reports ${reported:.4f}/h for {row.provider_id or row.key} ({row.instance_type}); "
                f"launched at ${row.price_per_hour:.4f}/h ({share:+.1%}); billed at the launch price",
        instance_id=row.id, deployment_id=row.deployment_id, launch_rate=row.price_per_hour, reported_rate=reported)


def mismatched(session: Session, instance_ids: list[str]) -> set[str]:
    """Which of these instances have a ``rate_mismatch`` alert."""
    if not instance_ids:
        return set()
    dedupes = {f"rate_mismatch:{i}": i for i in instance_ids}
    found = session.scalars(select(DeployAlert.dedupe).where(DeployAlert.dedupe.in_(list(dedupes))))
    return {dedupes[d] for d in found}
