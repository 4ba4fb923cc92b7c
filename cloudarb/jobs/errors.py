"""Exceptions that job bodies raise to steer the runtime."""

from __future__ import annotations


class JobError(Exception):
    """Root of the job errors."""


class JobCanceled(JobError):
    """The job saw its cancel flag and stopped."""


class TransientJobError(JobError):
    """A failure worth retrying (a dropped connection, a busy database)."""


class JobInputError(JobError):
    """The stored input cannot be run (missing row, invalid request): fail without retrying."""


class JobTimedOut(JobError):
    """The job ran past ``CLOUDARB_JOB_TIMEOUT_S``: failed, not retried."""
