"""One attempt at a hook: POST a signed body to a webhook, or run a configured command.

Both answer an ``Attempt`` and never raise: what happened is data the delivery log records. Retry
policy as data: a webhook is retried on timeouts, connection errors, 5xx, 408 and 429; other 4xx and
redirects are final (the receiver refused). A command is retried when it timed out; a non-zero exit
is final (the command's own verdict, which is what a "before" hook is for). A command gets the body
on stdin and only a small environment (PATH, HOME, LANG and the ``CLOUDARB_EVENT`` family), never the
server's own settings; it runs in its own process group, killed whole at the timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import httpx

from cloudarb.hooks import signing

RETRY_STATUS = frozenset({408, 429})
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retryable: bool
    summary: str
    duration_ms: float
    status_code: int | None = None
    exit_code: int | None = None
    output: str | None = None

    def log_entry(self, number: int, at: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"attempt": number, "at": at, "ok": self.ok, "summary": self.summary,
                                 "duration_ms": round(self.duration_ms, 1)}
        if self.status_code is not None:
            entry["status_code"] = self.status_code
        if self.exit_code is not None:
            entry["exit_code"] = self.exit_code
        return entry


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "[...truncated]\n" + text[-limit:]


def post_webhook(
    url: str, body: bytes, *, secret: str, event: str, delivery_id: str, timeout_s: float, output_limit: int
) -> Attempt:
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CloudArb-Hooks/1",
        signing.HEADER: signing.sign(secret, body, timestamp),
        "X-CloudArb-Event": event,
        "X-CloudArb-Delivery": delivery_id,
    }
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return Attempt(False, True, f"timed out after {timeout_s:g}s ({type(exc).__name__})",
                       (time.monotonic() - started) * 1000)
    except httpx.HTTPError as exc:
        return Attempt(False, True, f"could not connect: {exc}", (time.monotonic() - started) * 1000)
    elapsed = (time.monotonic() - started) * 1000
    code = response.status_code
    text = _tail(response.text, output_limit)
    if 200 <= code < 300:
        return Attempt(True, False, f"HTTP {code}", elapsed, status_code=code, output=text)
    retryable = code >= 500 or code in RETRY_STATUS
    return Attempt(False, retryable, f"HTTP {code}", elapsed, status_code=code, output=text)


def run_command(
    argv: list[str], body: bytes, *, env: dict[str, str], timeout_s: float, output_limit: int,
    cwd: str | None = None,
) -> Attempt:
    full_env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    full_env.update(env)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=full_env, start_new_session=True, cwd=cwd)
    except OSError as exc:
        return Attempt(False, False, f"cannot run {argv[0]!r}: {exc.strerror or exc}",
                       (time.monotonic() - started) * 1000)
    try:
        out, _ = proc.communicate(body, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        text = _tail(out.decode("utf-8", "replace"), output_limit)
        return Attempt(False, True, f"timed out after {timeout_s:g}s (killed)", (time.monotonic() - started) * 1000,
                       exit_code=proc.returncode, output=text)
    elapsed = (time.monotonic() - started) * 1000
    text = _tail(out.decode("utf-8", "replace"), output_limit)
    if proc.returncode == 0:
        return Attempt(True, False, "exit 0", elapsed, exit_code=0, output=text)
    return Attempt(False, False, f"exit {proc.returncode}", elapsed, exit_code=proc.returncode, output=text)
