"""The deploy job bodies (kind ``deploy``): deploy a deployment, tear one down. Every step the core
publishes becomes a progress event of the job, so ``/ws/deployments/{id}`` and the CLI follow it with
the same machinery as any job."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cloudarb.deploy import run
from cloudarb.deploy.env import DeployEnv, env_for
from cloudarb.deploy.reconcile import reconcile
from cloudarb.jobs.errors import JobInputError
from cloudarb.jobs.runtime import JobContext


def _env(jc: JobContext) -> DeployEnv:
    def emit(step: str, payload: dict[str, Any]) -> None:
        message = payload.get("reason") or payload.get("status") or payload.get("key") or ""
        jc.progress(step, message=str(message), **{k: v for k, v in payload.items() if k != "reason"},
                    reason=payload.get("reason"))

    return env_for(jc.ctx).with_emit(emit)


def deploy_body(jc: JobContext) -> str:
    env = _env(jc)
    try:
        results = run.deploy(env, jc.target_id)
    except LookupError as exc:
        raise JobInputError(str(exc)) from exc
    for provider, account in sorted({(r.provider, r.account) for r in run.live_rows(env, jc.target_id)}):
        reconcile(env, provider, account)
    running = sum(1 for r in results if r.state == "running")
    jc.progress("done", percent=100, message=f"{running} of {len(results)} instances running")
    return "finished"


def teardown_body(jc: JobContext) -> str:
    env = _env(jc)
    try:
        dep = run.get_deployment(env, jc.target_id)
    except LookupError as exc:
        raise JobInputError(str(exc)) from exc
    left = run.teardown(env, jc.target_id, reason=dep.end_reason or "teardown")
    jc.progress("done", percent=100, message=f"{len(left)} instances not yet proven gone (retried)"
                if left else "every instance destroyed with proof")
    return "finished"


def stop_start_body(jc: JobContext) -> str:
    """Carry out the stops and starts the command recorded (``cloudarb.deploy.stopstart``)."""
    from cloudarb.deploy import stopstart_job

    env = _env(jc)
    try:
        run.get_deployment(env, jc.target_id)
    except LookupError as exc:
        raise JobInputError(str(exc)) from exc
    results = stopstart_job.carry_out(env, jc.target_id)
    states = ", ".join(f"{n} {s}" for s, n in sorted(_count(s for _, s in results).items()))
    jc.progress("done", percent=100, message=states or "nothing asked")
    return "finished"


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out
