"""Health probes against real loopback servers (an HTTP server, a TCP listener), and the tracker's rules:
a start-up grace, N failures in a row after a pass, recovery, a restart's fresh grace."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloudarb.agent.health import HealthTracker, ProbeResult, probe, probe_http, probe_tcp
from cloudarb.agent.protocol import HealthCheckSpec


class _Handler(http.server.BaseHTTPRequestHandler):
    release: threading.Event

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.release.wait(30)
        code = {"/ok": 200, "/fail": 500, "/moved": 302, "/slow": 200}.get(self.path, 404)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/login")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture()
def http_port() -> Iterator[int]:
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_http_2xx_and_3xx_are_healthy(http_port: int) -> None:
    ok = probe_http(f"http://127.0.0.1:{http_port}/ok", timeout_s=5)
    moved = probe_http(f"http://127.0.0.1:{http_port}/moved", timeout_s=5)
    assert ok.ok and "200" in ok.detail
    assert moved.ok and "302" in moved.detail


def test_http_500_and_404_are_failures_naming_the_status(http_port: int) -> None:
    failed = probe_http(f"http://127.0.0.1:{http_port}/fail", timeout_s=5)
    missing = probe_http(f"http://127.0.0.1:{http_port}/nothing", timeout_s=5)
    assert not failed.ok and "HTTP 500" in failed.detail
    assert not missing.ok and "HTTP 404" in missing.detail


def test_http_refused_and_timeout(http_port: int) -> None:
    refused = probe_http(f"http://127.0.0.1:{_closed_port()}/ok", timeout_s=5)
    slow = probe_http(f"http://127.0.0.1:{http_port}/slow", timeout_s=0.5)
    assert not refused.ok and "refused" in refused.detail
    assert not slow.ok and "timed out" in slow.detail


def test_tcp_accepted_refused_and_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        assert probe_tcp("127.0.0.1", port, timeout_s=5).ok
        # The listener never accepts: once its accept queue is full the kernel drops new SYNs, so a
        # connection attempt hangs like one to a wedged service.
        held = []
        result = ProbeResult(True, "")
        for _ in range(8):
            result = probe_tcp("127.0.0.1", port, timeout_s=0.5)
            if not result.ok:
                break
            held.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
        for s in held:
            s.close()
        assert not result.ok and "timed out" in result.detail
    refused = probe_tcp("127.0.0.1", _closed_port(), timeout_s=5)
    assert not refused.ok and "refused" in refused.detail


def test_probe_uses_the_published_host_port(http_port: int) -> None:
    check = HealthCheckSpec(kind="http", port=8080, path="/ok")
    assert probe(check, state="running", published_ports={"8080/tcp": http_port}).ok
    unpublished = probe(check, state="running", published_ports={"22/tcp": http_port})
    assert not unpublished.ok and "8080/tcp is not published" in unpublished.detail
    stopped = probe(check, state="exited", published_ports={"8080/tcp": http_port})
    assert not stopped.ok and "exited" in stopped.detail
    assert probe(HealthCheckSpec(kind="running"), state="running", published_ports={}).ok
    tcp = HealthCheckSpec(kind="tcp", port=8080)
    assert probe(tcp, state="running", published_ports={"8080/tcp": http_port}).ok


T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
BAD = ProbeResult(False, "GET http://127.0.0.1:1/ refused the connection")
GOOD = ProbeResult(True, "GET http://127.0.0.1:1/ answered 200")


def _at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_failures_inside_the_grace_are_starting_then_unhealthy_with_the_last_reason() -> None:
    t = HealthTracker(HealthCheckSpec(kind="http", port=80, interval_s=10, grace_s=30, failures=3), started_at=T0)
    assert t.due(T0) and not t.record(BAD, _at(0)) and t.state == "starting" and "refused" in t.detail
    assert not t.due(_at(5)) and t.due(_at(10))
    t.record(BAD, _at(10))
    t.record(BAD, _at(20))
    assert t.state == "starting"
    assert t.record(BAD, _at(30)) and t.state == "unhealthy"
    assert "never healthy within the 30 s grace" in t.detail and "refused" in t.detail and t.healthy_since is None


def test_after_a_pass_n_failures_in_a_row_make_it_unhealthy_and_a_pass_heals() -> None:
    t = HealthTracker(HealthCheckSpec(kind="tcp", port=22, interval_s=10, grace_s=300, failures=3), started_at=T0)
    assert t.record(GOOD, _at(0)) and (t.state, t.healthy_since) == ("healthy", _at(0))
    t.record(BAD, _at(10))
    t.record(GOOD, _at(20))  # a pass resets the count
    t.record(BAD, _at(30))
    t.record(BAD, _at(40))
    assert t.state == "healthy" and t.healthy_since == _at(0)
    assert t.record(BAD, _at(50)) and t.state == "unhealthy" and t.healthy_since is None and "refused" in t.detail
    assert t.record(GOOD, _at(60)) and (t.state, t.healthy_since) == ("healthy", _at(60))


def test_a_restart_starts_a_fresh_grace() -> None:
    t = HealthTracker(HealthCheckSpec(kind="tcp", port=22, grace_s=30, failures=1), started_at=T0)
    t.record(GOOD, _at(0))
    t.record(BAD, _at(10))
    assert t.state == "unhealthy"
    t.restarted(_at(11))
    assert (t.state, t.restarts, t.due(_at(11))) == ("starting", 1, True)
    t.record(BAD, _at(12))
    assert t.state == "starting"
