"""Fault injection against a private PostgreSQL and Redis (started here on free ports, never the shared
ones): Redis restarted empty, PostgreSQL stopped and restarted, a worker killed, each while jobs are
submitted through the API. Afterwards every accepted job is terminal within the reaper's bound, no
acknowledged write is missing, and no request got a server error other than 503."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability import chaos
from tests.reliability.stack import Stack, available

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack()
    try:
        s.start(workers=1)
        yield s
    finally:
        s.stop()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario", list(chaos.SCENARIOS))
def test_every_accepted_job_ends_and_no_acknowledged_write_is_lost(stack: Stack, scenario: str) -> None:
    figures = chaos.SCENARIOS[scenario](stack)
    assert figures.accepted > 0, figures
    assert figures.stuck == 0, figures
    assert figures.missing_writes == 0, figures
    assert figures.server_errors == 0, figures
    assert not figures.other, figures
