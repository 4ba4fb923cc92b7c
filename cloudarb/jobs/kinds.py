"""What the machinery knows of each kind of job: one status hook through which its target follows it.

The job row is the only home of a job's status. A feature whose target row shows a status (an
optimization request shows its job's) registers one ``on_status`` hook for its job kinds; the
runtime calls it inside the transaction that moves the job, so the two never disagree. The registry
is an explicit mapping built by the application (``cloudarb.context.job_kinds``); the machinery
never imports a feature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloudarb.jobs.errors import UnknownJobKind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cloudarb.db.models import JobRun

StatusHook = Callable[["Session", "JobRun", str], None]


@dataclass(frozen=True)
class JobKind:
    """One kind of job: its name (the job row's ``kind``) and how its target follows its status."""

    name: str
    on_status: StatusHook | None = None


class JobKinds(Mapping[str, JobKind]):
    """The registry of job kinds; looking up an unknown kind names the valid ones."""

    def __init__(self, kinds: list[JobKind]) -> None:
        self._kinds = {k.name: k for k in kinds}

    def __getitem__(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownJobKind(
                f"unknown job kind {name!r}; valid kinds: {', '.join(sorted(self._kinds))}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def follow(self, session: Session, job: JobRun, status: str) -> None:
        """Let the job's target follow its new status (in the caller's transaction).

        Kinds are checked when a job is created (``Submission.job``); a stored row of a kind this
        process does not know (written by a newer release, or a test's own body) has no target to
        follow, and moving its status must not fail because of that."""
        kind = self._kinds.get(job.kind)
        if kind is not None and kind.on_status is not None:
            kind.on_status(session, job, status)
