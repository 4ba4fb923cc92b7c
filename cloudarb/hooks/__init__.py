"""Hooks: per-organization webhooks and commands called around deployments, budgets and policy decisions."""
