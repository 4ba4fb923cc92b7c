"""Exceptions of the job machinery: the ones job bodies raise to steer the runtime, and the queue's."""

from __future__ import annotations

from cloudarb.errors import CloudArbError, Unavailable


class JobError(CloudArbError):
    """Root of the errors job bodies raise to steer the runtime."""

    code = "job_error"


class JobCanceled(JobError):
    """The job saw its cancel flag and stopped."""

    code = "canceled"


class TransientJobError(JobError):
    """A failure worth retrying (a dropped connection, a busy database)."""

    code = "transient"


class JobInputError(JobError):
    """The stored input cannot be run (missing row, invalid request): fail without retrying."""

    code = "job_input"


class JobTimedOut(JobError):
    """The job ran past ``CLOUDARB_JOB_TIMEOUT_S``: failed, not retried."""

    code = "timed_out"


class QueueUnavailable(Unavailable):
    """The job was stored but could not be queued; it is marked failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the job queue is unavailable: {reason}")


class UnknownJobKind(CloudArbError):
    """A job kind that is not in the application's registry; the message names the valid kinds."""

    code = "unknown_job_kind"
