"""Commands: serve, worker, scheduler, optimize, schema, offers, gpus, catalog, jobs, db, admin.

Every error the application raises on purpose (``cloudarb.errors.CloudArbError``: an unknown GPU
name, a bad catalog file...) is printed as one line on stderr with exit status 1, never a traceback.
``cloudarb optimize`` exits 3 when the fleet is infeasible.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from cloudarb.cli import catalog
from cloudarb.cli import export as export_cmd
from cloudarb.cli.agent import agent_app
from cloudarb.cli.deploy import costs_app, deployments_app
from cloudarb.cli.deploy import deploy as deploy_cmd
from cloudarb.cli.forecasts import forecasts_app
from cloudarb.cli.hooks import hooks_app
from cloudarb.cli.nodes import nodes_app
from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console, err_console
from cloudarb.cli.templates import templates_app

INFEASIBLE_EXIT = 3
"""Exit status of `cloudarb optimize` when no plan meets the constraints (1 = failed, 0 = a plan)."""


class _App(typer.Typer):
    """The command group; an application error becomes a one-line message and exit status 1."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from cloudarb.errors import CloudArbError

        try:
            return super().__call__(*args, **kwargs)
        except CloudArbError as exc:
            err_console.print(f"[red]error:[/red] {exc.message}", markup=True, highlight=False)
            raise SystemExit(1) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"cloudarb {version('cloudarb')}")
        except PackageNotFoundError:
            console.print("cloudarb (not installed)")
        raise typer.Exit()


app = _App(help="CloudArb: GPU-compute cost optimizer.", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
jobs_app = typer.Typer(help="Jobs on a CloudArb server.", no_args_is_help=True)
admin_app = typer.Typer(help="Organizations, first admin, API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(admin_app, name="admin")
app.add_typer(catalog.catalog_app, name="catalog")
app.add_typer(nodes_app, name="nodes")
app.add_typer(templates_app, name="templates")
app.add_typer(agent_app, name="agent")
app.command("gpus")(catalog.gpus)
app.command("export")(export_cmd.export)
app.add_typer(hooks_app, name="hooks")
app.add_typer(forecasts_app, name="forecasts")
app.command("deploy")(deploy_cmd)
app.add_typer(deployments_app, name="deployments")
app.add_typer(costs_app, name="costs")


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """CloudArb: GPU-compute cost optimizer."""



def _validation_message(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:10]:
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"  {loc}: {e['msg']}")
    return "invalid input:\n" + "\n".join(parts)


def _context() -> Any:
    from cloudarb.config import get_settings
    from cloudarb.context import build_context

    return build_context(get_settings())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (production mode only).")] = 1,
) -> None:
    """Run the API server (embedded mode also runs jobs and the scheduler in this process)."""
    import uvicorn

    from cloudarb import logs, telemetry
    from cloudarb.config import get_settings

    settings = get_settings()
    if settings.embedded and workers > 1:
        raise fail("embedded mode runs jobs in-process: use one server process, or set CLOUDARB_REDIS_URL")
    # one metrics directory for every server process (counters summed across them), fresh per start
    metrics_dir = telemetry.prepare_dir(settings.data_dir / "metrics", "serve")
    logs.configure(settings.log_level)
    try:
        uvicorn.run("cloudarb.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level=settings.log_level.lower(), log_config=logs.uvicorn_config(settings.log_level))
    finally:
        telemetry.remove_dir(metrics_dir)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
    scheduler: Annotated[bool, typer.Option(help="Also run the policy scheduler and stale-job reaper.")] = True,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve this worker's /metrics and /livez on this port (all interfaces).")] = None,
    heartbeat_file: Annotated[Path | None, typer.Option(
        help="Touch this file every few seconds while the worker runs (a liveness probe checks its age).")] = None,
) -> None:
    """Run an RQ worker on the configured Redis (production mode)."""
    from cloudarb import logs, telemetry
    from cloudarb.config import get_settings

    settings = get_settings()
    if not settings.redis_url:
        raise fail("CLOUDARB_REDIS_URL is not set: the embedded mode runs jobs inside `cloudarb serve`")
    metrics_dir = telemetry.prepare_dir(settings.data_dir / "metrics", "worker")
    logs.configure(settings.log_level)
    from cloudarb.worker import run

    try:
        run(burst=burst, scheduler=scheduler, metrics_port=metrics_port, heartbeat_file=heartbeat_file)
    finally:
        telemetry.remove_dir(metrics_dir)


