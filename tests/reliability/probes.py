"""API probes shared by the tests and scripts/chaos_jobs.py: read-your-writes on one keep-alive
connection for every write route, a chunked oversized body against a real server, and the hostile
input table."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

POLICY_REQUEST = {
    "workloads": [{"id": "serve", "gpus_min": 2, "min_vram_gb": 24, "workload_type": "inference"}],
    "time_limit_s": 2,
}


def _check(failures: dict[str, int], route: str, ok: bool) -> None:
    failures.setdefault(route, 0)
    if not ok:
        failures[route] += 1


def read_your_writes(base: str, admin_key: str, *, n: int = 100, users: int | None = None) -> dict[str, int]:
    """Failures per write route: each write answered 2xx, then read at once on the same keep-alive
    connection, must be visible (or gone, for deletes). ``users`` bounds the user creations (bcrypt)."""
    failures: dict[str, int] = {}
    h = {"X-API-Key": admin_key}
    with httpx.Client(base_url=base, headers=h, timeout=60) as c:
        for i in range(n):
            r = c.post("/optimize", json=POLICY_REQUEST)
            opt = r.json() if r.status_code == 202 else {}
            _check(failures, "POST /optimize", r.status_code == 202
                   and c.get(f"/optimize/{opt['id']}").status_code == 200
                   and c.get(f"/jobs/{opt['job_id']}").status_code == 200)
            if opt:
                d = c.delete(f"/optimize/{opt['id']}")
                after = c.get(f"/optimize/{opt['id']}").json().get("status")
                _check(failures, "DELETE /optimize/{id}", d.status_code == 200 and after == d.json().get("status"))
                j = c.delete(f"/jobs/{opt['job_id']}")
                _check(failures, "DELETE /jobs/{id}", j.status_code == 200
                       and c.get(f"/jobs/{opt['job_id']}").json().get("status") == j.json().get("status"))
            r = c.post("/policies", json={"name": f"ryw-{i}", "request": POLICY_REQUEST, "interval_s": 86400})
            policy = r.json() if r.status_code == 201 else {}
            _check(failures, "POST /policies", bool(policy) and c.get(f"/policies/{policy['id']}").status_code == 200)
            if policy:
                pid = policy["id"]
                run = c.post(f"/policies/{pid}/run")
                _check(failures, "POST /policies/{id}/run", run.status_code == 202
                       and c.get(f"/jobs/{run.json()['job_id']}").status_code == 200)
                s = c.post(f"/forecasts/demand-policies/{pid}")
                _check(failures, "POST /forecasts/demand-policies/{id}", s.status_code == 200
                       and c.get(f"/forecasts/demand-policies/{pid}").status_code == 200)
                cl = c.delete(f"/forecasts/demand-policies/{pid}")
                _check(failures, "DELETE /forecasts/demand-policies/{id}", cl.status_code == 200
                       and c.get(f"/forecasts/demand-policies/{pid}").status_code == 404)
                d = c.delete(f"/policies/{pid}")
                _check(failures, "DELETE /policies/{id}", d.status_code in (200, 204)
                       and c.get(f"/policies/{pid}").status_code == 404)
            k = c.post("/auth/api-keys", json={"name": f"ryw-{i}", "role": "viewer"})
            key = k.json() if k.status_code == 201 else {}
            _check(failures, "POST /auth/api-keys", bool(key)
                   and c.get("/auth/me", headers={"X-API-Key": key["key"]}).status_code == 200)
            if key:
                rv = c.delete(f"/auth/api-keys/{key['id']}")
                _check(failures, "DELETE /auth/api-keys/{id}", rv.status_code == 204
                       and c.get("/auth/me", headers={"X-API-Key": key["key"]}).status_code == 401)
            if users is None or i < users:
                email = f"ryw-{uuid.uuid4().hex[:10]}@example.com"
                u = c.post("/auth/users", json={"email": email, "password": "a long enough password", "role": "viewer"})
                _check(failures, "POST /auth/users", u.status_code == 201
                       and any(x["email"] == email for x in c.get("/auth/users").json()))
    return failures


def chunked_oversized(host: str, port: int, *, total_mb: int = 300, chunk_kb: int = 256) -> tuple[int, int]:
    """POST a chunked body of ``total_mb`` MB without credentials; returns (status, MB sent before the
    answer). Stops sending as soon as the server answers or closes."""
    chunk = b"x" * (chunk_kb * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"POST /optimize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        s.settimeout(0.0)
        response = b""
        while sent < total_mb * 1024 * 1024:
            try:
                response += s.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                break
            if response:
                break
            try:
                s.settimeout(5)
                s.sendall(frame)
                s.settimeout(0.0)
            except OSError:
                break
            sent += len(chunk)
        s.settimeout(10)
        try:
            while b"\r\n" not in response:
                more = s.recv(65536)
                if not more:
                    break
                response += more
        except OSError:
            pass
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return status, sent // (1024 * 1024)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# The hostile-input table: (method, path, json body or None, query params or None).
NUL = "bad\x00value"
HOSTILE: list[tuple[str, str, Any, dict[str, Any] | None]] = [
    ("POST", "/optimize", {"name": NUL, **POLICY_REQUEST}, None),
    ("POST", "/optimize", {"workloads": [{"id": NUL, "gpus_min": 2, "workload_type": "inference"}]}, None),
    ("POST", "/optimize", {**POLICY_REQUEST, "constraints": {"budget_per_hour": float("inf")}}, None),
    ("POST", "/optimize", {**POLICY_REQUEST, "risk_tolerance": float("nan")}, None),
    ("POST", "/optimize", {**POLICY_REQUEST, "offers": {"max_age_s": 10**12}}, None),
    ("POST", "/optimize", {**POLICY_REQUEST, "horizon_hours": 10**30}, None),
    ("POST", "/optimize", {"workloads": [{"id": "a", "gpus_min": 2**70, "workload_type": "inference"}]}, None),
    ("POST", "/policies", {"name": NUL, "request": POLICY_REQUEST, "interval_s": 3600}, None),
    ("POST", "/policies", {"name": "p", "request": POLICY_REQUEST, "interval_s": 2**63}, None),
    ("POST", "/policies", {"name": "p", "request": POLICY_REQUEST, "interval_s": 3600,
                           "keep_threshold_pct": float("-inf")}, None),
    ("POST", "/auth/api-keys", {"name": NUL, "role": "viewer"}, None),
    ("POST", "/auth/users", {"email": "a\x00@example.com", "password": "a long enough password"}, None),
    ("POST", "/auth/login", {"email": "x\x00@example.com", "password": NUL}, None),
    ("POST", "/forecasts/usage", {"points": [{"workload_id": "w", "hour": "0001-01-01T00:00:00+14:00",
                                              "gpu_hours": 1}]}, None),
    ("POST", "/forecasts/usage", {"points": [{"workload_id": "w", "hour": "9999-12-31T23:59:59-14:00",
                                              "gpu_hours": 1}]}, None),
    ("POST", "/forecasts/usage", {"points": [{"workload_id": NUL, "hour": "2026-01-01T00:00:00Z",
                                              "gpu_hours": 1}]}, None),
    ("POST", "/forecasts/usage", {"points": [{"workload_id": "w", "hour": "2026-01-01T00:00:00Z",
                                              "gpu_hours": 1e400}]}, None),
    ("GET", "/offers", None, {"max_age_s": "115153772422"}),
    ("GET", "/offers", None, {"gpu_type": NUL}),
    ("GET", "/offers", None, {"max_price": "inf"}),
    ("GET", "/offers", None, {"limit": str(2**64)}),
    ("GET", "/jobs", None, {"offset": str(2**40)}),
    ("GET", "/prices/history", None, {"offer_key": NUL}),
    ("GET", "/forecasts", None, {"gpu_model": NUL}),
    ("GET", "/gpus", None, {"name": NUL}),
    ("GET", "/jobs/x/events", None, {"after": str(2**31)}),
    ("GET", "/jobs/bad\x00id", None, None),
    ("POST", "/forecasts/demand-policies/x", None, {"quantile": "nan"}),
    ("POST", "/forecasts/demand-policies/x", None, {"horizon_hours": str(2**40)}),
]


def hostile_answers(call: Callable[..., httpx.Response], headers: dict[str, str]) -> list[tuple[str, str, int, str]]:
    """(method, path, status, error field) for every row of the table."""
    import json

    out = []
    for method, path, body, params in HOSTILE:
        kwargs: dict[str, Any] = {"headers": {**headers, "Content-Type": "application/json"}, "params": params}
        if body is not None:
            kwargs["content"] = json.dumps(body).encode()
        r = call(method, path.replace("\x00", "%00"), **kwargs)
        field = ""
        if r.headers.get("content-type", "").startswith("application/json"):
            field = str((r.json().get("error") or {}).get("field") or "")
        out.append((method, path, r.status_code, field))
    return out


def elapsed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    return fn(), time.perf_counter() - started
