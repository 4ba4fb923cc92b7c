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
registry. Counts are counters, latencies histograms; what storage knows (jobs waiting, money) is
computed at scrape time by the API's collectors, never accumulated here.

prometheus_client and ``http.server`` are imported at first use, and a process records values only
once it serves or reads metrics (``prepare_dir``, ``serve_metrics``, ``init_job_kinds``,
``process_registry``) or writes them to a multiprocess directory: the embedded CLI does none of these,
so its jobs skip the ~0.12 s of those imports (measured under load) for counts nobody could scrape.
"""

from __future__ import annotations

import hmac
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import http.server

    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
JOB_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800)
SOLVE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
JOB_OUTCOMES = ("finished", "infeasible", "failed", "canceled", "retried")

_identity_override: str | None = None
_lock = threading.Lock()
_served = False
"""True once this process serves or reads metrics (see the module docstring)."""


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
    from prometheus_client import values

    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        values.ValueClass = values.MutexValue
        return
    if not getattr(values.ValueClass, "_cloudarb", False):
        cls = values.MultiProcessValue(process_identifier=_identity)  # type: ignore[no-untyped-call]
        cls._cloudarb = True
        values.ValueClass = cls


def _recording() -> bool:
    """Whether values recorded now can ever be read: metrics are served or read in this process, or
    go to the multiprocess files that a server sums."""
    return _served or multiproc_dir() is not None


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
    global _served
    _served = True
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
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(_identity(), path)  # type: ignore[no-untyped-call]


def remove_dir(path: Path) -> None:
    """Empty the metrics directory at the end of ``serve`` or ``worker``, and remove it if this
    process named it (``<role>-<pid>``)."""
    for child in path.glob("*"):
        if child.is_file():
            child.unlink(missing_ok=True)
    if path.name.endswith(f"-{os.getpid()}"):
        shutil.rmtree(path, ignore_errors=True)


def _metrics_response(path: str, authorization: str, token: str | None) -> tuple[int, bytes, str]:
    """Status, body and content type of the worker's endpoint for one GET (``serve_metrics``)."""
    path = path.partition("?")[0]
    if path == "/livez":
        return 200, b'{"status": "alive"}', "application/json"
    if path != "/metrics":
        return 404, b"not found\n", "text/plain"
    if token is not None:
        given = authorization.removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return 401, b"metrics need 'Authorization: Bearer <CLOUDARB_METRICS_TOKEN>'\n", "text/plain"
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return 200, generate_latest(process_registry()), CONTENT_TYPE_LATEST


def serve_metrics(host: str, port: int, *, token: str | None) -> http.server.ThreadingHTTPServer:
    """A worker's own ``/metrics`` (its process and work horses) and ``/livez``, on a daemon thread.
    With ``token`` set (``CLOUDARB_METRICS_TOKEN``), ``/metrics`` wants it as a bearer token."""
    import http.server

    global _served
    _served = True

    class MetricsHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, content_type = _metrics_response(self.path, self.headers.get("Authorization", ""), token)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # scrapes are not worth a log line each
            return

    server = http.server.ThreadingHTTPServer((host, port), MetricsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="cloudarb-metrics", daemon=True).start()
    return server


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    http_requests: Counter
    http_latency: Histogram
    jobs: Counter
    job_seconds: Histogram
    solve_seconds: Histogram
    reconcile_passes: Counter
    orphans_found: Counter


_metrics: Metrics | None = None


def metrics() -> Metrics:
    """The metric objects, made on first use (after ``prepare_dir`` chose where values go)."""
    global _metrics
    with _lock:
        if _metrics is None:
            from prometheus_client import CollectorRegistry, Counter, Histogram

            _use_files()
            reg = CollectorRegistry(auto_describe=True)  # this process's metrics, without the directory
            reg.register(ProcessStats(None))
            _metrics = Metrics(
                registry=reg,
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
    global _served
    _served = True
    m = metrics()
    for kind in kinds:
        for outcome in JOB_OUTCOMES:
            m.jobs.labels(kind, outcome)


def job_ended(kind: str, outcome: str, seconds: float) -> None:
    if not _recording():
        return
    m = metrics()
    m.jobs.labels(kind, outcome).inc()
    m.job_seconds.labels(kind, outcome).observe(max(0.0, seconds))


def solve_ended(seconds: float) -> None:
    if _recording():
        metrics().solve_seconds.observe(max(0.0, seconds))


def reconcile_pass(provider: str, outcome: str, orphans: int = 0) -> None:
    """One reconciler pass over one provider account (``outcome``: ok, or failed when it aborted or
    an action failed) and the orphans it saw (an orphan counts on every pass until it is destroyed)."""
    if not _recording():
        return
    m = metrics()
    m.reconcile_passes.labels(provider, outcome).inc()
    m.orphans_found.labels(provider).inc(max(0, orphans))


def request_done(method: str, route: str, status: int, seconds: float) -> None:
    if not _recording():
        return
    m = metrics()
    m.http_requests.labels(method, route, str(status)).inc()
    m.http_latency.labels(method, route, str(status)).observe(seconds)


class ProcessStats:
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
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
    global _served
    _served = True
    path = multiproc_dir()
    if path and os.path.isdir(path):
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        registry.register(ProcessStats(path))
        return registry
    return metrics().registry
