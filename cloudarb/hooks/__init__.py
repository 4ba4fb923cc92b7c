"""Hooks: per-organization webhooks and commands called around deployments, budgets and policy decisions.

The other features call ``emit(session_or_ctx, organization_id, event, payload, blocking=...)``; see
``dispatch`` for what blocking means and how deliveries are never dropped, ``events`` for the event
names and bodies, ``signing`` for the webhook signature receivers verify.
"""

from __future__ import annotations

from cloudarb.hooks.dispatch import EmitResult, HookFailed, emit, start

__all__ = ["EmitResult", "HookFailed", "emit", "start"]
