"""Running an organization's command hooks as a step of work (a Terraform apply or destroy), not as a
notice: the caller waits for them and their verdict is the step's.

The hooks run are the enabled command hooks that name the event explicitly (``terraform.apply`` or
``terraform.*``; a ``*`` subscription does not volunteer a program for infrastructure changes), one
after the other in the order they were registered, each once (no retry: re-running an apply is the
caller's decision), stopping at the first that fails. Each run is a delivery row like any other
(``subject_id`` = the deployment), with its exit code and bounded output, so the deployment's hook
log shows it. Refused when command hooks are off (``CLOUDARB_HOOKS_COMMANDS``), whatever is stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from cloudarb.db.models_hooks import Hook, HookDelivery
from cloudarb.hooks import store
from cloudarb.hooks.dispatch import record
from cloudarb.hooks.events import envelope
from cloudarb.hooks.send import Attempt, run_command

if TYPE_CHECKING:
    from cloudarb.context import Context


@dataclass(frozen=True)
class CommandRun:
    """One hook's run: its name, the delivery row, and what happened."""

    hook: str
    delivery_id: str
    attempt: Attempt

    def as_dict(self) -> dict[str, Any]:
        return {"hook": self.hook, "delivery_id": self.delivery_id, "ok": self.attempt.ok,
                "summary": self.attempt.summary, "exit_code": self.attempt.exit_code,
                "duration_ms": round(self.attempt.duration_ms, 1), "output": self.attempt.output or ""}


def names(hook: Hook, event: str) -> bool:
    """The hook asks for ``event`` by name or by its group (``terraform.*``), not through ``*``."""
    return event in hook.events or f"{event.split('.')[0]}.*" in hook.events


def command_hooks(session: Session, *, organization_id: str, event: str) -> list[Hook]:
    hooks = store.enabled_hooks(session, organization_id=organization_id)
    return sorted((h for h in hooks if h.kind == "command" and names(h, event)), key=lambda h: (h.created_at, h.id))


def run_commands(
    ctx: Context, *, organization_id: str, event: str, payload: dict[str, Any], subject_id: str,
    env: dict[str, str], cwd: str, timeout_s: float | None = None,
) -> list[CommandRun]:
    """Run the organization's command hooks for ``event`` in ``cwd``; the list ends at the first failure
    (empty when none is configured: the caller decides what that means)."""
    settings = ctx.settings
    if not settings.hooks_commands:
        return []
    with ctx.db.session() as session:
        hooks = command_hooks(session, organization_id=organization_id, event=event)
        rows = []
        for hook in hooks:
            delivery = HookDelivery(hook_id=hook.id, organization_id=organization_id, event=event,
                                    subject_id=subject_id, payload=payload, blocking=True, status="sending",
                                    attempts=0, log=[])
            session.add(delivery)
            session.flush()
            rows.append((hook.name, list(hook.command or []), min(hook.timeout_s, timeout_s or hook.timeout_s),
                         delivery.id, delivery.created_at))
    runs: list[CommandRun] = []
    for name, argv, limit, delivery_id, created_at in rows:
        body = json.dumps(envelope(delivery_id=delivery_id, event=event, organization_id=organization_id,
                                   created_at=created_at, data=payload), separators=(",", ":"), sort_keys=True,
                          default=str).encode()
        full_env = {"CLOUDARB_EVENT": event, "CLOUDARB_DELIVERY_ID": delivery_id,
                    "CLOUDARB_ORGANIZATION_ID": organization_id, "CLOUDARB_SUBJECT_ID": subject_id, **env}
        result = run_command(argv, body, env=full_env, timeout_s=limit, output_limit=settings.hooks_output_limit,
                             cwd=cwd)
        with ctx.db.session() as session:
            row = session.get(HookDelivery, delivery_id)
            if row is not None:
                record(row, result)
                row.status = "delivered" if result.ok else "failed"
        runs.append(CommandRun(name, delivery_id, result))
        if not result.ok:
            break
    return runs


def missing(session: Session, *, organization_id: str, events: Sequence[str]) -> list[str]:
    """The events among ``events`` that no enabled command hook of the organization names."""
    return [e for e in events if not command_hooks(session, organization_id=organization_id, event=e)]
