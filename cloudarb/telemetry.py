"""Prometheus metrics recorded where things happen, right across processes.

``cloudarb serve --workers N`` runs N API processes behind one port and ``cloudarb worker`` forks a
work horse per job, so a metric kept in one process's memory is wrong: scrapes land on whichever
process answers and a counter seems to jump back (measured before: 18, 19, 21, 23, 13, 14). Here every
process writes its values to memory-mapped files in one directory (prometheus_client's multiprocess
mode, ``PROMETHEUS_MULTIPROC_DIR``) and a scrape sums them, so counters only grow while the deployment
lives. ``prepare_dir`` makes that directory fresh when a server or worker starts.

A work horse writes to a file named after its parent worker (``<ppid>-horse``), not after its own
pid: one worker runs one horse at a time, so successive horses share one file instead of leaving
one file per job (a scrape reads every file; thousands of jobs would make scrapes slow).

Without the variable (tests, ``create_app`` in a script) the same metrics live in this process's
``REGISTRY``. Counts are counters, latencies histograms; what storage knows (jobs waiting, money) is
computed at scrape time by the API's collectors, never accumulated here.
"""

from __future__ import annotations

import hmac
import http.server
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
JOB_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800)
SOLVE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
JOB_OUTCOMES = ("finished", "infeasible", "failed", "canceled", "retried")

_identity_override: str | None = None
_lock = threading.Lock()


def _identity() -> str:
    """The name of this process's metric files (see the module docstring for work horses)."""
    return _identity_override or str(os.getpid())


def multiproc_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _use_files() -> None:
    """Write values to the multiprocess files (before the first value is created in this process).

    A command other than ``serve`` or ``worker`` run where the variable is set (the image sets it)
    creates the directory if it can, and otherwise keeps its metrics in memory rather than fail."""
    path = multiproc_dir()
    if not path:
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        values.ValueClass = values.MutexValue
        return
    if not getattr(values.ValueClass, "_cloudarb", False):
        cls = values.MultiProcessValue(process_identifier=_identity)  # type: ignore[no-untyped-call]
        cls._cloudarb = True
        values.ValueClass = cls


_use_files()


def prepare_dir(base: Path, role: str) -> Path:
    """A fresh metrics directory for this process and its children, exported in the environment.

    With ``PROMETHEUS_MULTIPROC_DIR`` already set (a container's emptyDir), that directory is emptied
    and used. Otherwise ``<base>/<role>-<pid>``; directories of earlier processes that are gone are
    removed. Call before any metric is touched (``serve`` and ``worker`` do it first thing)."""
    preset = multiproc_dir()
    if preset:  # maybe a mount point: empty it, keep the directory
        path = Path(preset)
        for child in path.glob("*") if path.is_dir() else ():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    else:
        base.mkdir(parents=True, exist_ok=True)
        for old in base.glob(f"{role}-*"):
            pid = old.name.rpartition("-")[2]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        path = base / f"{role}-{os.getpid()}"
        if path.exists():
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    _use_files()
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def become_work_horse() -> None:
    """In a freshly forked work horse: write to the parent worker's horse file (one per worker)."""
    global _identity_override
    _identity_override = f"{os.getppid()}-horse"


def process_exiting() -> None:
    """Bookkeeping when a process that wrote metrics ends (drops its live gauges, keeps its counts)."""
    path = multiproc_dir()
    if path and os.path.isdir(path):
        mark_process_dead(_identity(), path)  # type: ignore[no-untyped-call]


def remove_dir(path: Path) -> None:
    """Empty the metrics directory at the end of ``serve`` or ``worker``, and remove it if this
    process named it (``<role>-<pid>``)."""
    for child in path.glob("*"):
        if child.is_file():
            child.unlink(missing_ok=True)
    if path.name.endswith(f"-{os.getpid()}"):
        shutil.rmtree(path, ignore_errors=True)


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    token: str | None = None

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/livez":
            self._answer(200, b'{"status": "alive"}', "application/json")
            return
        if path != "/metrics":
            self._answer(404, b"not found\n", "text/plain")
            return
        if self.token is not None:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                self._answer(401, b"metrics need 'Authorization: Bearer <CLOUDARB_METRICS_TOKEN>'\n", "text/plain")
                return
        self._answer(200, generate_latest(process_registry()), CONTENT_TYPE_LATEST)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # scrapes are not worth a log line each
        return


def serve_metrics(host: str, port: int, *, token: str | None) -> http.server.ThreadingHTTPServer:
    """A worker's own ``/metrics`` (its process and work horses) and ``/livez``, on a daemon thread.
    With ``token`` set (``CLOUDARB_METRICS_TOKEN``), ``/metrics`` wants it as a bearer token."""
    handler = type("MetricsHandler", (_MetricsHandler,), {"token": token})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="cloudarb-metrics", daemon=True).start()
    return server


