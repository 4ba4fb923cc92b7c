"""`cloudarb export`: an optimization's allocation as Terraform, Kubernetes, SkyPilot, dstack or CSV files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console, err_console

FORMAT_NAMES = ("terraform", "kubernetes", "skypilot", "dstack", "csv")


def _local(optimization_id: str, fmt: str, lines: str | None, params: dict[str, Any]) -> dict[str, Any]:
    from datetime import timedelta

    from cloudarb.cli.local import local_org
    from cloudarb.config import get_settings
    from cloudarb.context import build_context
    from cloudarb.db.types import utcnow
    from cloudarb.deploy.export import export, parse_lines, to_out
    from cloudarb.deploy.renderers import KubernetesOptions

    ctx = build_context(get_settings())
    try:
        org = local_org(ctx)
        hours = params.get("lifetime_hours")
        with ctx.db.session() as session:
            rendered = export(session, organization_id=org, optimization_id=optimization_id, fmt=fmt,
                              lines=parse_lines(lines), expires_at=utcnow() + timedelta(hours=hours) if hours else None,
                              kubernetes_options=KubernetesOptions(
                                  namespace=params["namespace"], kueue_cluster_queue=params.get("kueue_cluster_queue"),
                                  provider_label=params.get("provider_label"),
                                  instance_type_selector=bool(params.get("instance_type_selector", False))))
        return to_out(optimization_id, rendered).model_dump(mode="json")
    finally:
        ctx.close()


def write_files(listing: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write an export listing's files under ``out_dir`` (paths stay inside it)."""
    root = out_dir.resolve()
    written = []
    for item in listing["files"]:
        target = (root / item["path"]).resolve()
        if root not in target.parents:
            raise fail(f"refusing to write outside {out_dir}: {item['path']}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item["content"])
        written.append(target)
    return written


def export(
    optimization_id: Annotated[str, typer.Argument(help="Optimization id (cloudarb optimize prints it).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMAT_NAMES)}.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the files into this folder; "
                                             "without it they are printed.")] = None,
    lines: Annotated[str | None, typer.Option(help="Only these lines, e.g. '0,2' (default: all).")] = None,
    lifetime_hours: Annotated[float | None, typer.Option(
        help="Tag machines with cloudarb:expires-at = now + this many hours.")] = None,
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace.")] = "default",
    kueue_cluster_queue: Annotated[str | None, typer.Option(
        help="Kubernetes: add a Kueue LocalQueue pointing at this ClusterQueue, and ResourceFlavors.")] = None,
    provider_label: Annotated[str | None, typer.Option(
        help="Kubernetes: node label naming the provider (a cluster spanning providers).")] = None,
    instance_type_selector: Annotated[bool, typer.Option(
        help="Kubernetes: also pin node.kubernetes.io/instance-type.")] = False,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export an optimization's allocation for the tool your team already uses.

    Lines the format cannot express (no Terraform provider, SkyPilot cloud or dstack backend) are
    listed on stderr (and in the Terraform files), never dropped."""
    if fmt not in FORMAT_NAMES:
        raise fail(f"--format must be one of {', '.join(FORMAT_NAMES)}")
    params: dict[str, Any] = {"format": fmt, "namespace": namespace}
    for key, value in (("lines", lines), ("lifetime_hours", lifetime_hours),
                       ("kueue_cluster_queue", kueue_cluster_queue), ("provider_label", provider_label)):
        if value is not None:
            params[key] = value
    if instance_type_selector:
        params["instance_type_selector"] = True
    if server:
        from cloudarb.cli.remote import Client, RemoteError

        try:
            listing = Client(server, api_key=api_key).request("GET", f"/optimize/{optimization_id}/export",
                                                              params=params)
        except RemoteError as exc:
            raise fail(str(exc)) from exc
    else:
        listing = _local(optimization_id, fmt, lines, params)
    if as_json:
        console.print_json(json.dumps(listing))
    elif out is not None:
        for path in write_files(listing, out):
            console.print(f"wrote {path}", highlight=False)
    else:
        for item in listing["files"]:
            console.print(f"# ---- {item['path']}", highlight=False, markup=False)
            console.print(item["content"], highlight=False, markup=False, end="")
    for skipped in listing["skipped"]:
        err_console.print(f"[yellow]not in {fmt}:[/yellow] line {skipped['line']} ({skipped['workload_id']}, "
                          f"{skipped['provider']}): {skipped['reason']}", highlight=False)
