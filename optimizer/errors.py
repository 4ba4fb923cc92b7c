"""The optimizer's one rooted error tree.

Infeasible problems are *results* (``Solution.status == "infeasible"`` with a reason), never errors.
Errors are for inputs the optimizer cannot interpret and for engines that fail.
"""

from __future__ import annotations


class OptimizerError(Exception):
    """Root of every error the optimizer raises."""


class InvalidProblemError(OptimizerError, ValueError):
    """The problem is internally inconsistent (e.g. scenario vectors of different lengths)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BackendUnavailableError(OptimizerError):
    """The requested backend or engine is not installed or not known."""

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class SolverFailedError(OptimizerError):
    """An engine crashed or returned an abnormal status (not infeasible, not timed out)."""

    def __init__(self, message: str, *, backend: str, status: str = "") -> None:
        super().__init__(message)
        self.backend = backend
        self.status = status
