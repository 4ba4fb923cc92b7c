"""Commands about what can be rented: `cloudarb gpus` and `cloudarb catalog import`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console

catalog_app = typer.Typer(help="Price catalogs: import a catalog file you have.", no_args_is_help=True)


def _local_context() -> Any:
    from cloudarb.config import get_settings
    from cloudarb.context import build_context

    return build_context(get_settings())


def gpus(
    gpu: Annotated[list[str] | None, typer.Option("--gpu", "-g", help="Only the models these names mean "
                                                  "('a100', 'H100', 'A100 80GB'; repeatable).")] = None,
    include_all: Annotated[bool, typer.Option("--all", help="Also models no current offer has.")] = False,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """GPU models with memory, the providers offering them, the cheapest on-demand and spot price per
    GPU-hour and how old those prices are (like `sky show-gpus`)."""
    from cloudarb.cli import render

    if server:
        from cloudarb.cli.remote import Client, RemoteError

        params: dict[str, Any] = {"gpu_type": gpu or [], "all": include_all}
        try:
            listing = Client(server, api_key=api_key).request("GET", "/gpus", params=params)
        except RemoteError as exc:
            raise fail(str(exc)) from exc
    else:
        from cloudarb.api.routes.gpus import gpu_list
        from cloudarb.db.types import utcnow

        ctx = _local_context()
        try:
            with ctx.db.session() as session:
                listing = gpu_list(session, names=gpu or [], include_all=include_all,
                                   stale_after_s=ctx.settings.price_stale_after_s,
                                   now=utcnow()).model_dump(mode="json")
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps(listing))
        return
    console.print(render.gpus_table(listing["items"]))
    render.stale_warning(listing.get("stale_prices"))


@catalog_app.command("import")
def import_catalog(
    file: Annotated[Path, typer.Argument(help="The catalog file (CSV).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Its convention: aws, azure, gcp, gcp-skypilot, lambda, "
                                     "vast, runpod, shadeform, cudo, skypilot, skypilot-per-instance, snapshot.")],
    provider: Annotated[str | None, typer.Option(
        help="Provider key its offers are stored under (default: the convention's).")] = None,
    observed_at: Annotated[str | None, typer.Option(
        help="Date of the prices, YYYY-MM-DD (SkyPilot files carry none; default: today).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be stored; store nothing.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Offers to print in the table (0 = all).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Load a catalog file you have (negotiated prices, a provider CloudArb has no client for): every
    row is checked against the GPU table; prints the offers it stores (or would, with --dry-run) and
    every quarantined row with its reason."""
    from cloudarb.cli import render
    from cloudarb.ingest import catalog_import

    when: date | None = None
    if observed_at:
        try:
            when = date.fromisoformat(observed_at)
        except ValueError as exc:
            raise fail(f"--observed-at: {observed_at!r} is not a date (YYYY-MM-DD)") from exc
    loaded = catalog_import.load(file, fmt=fmt, provider=provider, observed_at=when)
    stored = 0
    if not dry_run:
        ctx = _local_context()
        try:
            with ctx.db.session() as session:
                stored = catalog_import.store(session, loaded)
        finally:
            ctx.close()
    if as_json:
        console.print_json(json.dumps({
            "dry_run": dry_run,
            "summary": {**loaded.summary(), "stored": stored},
            "offers": [render.offer_line(q.model_dump(mode="json")) for q in loaded.offers],
            "quarantined": [q.model_dump(mode="json") for q in loaded.quarantined],
        }))
        return
    render.catalog_import(loaded, stored=stored, dry_run=dry_run, limit=limit)