@dataclass(frozen=True)
class Metrics:
    http_requests: Counter
    http_latency: Histogram
    jobs: Counter
    job_seconds: Histogram
    solve_seconds: Histogram
    reconcile_passes: Counter
    orphans_found: Counter


REGISTRY = CollectorRegistry(auto_describe=True)
"""This process's metrics when the multiprocess directory is not in use."""

_metrics: Metrics | None = None


def metrics() -> Metrics:
    """The metric objects, made on first use (after ``prepare_dir`` chose where values go)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _use_files()
            reg = REGISTRY
            _metrics = Metrics(
                http_requests=Counter("cloudarb_http_requests", "HTTP requests answered",
                                      ["method", "route", "status"], registry=reg),
                http_latency=Histogram("cloudarb_http_request_seconds", "HTTP request latency",
                                       ["method", "route", "status"], registry=reg, buckets=LATENCY_BUCKETS),
                jobs=Counter("cloudarb_jobs", "Job attempts that ended, by kind and outcome",
                             ["kind", "outcome"], registry=reg),
                job_seconds=Histogram("cloudarb_job_seconds", "Wall time of one job attempt",
                                      ["kind", "outcome"], registry=reg, buckets=JOB_BUCKETS),
                solve_seconds=Histogram("cloudarb_solve_seconds", "Solver wall time per optimization",
                                        registry=reg, buckets=SOLVE_BUCKETS),
                reconcile_passes=Counter("cloudarb_reconcile_passes", "Reconciler passes, by provider and outcome",
                                         ["provider", "outcome"], registry=reg),
                orphans_found=Counter("cloudarb_orphans_found", "Orphan sightings: provider instances with our "
                                      "mark and no live row, counted on each reconcile pass that sees them",
                                      ["provider"], registry=reg),
            )
        return _metrics


def init_job_kinds(kinds: Iterable[str]) -> None:
    """Create the zero series of every kind and outcome, so rates and alerts see 0 rather than nothing."""
    m = metrics()
    for kind in kinds:
        for outcome in JOB_OUTCOMES:
            m.jobs.labels(kind, outcome)


def job_ended(kind: str, outcome: str, seconds: float) -> None:
    m = metrics()
    m.jobs.labels(kind, outcome).inc()
    m.job_seconds.labels(kind, outcome).observe(max(0.0, seconds))


def solve_ended(seconds: float) -> None:
    metrics().solve_seconds.observe(max(0.0, seconds))


def reconcile_pass(provider: str, outcome: str, orphans: int = 0) -> None:
    """One reconciler pass over one provider account (``outcome``: ok, or failed when it aborted or
    an action failed) and the orphans it saw (an orphan counts on every pass until it is destroyed)."""
    m = metrics()
    m.reconcile_passes.labels(provider, outcome).inc()
    m.orphans_found.labels(provider).inc(max(0, orphans))


def request_done(method: str, route: str, status: int, seconds: float) -> None:
    m = metrics()
    m.http_requests.labels(method, route, str(status)).inc()
    m.http_latency.labels(method, route, str(status)).observe(seconds)


class ProcessStats(Collector):
    """CPU, memory and open files of each live process of this deployment (by ``pid``), read from
    ``/proc`` at scrape time: the processes that wrote metric files, or this one alone. Linux only;
    elsewhere the families are empty."""

    _TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    _PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, path: str | None) -> None:
        self.path = path

    def pids(self) -> list[int]:
        if not self.path:
            return [os.getpid()]
        found = {name.rpartition("_")[2].removesuffix(".db") for name in os.listdir(self.path)}
        return sorted(int(p) for p in found if p.isdigit() and _alive(int(p)))

    def collect(self) -> Iterator[Metric]:
        cpu = CounterMetricFamily("cloudarb_process_cpu_seconds", "CPU time of the process", labels=["pid"])
        rss = GaugeMetricFamily("cloudarb_process_resident_memory_bytes", "Resident memory", labels=["pid"])
        fds = GaugeMetricFamily("cloudarb_process_open_fds", "Open file descriptors", labels=["pid"])
        count = GaugeMetricFamily("cloudarb_processes", "Live processes of this deployment writing metrics")
        live = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                open_fds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue
            live += 1
            # after the command name: state is field 3, utime 14, stime 15, rss 24 (1-based, man proc)
            cpu.add_metric([str(pid)], (int(fields[11]) + int(fields[12])) / self._TICKS)
            rss.add_metric([str(pid)], int(fields[21]) * self._PAGE)
            fds.add_metric([str(pid)], open_fds)
        count.add_metric([], live)
        yield from (cpu, rss, fds, count)


def process_registry() -> CollectorRegistry:
    """What a scrape of this deployment's process metrics reads: the summed files and the live
    processes' resources, or this process alone."""
    path = multiproc_dir()
    if path and os.path.isdir(path):
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        registry.register(ProcessStats(path))
        return registry
    metrics()
    return REGISTRY


REGISTRY.register(ProcessStats(None))
