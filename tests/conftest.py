"""Fixtures shared by every test package."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLOUDARB_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data set beside the checkout (../shared/data); CI always has it."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set CLOUDARB_SHARED_DATA")
    return SHARED_DATA


# Secrets in logs: every record the application, the server, RQ and SQLAlchemy log during the whole
# run (INFO and up) is checked for the shape of an API key or a JWT; a run that logged one fails.
SECRET_SHAPES = re.compile(r"\bca_[A-Za-z0-9_-]{30,}|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
SCANNED_LOGGERS = ("cloudarb", "optimizer", "forecasting", "ingestion", "uvicorn", "rq", "sqlalchemy", "fastapi",
                   "starlette", "root")


class SecretScanner(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] not in SCANNED_LOGGERS:
            return
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot be formatted shows nothing
            return
        if SECRET_SHAPES.search(text):
            self.leaks.append(f"{record.name}: {text[:300]}")


SCANNER = SecretScanner()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(SCANNER)
    for name in ("cloudarb", "uvicorn", "rq"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


@pytest.fixture(autouse=True)
def no_secret_in_logs() -> object:
    """Fail the test during which a secret was logged. Per test, so it holds under pytest-xdist too (a
    worker's session status does not reach the controller; a failed test does)."""
    seen = len(SCANNER.leaks)
    yield
    if len(SCANNER.leaks) > seen:
        new = SCANNER.leaks[seen:]
        pytest.fail(f"secrets in log lines ({len(new)}):\n" + "\n".join(new[:5]), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SCANNER.leaks:
        session.config.get_terminal_writer().line(
            f"secrets in log lines ({len(SCANNER.leaks)}):\n" + "\n".join(SCANNER.leaks[:20]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
