"""Emitting events to an organization's hooks and delivering them.

``emit`` is the one entry point of the other features (the deploy core around each step, budgets,
policy runs). Every hook the event matches gets a delivery row first; then

- ``blocking=True`` (a "before" step): each hook is tried now, in the caller's process, with its
  retries (short back-off); the result says which hooks failed and why, and the caller stops the step
  with ``result.reason`` (``raise_for_failure`` raises ``HookFailed``, a 409 naming the hook).
- ``blocking=False``: each delivery gets a ``hook_delivery`` job in the same transaction; a worker
  makes one attempt per job run and the job runtime retries it with back-off up to the hook's
  ``max_attempts``, after which the delivery is ``failed`` with the last reason. The job rows are
  committed with the delivery rows, so a queue that is down delays delivery (the reaper re-queues
  the job) and never drops it.

Given a ``Context``, ``emit`` uses its own transaction and queues the jobs after the commit. Given a
``Session``, the rows join the caller's transaction (atomic with what the caller records) and
``start(ctx, result)`` after the caller's commit queues them at once; without it the reaper queues
them within ``CLOUDARB_JOB_LOST_AFTER_S``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from cloudarb.config import Settings, get_settings
from cloudarb.db.models_hooks import Hook, HookDelivery
from cloudarb.db.types import utcnow
from cloudarb.errors import Conflict
from cloudarb.hooks import store
from cloudarb.hooks.events import check_event, envelope, matches, slack_message
from cloudarb.hooks.send import Attempt, post_webhook, run_command
from cloudarb.jobs import store as job_store
from cloudarb.jobs.enqueue import submission
from cloudarb.jobs.errors import JobInputError, TransientJobError
from cloudarb.jobs.runtime import status_payload

if TYPE_CHECKING:
    from cloudarb.context import Context
    from cloudarb.jobs.runtime import JobContext

log = logging.getLogger(__name__)

DELIVERY_KIND = "hook_delivery"
DELIVERY_FUNCTION = "cloudarb.hooks.dispatch.deliver_job"
BLOCKING_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)


class HookFailed(Conflict):
    """A blocking hook refused or could not be reached: the step it guards does not run."""

    code = "hook_failed"


@dataclass
class EmitResult:
    event: str
    deliveries: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def reason(self) -> str:
        return "; ".join(self.failures)

    def raise_for_failure(self) -> None:
        if self.failures:
            raise HookFailed(f"{self.event} hook failed: {self.reason}", details=list(self.failures))


def _body(hook: Hook, delivery: HookDelivery) -> bytes:
    if hook.kind == "webhook" and hook.payload_format == "slack":
        data = slack_message(delivery.event, delivery.payload)
    else:
        data = envelope(delivery_id=delivery.id, event=delivery.event, organization_id=delivery.organization_id,
                        created_at=delivery.created_at, data=delivery.payload)
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str).encode()


def attempt(hook: Hook, delivery: HookDelivery, settings: Settings) -> Attempt:
    """One try of one delivery (no database access)."""
    body = _body(hook, delivery)
    if hook.kind == "webhook":
        return post_webhook(hook.url or "", body, secret=hook.secret or "", event=delivery.event,
                            delivery_id=delivery.id, timeout_s=hook.timeout_s,
                            output_limit=min(settings.hooks_output_limit, 4096))
    env = {"CLOUDARB_EVENT": delivery.event, "CLOUDARB_DELIVERY_ID": delivery.id,
           "CLOUDARB_ORGANIZATION_ID": delivery.organization_id, "CLOUDARB_SUBJECT_ID": delivery.subject_id or ""}
    return run_command(list(hook.command or []), body, env=env, timeout_s=hook.timeout_s,
                       output_limit=settings.hooks_output_limit)


def record(delivery: HookDelivery, result: Attempt) -> None:
    number = delivery.attempts + 1
    delivery.attempts = number
    delivery.log = [*delivery.log, result.log_entry(number, utcnow().isoformat())]
    delivery.status_code = result.status_code
    delivery.exit_code = result.exit_code
    delivery.output = result.output
    delivery.error = None if result.ok else result.summary


def _new_delivery(session: Session, hook: Hook, event: str, payload: dict[str, Any], subject_id: str | None,
                  blocking: bool) -> HookDelivery:
    delivery = HookDelivery(hook_id=hook.id, organization_id=hook.organization_id, event=event,
                            subject_id=subject_id, payload=payload, blocking=blocking,
                            status="sending" if blocking else "pending", attempts=0, log=[])
    session.add(delivery)
    session.flush()
    return delivery


def _add_job(session: Session, delivery: HookDelivery, hook: Hook, result: EmitResult) -> None:
    job = job_store.create_job(session, organization_id=hook.organization_id, kind=DELIVERY_KIND,
                               function=DELIVERY_FUNCTION, target_id=delivery.id, max_attempts=hook.max_attempts)
    job_store.append_event(session, job.id, "status",
                           status_payload("queued", f"{delivery.event} to hook '{hook.name}'"))
    delivery.job_id = job.id
    result.jobs.append(job.id)


def _deliver_now(sessions: Callable[[], AbstractContextManager[Session]], hook: Hook, delivery: HookDelivery,
                 settings: Settings) -> str | None:
    """Try a blocking delivery up to the hook's attempts; None when delivered, else the reason."""
    last: Attempt | None = None
    for number in range(hook.max_attempts):
        if number:
            time.sleep(BLOCKING_BACKOFF_S[min(number - 1, len(BLOCKING_BACKOFF_S) - 1)])
        last = attempt(hook, delivery, settings)
        with sessions() as session:
            row = session.get(HookDelivery, delivery.id) or delivery
            record(row, last)
            row.status = "delivered" if last.ok else ("retrying" if last.retryable else "failed")
            delivery = row
        if last.ok or not last.retryable:
            break
    if last is not None and last.ok:
        return None
    with sessions() as session:
        row = session.get(HookDelivery, delivery.id) or delivery
        row.status = "failed"
    reason = last.summary if last is not None else "not attempted"
    if last is not None and last.output and hook.kind == "command":
        reason += f": {last.output.strip()[-300:]}"
    return f"hook '{hook.name}' failed after {delivery.attempts} attempt(s): {reason}"