@app.command("scheduler")
def run_scheduler() -> None:
    """Run only the policy scheduler and stale-job reaper (production mode)."""
    from cloudarb import logs
    from cloudarb.config import get_settings
    from cloudarb.scheduler import Scheduler
    from cloudarb.worker import process_context

    logs.configure(get_settings().log_level)
    sched = Scheduler(process_context())
    sched.start()
    sched.join()


def _read_data(path: Path) -> Any:
    """A request file's data: JSON for .json, YAML for .yaml/.yml, else whichever parses."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from exc
    suffix = path.suffix.lower()
    if suffix != ".json":
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            if suffix in (".yaml", ".yml"):
                raise fail(f"{path} is not valid YAML: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{path} is not valid JSON: {exc}") from exc


def _load_request(path: Path) -> Any:
    """A request file (JSON or YAML; today's shape or the original API's) as an ``OptimizeRequest``
    with GPU names resolved through the identity table."""
    from pydantic import TypeAdapter

    from cloudarb.gpu_names import resolve_workloads
    from cloudarb.optimize.original import AnyOptimizeRequest, to_current

    data = _read_data(path)
    try:
        request = to_current(TypeAdapter(AnyOptimizeRequest).validate_python(data))
    except ValidationError as exc:
        raise fail(f"{path}: {_validation_message(exc)}") from exc
    return request.model_copy(update={"workloads": resolve_workloads(request.workloads)})


@app.command()
def schema() -> None:
    """Print the JSON Schema of an optimization request (for editors: YAML and JSON request files)."""
    from pydantic import TypeAdapter

    from cloudarb.optimize.original import AnyOptimizeRequest

    document = TypeAdapter(AnyOptimizeRequest).json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "CloudArb optimization request"
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@app.command()
def optimize(
    file: Annotated[Path, typer.Argument(help="Optimization request, JSON or YAML (see examples/, `cloudarb schema`).")],
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    time_limit: Annotated[float | None, typer.Option(help="Solver time limit, seconds.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Optimize a fleet: in this process by default, or on a server with --server.

    Exit status: 0 with a plan, 3 when no plan meets the constraints, 1 when the job failed."""
    from cloudarb.cli import render
    from cloudarb.cli.progress import JobProgress

    request = _load_request(file)
    if time_limit is not None:
        request = request.model_copy(update={"time_limit_s": time_limit})
    with JobProgress() as bar:
        if server:
            from cloudarb.cli.remote import Client, RemoteError

            client = Client(server, api_key=api_key)
            try:
                accepted = client.request("POST", "/optimize", json=request.model_dump(mode="json"))
                client.ws_events(accepted["job_id"], bar.update)
                opt = client.request("GET", f"/optimize/{accepted['id']}")
                lines = client.request("GET", f"/optimize/{accepted['id']}/allocations")
            except RemoteError as exc:
                raise fail(str(exc)) from exc
        else:
            from cloudarb.cli.local import run_optimization

            ctx = _context()
            try:
                opt, lines = run_optimization(ctx, request, bar.update)
            finally:
                ctx.close()
    if as_json:
        console.print_json(json.dumps({"optimization": opt, "allocations": lines}))
    else:
        render.result(opt, lines)
    if opt["status"] == "infeasible":
        raise typer.Exit(INFEASIBLE_EXIT)
    if opt["status"] != "finished":
        raise typer.Exit(1)


