"""`cloudarb nodes ...`: the team's own GPU hosts on a CloudArb server (tables, or JSON with --json)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console, money

nodes_app = typer.Typer(help="The team's own GPU hosts: nodes, join tokens, pricing, the placement queue.",
                        no_args_is_help=True)
NodeArg = Annotated[str, typer.Argument(help="Node id (or name).")]


def _call(server: str | None, api_key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from cloudarb.cli.remote import Client, RemoteError

    try:
        return Client(server or "http://127.0.0.1:8000", api_key=api_key).request(method, path, **kwargs)
    except RemoteError as exc:
        raise fail(str(exc)) from exc


def _node_id(server: str | None, api_key: str | None, ref: str) -> str:
    """A node's id from its id or its name."""
    for node in _call(server, api_key, "GET", "/nodes"):
        if ref in (node["id"], node["name"]):
            return str(node["id"])
    raise fail(f"no node {ref!r} (see `cloudarb nodes list`)")


def _show(data: Any, as_json: bool, table: Table | str) -> None:
    if as_json:
        console.print_json(json.dumps(data))
    else:
        console.print(table)


def nodes_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title=f"{len(items)} node(s)")
    for col in ("name", "status", "GPUs free/total", "price/GPU-h", "engine", "last heartbeat", "id"):
        t.add_column(col)
    for n in items:
        engine = n.get("engine") or {}
        status = n["status"] + (" (drained)" if n["drained"] else "")
        t.add_row(n["name"], status, f"{n['gpus_free']}/{n['gpus_total']}", money(n["price_per_gpu_hour"]),
                  f"{engine.get('kind', '-')} {'ok' if engine.get('self_test_ok') else 'not tested'}",
                  str(n["last_heartbeat_at"] or "-")[:19], n["id"])
    return t


def placements_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title=f"{len(items)} placement(s)")
    for col in ("#", "state", "health", "node", "GPUs", "image", "estimated start", "price", "ports", "id"):
        t.add_column(col)
    for p in items:
        ports = ", ".join(f"{k}->{v}" for k, v in sorted(p["published_ports"].items())) or "-"
        state = p["state"] + (f" ({p['flagged']})" if p.get("flagged") else "")
        t.add_row(str(p["position"] or "-"), state, health_cell(p), p["node_name"],
                  f"{p['gpu_count']}x {p['gpu_model']}", p["image"], str(p["estimated_start_at"] or "-")[:19],
                  money(p["price_per_hour"]), ports, p["id"])
    return t


def health_cell(p: dict[str, Any]) -> str:
    """'healthy since 07:41:02', or 'unhealthy: <the failure's reason>'; '-' when not checked."""
    health = p.get("health")
    if not health:
        return "-"
    if health == "healthy" and p.get("healthy_since"):
        return f"healthy since {str(p['healthy_since'])[11:19]}"
    return f"{health}: {p['health_detail']}" if p.get("health_detail") and health != "healthy" else health