def emit(
    target: Context | Session,
    organization_id: str,
    event: str,
    payload: dict[str, Any],
    *,
    blocking: bool,
    subject_id: str | None = None,
    settings: Settings | None = None,
) -> EmitResult:
    """Send ``event`` with ``payload`` to every enabled hook of the organization that subscribes to it."""
    check_event(event)
    result = EmitResult(event)
    if isinstance(target, Session):
        settings = settings or get_settings()
        caller = target

        @contextmanager
        def same() -> Iterator[Session]:
            yield caller
            caller.flush()

        sessions: Callable[[], AbstractContextManager[Session]] = same
    else:
        settings = settings or target.settings
        sessions = target.db.session
    if not blocking and not isinstance(target, Session):
        with submission(target) as sub:
            for hook in store.enabled_hooks(sub.session, organization_id=organization_id):
                if matches(hook.events, event):
                    delivery = _new_delivery(sub.session, hook, event, payload, subject_id, False)
                    result.deliveries.append(delivery.id)
                    job = sub.job(organization_id=organization_id, kind=DELIVERY_KIND, function=DELIVERY_FUNCTION,
                                  target_id=delivery.id, message=f"{event} to hook '{hook.name}'",
                                  max_attempts=hook.max_attempts)
                    delivery.job_id = job.id
                    result.jobs.append(job.id)
        return result
    with sessions() as session:
        hooks = [h for h in store.enabled_hooks(session, organization_id=organization_id) if matches(h.events, event)]
        created = [(h, _new_delivery(session, h, event, payload, subject_id, blocking)) for h in hooks]
        result.deliveries.extend(d.id for _, d in created)
        if not blocking:
            for hook, delivery in created:
                _add_job(session, delivery, hook, result)
    if blocking:
        for hook, delivery in created:
            failure = _deliver_now(sessions, hook, delivery, settings)
            if failure:
                log.warning("blocking hook failed", extra={"hook_id": hook.id, "event": event, "reason": failure})
                result.failures.append(failure)
    return result


def start(ctx: Context, result: EmitResult) -> None:
    """Queue the delivery jobs of an ``emit`` made with a session, once that session has committed."""
    for job_id in result.jobs:
        try:
            ctx.queue.enqueue(job_id, DELIVERY_FUNCTION)
        except Exception:  # the job row is committed: the reaper queues it when the queue answers
            log.warning("could not queue a hook delivery; the reaper will", extra={"job_id": job_id}, exc_info=True)


def deliver_job(jc: JobContext) -> str:
    """Job body: one attempt of one delivery; a retryable failure is retried by the job runtime."""
    with jc.ctx.db.session() as session:
        delivery = session.get(HookDelivery, jc.target_id)
        hook = session.get(Hook, delivery.hook_id) if delivery is not None else None
    if delivery is None or hook is None:
        raise JobInputError(f"hook delivery {jc.target_id} or its hook no longer exists")
    if not hook.enabled:
        raise JobInputError(f"hook '{hook.name}' was disabled before delivery")
    result = attempt(hook, delivery, jc.ctx.settings)
    with jc.ctx.db.session() as session:
        row = session.get(HookDelivery, delivery.id)
        if row is not None:
            record(row, result)
    if result.ok:
        return "finished"
    message = f"hook '{hook.name}': {result.summary}"
    if not result.retryable:
        log.warning("hook delivery failed", extra={"hook_id": hook.id, "delivery_id": delivery.id})
        raise JobInputError(f"{message} (not retried)")
    raise TransientJobError(message)


def send_test(ctx: Context, *, organization_id: str, hook: Hook, actor: str) -> EmitResult:
    """Queue a ``hook.test`` delivery to this one hook (whatever it subscribes to)."""
    result = EmitResult("hook.test")
    with submission(ctx) as sub:
        delivery = _new_delivery(sub.session, hook, "hook.test", {"message": f"test from {actor}"}, hook.id, False)
        job = sub.job(organization_id=organization_id, kind=DELIVERY_KIND, function=DELIVERY_FUNCTION,
                      target_id=delivery.id, message=f"hook.test to hook '{hook.name}'", max_attempts=hook.max_attempts)
        delivery.job_id = job.id
        result.deliveries.append(delivery.id)
        result.jobs.append(job.id)
    return result
