"""The events hooks subscribe to, how a subscription pattern matches, and the bodies hooks receive.

Events: ``deploy.before|after``, ``extend.before|after``, ``done.before|after``, ``destroy.before|after``
(around a deployment's steps; "before" hooks are blocking and can stop the step), ``budget.threshold``
and ``policy.adopt`` (a policy run adopted a new allocation: "switch now saves $X/h"), and ``hook.test``
(``cloudarb hooks test``), and ``terraform.apply|destroy`` (``RUN_EVENTS``: commands that apply or
destroy a Terraform deployment's configuration). A hook subscribes with exact names or ``<group>.*`` / ``*`` patterns.

A webhook receives a JSON envelope ``{id, event, organization_id, created_at, data}``; with the
``slack`` format it receives a Slack-compatible ``{"text": ...}`` message instead (an incoming-webhook
URL of Slack, Mattermost or Rocket.Chat accepts it), written out for adopt and budget events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloudarb.errors import InvalidInput

STEPS = ("deploy", "extend", "done", "destroy")
RUN_EVENTS = ("terraform.apply", "terraform.destroy")
"""Requests to act rather than notices: a deployment of target ``terraform`` runs the command hooks
that name one of these explicitly (not through ``*``) to apply or destroy its rendered configuration
(``cloudarb.hooks.commands``); webhooks never receive them."""
EVENTS: tuple[str, ...] = (
    *(f"{step}.{when}" for step in STEPS for when in ("before", "after")),
    "budget.threshold",
    "policy.adopt",
    "hook.test",
    *RUN_EVENTS,
)
GROUPS = tuple(sorted({e.split(".")[0] for e in EVENTS}))
FORMATS = ("json", "slack")


def check_pattern(pattern: str) -> str:
    """A valid subscription: an event name, ``<group>.*`` or ``*``; else ``InvalidInput`` on ``events``."""
    if pattern == "*" or pattern in EVENTS:
        return pattern
    group, _, rest = pattern.partition(".")
    if rest == "*" and group in GROUPS:
        return pattern
    raise InvalidInput(f"unknown event {pattern!r}; events: {', '.join(EVENTS)} (or '<group>.*', '*')",
                       field="events")


def check_event(event: str) -> str:
    if event not in EVENTS:
        raise InvalidInput(f"unknown event {event!r}; events: {', '.join(EVENTS)}", field="event")
    return event


def matches(patterns: list[str], event: str) -> bool:
    group = event.split(".")[0]
    return any(p == "*" or p == event or p == f"{group}.*" for p in patterns)


def is_blocking_step(event: str) -> bool:
    return event.endswith(".before")


def envelope(*, delivery_id: str, event: str, organization_id: str, created_at: datetime,
             data: dict[str, Any]) -> dict[str, Any]:
    return {"id": delivery_id, "event": event, "organization_id": organization_id,
            "created_at": created_at.isoformat(), "data": data}


def _money(value: Any) -> str:
    return f"${float(value):,.2f}" if isinstance(value, int | float) else "?"


def summary(event: str, data: dict[str, Any]) -> str:
    """One line a person reads in a chat channel."""
    if event == "policy.adopt":
        policy = data.get("policy_name") or data.get("policy_id", "?")
        saves = data.get("savings_per_hour")
        line = f"CloudArb policy '{policy}': switch now saves {_money(saves)}/h" if saves is not None else (
            f"CloudArb policy '{policy}' adopted a new allocation")
        if data.get("new_cost_per_hour") is not None:
            line += f" (new {_money(data['new_cost_per_hour'])}/h"
            if data.get("current_cost_per_hour") is not None:
                line += f" vs current {_money(data['current_cost_per_hour'])}/h"
            line += ")"
        return line
    if event == "budget.threshold":
        name = data.get("budget_name") or data.get("month") or data.get("budget_id", "?")
        pct = data.get("percent_used")
        spent, limit = data.get("spent"), data.get("limit")
        if pct is None and isinstance(spent, int | float) and isinstance(limit, int | float) and limit > 0:
            pct = 100.0 * spent / limit
        used = f"{float(pct):.0f}% used" if isinstance(pct, int | float) else "threshold crossed"
        money = f": {_money(spent)} of {_money(limit)}" if spent is not None else ""
        threshold = data.get("threshold")
        crossed = f" (threshold {float(threshold):.0%})" if isinstance(threshold, int | float) else ""
        stop = ", hard stop" if data.get("hard_stop") else ""
        return f"CloudArb budget '{name}' {used}{money}{crossed}{stop}"
    subject = data.get("deployment_id") or data.get("subject_id") or ""
    return f"CloudArb {event}" + (f" {subject}" if subject else "")


def slack_message(event: str, data: dict[str, Any]) -> dict[str, Any]:
    text = summary(event, data)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
