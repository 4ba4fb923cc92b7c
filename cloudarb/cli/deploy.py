"""`cloudarb deploy`, `cloudarb deployments ...`, `cloudarb costs`: rent what an optimization chose,
follow every step live, hand over SSH access, tear down with proof, and read what it cost.

Each command works against a server (``--server``: HTTP and the WebSocket event stream) or in this
process against the configured database (the embedded mode: the deploy job runs here and the
command follows it to its end)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console, err_console

deployments_app = typer.Typer(help="Deployments: list, show, extend, stop, start, done, destroy.",
                              no_args_is_help=True)
costs_app = typer.Typer(help="What deployments cost (metered per second at launch prices).",
                        invoke_without_command=True)

LinesOpt = Annotated[str | None, typer.Option("--lines", help="Allocation lines to deploy, e.g. 0,2 (default all).")]
LifetimeOpt = Annotated[str | None, typer.Option("--lifetime", help="How long until everything is destroyed "
                                                 "(4h, 90m; default 4h, at most 12h without --override).")]
WatchOpt = Annotated[bool, typer.Option("--watch", help="Follow every step live until the job ends.")]


def _remote(server: str, api_key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from cloudarb.cli.remote import Client, RemoteError

    try:
        return Client(server, api_key=api_key).request(method, path, **kwargs)
    except RemoteError as exc:
        raise fail(str(exc)) from exc


def _context() -> Any:
    from cloudarb.config import get_settings
    from cloudarb.context import build_context

    return build_context(get_settings())


def _hours(text: str | None) -> float | None:
    if text is None:
        return None
    from cloudarb.errors import InvalidInput

    value = text.strip().lower()
    units = {"h": 1.0, "m": 1 / 60, "s": 1 / 3600, "d": 24.0}
    try:
        hours = float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except (ValueError, KeyError):
        raise InvalidInput(f"{text!r} is not a duration (e.g. 4h, 90m)", field="lifetime") from None
    if hours <= 0:
        raise InvalidInput("a duration must be positive", field="lifetime")
    return hours


def _lines(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise fail(f"--lines: {text!r} is not a list of line numbers (e.g. 0,2)") from None


def _step(event: dict[str, Any]) -> None:
    """One line per step of the deploy job (the live view)."""
    if event.get("type") == "status":
        err_console.print(f"[bold]{event.get('status')}[/bold] {event.get('message', '')}", highlight=False)
        return
    phase = event.get("phase", "")
    bits = [f"{k}={event[k]}" for k in ("line", "replica", "attempt", "provider", "offer_key", "provider_id",
                                        "address", "outcome", "from", "to") if event.get(k) not in (None, "")]
    message = event.get("message") or ""
    err_console.print(f"  {phase:<14} {' '.join(bits)} {message}".rstrip(), highlight=False)


def _follow_remote(server: str, api_key: str | None, answer: dict[str, Any], deployment_id: str, *, watch: bool,
                   as_json: bool, summary: str, shown: dict[str, Any] | None = None) -> None:
    """After a remote command queued a deployment job: follow it and show the deployment (--watch), print
    the answer (--json; ``shown`` when part of it must not be printed) or one summary line."""
    if watch:
        from cloudarb.cli.remote import Client, RemoteError

        try:
            Client(server, api_key=api_key).ws_events(answer["job_id"], _step)
        except RemoteError as exc:
            raise fail(str(exc)) from exc
        _show(_remote(server, api_key, "GET", f"/deployments/{deployment_id}"), as_json)
    elif as_json:
        console.print_json(json.dumps(answer if shown is None else shown))
    else:
        console.print(summary, highlight=False)


def _save_key(deployment_id: str, private_key: str | None, key_file: Path | None) -> Path | None:
    if not private_key:
        return None
    path = key_file or Path.home() / ".ssh" / f"cloudarb-{deployment_id[:8]}"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(private_key)
    return path


def _show(dep: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(dep))
        return
    console.print(f"deployment {dep['id']}  [bold]{dep['status']}[/bold]  expires {dep['expires_at']}  "
                  f"${dep['rate_per_hour']:.4f}/h  cost so far ${dep['cost_so_far']:.4f}"
                  + (f"  ({dep['end_reason']})" if dep.get("end_reason") else ""), highlight=False)
    console.print(instances_table(dep["instances"]))
    _target(dep)
    if any(a["outcome"] not in ("created", "running") for a in dep["attempts"]):
        attempts = Table("line", "rep", "try", "provider", "offer", "outcome", "reason", title="attempts")
        for a in dep["attempts"]:
            attempts.add_row(str(a["line"]), str(a["replica"]), str(a["attempt"]), a["provider"], a["offer_key"],
                             a["outcome"], a["reason"])
        console.print(attempts)


def instances_table(instances: list[dict[str, Any]]) -> Table:
    """One row per instance; a health column only when some instance reports a health check (local
    placements), and pause figures only when some instance was stopped or has a stop/start pending."""
    from cloudarb.cli.nodes import health_cell

    with_health = any(i.get("health") for i in instances)
    with_pause = any(i.get("paused_since") or i.get("paused_seconds") or i.get("desired_state") for i in instances)
    columns = ["line", "rep", "try", "provider", "instance type", "state"]
    columns += ["health"] if with_health else []
    columns += ["paused"] if with_pause else []
    table = Table(*columns, "address / ssh", "$/h", "cost")
    for i in instances:
        cells = [str(i["line"]), str(i["replica"]), str(i["attempt"]), i["provider"], i["instance_type"],
                 i["state"] + (f" -> {i['desired_state']}" if i.get("desired_state") else "")]
        if with_health:
            cells.append(health_cell(i))
        if with_pause:
            cells.append(pause_cell(i))
        cells += [i["ssh_command"] or i["provider_id"] or "", f"{i['price_per_hour']:.4f}"
                  + (f" (reported {i['reported_rate']:.4f})" if i.get("rate_mismatch") else ""),
                  f"{i['cost_so_far']:.4f}"]
        table.add_row(*cells)
    return table


def pause_cell(i: dict[str, Any]) -> str:
    """'since 07:41:02, 3m20s so far' while stopped; '3m20s' once started again; '-' when never paused."""
    total = int(round(float(i.get("paused_seconds") or 0.0)))
    spent = f"{total // 3600}h{total % 3600 // 60:02d}m" if total >= 3600 else f"{total // 60}m{total % 60:02d}s"
    if i.get("paused_since"):
        return f"since {str(i['paused_since'])[11:19]}, {spent} so far"
    return spent if total else "-"


def _target(dep: dict[str, Any]) -> None:
    """What a Kubernetes or Terraform deployment's target reported (hook runs, addresses, metering)."""
    if dep.get("target", "cloud") == "cloud":
        return
    details = dep.get("details") or {}
    console.print(f"target {dep['target']}: {details.get('metering', '')}", highlight=False)
    for run in details.get("runs", []):
        console.print(f"  {run['action']:<8} hook '{run['hook']}': {run['summary']}", highlight=False)
    if details.get("runs") and details["runs"][-1].get("output"):
        console.print(details["runs"][-1]["output"].rstrip()[-1500:], highlight=False, markup=False)
    for a in details.get("addresses", []):
        console.print(f"  {a['output']}: {a['address']}", highlight=False)