@app.command()
def offers(
    provider: Annotated[list[str] | None, typer.Option(
        "--provider", "-p", help="Provider key, or 'provider:seller' for one seller of a marketplace (repeatable).")] = None,
    gpu: Annotated[list[str] | None, typer.Option(
        "--gpu", "-g", help="GPU name: 'a100', 'H100', 'A100 80GB', 'H100:8' (repeatable; `cloudarb gpus` lists them).")] = None,
    region: Annotated[list[str] | None, typer.Option("--region", help="Region (repeatable).")] = None,
    min_vram: Annotated[float | None, typer.Option(help="Minimum VRAM per GPU, GB.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Maximum USD per GPU-hour.")] = None,
    spot: Annotated[bool | None, typer.Option("--spot/--on-demand", help="Only spot / only on-demand.")] = None,
    sort: Annotated[str, typer.Option(help="price_per_gpu_hour, price_per_hour, vram_gb, observed_at.")] = (
        "price_per_gpu_hour"
    ),
    limit: Annotated[int, typer.Option(min=1, max=500)] = 25,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List current offers, cheapest first, with the age of each price."""
    from cloudarb.cli import render

    if sort not in ("price_per_gpu_hour", "price_per_hour", "vram_gb", "observed_at", "gpu_count"):
        raise fail("--sort must be one of price_per_gpu_hour, price_per_hour, vram_gb, observed_at, gpu_count")
    params: dict[str, Any] = {"provider": provider or [], "gpu_type": gpu or [], "region": region or [],
                              "sort": sort, "limit": limit}
    for k, v in (("min_vram_gb", min_vram), ("max_price_per_gpu", max_price), ("spot", spot)):
        if v is not None:
            params[k] = v
    if server:
        from cloudarb.cli.remote import Client, RemoteError

        try:
            page = Client(server, api_key=api_key).request("GET", "/offers", params=params)
        except RemoteError as exc:
            raise fail(str(exc)) from exc
    else:
        page = _local_offers(params)
    if as_json:
        console.print_json(json.dumps(page))
    else:
        console.print(render.offers_table(page["items"], page["total"]))
        render.stale_warning(page.get("stale_prices"))


def _local_offers(params: dict[str, Any]) -> dict[str, Any]:
    from datetime import UTC, datetime

    from cloudarb.api.routes.offers import offer_filter, offer_page
    from cloudarb.storage import offers as offer_store

    f = offer_filter(
        provider=params["provider"], gpu_type=params["gpu_type"], field="--gpu",
        regions=params["region"], min_vram_gb=params.get("min_vram_gb"),
        max_price_per_gpu_hour=params.get("max_price_per_gpu"), spot=params.get("spot"),
    )
    ctx = _context()
    try:
        with ctx.db.session() as session:
            rows, total = offer_store.list_offers(session, filters=f, sort=params["sort"], limit=params["limit"])
            page = offer_page(rows, total, limit=params["limit"], offset=0, now=datetime.now(UTC),
                              newest=offer_store.newest_observation(session),
                              stale_after_s=ctx.settings.price_stale_after_s)
    finally:
        ctx.close()
    return page.model_dump(mode="json")


def _revision(url: str, as_json: bool) -> None:
    from cloudarb.db import migrate

    revision = migrate.current(url)
    if as_json:
        console.print_json(json.dumps({"revision": revision}))
    else:
        console.print(f"database at revision {revision}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head", as_json: JsonOpt = False) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from cloudarb.config import get_settings
    from cloudarb.db import migrate

    url = get_settings().database_url
    migrate.upgrade(url, revision)
    if migrate.plain_because_not_preloaded(url):
        err_console.print(f"[yellow]note:[/yellow] {migrate.TIMESCALEDB_NOT_PRELOADED}", highlight=False)
    _revision(url, as_json)


@db_app.command("check")
def db_check(
    wait: Annotated[float, typer.Option(help="Seconds to keep checking (every 2 s) before giving up; 0: once.")] = 0.0,
) -> None:
    """Exit 0 when the database's schema is at the newest revision, 1 otherwise (an init container
    runs this before the API and workers start, so they never run on an older schema)."""
    import time

    from sqlalchemy import create_engine

    from cloudarb.config import get_settings
    from cloudarb.db import migrate

    engine = create_engine(get_settings().database_url, pool_pre_ping=True)
    deadline = time.monotonic() + wait
    try:
        while not migrate.is_current(engine):
            if time.monotonic() >= deadline:
                raise fail(f"the database schema is not at revision {migrate.HEAD}: run `cloudarb db upgrade`")
            time.sleep(2.0)
    finally:
        engine.dispose()
    console.print(f"database at revision {migrate.HEAD}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Revert migrations down to REVISION ('base' removes every table)."""
    from cloudarb.config import get_settings
    from cloudarb.db import migrate

    url = get_settings().database_url
    migrate.downgrade(url, revision)
    _revision(url, as_json)


