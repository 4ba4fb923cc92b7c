"""Lifetimes: every deployment ends at ``expires_at``; ``extend`` moves it, never past the maximum
(``deploy_max_lifetime_h`` from creation, 12 h by default, or the override maximum for a deployment
created with the explicit override). Enforcement (destroying what expired) is a scheduler pass in
``cloudarb.deploy.sweep``; this module only decides times, so the API can use it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from cloudarb.config import Settings
from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.deploy import states as st
from cloudarb.errors import Conflict, InvalidInput

ENDED_STATUSES = ("ending", "ended")


def parse_duration(text: str, *, field: str) -> float:
    """'4h', '90m', '3600s', '1.5h' or plain hours -> seconds (a 422 naming ``field`` otherwise)."""
    value = text.strip().lower()
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "d": 86400.0}
    try:
        if value and value[-1] in units:
            seconds = float(value[:-1]) * units[value[-1]]
        else:
            seconds = float(value) * 3600.0
    except ValueError:
        raise InvalidInput(f"{text!r} is not a duration (e.g. 4h, 90m)", field=field) from None
    if seconds <= 0:
        raise InvalidInput("a duration must be positive", field=field)
    return seconds


def max_lifetime_s(settings: Settings, *, override: bool) -> float:
    hours = settings.deploy_override_max_lifetime_h if override else settings.deploy_max_lifetime_h
    return hours * 3600.0


def check_lifetime(settings: Settings, lifetime_s: float, *, override: bool, field: str = "lifetime") -> float:
    limit = max_lifetime_s(settings, override=override)
    if lifetime_s > limit:
        hint = "" if override else " (set override_max_lifetime to go longer)"
        raise InvalidInput(f"lifetime {lifetime_s / 3600:g} h is longer than the maximum {limit / 3600:g} h{hint}",
                           field=field)
    return lifetime_s


def extend(session: Session, deployment: Deployment, *, by_s: float, now: datetime) -> datetime:
    """Move the deployment's (and its live instances') expiry by ``by_s``; refused past the maximum
    or once the deployment is ending."""
    if deployment.status in ENDED_STATUSES:
        raise Conflict(f"deployment {deployment.id} is {deployment.status}; it cannot be extended")
    base = max(deployment.expires_at, now)
    new = base + timedelta(seconds=by_s)
    latest = deployment.created_at + timedelta(seconds=deployment.max_lifetime_s)
    if new > latest:
        raise Conflict(f"extending to {new.isoformat(timespec='seconds')} passes the deployment's maximum lifetime "
                       f"({deployment.max_lifetime_s / 3600:g} h, until {latest.isoformat(timespec='seconds')})")
    deployment.expires_at = new
    deployment.updated_at = now
    session.execute(update(DeployInstance).where(
        DeployInstance.deployment_id == deployment.id, DeployInstance.state.in_(st.LIVE)
    ).values(expires_at=new).execution_options(synchronize_session=False))
    return new