def _local_show(ctx: Any, org: str, deployment_id: str) -> dict[str, Any]:
    from cloudarb.db.models_deploy import Deployment
    from cloudarb.db.types import utcnow
    from cloudarb.deploy.views import to_out
    from cloudarb.errors import NotFound

    with ctx.db.session() as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None or dep.organization_id != org:
            raise NotFound(f"deployment {deployment_id} not found")
        return to_out(session, dep, utcnow()).model_dump(mode="json")


def deploy(
    optimization_id: Annotated[str, typer.Argument(help="The finished optimization to deploy.")],
    lines: LinesOpt = None,
    lifetime: LifetimeOpt = None,
    override: Annotated[bool, typer.Option("--override-max-lifetime", help="Allow more than 12 h.")] = False,
    image: Annotated[str | None, typer.Option(help="Image to start on each instance.")] = None,
    ssh_key: Annotated[Path | None, typer.Option("--ssh-key", help="Public key file to install (default: a "
                                                 "key pair is generated and its private key saved once).")] = None,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Where to save a generated private key "
                                                  "(default ~/.ssh/cloudarb-<id>).")] = None,
    watch: WatchOpt = False,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
    via: Annotated[str, typer.Option("--via", help="cloud: the providers' APIs; kubernetes: server-side apply to "
                                     "the configured cluster; terraform: the organization's command hook.")] = "cloud",
    namespace: Annotated[str, typer.Option(help="--via kubernetes: the namespace.")] = "default",
    var: Annotated[list[str] | None, typer.Option("--var", help="--via terraform: a variable, NAME=VALUE "
                                                  "(repeatable; never secrets).")] = None,
) -> None:
    """Deploy an optimization's allocation (each instance recorded before any provider is asked)."""
    if via not in ("cloud", "kubernetes", "terraform"):
        raise fail(f"--via: {via!r} is not one of cloud, kubernetes, terraform")
    if via != "cloud":
        _deploy_via(via, optimization_id, lines=_lines(lines), lifetime_hours=_hours(lifetime), override=override,
                    image=image, namespace=namespace, variables=var or [], watch=watch, server=server,
                    api_key=api_key, as_json=as_json)
        return
    body: dict[str, Any] = {"lines": _lines(lines), "lifetime_hours": _hours(lifetime),
                            "override_max_lifetime": override}
    if image:
        body["launch"] = {"image": image}
    if ssh_key is not None:
        body["ssh_public_key"] = ssh_key.read_text().strip()
    if server:
        accepted = _remote(server, api_key, "POST", f"/optimize/{optimization_id}/deploy", json=body)
        saved = _save_key(accepted["id"], accepted.get("private_key"), key_file)
        if saved:
            err_console.print(f"private key saved to {saved} (shown once)", highlight=False)
        _follow_remote(server, api_key, accepted, accepted["id"], watch=watch, as_json=as_json,
                       summary=f"deployment {accepted['id']} queued (job {accepted['job_id']}); "
                               f"follow: cloudarb deployments show {accepted['id']}",
                       shown={k: v for k, v in accepted.items() if k != "private_key"})
        return
    _deploy_local(optimization_id, body, key_file, as_json)