@db_app.command("seed")
def db_seed(
    force: Annotated[bool, typer.Option(help="Load even if offers exist.")] = False, as_json: JsonOpt = False
) -> None:
    """Load the bundled real price snapshot into the configured database (the checked path of
    `cloudarb catalog import`)."""
    from cloudarb.bootstrap import seed_snapshot
    from cloudarb.config import get_settings
    from cloudarb.context import build_context

    ctx = build_context(get_settings(), prepare=False)
    try:
        n = seed_snapshot(ctx, force=force)
    finally:
        ctx.close()
    if as_json:
        console.print_json(json.dumps({"stored": n}))
    else:
        console.print(f"loaded {n} quotes" if n else "offers already present; nothing loaded (use --force)")


def _client(server: str | None, api_key: str | None) -> Any:
    from cloudarb.cli.remote import Client

    return Client(server or "http://127.0.0.1:8000", api_key=api_key)


def _remote(call: Any) -> Any:
    from cloudarb.cli.remote import RemoteError

    try:
        return call()
    except RemoteError as exc:
        raise fail(str(exc)) from exc


@jobs_app.command("list")
def jobs_list(status: Annotated[str | None, typer.Option()] = None, server: ServerOpt = None,
              api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List recent jobs."""
    from cloudarb.cli import render

    params = {"status": status} if status else {}
    page = _remote(lambda: _client(server, api_key).request("GET", "/jobs", params=params))
    if as_json:
        console.print_json(json.dumps(page))
    else:
        console.print(render.jobs_table(page["items"]))


@jobs_app.command("show")
def jobs_show(job_id: str, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Show one job and its events."""
    client = _client(server, api_key)
    job = _remote(lambda: client.request("GET", f"/jobs/{job_id}"))
    events = _remote(lambda: client.request("GET", f"/jobs/{job_id}/events"))
    console.print_json(json.dumps({"job": job, "events": events}))


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a queued or running job."""
    job = _remote(lambda: _client(server, api_key).request("DELETE", f"/jobs/{job_id}"))
    if as_json:
        console.print_json(json.dumps(job))
    else:
        console.print(f"job {job['id']}: {job['status']}")


@jobs_app.command("watch")
def jobs_watch(job_id: str, server: ServerOpt = None, api_key: KeyOpt = None) -> None:
    """Follow a job's live event stream with a progress bar until it ends."""
    from cloudarb.cli.progress import JobProgress

    client = _client(server, api_key)
    with JobProgress() as bar:
        last = _remote(lambda: client.ws_events(job_id, bar.update))
    if last is None:
        raise fail("the server closed the stream without events (unknown job or bad credentials?)")


@admin_app.command("create-admin")
def create_admin(
    org: Annotated[str, typer.Option(help="Organization name (created if new).")],
    email: Annotated[str, typer.Option(help="The admin's e-mail (login name).")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create an organization's first admin. The password is asked for (never a default)."""
    from email_validator import EmailNotValidError, validate_email

    from cloudarb.storage import accounts

    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise fail(f"--email: {exc}") from exc
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (12+ characters): ")
        if password != getpass.getpass("Again: "):
            raise fail("the passwords differ")
    if len(password) < 12:
        raise fail("the password must have at least 12 characters")
    ctx = _context()
    try:
        with ctx.db.session() as session:
            if accounts.user_by_email(session, email=email) is not None:
                raise fail(f"a user with e-mail {email} already exists")
            organization = accounts.get_or_create_org(session, name=org)
            user = accounts.create_user(session, organization_id=organization.id, email=email, password=password,
                                        role="admin")
            console.print(f"admin {user.email} created in organization {org} ({organization.id})")
    finally:
        ctx.close()


@admin_app.command("create-api-key")
def create_api_key(
    org: Annotated[str, typer.Option(help="Organization name.")],
    name: Annotated[str, typer.Option(help="A label for the key.")],
    role: Annotated[str, typer.Option(help="admin, editor or viewer.")] = "editor",
) -> None:
    """Create an API key for a program; the key is printed once."""
    from cloudarb.security import ROLES
    from cloudarb.storage import accounts

    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}")
    ctx = _context()
    try:
        with ctx.db.session() as session:
            organization = accounts.get_or_create_org(session, name=org)
            _, secret = accounts.create_api_key(session, organization_id=organization.id, name=name, role=role,
                                                created_by="cli")
    finally:
        ctx.close()
    console.print(secret)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