@nodes_app.command("list")
def list_nodes(server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The organization's nodes with health, free GPUs and price."""
    items = _call(server, api_key, "GET", "/nodes")
    _show(items, as_json, nodes_table(items))


@nodes_app.command("show")
def show(node: NodeArg, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """One node: host, GPUs (and MIG devices) with the placement holding each, its placements."""
    detail = _call(server, api_key, "GET", f"/nodes/{_node_id(server, api_key, node)}")
    if as_json:
        console.print_json(json.dumps(detail))
        return
    console.print(nodes_table([detail]))
    gpus = Table(title="GPUs")
    for col in ("index", "model", "name", "memory MiB", "MIG", "uuid", "held by"):
        gpus.add_column(col)
    for g in detail["gpus"]:
        mig = g["mig_profile"] or ("enabled" if g["mig_enabled"] else "-")
        gpus.add_row(str(g["index"]), g["model"], g["name"], str(g["memory_total_mib"]), mig, g["uuid"],
                     g["placement_id"] or "-")
    console.print(gpus)
    console.print(placements_table(detail["placements"]))


@nodes_app.command("join-token")
def join_token(
    name: Annotated[str | None, typer.Option(help="The node's name (default: from its host name).")] = None,
    site: Annotated[str, typer.Option(help="Where it is (the offers' region).")] = "",
    price: Annotated[float, typer.Option(min=0, help="Owner's USD per GPU-hour.")] = 0.0,
    ttl: Annotated[float | None, typer.Option(help="Lifetime in seconds (default: the server's).")] = None,
    server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """A one-time join token for `cloudarb agent` on a new host (admins; shown once)."""
    body: dict[str, Any] = {"site": site, "price_per_gpu_hour": price}
    if name:
        body["node_name"] = name
    if ttl:
        body["ttl_s"] = ttl
    made = _call(server, api_key, "POST", "/nodes/join-tokens", json=body)
    _show(made, as_json, f"{made['join_token']}\n(one use, expires {made['expires_at']})")


def _drain(node: str, server: str | None, api_key: str | None, as_json: bool, action: str) -> None:
    out = _call(server, api_key, "POST", f"/nodes/{_node_id(server, api_key, node)}/{action}")
    _show(out, as_json, nodes_table([out]))


@nodes_app.command("drain")
def drain(node: NodeArg, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Start nothing new on the node and take its offers off the market (running containers stay)."""
    _drain(node, server, api_key, as_json, "drain")


@nodes_app.command("undrain")
def undrain(node: NodeArg, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Put the node back on the market; its queue moves."""
    _drain(node, server, api_key, as_json, "undrain")


@nodes_app.command("remove")
def remove(node: NodeArg, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Remove a node that holds no live placement (its agent's token stops working)."""
    node_id = _node_id(server, api_key, node)
    _call(server, api_key, "DELETE", f"/nodes/{node_id}")
    _show({"removed": node_id}, as_json, f"node {node} removed")


@nodes_app.command("pricing")
def pricing(
    node: NodeArg,
    price: Annotated[float | None, typer.Option(min=0, help="Default USD per GPU-hour.")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="MODEL=PRICE per GPU-hour for one GPU model, e.g. 'H100=1.8' (repeatable).")] = None,
    server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Set the owner's price; the node's offers follow at once."""
    body: dict[str, Any] = {}
    if price is not None:
        body["price_per_gpu_hour"] = price
    if model:
        prices: dict[str, float] = {}
        for item in model:
            name, sep, value = item.rpartition("=")
            try:
                prices[name.strip()] = float(value)
            except ValueError:
                raise fail(f"--model: {item!r} is not MODEL=PRICE") from None
            if not sep or not name.strip():
                raise fail(f"--model: {item!r} is not MODEL=PRICE")
        body["model_prices"] = prices
    if not body:
        raise fail("give --price or --model MODEL=PRICE")
    out = _call(server, api_key, "PUT", f"/nodes/{_node_id(server, api_key, node)}/pricing", json=body)
    _show(out, as_json, nodes_table([out]))


@nodes_app.command("queue")
def queue(
    include_ended: Annotated[bool, typer.Option("--all", help="Also destroyed and failed placements.")] = False,
    cancel: Annotated[str | None, typer.Option(help="Cancel this queued placement (instant).")] = None,
    server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Placements on the organization's hosts: the queue first, with positions and estimated starts."""
    if cancel:
        out = _call(server, api_key, "DELETE", f"/nodes/placements/{cancel}")
        _show(out, as_json, f"placement {cancel}: {out['state']}")
        return
    items = _call(server, api_key, "GET", "/nodes/placements", params={"include_ended": include_ended})
    _show(items, as_json, placements_table(items))


@nodes_app.command("credentials")
def credentials(
    placement: Annotated[str, typer.Argument(help="Placement id (see `cloudarb nodes queue`).")],
    server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """The generated password of a placement's container (SSH, Jupyter token): shown once."""
    out = _call(server, api_key, "POST", f"/nodes/placements/{placement}/credentials")
    ports = ", ".join(f"{k}->{v}" for k, v in sorted(out["published_ports"].items())) or "none yet"
    _show(out, as_json, f"password: {out['password']}\naddress:  {out['address']} (ports {ports})\n"
                        "(shown once: store it now)")
