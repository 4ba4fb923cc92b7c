"""`cloudarb templates ...`: container templates for the team's own GPU hosts (tables, or --json).

With ``--server`` the commands call that server's API; without it they work on the configured database
as the embedded organization (like `cloudarb hooks`). The same checks run either way.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cloudarb.cli.options import JsonOpt, KeyOpt, ServerOpt, fail
from cloudarb.cli.render import console

templates_app = typer.Typer(help="Container templates (image, ports, command, health check) and the organization's "
                            "allow-list.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="Template name.")]
ImageOpt = Annotated[str | None, typer.Option(help="Image reference, e.g. registry.example.com/team/nb:1.")]
TitleOpt = Annotated[str | None, typer.Option(help="A one-line title.")]
DescriptionOpt = Annotated[str | None, typer.Option(help="What it is for.")]
PortOpt = Annotated[list[str] | None, typer.Option(
    "--port", help="PORT[/tcp|udp][:NAME] to publish, e.g. 8888/tcp:jupyter (repeatable).")]
CommandOpt = Annotated[str | None, typer.Option(help="Start command (shell words), e.g. 'jupyter lab --ip=0.0.0.0'.")]
EnvOpt = Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE (repeatable).")]
HealthOpt = Annotated[str | None, typer.Option(
    "--health", help="running | http:PORT[/PATH] | tcp:PORT (a port of the template), then optionally "
    ",grace=S,interval=S,failures=N,probe-timeout=S,restart (restart the container when unhealthy), e.g. "
    "http:8888/api,grace=600,restart.")]
HEALTH_OPTIONS = {"grace": "timeout_s", "interval": "interval_s", "failures": "failures",
                  "probe-timeout": "probe_timeout_s"}


def _ports(items: list[str]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        spec, _, name = item.partition(":")
        port, _, proto = spec.partition("/")
        if not port.isdigit():
            raise fail(f"--port: {item!r} is not PORT[/tcp|udp][:NAME]")
        out.append({"container_port": int(port), "protocol": proto or "tcp", "name": name})
    return out


def _env(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"--env: {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _health(value: str) -> dict[str, Any]:
    head, *options = value.split(",")
    kind, _, rest = head.partition(":")
    if kind == "running" and not rest and not options:
        return {"kind": "running"}
    port, slash, path = rest.partition("/")
    if kind not in ("http", "tcp") or not port.isdigit() or (kind == "tcp" and slash):
        raise fail(escape(f"--health: {value!r} is not running | http:PORT[/PATH] | tcp:PORT[,OPTION=VALUE...]"))
    check: dict[str, Any] = {"kind": kind, "port": int(port)}
    if kind == "http":
        check["path"] = "/" + path
    for option in options:
        key, sep, raw = option.partition("=")
        if key == "restart" and not sep:
            check["restart_on_unhealthy"] = True
            continue
        try:
            check[HEALTH_OPTIONS[key]] = int(raw) if key == "failures" else float(raw)
        except (KeyError, ValueError):
            raise fail(f"--health: {option!r} is not one of grace=S, interval=S, failures=N, probe-timeout=S, "
                       "restart") from None
    return check


def _body(image: str | None, title: str | None, description: str | None, port: list[str] | None,
          command: str | None, env: list[str] | None, health: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in (("image", image), ("title", title), ("description", description)):
        if value is not None:
            body[key] = value
    if port is not None:
        body["ports"] = _ports(port)
    if command is not None:
        body["command"] = shlex.split(command) or None
    if env is not None:
        body["env"] = _env(env)
    if health is not None:
        body["health_check"] = _health(health)
    return body


def _embedded(action: Callable[[Any, Any, str], Any]) -> Any:
    """Run ``action(session, settings, organization id)`` on the configured database; errors as messages."""
    from pydantic import ValidationError

    from cloudarb.cli.local import local_org
    from cloudarb.config import NodesSettings, get_settings
    from cloudarb.context import build_context
    from cloudarb.errors import CloudArbError

    ctx = build_context(get_settings())
    try:
        org = local_org(ctx)
        with ctx.db.session() as session:
            return json.loads(json.dumps(action(session, ctx.settings.section(NodesSettings), org), default=str))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"{'.'.join(str(p) for p in first['loc']) or 'body'}: {first['msg']}") from None
    except CloudArbError as exc:
        raise fail(exc.message) from None
    finally:
        ctx.close()


def _remote(server: str, api_key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from cloudarb.cli.remote import Client, RemoteError

    try:
        return Client(server, api_key=api_key).request(method, path, **kwargs)
    except RemoteError as exc:
        raise fail(str(exc)) from exc


def templates_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title=f"{len(items)} template(s)")
    for col in ("name", "owner", "allowed", "image", "ports", "health", "title"):
        t.add_column(col)
    for x in items:
        ports = ", ".join(f"{p['container_port']}/{p.get('protocol', 'tcp')}" + (f" {p['name']}" if p.get("name") else "")
                          for p in x["ports"]) or "-"
        check = x["health_check"] or {}
        health = check.get("kind", "running") + (f":{check['port']}{check.get('path', '')}" if "port" in check else "")
        health += ", restart" if check.get("restart_on_unhealthy") else ""
        t.add_row(x["name"], x["owner"], "yes" if x["allowed"] else "no", x["image"], ports, health, x["title"])
    return t


def _show(data: Any, as_json: bool, table: Table | str) -> None:
    if as_json:
        console.print_json(json.dumps(data))
    else:
        console.print(table)


def _describe(session: Any, row: Any, org: str) -> dict[str, Any]:
    from cloudarb.nodes import templates

    return templates.describe(row, org, templates.policy(session, org))


@templates_app.command("list")
def list_templates(
    allowed_only: Annotated[bool, typer.Option("--allowed", help="Only those the organization may use.")] = False,
    server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Catalog templates and the organization's own, with whether its allow-list lets it use each."""
    if server:
        items = _remote(server, api_key, "GET", "/templates", params={"allowed_only": allowed_only})
    else:
        from cloudarb.nodes import templates

        items = _embedded(lambda s, _, org: [_describe(s, t, org) for t in templates.visible(s, organization_id=org)])
        items = [t for t in items if t["allowed"]] if allowed_only else items
    _show(items, as_json, templates_table(items))