def _deploy_via(via: str, optimization_id: str, *, lines: list[int] | None, lifetime_hours: float | None,
                override: bool, image: str | None, namespace: str, variables: list[str], watch: bool,
                server: str | None, api_key: str | None, as_json: bool) -> None:
    """A deployment made by a Kubernetes apply or a Terraform command hook (followed like any other)."""
    body: dict[str, Any] = {"lines": lines, "lifetime_hours": lifetime_hours, "override_max_lifetime": override}
    if via == "kubernetes":
        body["namespace"] = namespace
        if image:
            body["image"] = image
    else:
        pairs = [v.partition("=") for v in variables]
        if any(not sep or not k for k, sep, _ in pairs):
            raise fail("--var takes NAME=VALUE")
        body["variables"] = {k: v for k, _, v in pairs}
    path = f"/optimize/{optimization_id}/{via}-apply"
    if server:
        accepted = _remote(server, api_key, "POST", path, json=body)
        dep_id = accepted.get("deployment_id") or accepted["id"]
        _follow_remote(server, api_key, accepted, dep_id, watch=watch, as_json=as_json,
                       summary=f"deployment {dep_id} ({via}) queued (job {accepted['job_id']}); "
                               f"follow: cloudarb deployments show {dep_id}")
        return
    from cloudarb.cli.local import local_org, relay

    ctx = _context()
    try:
        org = local_org(ctx)
        if via == "kubernetes":
            from cloudarb.deploy.k8s_submit import KubernetesApplyRequest, submit_apply

            k8s = submit_apply(ctx, organization_id=org, optimization_id=optimization_id, actor="cli",
                               body=KubernetesApplyRequest.model_validate(body))
            dep_id, job_id = k8s.deployment_id, k8s.job_id
        else:
            from cloudarb.deploy.terraform_submit import TerraformApplyRequest, submit_terraform

            tf = submit_terraform(ctx, organization_id=org, optimization_id=optimization_id, actor="cli",
                                  body=TerraformApplyRequest.model_validate(body))
            dep_id, job_id = tf.deployment_id, tf.job_id
        relay(ctx, job_id, _step)  # the job runs in this process: follow it to its end
        _show(_local_show(ctx, org, dep_id), as_json)
    finally:
        ctx.close()


def _deploy_local(optimization_id: str, body: dict[str, Any], key_file: Path | None, as_json: bool) -> None:
    from cloudarb.cli.local import local_org, relay
    from cloudarb.deploy.schemas import LaunchOptions
    from cloudarb.deploy.submit import DeployOrder, submit_deployment

    ctx = _context()
    try:
        org = local_org(ctx)
        hours = body["lifetime_hours"] or ctx.settings.deploy_default_lifetime_h
        order = DeployOrder(lifetime_s=hours * 3600, override_max_lifetime=body["override_max_lifetime"],
                            ssh_public_key=body.get("ssh_public_key"),
                            launch=LaunchOptions.model_validate(body.get("launch", {})))
        done = submit_deployment(ctx, organization_id=org, actor="cli", order=order,
                                 optimization_id=optimization_id, lines=body["lines"])
        saved = _save_key(done.deployment_id, done.private_key, key_file)
        if saved:
            err_console.print(f"private key saved to {saved} (shown once)", highlight=False)
        relay(ctx, done.job_id, _step)  # the job runs in this process: follow it to its end
        _show(_local_show(ctx, org, done.deployment_id), as_json)
    finally:
        ctx.close()


