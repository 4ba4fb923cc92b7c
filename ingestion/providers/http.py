"""The one HTTP helper provider modules share: timeouts, retries with backoff, error translation.

Policy, in one place:
- 429 and 5xx (500, 502, 503, 504) and network errors/timeouts are retried with exponential backoff
  (tenacity). A ``Retry-After`` header (seconds or HTTP date) on a 429/503 replaces the backoff
  wait; one longer than ``RetryPolicy.max_retry_after_s`` stops retrying at once.
- 401/403 -> ProviderAuthError, other 4xx -> ProviderRequestRejected; never retried.
- A body that is not JSON, or not in the documented shape (a pydantic model), -> MalformedResponse.
Every error is an `IngestionError` raised ``from`` the httpx/pydantic exception it translates.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import httpx
import tenacity
from pydantic import BaseModel, ValidationError

from ingestion.errors import (
    MalformedResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from ingestion.providers.base import ProviderConfig, RetryPolicy

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


_SECRET_PARAMS = frozenset({"api_key", "key", "api_token", "token"})


def redact_url(url: httpx.URL | str) -> str:
    """The URL with credential query parameters blanked, safe for errors and logs."""
    parsed = httpx.URL(str(url))
    if not parsed.params:
        return str(parsed)
    cleaned = [(k, "REDACTED" if k.lower() in _SECRET_PARAMS else v) for k, v in parsed.params.multi_items()]
    return str(parsed.copy_with(params=cleaned))


class RetryableFailure(Exception):
    """One failed attempt worth retrying; carries the error to raise when no attempt is left.

    Raise it (``from`` the foreign exception) inside a function run by `run_with_retries`.
    """

    def __init__(self, error: ProviderError, retry_after_s: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after_s = retry_after_s


class _Wait(tenacity.wait.wait_base):
    """Retry-After when the server sent one, else capped exponential backoff plus jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, RetryableFailure) and failure.retry_after_s is not None:
            return failure.retry_after_s
        attempt: int = retry_state.attempt_number
        backoff = min(self.policy.backoff_max_s, self.policy.backoff_initial_s * 2.0 ** (attempt - 1))
        return backoff + random.uniform(0, self.policy.jitter_s)


class _StopOnLongRetryAfter(tenacity.stop.stop_base):
    """Give up at once when the server asks us to wait longer than we are willing to."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        return (
            isinstance(failure, RetryableFailure)
            and failure.retry_after_s is not None
            and failure.retry_after_s > self.policy.max_retry_after_s
        )


def _log_retry(provider: str) -> Callable[[tenacity.RetryCallState], None]:
    def log(retry_state: tenacity.RetryCallState) -> None:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        logger.warning(
            "%s: attempt %d failed (%s); retrying in %.2fs",
            provider,
            retry_state.attempt_number,
            failure,
            wait,
            extra={"provider": provider, "attempt": retry_state.attempt_number, "wait_s": wait},
        )

    return log


def run_with_retries(fn: Callable[[], T], *, provider: str, config: ProviderConfig) -> T:
    """Call ``fn`` under the config's retry policy; `RetryableFailure`s are retried, and the last
    one's carried error is raised (from its cause) when attempts run out. Other errors pass through."""
    policy = config.retry
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts) | _StopOnLongRetryAfter(policy),
        wait=_Wait(policy),
        retry=tenacity.retry_if_exception_type(RetryableFailure),
        sleep=config.sleep,
        before_sleep=_log_retry(provider),
        reraise=True,
    )
    try:
        return retrying(fn)
    except RetryableFailure as failure:
        raise failure.error from failure.__cause__


class HttpClient:
    """A provider's HTTP session: base URL, auth headers, timeouts and the retry policy."""

    def __init__(
        self,
        *,
        provider: str,
        config: ProviderConfig,
        default_base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.config = config
        self.base_url = (config.base_url or default_base_url).rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": config.user_agent, "Accept": "application/json", **(headers or {})},
            auth=auth,
            timeout=httpx.Timeout(config.timeout_s),
            transport=config.transport,
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Send with retries and return the decoded JSON body."""
        response = self.request(method, url, params=params, json_body=json_body)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedResponse(
                f"{self.provider}: response is not JSON ({response.headers.get('content-type', '?')})",
                provider=self.provider,
                status_code=response.status_code,
                url=redact_url(response.request.url),
            ) from exc

    def get_model(
        self, url: str, model: type[ModelT], *, params: Mapping[str, str | int | float] | None = None
    ) -> ModelT:
        """GET a JSON document and validate it against the documented response model."""
        return self.parse(model, self.request_json("GET", url, params=params), url=url)

    def parse(self, model: type[ModelT], data: Any, *, url: str = "") -> ModelT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise MalformedResponse(
                f"{self.provider}: response not in the documented shape: {exc.error_count()} errors, "
                f"first: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}",
                provider=self.provider,
                url=url,
            ) from exc

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        """Send with the retry policy; return a 2xx response or raise a ProviderError."""
        return run_with_retries(
            lambda: self._send_once(method, url, params=params, json_body=json_body),
            provider=self.provider,
            config=self.config,
        )

    @contextmanager
    def stream_lines(self, url: str) -> Iterator[Iterator[str]]:
        """GET ``url`` and yield its body line by line without holding it in memory.

        Opening the response (status, headers) is retried like any request; a failure in the middle
        of the body cannot be resumed, so it is a ProviderUnavailable for the caller to retry later.
        """
        response = run_with_retries(
            lambda: self._send_once("GET", url, params=None, json_body=None, stream=True),
            provider=self.provider,
            config=self.config,
        )
        try:
            yield self._lines(response, url)
        finally:
            response.close()

    def _lines(self, response: httpx.Response, url: str) -> Iterator[str]:
        try:
            yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"{self.provider}: body of {url} broke off: {exc}", provider=self.provider, url=url
            ) from exc

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int | float] | None,
        json_body: Any,
        stream: bool = False,
    ) -> httpx.Response:
        try:
            request = self._client.build_request(method, url, params=params, json=json_body)
            response = self._client.send(request, stream=stream)
            if stream and response.is_error:
                response.read()
                response.close()
        except httpx.TimeoutException as exc:
            error = ProviderUnavailable(f"{self.provider}: timeout on {url}", provider=self.provider, url=url)
            raise RetryableFailure(error, None) from exc
        except httpx.TransportError as exc:
            error = ProviderUnavailable(
                f"{self.provider}: network error on {url}: {exc}", provider=self.provider, url=url
            )
            raise RetryableFailure(error, None) from exc
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            self._raise_for_status(response, exc)
        return response

    def _raise_for_status(self, response: httpx.Response, exc: httpx.HTTPStatusError) -> None:
        status = response.status_code
        where = redact_url(response.request.url)
        detail = response.text[:300]
        if status in RETRYABLE_STATUS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.config.clock())
            error: ProviderError
            if status == 429:
                error = ProviderRateLimited(
                    f"{self.provider}: rate limited (429): {detail}",
                    provider=self.provider,
                    url=where,
                    retry_after_s=retry_after,
                )
            else:
                error = ProviderUnavailable(
                    f"{self.provider}: HTTP {status}: {detail}", provider=self.provider, status_code=status, url=where
                )
            raise RetryableFailure(error, retry_after) from exc
        if status in (401, 403):
            raise ProviderAuthError(
                f"{self.provider}: credentials rejected (HTTP {status}): {detail}",
                provider=self.provider,
                status_code=status,
                url=where,
            ) from exc
        raise ProviderRequestRejected(
            f"{self.provider}: HTTP {status}: {detail}", provider=self.provider, status_code=status, url=where
        ) from exc