@templates_app.command("show")
def show(name: NameArg, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """One template: image, ports, command, environment, health check."""
    if server:
        item = _remote(server, api_key, "GET", f"/templates/{name}")
    else:
        from cloudarb.nodes import templates

        item = _embedded(lambda s, _, org: _describe(s, templates.get(s, organization_id=org, name=name), org))
    if as_json:
        console.print_json(json.dumps(item))
        return
    console.print(templates_table([item]))
    command = " ".join(shlex.quote(a) for a in item["command"]) if item["command"] else "(the image's own)"
    console.print(f"command: {command}")
    for key, value in sorted(item["env"].items()):
        console.print(f"env: {key}={value}")
    if item["description"]:
        console.print(item["description"])


@templates_app.command("add")
def add(name: NameArg, image: Annotated[str, typer.Option(help="Image reference.")], title: TitleOpt = None,
        description: DescriptionOpt = None, port: PortOpt = None, command: CommandOpt = None, env: EnvOpt = None,
        health: HealthOpt = None, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Add one of the organization's own templates (admins)."""
    body = {"name": name, **_body(image, title, description, port, command, env, health)}
    if server:
        item = _remote(server, api_key, "POST", "/templates", json=body)
    else:
        from cloudarb.nodes import templates

        def run(s: Any, settings: Any, org: str) -> dict[str, Any]:
            row = templates.create(s, organization_id=org, actor="cli", body=templates.TemplateCreate.model_validate(body),
                                   server_custom_images=settings.node_custom_images)
            return _describe(s, row, org)

        item = _embedded(run)
    _show(item, as_json, templates_table([item]))


@templates_app.command("edit")
def edit(name: NameArg, image: ImageOpt = None, title: TitleOpt = None, description: DescriptionOpt = None,
         port: PortOpt = None, command: CommandOpt = None, env: EnvOpt = None, health: HealthOpt = None,
         server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Change the given fields of one of the organization's own templates (catalog ones are read-only)."""
    body = _body(image, title, description, port, command, env, health)
    if not body:
        raise fail("give at least one field to change (--image, --port, --command, --env, --health, --title...)")
    if server:
        item = _remote(server, api_key, "PATCH", f"/templates/{name}", json=body)
    else:
        from cloudarb.nodes import templates

        def run(s: Any, settings: Any, org: str) -> dict[str, Any]:
            row = templates.patch(s, organization_id=org, name=name, body=templates.TemplatePatch.model_validate(body),
                                  server_custom_images=settings.node_custom_images)
            return _describe(s, row, org)

        item = _embedded(run)
    _show(item, as_json, templates_table([item]))


@templates_app.command("remove")
def remove(name: NameArg, server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Delete one of the organization's own templates (not while live placements use it)."""
    if server:
        _remote(server, api_key, "DELETE", f"/templates/{name}")
    else:
        from cloudarb.nodes import templates

        _embedded(lambda s, _, org: templates.delete(s, organization_id=org, name=name))
    _show({"removed": name}, as_json, f"template {name} removed")


@templates_app.command("policy")
def policy(
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="The only templates placements may use (repeatable; replaces the list).")] = None,
    allow_all: Annotated[bool, typer.Option("--allow-all", help="Every template the organization sees.")] = False,
    custom_images: Annotated[bool | None, typer.Option(
        "--custom-images/--no-custom-images", help="Whether placements may name any image.")] = None,
    server_default: Annotated[bool, typer.Option(
        "--server-default-images", help="Custom images as the server allows (clears the organization's choice).")] = False,
    server: ServerOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show the organization's template policy, or change it (admins) with the options."""
    change = bool(allow) or allow_all or custom_images is not None or server_default
    if allow and allow_all:
        raise fail("give --allow NAME... or --allow-all, not both")
    if server:
        current = _remote(server, api_key, "GET", "/templates/policy")
    else:
        from cloudarb.nodes import templates

        current = _embedded(lambda s, settings, org: templates.view_policy(
            s, organization_id=org, server_custom_images=settings.node_custom_images).__dict__)
    if change:
        names: list[str] | None = None if allow_all else (sorted(allow) if allow else current["allowed_templates"])
        images: bool | None = None if server_default else (custom_images if custom_images is not None
                                                           else current["custom_images"])
        body = {"allowed_templates": names, "custom_images": images}
        if server:
            current = _remote(server, api_key, "PUT", "/templates/policy", json=body)
        else:
            from cloudarb.nodes import templates

            current = _embedded(lambda s, settings, org: templates.set_policy(
                s, organization_id=org, actor="cli", allowed_templates=names, custom_images=images,
                server_custom_images=settings.node_custom_images).__dict__)
    allowed = current["allowed_templates"]
    _show(current, as_json, f"allowed templates: {', '.join(allowed) if allowed is not None else 'all'}\n"
                            f"custom images: {'yes' if current['custom_images_effective'] else 'no'}"
                            f" (organization: {current['custom_images']}, server: {current['server_custom_images']})")