@deployments_app.command("list")
def list_deployments(status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
                     server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The organization's deployments, newest first."""
    if server:
        items = _remote(server, api_key, "GET", "/deployments", params={"status": status} if status else {})["items"]
    else:
        from sqlalchemy import select

        from cloudarb.cli.local import local_org
        from cloudarb.db.models_deploy import Deployment

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                stmt = select(Deployment.id).where(Deployment.organization_id == org)
                if status:
                    stmt = stmt.where(Deployment.status == status)
                ids = list(session.scalars(stmt.order_by(Deployment.created_at.desc()).limit(100)))
            items = [_local_show(ctx, org, i) for i in ids]
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(items))
        return
    table = Table("id", "name", "target", "status", "instances", "$/h", "cost", "expires")
    for d in items:
        live = sum(1 for i in d["instances"] if i["state"] not in ("terminated", "failed"))
        table.add_row(d["id"], d["name"], d.get("target", "cloud"), d["status"], f"{live}/{len(d['instances'])}",
                      f"{d['rate_per_hour']:.4f}", f"{d['cost_so_far']:.4f}", d["expires_at"])
    console.print(table)


@deployments_app.command("show")
def show(deployment_id: str, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Instances (state, SSH command, cost so far) and every attempt with its reason."""
    if server:
        _show(_remote(server, api_key, "GET", f"/deployments/{deployment_id}"), as_json)
        return
    from cloudarb.cli.local import local_org

    ctx = _context()
    try:
        _show(_local_show(ctx, local_org(ctx), deployment_id), as_json)
    finally:
        ctx.close()


@deployments_app.command("extend")
def extend(deployment_id: str,
           by: Annotated[str, typer.Option("--by", help="How much longer (2h, 30m).")] = "1h",
           server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Move the expiry (never past the deployment's maximum lifetime)."""
    hours = _hours(by)
    if server:
        _show(_remote(server, api_key, "POST", f"/deployments/{deployment_id}/extend", json={"hours": hours}), as_json)
        return
    from cloudarb.cli.local import local_org, relay
    from cloudarb.deploy import extend as extension

    ctx = _context()
    try:
        org = local_org(ctx)
        done = extension.extend(ctx, organization_id=org, deployment_id=deployment_id, by_s=(hours or 1.0) * 3600,
                                actor="cli")
        if done.job_id is not None:  # a Kubernetes deployment: follow the annotation of its objects
            relay(ctx, done.job_id, _step)
        _show(_local_show(ctx, org, deployment_id), as_json)
    finally:
        ctx.close()


def _teardown(deployment_id: str, reason: str, server: str | None, api_key: str | None, watch: bool,
              as_json: bool) -> None:
    if server:
        path = f"/deployments/{deployment_id}" + ("/done" if reason == "done" else "")
        answer = _remote(server, api_key, "POST" if reason == "done" else "DELETE", path)
        _follow_remote(server, api_key, answer, deployment_id, watch=watch, as_json=as_json,
                       summary=f"deployment {deployment_id} ending (job {answer['job_id']})")
        return
    from cloudarb.deploy.submit import submit_teardown

    _local_job(deployment_id, as_json, lambda ctx, dep: submit_teardown(ctx, dep, actor="cli", reason=reason))


def _local_job(deployment_id: str, as_json: bool, submit: Callable[[Any, Any], str]) -> None:
    """Embedded: submit a job on one of the local organization's deployments (``submit(ctx, deployment)``
    returns its id), follow it live, then show the deployment."""
    from cloudarb.cli.local import local_org, relay
    from cloudarb.db.models_deploy import Deployment
    from cloudarb.errors import NotFound

    ctx = _context()
    try:
        org = local_org(ctx)
        with ctx.db.session() as session:
            dep = session.get(Deployment, deployment_id)
            if dep is None or dep.organization_id != org:
                raise NotFound(f"deployment {deployment_id} not found")
        relay(ctx, submit(ctx, dep), _step)
        _show(_local_show(ctx, org, deployment_id), as_json)
    finally:
        ctx.close()


InstancesOpt = Annotated[str | None, typer.Option("--instances", help="Instance ids, e.g. ID1,ID2 (default all).")]
OnLinesOpt = Annotated[str | None, typer.Option("--lines", help="Only the instances of these lines, e.g. 0,2.")]


def _stop_start(action: str, deployment_id: str, instances: str | None, lines: str | None, watch: bool,
                server: str | None, api_key: str | None, as_json: bool) -> None:
    chosen = [i.strip() for i in instances.split(",") if i.strip()] if instances else None
    on_lines = _lines(lines)
    body = {"instances": chosen, "lines": on_lines}
    if server:
        answer = _remote(server, api_key, "POST", f"/deployments/{deployment_id}/{action}", json=body)
        _follow_remote(server, api_key, answer, deployment_id, watch=watch, as_json=as_json,
                       summary=f"deployment {deployment_id}: {action} {len(answer['instances'])} instance(s) "
                               f"(job {answer['job_id']})")
        return
    from cloudarb.deploy import stopstart

    _local_job(deployment_id, as_json, lambda ctx, dep: stopstart.submit(
        ctx, dep, action=action, actor="cli", instances=chosen, lines=on_lines)[0])


@deployments_app.command("stop")
def stop(deployment_id: str, instances: InstancesOpt = None, lines: OnLinesOpt = None, watch: WatchOpt = False,
         server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Stop instances, keeping their disks or workspaces (no compute billed while stopped where the
    provider bills none); refused where the provider cannot stop (Lambda, spot instances)."""
    _stop_start("stop", deployment_id, instances, lines, watch, server, api_key, as_json)


@deployments_app.command("start")
def start(deployment_id: str, instances: InstancesOpt = None, lines: OnLinesOpt = None, watch: WatchOpt = False,
          server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Start stopped instances again (a local placement may wait in its node's queue for a GPU)."""
    _stop_start("start", deployment_id, instances, lines, watch, server, api_key, as_json)


@deployments_app.command("done")
def done(deployment_id: str, watch: WatchOpt = False, server: ServerOpt = None, api_key: KeyOpt = None,
         as_json: JsonOpt = False) -> None:
    """The work is finished: destroy every instance, each with the provider's proof."""
    _teardown(deployment_id, "done", server, api_key, watch, as_json)


@deployments_app.command("destroy")
def destroy(deployment_id: str, watch: WatchOpt = False, server: ServerOpt = None, api_key: KeyOpt = None,
            as_json: JsonOpt = False) -> None:
    """Destroy now (the same verified teardown)."""
    _teardown(deployment_id, "destroyed from the CLI", server, api_key, watch, as_json)


@costs_app.callback()
def costs(ctx_: typer.Context,
          by: Annotated[str, typer.Option("--by", help="deployment, workload, provider, gpu or org")] = "deployment",
          server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Metered spend grouped by one dimension."""
    if ctx_.invoked_subcommand is not None:
        return
    if by not in ("deployment", "workload", "provider", "gpu", "org"):
        raise fail(f"--by: {by!r} is not one of deployment, workload, provider, gpu, org")
    if server:
        report = _remote(server, api_key, "GET", "/costs", params={"by": by})
    else:
        from cloudarb.cli.local import local_org
        from cloudarb.db.types import utcnow
        from cloudarb.deploy import costs as cost_store

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                items = cost_store.grouped(session, organization_id=org, by=by,  # type: ignore[arg-type]
                                           now=utcnow())
            report = {"by": by, "items": items, "total": round(sum(i["amount"] for i in items), 6)}
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(report))
        return
    table = Table(by, "USD", "billed hours", "instances", title=f"costs by {by}")
    for i in report["items"]:
        table.add_row(i["key"], f"{i['amount']:.4f}", f"{i['billed_hours']:.4f}", str(i["instances"]))
    table.add_row("total", f"{report['total']:.4f}", "", "")
    console.print(table)


@costs_app.command("summary")
def summary(server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """This month, today, the running rate, the commitment until expiry and the budget."""
    if server:
        data = _remote(server, api_key, "GET", "/costs/summary")
    else:
        from cloudarb.cli.local import local_org
        from cloudarb.db.types import utcnow
        from cloudarb.deploy import costs as cost_store

        ctx = _context()
        try:
            org = local_org(ctx)
            with ctx.db.session() as session:
                data = cost_store.summary(session, organization_id=org, now=utcnow())
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("", "USD", title=f"costs {data['month']}")
    for label, key in (("month to date", "month_to_date"), ("today", "today"), ("last 7 days", "last_7_days"),
                       ("running per hour", "running_per_hour"), ("committed to expiry", "committed_to_expiry")):
        table.add_row(label, f"{data[key]:.4f}")
    budget = data.get("budget")
    if budget:
        table.add_row("budget", f"{budget['monthly_limit']:.2f}")
        table.add_row("remaining", f"{budget['remaining']:.4f}")
    console.print(table)
    console.print(f"{data['live_instances']} live instances, {data['leaked_instances']} leaked", highlight=False)
