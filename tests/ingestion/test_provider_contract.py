"""Every HTTP provider, against recorded responses over a real socket: success, 429 + Retry-After,
5xx then success, 5xx until giving up, malformed bodies, auth failure, missing credentials."""

from __future__ import annotations

import pytest

from ingestion.errors import (
    IngestionError,
    MalformedResponse,
    MissingCredentials,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from ingestion.schemas import PriceQuote
from tests.ingestion.conftest import FIXED_NOW, FakeSleep, ReplayServer, Reply
from tests.ingestion.provider_cases import CASES, RETRY, Case

pytestmark = pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])


def test_success(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    case.install(server)
    quotes = case.build(server, sleeps, True).fetch()
    assert len(quotes) == case.expected_quotes
    assert all(isinstance(q, PriceQuote) and q.provider == case.key for q in quotes)
    assert all(q.observed_at == FIXED_NOW for q in quotes)
    assert len({q.offer_key for q in quotes}) == len(quotes), "each quote prices a distinct offer"
    assert sleeps.calls == []


def test_429_honours_retry_after(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    limited = Reply(429, '{"error": "too many requests"}', headers={"Retry-After": "7"})
    case.install(server, before=[limited, limited])
    quotes = case.build(server, sleeps, True).fetch()
    assert len(quotes) == case.expected_quotes
    assert sleeps.calls == [7.0, 7.0]
    assert len(server.seen(case.path)) >= 3


def test_429_with_http_date_retry_after(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    limited = Reply(429, "{}", headers={"Retry-After": "Thu, 30 Jul 2026 12:00:42 GMT"})  # FIXED_NOW + 42 s
    case.install(server, before=[limited])
    case.build(server, sleeps, True).fetch()
    assert sleeps.calls == [42.0]


def test_429_forever_raises_rate_limited(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add(case.method, case.path, Reply(429, "{}", headers={"Retry-After": "3"}))
    with pytest.raises(ProviderRateLimited) as info:
        case.build(server, sleeps, True).fetch()
    assert info.value.retry_after_s == 3.0 and info.value.provider == case.key
    assert len(server.seen(case.path)) == RETRY.max_attempts
    assert sleeps.calls == [3.0] * (RETRY.max_attempts - 1)


def test_retry_after_too_long_gives_up_at_once(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add(case.method, case.path, Reply(429, "{}", headers={"Retry-After": "3600"}))
    with pytest.raises(ProviderRateLimited):
        case.build(server, sleeps, True).fetch()
    assert len(server.seen(case.path)) == 1 and sleeps.calls == []


def test_5xx_then_success_backs_off(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    case.install(server, before=[Reply(503, "upstream down"), Reply(500, '{"error": "internal"}')])
    quotes = case.build(server, sleeps, True).fetch()
    assert len(quotes) == case.expected_quotes
    assert len(sleeps.calls) == 2
    assert 1.0 <= sleeps.calls[0] <= 1.0 + RETRY.jitter_s
    assert 2.0 <= sleeps.calls[1] <= 2.0 + RETRY.jitter_s


def test_5xx_forever_raises_unavailable(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add(case.method, case.path, Reply(502, "bad gateway"))
    with pytest.raises(ProviderUnavailable) as info:
        case.build(server, sleeps, True).fetch()
    assert info.value.status_code == 502
    assert info.value.__cause__ is not None
    assert len(server.seen(case.path)) == RETRY.max_attempts


def test_body_not_json(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add(case.method, case.path, Reply(200, "<html>maintenance</html>", content_type="text/html"))
    with pytest.raises(MalformedResponse) as info:
        case.build(server, sleeps, True).fetch()
    assert info.value.__cause__ is not None
    assert len(server.seen(case.path)) == 1


def test_body_in_wrong_shape(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add(case.method, case.path, Reply(200, '{"unexpected": [1, 2, 3]}'))
    with pytest.raises(MalformedResponse):
        case.build(server, sleeps, True).fetch()


def test_auth_failure_is_not_retried(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    server.add(case.method, case.path, case.auth_reply)
    with pytest.raises(ProviderAuthError) as info:
        case.build(server, sleeps, True).fetch()
    assert isinstance(info.value, IngestionError)
    assert len(server.seen(case.path)) == 1 and sleeps.calls == []
    assert "secret" not in str(info.value) and "TESTKEY" not in str(info.value)


def test_missing_credentials(case: Case, server: ReplayServer, sleeps: FakeSleep) -> None:
    if case.needs_credentials:
        with pytest.raises(MissingCredentials) as info:
            case.build(server, sleeps, False)
        assert info.value.provider == case.key
        assert server.requests == []
    else:  # public APIs work without any credentials
        case.install(server)
        assert len(case.build(server, sleeps, False).fetch()) == case.expected_quotes
