"""`cloudarb forecasts`: the stored forecasts on a server, with whether each earned its place.

A price forecast is served from a model only at the horizon steps where it beat last value out of
sample (the price skill gate); the table says which, and why, in the server's own words.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console

forecasts_app = typer.Typer(help="Stored price and demand forecasts on a CloudArb server.", no_args_is_help=True)


def _get(server: str | None, api_key: str | None, path: str, params: dict[str, Any]) -> Any:
    from cloudarb.cli.remote import Client, RemoteError

    try:
        return Client(server or "http://127.0.0.1:8000", api_key=api_key).request("GET", path, params=params)
    except RemoteError as exc:
        raise fail(str(exc)) from exc


def forecasts_table(items: list[dict[str, Any]], total: int) -> Table:
    t = Table(title=f"Forecasts ({len(items)} of {total})", title_justify="left")
    for col in ("series", "model", "origin", "steps", "next", "skill over last value"):
        t.add_column(col, overflow="fold")
    for f in items:
        skill = f.get("skill")
        if skill is None:
            verdict = f.get("fallback_reason") or "-"
        else:
            served = sum(1 for s in skill["steps"] if s["served"] != "last_value")
            verdict = f"{'yes' if skill['has_skill'] else 'no'} ({served}/{len(skill['steps'])} steps): {skill['reason']}"
        point = f.get("point") or []
        t.add_row(f["series_key"], f["model"], str(f["origin"])[:16], str(f["horizon"]),
                  f"{point[0]:.4f}" if point else "-", verdict)
    return t


@forecasts_app.command("list")
def forecasts_list(
    kind: Annotated[str | None, typer.Option(help="price or demand.")] = None,
    provider: Annotated[list[str] | None, typer.Option("--provider", "-p", help="Provider key (repeatable).")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", "-g", help="GPU model of the offers.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 25,
    server: ServerOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest forecast of each series: its model, and whether it beat last value out of sample."""
    if kind is not None and kind not in ("price", "demand"):
        raise fail("--kind must be price or demand")
    params: dict[str, Any] = {"limit": limit, "provider": provider or []}
    if kind:
        params["kind"] = kind
    if gpu:
        params["gpu_model"] = gpu
    page = _get(server, api_key, "/forecasts", params)
    if as_json:
        console.print_json(json.dumps(page))
    else:
        console.print(forecasts_table(page["items"], page["total"]))


@forecasts_app.command("show")
def forecasts_show(
    series: Annotated[str, typer.Argument(help="Series key (from `cloudarb forecasts list`).")],
    server: ServerOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """One series' backtest and model versions, as JSON."""
    console.print_json(json.dumps(_get(server, api_key, f"/forecasts/{series}/backtest", {})))
